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
    Command{"apply", "FILE [SECONDS]", "check FILE, print the diff against the running configuration, apply\n"
                                       "                     it; undone after SECONDS (120) unless 'netctl confirm' keeps it",
            "Applies FILE as the new configuration on trial. FILE is checked first (errors as\n"
            "file:line:col; nothing changes then), the difference to the running configuration\n"
            "is printed, and the router converges on it. Unless 'netctl confirm' is run within\n"
            "SECONDS (10 to 3600, default 120), the configuration that ran before comes back by\n"
            "itself: a change that cuts your own SSH session undoes itself. A reboot or a netd\n"
            "restart during the trial boots the last confirmed configuration. 'netctl confirm'\n"
            "writes it to /data/etc/router.conf and into the history.\n",
            1, 2, false},
    Command{"edit", "[SECONDS]", "edit a copy of the running configuration in $EDITOR (vi), then apply\n"
                                 "                     it as 'netctl apply' does",
            "Opens a copy of /data/etc/router.conf in $VISUAL, $EDITOR or vi. When the editor\n"
            "exits with the file changed, it is applied on trial as with 'netctl apply FILE\n"
            "SECONDS'. If it has errors, the copy is kept and its path printed.\n",
            0, 1, false},
    Command{"confirm", "", "keep the configuration on trial (it becomes router.conf and a revision)",
            "Ends the trial an apply, edit or rollback started: the configuration stays,\n"
            "is written to /data/etc/router.conf and added to the history.\n",
            0, 0, false},
    Command{"cancel", "", "end the trial now: the configuration before it runs again",
            "Ends the trial an apply, edit or rollback started, as its deadline would: the\n"
            "configuration that ran before it comes back.\n",
            0, 0, false},
    Command{"history", "", "the last 20 confirmed configurations: revision, time, who, how",
            "Lists the confirmed configurations kept on the data disk (the last 20), newest\n"
            "first: revision number, when it was confirmed (UTC), who applied it (the comment\n"
            "of the SSH key, 'console', or 'file' for a reload of an edited router.conf) and\n"
            "how. A trial waiting for its confirm is shown on top.\n",
            0, 0, false},
    Command{"diff", "REV [REV2]", "the difference between revision REV and the running configuration\n"
                                  "                     (or revision REV2), as a unified diff",
            "Prints what differs between revision REV of the history and the running\n"
            "configuration, or revision REV2 when given.\n",
            1, 2, false},
    Command{"rollback", "REV [SECONDS]", "apply revision REV of the history again, on trial as 'netctl apply'",
            "Applies revision REV of the history as 'netctl apply' applies a file: the diff is\n"
            "printed, and it is undone after SECONDS (default 120) unless confirmed.\n",
            1, 2, false},
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
    Command{"metrics", "", "print netd's counters and gauges in the Prometheus text format",
            "Prints netd's counters and gauges in the Prometheus text exposition format\n"
            "(names start with netd_): the tunnel's bytes and packets each way, heartbeats\n"
            "and HE endpoint updates sent and failed, DHCP lease events by action and\n"
            "DHCPv6 events, accepted or rejected, firewall drops per chain, service restarts\n"
            "and whether each service is up, WAN address changes, reloads by result, netd's\n"
            "start time and uptime. Counters only grow while netd runs; a restarted netd\n"
            "starts its own. netd serves no HTTP: scrape by running this command, e.g.\n"
            "over ssh into a file for node_exporter's textfile collector. The same figures\n"
            "are in 'netctl status --json', as \"metrics\".\n",
            0, 0, false},
    // The arguments are longer than the column: the summary starts on the next line.
    Command{"log", "[--previous [N] | --list]",
            "\n                     the log kept on /data: this boot's, or the boot before (N back, up\n"
            "                     to 3), also after a crash or power cut; --list: the boots kept",
            "Prints the log kept on the data disk (/data/log): this boot's, or with --previous\n"
            "that of the boot before this one, however it ended (reboot, crash, power cut:\n"
            "lines reach the disk within about 15 s); --previous N goes N boots back (1..3).\n"
            "'netctl log --list' shows the boots kept, with their size and the times of their\n"
            "first and last lines. Each boot keeps its last 1 MiB of lines at most (two files of\n"
            "512 KiB). 'logread' shows this boot from memory (512 KiB). netctl reads the files\n"
            "itself: this works while netd is not running.\n",
            0, 2, false},
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

bool command_identifies(const Command& c) {
    for (const char* n : {"apply", "edit", "confirm", "cancel", "rollback"})
        if (std::string(c.name) == n) return true;
    return false;
}

const Command* command_for_request(const std::vector<std::string>& args) {
    const Command* c = args.empty() ? nullptr : find_command(args[0]);
    if (!c) return nullptr;
    // The commands that change the configuration carry who asked, last ("by=WHO").
    if (command_identifies(*c) && args.size() >= 2 && args.back().rfind("by=", 0) == 0) {
        std::vector<std::string> shape(args.begin(), args.end() - 1);
        // edit arrives with the path of the edited copy first.
        if (std::string(c->name) == "edit" && shape.size() >= 2) shape.erase(shape.begin() + 1);
        if (command_args_ok(*c, shape)) return c;
        // Else as netctl's own check reads it ("apply by=x": a file named so, which netd refuses).
    }
    if (!(command_args_ok(*c, args) || (c->internal && args.size() >= 2))) return nullptr;
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
