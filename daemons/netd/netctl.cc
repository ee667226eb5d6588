// netctl: the administrator's command line for netd, over its control socket. The commands,
// their help and their argument shapes come from the one table in commands.h.
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "atomic_file.h"
#include "commands.h"
#include "control.h"
#include "log_files.h"

namespace {

constexpr const char* kSocket = "/run/netd/control";

// The udhcpc variables netd reads, taken from the environment without any shell in between.
const char* const kDhcpVars[] = {"interface", "ip",    "subnet",    "mask",     "router",   "dns",
                                 "domain",    "search", "hostname", "lease",    "mtu",      "broadcast",
                                 "ntpsrv",    "serverid", "message"};

// Who runs this, for the history: the comment of the SSH key the session logged in with
// (sshd's ExposeAuthInfo names the key in $SSH_USER_AUTH; its line in authorized_keys has the
// comment), else the SSH client's address, else the terminal.
std::string requester() {
    if (const char* auth = std::getenv("SSH_USER_AUTH")) {
        std::string first = netd::read_whole_file(auth).value_or("");
        first = first.substr(0, first.find('\n'));
        char method[32] = "", type[64] = "", blob[2048] = "";
        if (std::sscanf(first.c_str(), "%31s %63s %2047s", method, type, blob) == 3 &&
            std::string(method) == "publickey") {
            const char* keys = std::getenv("NETCTL_AUTHORIZED_KEYS");
            std::string ak = netd::read_whole_file(keys ? keys : "/data/ssh/authorized_keys").value_or("");
            std::string needle = std::string(type) + " " + blob;
            for (size_t pos = 0; pos < ak.size();) {
                size_t nl = ak.find('\n', pos);
                std::string line = ak.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
                pos = nl == std::string::npos ? ak.size() : nl + 1;
                size_t at = line.find(needle);
                if (at == std::string::npos) continue;
                std::string comment = line.substr(at + needle.size());
                comment.erase(0, comment.find_first_not_of(" \t"));
                comment.erase(comment.find_last_not_of(" \t\r") + 1);
                if (!comment.empty()) return comment;
                break;
            }
            return "ssh key " + std::string(type) + " " + std::string(blob).substr(0, 16) + "...";
        }
    }
    if (const char* conn = std::getenv("SSH_CONNECTION")) {
        std::string c = conn;
        return "ssh from " + c.substr(0, c.find(' '));
    }
    const char* tty = ttyname(0);
    if (tty && std::strstr(tty, "/dev/tty") == tty && std::strncmp(tty, "/dev/ttyp", 9) != 0) return "console";
    return tty ? std::string("local ") + tty : "local";
}

std::string absolute(const std::string& path) {
    if (!path.empty() && path[0] == '/') return path;
    char cwd[4096];
    if (!getcwd(cwd, sizeof(cwd))) return path;
    return std::string(cwd) + "/" + path;
}

std::string slurp(const std::string& path) { return netd::read_whole_file(path).value_or(""); }

// netctl edit: a private copy of router.conf, the editor, then the copy goes to netd as an
// apply. Returns the copy's path, "" when nothing changed or the editor failed.
std::string edit_copy(int& status) {
    const char* conf_env = std::getenv("NETCTL_CONFIG");
    std::string conf = conf_env ? conf_env : "/data/etc/router.conf";
    std::string before = slurp(conf);
    char tmpl[] = "/tmp/router.conf.XXXXXX";
    int fd = mkstemp(tmpl);
    if (fd < 0) {
        std::fprintf(stderr, "netctl: cannot make a copy in /tmp: %s\n", std::strerror(errno));
        status = 2;
        return "";
    }
    if (write(fd, before.data(), before.size()) != static_cast<ssize_t>(before.size())) {
        std::fprintf(stderr, "netctl: writing %s: %s\n", tmpl, std::strerror(errno));
        close(fd);
        unlink(tmpl);
        status = 2;
        return "";
    }
    close(fd);
    const char* ed = std::getenv("VISUAL");
    if (!ed || !*ed) ed = std::getenv("EDITOR");
    if (!ed || !*ed) ed = "vi";
    std::string cmd = std::string(ed) + " '" + tmpl + "'";   // the path is ours: no quote in it
    int rc = std::system(cmd.c_str());
    if (rc != 0) {
        std::fprintf(stderr, "netctl: the editor (%s) failed; nothing applied, your copy is %s\n", ed, tmpl);
        status = 1;
        return "";
    }
    if (slurp(tmpl) == before) {
        std::printf("no change: nothing applied\n");
        unlink(tmpl);
        status = 0;
        return "";
    }
    return tmpl;
}

}  // namespace

int main(int argc, char** argv) {
    std::vector<std::string> args(argv + 1, argv + argc);
    if (args.empty() || args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
        std::fputs(netd::netctl_usage().c_str(), args.empty() ? stderr : stdout);
        return args.empty() ? 2 : 0;
    }
    const netd::Command* cmd = netd::find_command(args[0]);
    if (!cmd) {
        std::fprintf(stderr, "netctl: unknown command '%s'\n\n%s", args[0].c_str(), netd::netctl_usage().c_str());
        return 2;
    }
    for (auto& a : args) {
        if (a == "--help" || a == "-h") {
            std::fputs(netd::command_usage(*cmd).c_str(), stdout);
            return 0;
        }
    }
    if (!netd::command_args_ok(*cmd, args)) {
        std::fputs(netd::command_usage(*cmd).c_str(), stderr);
        return 2;
    }
    // The persistent log is read here, not asked of netd: it is there when netd is not.
    if (args[0] == "log") return netd::netctl_log({args.begin() + 1, args.end()}, netd::kLogDir, stdout, stderr);
    if (args[0] == "ntp-event")
        if (const char* v = std::getenv("stratum")) args.push_back(std::string("stratum=") + v);
    if (args[0] == "dhcp-event")
        for (const char* v : kDhcpVars)
            if (const char* val = std::getenv(v)) args.push_back(std::string(v) + "=" + val);
    if (args[0] == "dhcp6-event")
        for (char** e = environ; *e; ++e) {
            std::string_view kv(*e);
            if (kv.rfind("interface=", 0) == 0 || kv.rfind("new_dhcp6_ia_pd", 0) == 0 ||
                kv.rfind("new_dhcp6_name_servers=", 0) == 0)
                args.emplace_back(kv);
        }
    std::string edited;
    if (args[0] == "edit") {
        int status = 0;
        edited = edit_copy(status);
        if (edited.empty()) return status;
        args.insert(args.begin() + 1, edited);
    }
    if (args[0] == "apply") args[1] = absolute(args[1]);
    if (netd::command_identifies(*cmd)) args.push_back("by=" + requester());
    const char* path = std::getenv("NETCTL_SOCKET");
    auto reply = netd::control_request(path ? path : kSocket, args);
    // A lease event must not be lost while netd restarts (init respawns it at once): retry
    // for up to 10 s. udhcpc waits for its hook meanwhile.
    for (int i = 0; !reply && (args[0] == "dhcp-event" || args[0] == "dhcp6-event") && i < 100; ++i) {
        usleep(100 * 1000);
        reply = netd::control_request(path ? path : kSocket, args);
    }
    if (!reply) {
        std::fprintf(stderr, "netctl: %s\n", reply.error().str().c_str());
        return 2;
    }
    std::fputs(reply->text.c_str(), reply->ok ? stdout : stderr);
    if (!edited.empty()) {
        if (reply->ok) unlink(edited.c_str());
        else std::fprintf(stderr, "netctl: your edited copy is kept: %s (netctl apply %s, once fixed)\n",
                          edited.c_str(), edited.c_str());
    }
    return reply->ok ? 0 : 1;
}
