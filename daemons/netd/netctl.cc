// netctl: the administrator's command line for netd, over its control socket.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <unistd.h>
#include <vector>

#include "control.h"

namespace {

constexpr const char* kSocket = "/run/netd/control";

const char* kUsage =
    "usage: netctl COMMAND [ARGS]\n"
    "\n"
    "  status [--json]    links and addresses, configuration state, and every supervised\n"
    "                     service with pid, state, uptime, restarts and last exit\n"
    "  reload             re-read the configuration; if it is invalid, print the errors\n"
    "                     (file:line:col) and keep the running configuration\n"
    "  restart SERVICE    restart one service (udhcpc, dnsmasq, radvd, ntpd, sshd), also\n"
    "                     one that is in the failed state\n"
    "  firewall           print the ruleset netd loaded into the kernel, in nft syntax\n"
    "  tunnel-update      retarget the 6in4 tunnel and send the endpoint update or heartbeat\n"
    "                     now (also after a 'badauth' stopped the updates)\n"
    "  dhcp-event ACTION  (for the udhcpc hook script) hand a lease event and the\n"
    "                     environment udhcpc set to netd, which checks every value\n"
    "  ntp-event ACTION   (for ntpd's -S hook) report the clock's synchronisation\n"
    "\n"
    "  netctl COMMAND --help shows the help of one command. Needs root.\n"
    "  The socket is /run/netd/control (NETCTL_SOCKET overrides it).\n";

const char* command_help(const std::string& cmd) {
    if (cmd == "status")
        return "usage: netctl status [--json]\n\nPrints the router's state; --json prints it as one JSON object.\n";
    if (cmd == "reload")
        return "usage: netctl reload\n\nRe-reads /data/etc/router.conf and applies what changed; only daemons whose\n"
               "own configuration changed are restarted. A file with errors is rejected whole: the\n"
               "errors are printed and the running configuration stays. Exit status 1 then.\n";
    if (cmd == "restart")
        return "usage: netctl restart SERVICE\n\nStops SERVICE (SIGTERM, then SIGKILL after 5 s) and starts it again,\n"
               "forgetting its crash history.\n";
    if (cmd == "firewall")
        return "usage: netctl firewall\n\nPrints the ruleset netd loaded (tables inet netd and ip netd_nat), in nft\n"
               "syntax, with when it was loaded. netd replaces both tables in one transaction.\n";
    if (cmd == "tunnel-update")
        return "usage: netctl tunnel-update\n\nRetargets the tunnel's local end to the WAN address and sends the Hurricane\n"
               "Electric endpoint update or the heartbeat at once, forgetting earlier failures.\n";
    if (cmd == "ntp-event")
        return "usage: netctl ntp-event ACTION\n\nCalled by /etc/netd/ntpd-hook (ntpd -S) with step, stratum, periodic or unsync\n"
               "and $stratum in the environment. Heartbeats wait for a synchronised clock.\n";
    if (cmd == "dhcp-event")
        return "usage: netctl dhcp-event ACTION\n\nCalled by /etc/udhcpc/netd-hook (udhcpc -s) with ACTION deconfig, bound,\n"
               "renew, nak or leasefail. Sends ACTION and udhcpc's variables (interface, ip,\n"
               "subnet, mask, router, dns, domain, search, hostname, lease, mtu, broadcast,\n"
               "ntpsrv, serverid, message) from the environment to netd, which validates them and\n"
               "rejects a malformed event whole. Exit status 1 when netd rejected it.\n";
    return nullptr;
}

// The udhcpc variables netd reads, taken from the environment without any shell in between.
const char* const kDhcpVars[] = {"interface", "ip",    "subnet",    "mask",     "router",   "dns",
                                 "domain",    "search", "hostname", "lease",    "mtu",      "broadcast",
                                 "ntpsrv",    "serverid", "message"};

}  // namespace

int main(int argc, char** argv) {
    std::vector<std::string> args(argv + 1, argv + argc);
    if (args.empty() || args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
        std::fputs(kUsage, args.empty() ? stderr : stdout);
        return args.empty() ? 2 : 0;
    }
    const char* help = command_help(args[0]);
    if (!help) {
        std::fprintf(stderr, "netctl: unknown command '%s'\n\n%s", args[0].c_str(), kUsage);
        return 2;
    }
    for (auto& a : args) {
        if (a == "--help" || a == "-h") {
            std::fputs(help, stdout);
            return 0;
        }
    }
    bool ok_shape = (args[0] == "status" && (args.size() == 1 || (args.size() == 2 && args[1] == "--json"))) ||
                    (args[0] == "reload" && args.size() == 1) || (args[0] == "restart" && args.size() == 2) ||
                    (args[0] == "firewall" && args.size() == 1) || (args[0] == "dhcp-event" && args.size() == 2) ||
                    (args[0] == "ntp-event" && args.size() == 2) || (args[0] == "tunnel-update" && args.size() == 1);
    if (!ok_shape) {
        std::fputs(help, stderr);
        return 2;
    }
    if (args[0] == "ntp-event")
        if (const char* v = std::getenv("stratum")) args.push_back(std::string("stratum=") + v);
    if (args[0] == "dhcp-event")
        for (const char* v : kDhcpVars)
            if (const char* val = std::getenv(v)) args.push_back(std::string(v) + "=" + val);
    const char* path = std::getenv("NETCTL_SOCKET");
    auto reply = netd::control_request(path ? path : kSocket, args);
    // A lease event must not be lost while netd restarts (init respawns it at once): retry
    // for up to 10 s. udhcpc waits for its hook meanwhile.
    for (int i = 0; !reply && args[0] == "dhcp-event" && i < 100; ++i) {
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
