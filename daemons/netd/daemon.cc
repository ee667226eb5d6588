#include "daemon.h"

#include <sys/stat.h>
#include <syslog.h>

#include <cstdio>
#include <fstream>
#include <set>

namespace netd {

Daemon::Daemon(EventLoop& loop, Netlink& nl, Supervisor& sup, DaemonOptions opts)
    : loop_(loop), nl_(nl), sup_(sup), opts_(std::move(opts)) {}

void Daemon::start() {
    mkdir(opts_.run_dir.c_str(), 0755);
    reload();
}

void Daemon::reload() {
    auto res = load_config(opts_.config_path);
    if (!res.config) {
        last_error_.clear();
        for (auto& e : res.errors) {
            syslog(LOG_ERR, "config: %s", e.str().c_str());
            last_error_ += e.str() + "\n";
        }
        syslog(LOG_ERR, "%s: %zu error(s): %s", opts_.config_path.c_str(), res.errors.size(),
               running_ ? "keeping the running configuration" : "nothing configured");
        return;
    }
    if (auto st = apply(*res.config); !st) {
        last_error_ = st.error().str();
        syslog(LOG_ERR, "applying %s: %s", opts_.config_path.c_str(), last_error_.c_str());
        return;
    }
    last_error_.clear();
    running_ = std::move(res.config);
    syslog(LOG_INFO, "configuration %s applied", opts_.config_path.c_str());
    if (!announced_ready_) {
        announced_ready_ = true;
        std::ifstream up("/proc/uptime");
        double uptime = 0;
        up >> uptime;
        // On the console (init gives netd its stdout): what the boot tests and a person wait for.
        std::printf("netd: router ready at uptime %.2f s\n", uptime);
        std::fflush(stdout);
    }
}

Status Daemon::apply(const Config& c) {
    auto lan = resolve_link(nl_, c.lan.interface);
    if (!lan) return Error{"LAN: " + lan.error().str()};
    if (auto st = nl_.set_up(lan->ifindex); !st) return st.error();
    if (auto st = nl_.add_address(lan->ifindex, c.lan.ipv4); !st) return st.error();
    // The router does not autoconfigure itself from RAs on its own LAN.
    write_sysctl("net/ipv6/conf/" + lan->name + "/accept_ra", "0");
    for (auto& p : c.lan.ipv6_prefixes)
        if (auto st = nl_.add_address(lan->ifindex, p.with_host(1), p.len); !st) return st.error();
    // IP forwarding stays off until netd loads the firewall (the WAN/firewall issue): the box
    // never forwards unfiltered.
    facts_.lan_ifname = lan->name;
    facts_.lan_mtu = lan->mtu ? lan->mtu : 1500;

    std::vector<GeneratedService> wanted = {dnsmasq_service(c, facts_, opts_.run_dir),
                                            radvd_service(c, facts_, opts_.run_dir), ntpd_service(c, facts_)};
    if (c.ssh.enabled) wanted.push_back(sshd_service(c, facts_, opts_.run_dir));
    if (c.lan.ipv6_prefixes.empty()) wanted.erase(wanted.begin() + 1);  // radvd has nothing to announce

    std::set<std::string> names;
    for (auto& g : wanted) {
        names.insert(g.spec.name);
        bool changed = false;
        if (!g.config_path.empty()) {
            auto w = write_file_atomic(g.config_path, g.config_text);
            if (!w) return w.error();
            changed = *w;
        }
        bool known = false;
        for (auto& s : sup_.status()) known |= s.name == g.spec.name;
        sup_.ensure(g.spec);
        // Same command line but new inputs: only this daemon restarts.
        if (known && changed) {
            syslog(LOG_INFO, "%s: configuration changed, restarting", g.spec.name.c_str());
            sup_.restart(g.spec.name);
        }
    }
    for (auto& s : sup_.status())
        if (!names.count(s.name)) sup_.remove(s.name);
    return Ok{};
}

void Daemon::stop(std::function<void()> done) { sup_.stop_all(std::move(done)); }

}  // namespace netd
