// netd: the router's network daemon. Parses the command line, sets up signals and the
// modules, and runs the event loop; the work is done by the modules beside it.
#include <getopt.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/signalfd.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>

#include "config.h"
#include "control.h"
#include "daemon.h"
#include "event_loop.h"
#include "kernel.h"
#include "log_forward.h"
#include "supervisor.h"
#include "tic.h"
#include "tunnel.h"

namespace {

constexpr const char* kDefaultConfig = "/data/etc/router.conf";

void usage(FILE* out) {
    std::fprintf(out,
                 "usage: netd [-f] [-c FILE]\n"
                 "       netd --check [FILE]\n"
                 "\n"
                 "Runs in the foreground (BusyBox init respawns it). Converges the router on the\n"
                 "configuration: the firewall (nftables, one transaction) before any link is up,\n"
                 "LAN and WAN addresses and routes, the 6in4 tunnel following the WAN address\n"
                 "(telling the broker), and udhcpc, dnsmasq, radvd, ntpd and sshd supervised with\n"
                 "the files it generates. What the configuration no longer names is removed; a\n"
                 "change the kernel refuses is rolled back whole. On start it adopts the children\n"
                 "a previous netd left. SIGHUP reloads the configuration, SIGTERM stops the\n"
                 "children and exits; the firewall stays loaded.\n"
                 "\n"
                 "  -c, --config FILE   configuration file (default %s)\n"
                 "  -f, --foreground    log to stderr as well as syslog\n"
                 "      --check [FILE]  validate the configuration without touching the system;\n"
                 "                      errors are printed as file:line:col: message, exit 1\n"
                 "  -h, --help          show this help\n"
                 "      --he-update     (internal) the tunnel's HTTPS endpoint-update helper: netd\n"
                 "                      runs itself so, with the request on stdin\n"
                 "      --tic-fetch     (internal) the heartbeat tunnel's SixXS TIC helper: fetches\n"
                 "                      the tunnel's parameters; server, user, password and tunnel\n"
                 "                      id on stdin\n"
                 "      --log-forward URL\n"
                 "                      (internal) the remote log's forwarder ([log] remote): netd\n"
                 "                      runs itself so; it sends syslogd's messages, taken on\n"
                 "                      /run/log/forward, to URL\n"
                 "\n"
                 "The configuration keys are documented in daemons/netd/CONFIG.md.\n",
                 kDefaultConfig);
}

int check(const std::string& path) {
    auto res = netd::load_config(path);
    for (const auto& e : res.errors) std::fprintf(stderr, "%s\n", e.str().c_str());
    if (!res.config) {
        std::fprintf(stderr, "netd: %s: %zu error%s\n", path.c_str(), res.errors.size(),
                     res.errors.size() == 1 ? "" : "s");
        return 1;
    }
    std::printf("netd: %s: configuration OK\n", path.c_str());
    return 0;
}

// The kernel's link notifications (RTNLGRP_LINK) read up to now: whether a link was made,
// changed or deleted. An overrun socket (ENOBUFS) lost some, a message longer than the buffer
// was cut: both count as a change too.
bool link_notified(int fd) {
    bool any = false;
    alignas(nlmsghdr) char buf[16384];
    for (;;) {
        sockaddr_nl from{};
        socklen_t len = sizeof(from);
        ssize_t n = recvfrom(fd, buf, sizeof(buf), MSG_TRUNC, reinterpret_cast<sockaddr*>(&from), &len);
        if (n < 0) {
            if (errno == ENOBUFS) {
                any = true;
                continue;
            }
            return any;   // EAGAIN: all read
        }
        if (from.nl_pid != 0) continue;   // only the kernel's
        if (n > static_cast<ssize_t>(sizeof(buf))) {   // cut short: what it said is not known
            any = true;
            continue;
        }
        int left = static_cast<int>(n);
        for (auto* h = reinterpret_cast<nlmsghdr*>(buf); NLMSG_OK(h, left); h = NLMSG_NEXT(h, left))
            any = any || h->nlmsg_type == RTM_NEWLINK || h->nlmsg_type == RTM_DELLINK;
    }
}

int run(const std::string& config_path, bool foreground) {
    openlog("netd", LOG_PID | (foreground ? LOG_PERROR : 0), LOG_DAEMON);
    signal(SIGPIPE, SIG_IGN);
    sigset_t mask;
    sigemptyset(&mask);
    for (int s : {SIGTERM, SIGINT, SIGHUP, SIGCHLD}) sigaddset(&mask, s);
    sigprocmask(SIG_BLOCK, &mask, nullptr);
    netd::UniqueFd sfd(signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK));
    if (!sfd) {
        syslog(LOG_CRIT, "signalfd: %s", std::strerror(errno));
        return 1;
    }
    auto loop = netd::EventLoop::create();
    if (!loop) {
        syslog(LOG_CRIT, "%s", loop.error().str().c_str());
        return 1;
    }
    auto kernel = netd::make_linux_kernel();
    if (!kernel) {
        syslog(LOG_CRIT, "%s", kernel.error().str().c_str());
        return 1;
    }
    netd::Supervisor sup(**loop, {});
    netd::DaemonOptions dopts;
    dopts.config_path = config_path;
    dopts.data_format_file = "/data/.layout";
    dopts.names6_neighbours = netd::dump_neighbours6;
    dopts.names6_ping = netd::ping_all_nodes;
    // The tunnel's HE update helper is netd itself (--he-update).
    auto updates = netd::make_helper_update_runner(**loop, "/usr/sbin/netd");
    auto datagrams = netd::make_udp_sender();
    netd::Daemon daemon(**kernel, sup, **loop, *updates, *datagrams, dopts);

    bool stopping = false;
    auto signals = (*loop)->watch_fd(sfd.get(), EPOLLIN, [&](uint32_t) {
        signalfd_siginfo si;
        while (read(sfd.get(), &si, sizeof(si)) == sizeof(si)) {
            switch (si.ssi_signo) {
                case SIGHUP:
                    syslog(LOG_INFO, "SIGHUP: reloading %s", config_path.c_str());
                    daemon.reload();
                    break;
                case SIGTERM:
                case SIGINT:
                    if (stopping) break;
                    stopping = true;
                    syslog(LOG_INFO, "stopping: stopping the services");
                    daemon.stop([&] { (*loop)->stop(); });
                    break;
                default:  // SIGCHLD: children are reaped through their pidfds
                    break;
            }
        }
    });
    if (!signals) {
        syslog(LOG_CRIT, "%s", signals.error().str().c_str());
        return 1;
    }
    // NICs plugged in and unplugged, devices deleted by hand: netd converges again (links_changed).
    netd::UniqueFd lfd(socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_ROUTE));
    sockaddr_nl groups{};
    groups.nl_family = AF_NETLINK;
    groups.nl_groups = RTMGRP_LINK;
    std::optional<netd::Registration> link_watch;
    if (!lfd || bind(lfd.get(), reinterpret_cast<sockaddr*>(&groups), sizeof(groups)) != 0) {
        syslog(LOG_ERR, "link notifications: %s: NICs plugged in later are not followed", std::strerror(errno));
    } else if (auto w = (*loop)->watch_fd(lfd.get(), EPOLLIN, [&](uint32_t) {
                   if (link_notified(lfd.get())) daemon.links_changed();
               })) {
        link_watch = std::move(*w);
    } else {
        syslog(LOG_ERR, "%s: NICs plugged in later are not followed", w.error().str().c_str());
    }
    syslog(LOG_INFO, "starting with %s", config_path.c_str());
    // The control socket before anything starts: udhcpc's hook may call as soon as udhcpc runs.
    mkdir(dopts.paths.run_dir.c_str(), 0755);
    auto control = netd::ControlServer::listen(**loop, dopts.paths.run_dir + "/control",
                                               [&](const std::vector<std::string>& a) { return daemon.control(a); });
    if (!control) syslog(LOG_ERR, "control socket: %s", control.error().str().c_str());
    daemon.start();
    if (auto st = (*loop)->run(); !st) {
        syslog(LOG_CRIT, "%s", st.error().str().c_str());
        return 1;
    }
    syslog(LOG_INFO, "stopped");
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    enum { kCheck = 1000, kHeUpdate };
    // The tunnel's endpoint-update helper (spawned by netd itself; see tunnel.h).
    if (argc == 2 && std::strcmp(argv[1], "--he-update") == 0) return netd::he_update_main();
    // The heartbeat tunnel's TIC helper (see tic.h).
    if (argc == 2 && std::strcmp(argv[1], "--tic-fetch") == 0) return netd::tic_fetch_main();
    // The remote log's forwarder (see log_forward.h), supervised by netd.
    if (argc == 3 && std::strcmp(argv[1], "--log-forward") == 0) return netd::log_forward_main(argv[2]);
    static const option opts[] = {{"check", no_argument, nullptr, kCheck},
                                  {"config", required_argument, nullptr, 'c'},
                                  {"foreground", no_argument, nullptr, 'f'},
                                  {"help", no_argument, nullptr, 'h'},
                                  {nullptr, 0, nullptr, 0}};
    bool do_check = false, foreground = false;
    std::string config = kDefaultConfig;
    int c;
    while ((c = getopt_long(argc, argv, "c:fh", opts, nullptr)) != -1) {
        switch (c) {
            case kCheck: do_check = true; break;
            case 'c': config = optarg; break;
            case 'f': foreground = true; break;
            case 'h': usage(stdout); return 0;
            default: usage(stderr); return 2;
        }
    }
    if (do_check) {
        if (argc - optind > 1) {
            usage(stderr);
            return 2;
        }
        return check(optind < argc ? argv[optind] : config);
    }
    if (optind != argc) {
        usage(stderr);
        return 2;
    }
    return run(config, foreground);
}
