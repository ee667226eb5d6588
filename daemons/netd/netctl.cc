// netctl: the administrator's command line for netd, over its control socket. The commands,
// their help and their argument shapes come from the one table in commands.h.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "commands.h"
#include "control.h"

namespace {

constexpr const char* kSocket = "/run/netd/control";

// The udhcpc variables netd reads, taken from the environment without any shell in between.
const char* const kDhcpVars[] = {"interface", "ip",    "subnet",    "mask",     "router",   "dns",
                                 "domain",    "search", "hostname", "lease",    "mtu",      "broadcast",
                                 "ntpsrv",    "serverid", "message"};

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
    return reply->ok ? 0 : 1;
}
