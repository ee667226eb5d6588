#include "log_files.h"

#include <sys/stat.h>

#include <cstring>

#include "atomic_file.h"

namespace netd {
namespace {

bool exists(const std::string& path) {
    struct stat st {};
    return stat(path.c_str(), &st) == 0;
}

// The syslogd stamp ("Mmm dd hh:mm:ss") of a file's first or last line, empty when none.
std::string stamp_of(const std::string& path, bool last) {
    auto text = read_whole_file(path);   // at most syslogd's -s size (512 KiB)
    if (!text) return "";
    std::string line;
    if (last) {
        while (!text->empty() && text->back() == '\n') text->pop_back();
        auto nl = text->rfind('\n');
        line = nl == std::string::npos ? *text : text->substr(nl + 1);
    } else {
        line = text->substr(0, text->find('\n'));
    }
    return line.size() >= 15 ? line.substr(0, 15) : "";
}

std::string size_text(long long bytes) {
    char buf[32];
    if (bytes >= 1024 * 1024)
        std::snprintf(buf, sizeof(buf), "%.1f MiB", static_cast<double>(bytes) / (1024 * 1024));
    else
        std::snprintf(buf, sizeof(buf), "%lld KiB", (bytes + 1023) / 1024);
    return buf;
}

}  // namespace

Result<LogRequest> parse_log_args(const std::vector<std::string>& args) {
    LogRequest r;
    if (args.empty()) return r;
    if (args.size() == 1 && args[0] == "--list") {
        r.list = true;
        return r;
    }
    if (args[0] != "--previous" || args.size() > 2)
        return Error{"expected no argument, --previous [N] or --list"};
    r.boot = 1;
    if (args.size() == 2) {
        const std::string& n = args[1];
        if (n.size() != 1 || n[0] < '1' || n[0] > '0' + kPreviousBootsKept)
            return Error{"--previous " + n + ": N is 1 (the boot before this one) .. " +
                         std::to_string(kPreviousBootsKept)};
        r.boot = n[0] - '0';
    }
    return r;
}

std::string boot_log_dir(const std::string& dir, int boot) {
    return dir + "/" + (boot == 0 ? std::string("current") : "boot-" + std::to_string(boot));
}

std::vector<std::string> boot_log_files(const std::string& dir, int boot) {
    std::vector<std::string> out;
    std::string d = boot_log_dir(dir, boot);
    for (const char* f : {"/messages.0", "/messages"})
        if (exists(d + f)) out.push_back(d + f);
    return out;
}

std::string log_listing(const std::string& dir) {
    std::string o;
    for (int b = 0; b <= kPreviousBootsKept; ++b) {
        auto files = boot_log_files(dir, b);
        if (files.empty()) continue;
        long long bytes = 0;
        for (auto& f : files) {
            struct stat st {};
            if (stat(f.c_str(), &st) == 0) bytes += st.st_size;
        }
        std::string which = b == 0 ? "this boot" : b == 1 ? "--previous" : "--previous " + std::to_string(b);
        char line[256];
        std::snprintf(line, sizeof(line), "%-14s %-18s %9s  %s .. %s\n", which.c_str(),
                      boot_log_dir(dir, b).c_str(), size_text(bytes).c_str(), stamp_of(files.front(), false).c_str(),
                      stamp_of(files.back(), true).c_str());
        o += line;
    }
    return o.empty() ? "no persistent log in " + dir + "\n" : o;
}

int netctl_log(const std::vector<std::string>& args, const std::string& dir, FILE* out, FILE* err) {
    auto req = parse_log_args(args);
    if (!req) {
        std::fprintf(err, "netctl log: %s\n", req.error().str().c_str());
        return 2;
    }
    if (req->list) {
        std::fputs(log_listing(dir).c_str(), out);
        return 0;
    }
    auto files = boot_log_files(dir, req->boot);
    if (files.empty()) {
        std::string which = req->boot == 0 ? "this boot"
                            : req->boot == 1 ? "the boot before this one"
                                             : std::to_string(req->boot) + " boots back";
        std::fprintf(err, "netctl log: no log of %s in %s (netctl log --list shows what is kept)\n", which.c_str(),
                     boot_log_dir(dir, req->boot).c_str());
        return 1;
    }
    for (auto& f : files) {
        std::FILE* in = std::fopen(f.c_str(), "rb");
        if (!in) {
            std::fprintf(err, "netctl log: %s: %s\n", f.c_str(), std::strerror(errno));
            return 1;
        }
        char buf[65536];
        size_t n;
        while ((n = std::fread(buf, 1, sizeof(buf), in)) > 0)
            if (std::fwrite(buf, 1, n, out) != n) break;
        std::fclose(in);
    }
    return std::fflush(out) == 0 ? 0 : 1;
}

}  // namespace netd
