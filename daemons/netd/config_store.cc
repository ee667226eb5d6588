#include "config_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <iterator>
#include <map>
#include <sstream>

#include "atomic_file.h"

namespace netd {
namespace {

std::optional<std::string> slurp(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return std::nullopt;
    return std::string((std::istreambuf_iterator<char>(in)), {});
}

// "# key value" lines up to a lone "#", then the text.
struct Parsed {
    std::map<std::string, std::string> header;
    std::string text;
};

std::optional<Parsed> parse_headed(const std::string& file) {
    Parsed p;
    size_t pos = 0;
    while (pos < file.size()) {
        size_t nl = file.find('\n', pos);
        if (nl == std::string::npos) return std::nullopt;
        std::string line = file.substr(pos, nl - pos);
        pos = nl + 1;
        if (line == "#") {
            p.text = file.substr(pos);
            return p;
        }
        if (line.rfind("# ", 0) != 0) return std::nullopt;
        size_t sp = line.find(' ', 2);
        if (sp == std::string::npos) p.header[line.substr(2)] = "";
        else p.header[line.substr(2, sp - 2)] = line.substr(sp + 1);
    }
    return std::nullopt;
}

int64_t to_int(const std::string& s) {
    try {
        size_t used = 0;
        long long v = std::stoll(s, &used);
        return used ? v : 0;
    } catch (...) {
        return 0;
    }
}

Status fsync_dir(const std::string& dir) {
    UniqueFd d(open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!d) return Error::from_errno("open " + dir);
    if (fsync(d.get()) < 0 && errno != EINVAL) return Error::from_errno("fsync " + dir);
    return Ok{};
}

std::string dir_of(const std::string& path) {
    size_t slash = path.rfind('/');
    return slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
}

// Temporaries of write_file_atomic a power cut left behind.
void remove_temporaries(const std::string& dir) {
    DIR* d = opendir(dir.c_str());
    if (!d) return;
    while (dirent* e = readdir(d)) {
        std::string n = e->d_name;
        if (n.size() > 5 && n[0] == '.' && n.compare(n.size() - 4, 4, ".tmp") == 0) unlinkat(dirfd(d), n.c_str(), 0);
    }
    closedir(d);
}

std::vector<std::string> lines_of(const std::string& s) {
    std::vector<std::string> out;
    size_t pos = 0;
    while (pos < s.size()) {
        size_t nl = s.find('\n', pos);
        if (nl == std::string::npos) {
            out.push_back(s.substr(pos));
            break;
        }
        out.push_back(s.substr(pos, nl - pos));
        pos = nl + 1;
    }
    return out;
}

}  // namespace

std::string utc_time(int64_t t) {
    time_t tt = static_cast<time_t>(t);
    struct tm tm {};
    gmtime_r(&tt, &tm);
    char buf[40];
    std::strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S", &tm);
    return buf;
}

std::string header_safe(const std::string& s) {
    std::string o;
    for (char c : s) {
        if (o.size() >= 80) break;
        o += (c >= 0x20 && c < 0x7f) ? c : '?';
    }
    return o.empty() ? "-" : o;
}

ConfigStore::ConfigStore(std::string config_path, std::string dir)
    : config_path_(std::move(config_path)), dir_(std::move(dir)) {}

std::string ConfigStore::revision_path(unsigned n) const {
    char name[32];
    std::snprintf(name, sizeof(name), "/r%06u.conf", n);
    return history_dir() + name;
}

std::string ConfigStore::recover() {
    std::string said;
    remove_temporaries(dir_);
    remove_temporaries(history_dir());
    remove_temporaries(dir_of(config_path_));
    auto t = pending();
    if (!t) {
        if (access(pending_path().c_str(), F_OK) == 0) {
            unlink(pending_path().c_str());
            (void)fsync_dir(dir_);
            said = "an unreadable pending trial was dropped";
        }
        return said;
    }
    auto current = slurp(config_path_);
    if (current && *current == t->text) {
        // The confirm had written router.conf: finish it.
        auto newest = history();
        if (newest.empty() || newest.front().text != t->text) (void)add(t->text, t->who, t->how, time(nullptr));
        said = "finished the confirm of the trial (" + t->how + " by " + t->who + ") a restart interrupted";
    } else {
        said = "dropped the unconfirmed trial (" + t->how + " by " + t->who + ", started " + utc_time(t->started) + " UTC" +
               "): the last confirmed configuration runs";
    }
    unlink(pending_path().c_str());
    (void)fsync_dir(dir_);
    return said;
}

std::optional<Trial> ConfigStore::pending() const {
    auto f = slurp(pending_path());
    if (!f) return std::nullopt;
    auto p = parse_headed(*f);
    if (!p || !p->header.count("trial")) return std::nullopt;
    Trial t;
    t.text = p->text;
    t.who = p->header["by"];
    t.how = p->header["how"];
    t.started = to_int(p->header["started"]);
    t.timeout = static_cast<unsigned>(std::max<int64_t>(0, to_int(p->header["timeout"])));
    return t;
}

Status ConfigStore::begin(const Trial& t) {
    mkdir(dir_.c_str(), 0700);
    std::string f = "# trial\n# started " + std::to_string(t.started) + "\n# timeout " + std::to_string(t.timeout) +
                    "\n# by " + header_safe(t.who) + "\n# how " + header_safe(t.how) + "\n#\n" + t.text;
    auto w = write_file_atomic(pending_path(), f, 0600);
    if (!w) return w.error();
    return Ok{};
}

Result<unsigned> ConfigStore::confirm(const Trial& t, int64_t now) {
    auto w = write_file_atomic(config_path_, t.text, 0600);   // the commit point
    if (!w) return w.error();
    auto n = add(t.text, t.who, t.how, now);
    if (!n) return n.error();
    if (auto st = drop(); !st) return st.error();
    return *n;
}

Status ConfigStore::drop() {
    if (unlink(pending_path().c_str()) < 0 && errno != ENOENT) return Error::from_errno("unlink " + pending_path());
    return fsync_dir(dir_);
}

Result<unsigned> ConfigStore::record(const std::string& text, const std::string& who, const std::string& how,
                                     int64_t now) {
    auto h = history();
    if (!h.empty() && h.front().text == text) return h.front().number;
    return add(text, who, how, now);
}

Result<unsigned> ConfigStore::add(const std::string& text, const std::string& who, const std::string& how,
                                  int64_t now) {
    mkdir(dir_.c_str(), 0700);
    if (mkdir(history_dir().c_str(), 0700) == 0) (void)fsync_dir(dir_);
    auto h = history();
    unsigned n = h.empty() ? 1 : h.front().number + 1;
    std::string f = "# netd revision " + std::to_string(n) + "\n# confirmed " + std::to_string(now) + " (" + utc_time(now) + " UTC" +
                    ")\n# by " + header_safe(who) + "\n# how " + header_safe(how) + "\n#\n" + text;
    auto w = write_file_atomic(revision_path(n), f, 0600);
    if (!w) return w.error();
    // The oldest go once there are more than kKeep.
    for (size_t i = kKeep - 1; i < h.size(); ++i) unlink(revision_path(h[i].number).c_str());
    if (h.size() >= kKeep) (void)fsync_dir(history_dir());
    return n;
}

std::vector<Revision> ConfigStore::history() const {
    std::vector<unsigned> numbers;
    if (DIR* d = opendir(history_dir().c_str())) {
        while (dirent* e = readdir(d)) {
            unsigned n = 0;
            char tail = 0;
            std::string name = e->d_name;
            if (name.size() == 12 && std::sscanf(name.c_str(), "r%6u.conf%c", &n, &tail) == 1 && n > 0 &&
                name.compare(7, 5, ".conf") == 0)
                numbers.push_back(n);
        }
        closedir(d);
    }
    std::sort(numbers.rbegin(), numbers.rend());
    std::vector<Revision> out;
    for (unsigned n : numbers)
        if (auto r = revision(n)) out.push_back(std::move(*r));
    return out;
}

std::optional<Revision> ConfigStore::revision(unsigned n) const {
    auto f = slurp(revision_path(n));
    if (!f) return std::nullopt;
    auto p = parse_headed(*f);
    if (!p) return std::nullopt;
    Revision r;
    r.number = n;
    r.text = p->text;
    r.time = to_int(p->header["confirmed"]);
    r.who = p->header["by"];
    r.how = p->header["how"];
    return r;
}

std::string unified_diff(const std::string& a, const std::string& b, const std::string& label_a,
                         const std::string& label_b) {
    if (a == b) return "";
    auto x = lines_of(a), y = lines_of(b);
    // The common head and tail, then a longest common subsequence of the middle (configuration
    // files are short; a middle too large for the table is shown as replaced whole).
    size_t head = 0;
    while (head < x.size() && head < y.size() && x[head] == y[head]) ++head;
    size_t tail = 0;
    while (tail < x.size() - head && tail < y.size() - head && x[x.size() - 1 - tail] == y[y.size() - 1 - tail]) ++tail;
    size_t n = x.size() - head - tail, m = y.size() - head - tail;
    struct Op {
        char kind;   // ' ', '-', '+'
        size_t ia, ib;
    };
    std::vector<Op> ops;
    for (size_t i = 0; i < head; ++i) ops.push_back({' ', i, i});
    if (n * m <= 4'000'000) {
        std::vector<std::vector<uint32_t>> L(n + 1, std::vector<uint32_t>(m + 1, 0));
        for (size_t i = n; i-- > 0;)
            for (size_t j = m; j-- > 0;)
                L[i][j] = x[head + i] == y[head + j] ? L[i + 1][j + 1] + 1 : std::max(L[i + 1][j], L[i][j + 1]);
        size_t i = 0, j = 0;
        while (i < n || j < m) {
            if (i < n && j < m && x[head + i] == y[head + j]) {
                ops.push_back({' ', head + i++, head + j++});
            } else if (i < n && (j == m || L[i + 1][j] >= L[i][j + 1])) {
                ops.push_back({'-', head + i++, head + j});   // removals first, as diff -u
            } else {
                ops.push_back({'+', head + i, head + j++});
            }
        }
    } else {
        for (size_t i = 0; i < n; ++i) ops.push_back({'-', head + i, head});
        for (size_t j = 0; j < m; ++j) ops.push_back({'+', head + n, head + j});
    }
    for (size_t i = 0; i < tail; ++i) ops.push_back({' ', head + n + i, head + m + i});

    std::string out = "--- " + label_a + "\n+++ " + label_b + "\n";
    constexpr size_t kContext = 3;
    size_t k = 0;
    while (k < ops.size()) {
        while (k < ops.size() && ops[k].kind == ' ') ++k;
        if (k == ops.size()) break;
        size_t start = k >= kContext ? k - kContext : 0;
        // The hunk ends where kContext*2 unchanged lines follow a change, or at the end.
        size_t end = k, same = 0;
        for (size_t e = k; e < ops.size(); ++e) {
            if (ops[e].kind == ' ') {
                if (++same > 2 * kContext) break;
            } else {
                same = 0;
                end = e;
            }
        }
        size_t stop = std::min(ops.size(), end + 1 + kContext);
        size_t a0 = ops[start].ia, b0 = ops[start].ib, na = 0, nb = 0;
        std::string body;
        for (size_t e = start; e < stop; ++e) {
            const Op& o = ops[e];
            if (o.kind != '+') ++na;
            if (o.kind != '-') ++nb;
            body += o.kind;
            body += (o.kind == '+' ? y[o.ib] : x[o.ia]) + "\n";
        }
        char hdr[96];
        std::snprintf(hdr, sizeof(hdr), "@@ -%zu,%zu +%zu,%zu @@\n", na ? a0 + 1 : a0, na, nb ? b0 + 1 : b0, nb);
        out += hdr + body;
        k = stop;
    }
    return out;
}

}  // namespace netd
