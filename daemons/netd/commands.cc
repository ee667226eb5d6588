#include "commands.h"

#include <array>
#include <cstdio>

namespace netd {
namespace {

constexpr std::array kCommands = {
    Command{"status", "[--json]", "links and addresses, WAN lease, tunnel, firewall, the last transition, and\n"
                                  "                     every supervised service with pid, state, uptime, restarts",
            "Prints the router's state; --json prints it as one JSON object.\n", 0, 1, false},
    Command{"reload", "", "re-read the configuration and converge on it; if it is invalid, print\n"
                          "                     the errors (file:line:col) and keep the running configuration",
            "Re-reads /data/etc/router.conf and makes the router hold exactly what it describes:\n"
            "what the file no longer names is removed, only daemons whose own configuration\n"
            "changed are restarted. A file with errors is rejected whole: the errors are\n"
            "printed and the running configuration stays. If the kernel refuses part of the\n"
            "change, everything goes back to the previous state. Exit status 1 then.\n",
            0, 0, false},
    Command{"restart", "SERVICE", "restart one service (udhcpc, dnsmasq, radvd, ntpd, sshd), also\n"
                                  "                     one that is in the failed state",
            "Stops SERVICE (SIGTERM, then SIGKILL after 5 s) and starts it again,\n"
            "forgetting its crash history.\n",
            1, 1, false},
    Command{"firewall", "", "print the ruleset netd loaded into the kernel, in nft syntax",
            "Prints the ruleset netd loaded (tables inet netd and ip netd_nat), in nft\n"
            "syntax, with when it was loaded. netd replaces both tables in one transaction.\n",
            0, 0, false},
    Command{"tunnel-update", "", "tell the tunnel broker the WAN address again now (also after a\n"
                                 "                     'badauth' stopped the updates)",
            "Sends the Hurricane Electric endpoint update or the heartbeat at once,\n"
            "forgetting earlier failures. With SixXS TIC, also logs in to TIC again when\n"
            "the last contact brought no parameters (at most 5 logins in an hour).\n",
            0, 0, false},
    Command{"dhcp-event", "ACTION", "(for the udhcpc hook script) hand a lease event and the\n"
                                    "                     environment udhcpc set to netd, which checks every value",
            "Called by /etc/udhcpc/netd-hook (udhcpc -s) with ACTION deconfig, bound,\n"
            "renew, nak or leasefail. Sends ACTION and udhcpc's variables (interface, ip,\n"
            "subnet, mask, router, dns, domain, search, hostname, lease, mtu, broadcast,\n"
            "ntpsrv, serverid, message) from the environment to netd, which validates them and\n"
            "rejects a malformed event whole; a lease the kernel refuses is rolled back.\n"
            "Exit status 1 when netd rejected it.\n",
            1, 1, true},
    Command{"dhcp6-event", "REASON", "(for the dhcpcd hook script) hand a DHCPv6 prefix delegation\n"
                                     "                     event to netd, which checks every value",
            "Called by /etc/netd/dhcpcd-hook (dhcpcd -c) with dhcpcd's REASON (BOUND6, RENEW6,\n"
            "REBIND6, REBOOT6, EXPIRE6, RELEASE6, STOP6, ...). Sends REASON, interface,\n"
            "new_dhcp6_name_servers and the delegated prefixes (new_dhcp6_ia_pd*_prefix* with\n"
            "_length, _pltime, _vltime) from the environment to netd, which validates them and\n"
            "rejects a malformed event whole. Exit status 1 when netd rejected it.\n",
            1, 1, true},
    Command{"ntp-event", "ACTION", "(for ntpd's -S hook) report the clock's synchronisation",
            "Called by /etc/netd/ntpd-hook (ntpd -S) with step, stratum, periodic or unsync\n"
            "and $stratum in the environment. Heartbeats wait for a synchronised clock.\n",
            1, 1, true},
};

}  // namespace

std::span<const Command> commands() { return kCommands; }

const Command* find_command(const std::string& name) {
    for (auto& c : kCommands)
        if (name == c.name) return &c;
    return nullptr;
}

bool command_args_ok(const Command& c, const std::vector<std::string>& args) {
    if (args.empty() || args[0] != c.name) return false;
    size_t n = args.size() - 1;
    if (n < c.min_args || n > c.max_args) return false;
    if (std::string(c.name) == "status" && n == 1) return args[1] == "--json";
    return true;
}

const Command* command_for_request(const std::vector<std::string>& args) {
    const Command* c = args.empty() ? nullptr : find_command(args[0]);
    if (!c || !(command_args_ok(*c, args) || (c->internal && args.size() >= 2))) return nullptr;
    return c;
}

std::string command_usage(const Command& c) {
    return std::string("usage: netctl ") + c.name + (*c.args ? std::string(" ") + c.args : "") + "\n\n" + c.help;
}

std::string netctl_usage() {
    std::string o = "usage: netctl COMMAND [ARGS]\n\n";
    for (auto& c : kCommands) {
        char left[64];
        std::snprintf(left, sizeof(left), "%s%s%s", c.name, *c.args ? " " : "", c.args);
        char line[512];
        std::snprintf(line, sizeof(line), "  %-18s %s\n", left, c.summary);
        o += line;
    }
    o += "\n  netctl COMMAND --help shows the help of one command. Needs root.\n"
         "  The socket is /run/netd/control (NETCTL_SOCKET overrides it).\n";
    return o;
}

}  // namespace netd
