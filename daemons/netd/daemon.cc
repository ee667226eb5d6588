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
        if (!announced_ready_) {
            // Nothing runs yet: say why on the console too, where a person is waiting.
            std::printf("netd: NOT READY: %s: nothing configured; fix it and run 'netctl reload'\n%s",
                        opts_.config_path.c_str(), last_error_.c_str());
            std::fflush(stdout);
        }
        return;
    }
    if (auto st = apply(*res.config); !st) {
        last_error_ = st.error().str();
        syslog(LOG_ERR, "applying %s: %s", opts_.config_path.c_str(), last_error_.c_str());
        if (!announced_ready_) {
            std::printf("netd: NOT READY: applying %s: %s\n", opts_.config_path.c_str(), last_error_.c_str());
            std::fflush(stdout);
        }
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
        auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started_);
        // On the console (init gives netd its stdout): what the boot tests and a person wait for.
        std::printf("netd: router ready at uptime %.2f s (services started %lld ms after netd started)\n", uptime,
                    static_cast<long long>(ms.count()));
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
    lan_ifname_ = lan->name;
    facts_.lan_mtu = lan->mtu ? lan->mtu : 1500;

    std::vector<GeneratedService> wanted = {dnsmasq_service(c, facts_, opts_.run_dir), ntpd_service(c, facts_)};
    // Without a prefix radvd has nothing to announce.
    if (!c.lan.ipv6_prefixes.empty()) wanted.push_back(radvd_service(c, facts_, opts_.run_dir));
    if (c.ssh.enabled) wanted.push_back(sshd_service(c, facts_, opts_.run_dir));

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

namespace {

std::string duration_text(std::chrono::steady_clock::duration d) {
    long s = static_cast<long>(std::chrono::duration_cast<std::chrono::seconds>(d).count());
    char buf[32];
    if (s >= 3600)
        std::snprintf(buf, sizeof(buf), "%ldh%02ldm", s / 3600, s / 60 % 60);
    else
        std::snprintf(buf, sizeof(buf), "%ldm%02lds", s / 60, s % 60);
    return buf;
}

}  // namespace

ControlReply Daemon::control(const std::vector<std::string>& args) {
    if (args.empty()) return {false, "empty request\n"};
    const std::string& cmd = args[0];
    if (cmd == "status" && args.size() == 1) return {true, status_text()};
    if (cmd == "status" && args.size() == 2 && args[1] == "--json") return {true, status_json()};
    if (cmd == "reload" && args.size() == 1) {
        syslog(LOG_INFO, "control: reload requested");
        reload();
        if (!last_error_.empty())
            return {false, last_error_ + (running_ ? "reload failed: the running configuration stays in place\n"
                                                   : "reload failed: nothing is configured\n")};
        return {true, "configuration " + opts_.config_path + " applied\n"};
    }
    if (cmd == "restart" && args.size() == 2) {
        for (auto& s : sup_.status()) {
            if (s.name == args[1]) {
                syslog(LOG_INFO, "control: restart of %s requested", s.name.c_str());
                sup_.restart(s.name);
                return {true, s.name + ": restarting\n"};
            }
        }
        return {false, "no service '" + args[1] + "'\n"};
    }
    return {false, "unknown request '" + cmd + "' (see netctl --help)\n"};
}

std::string Daemon::status_text() {
    std::string o;
    o += "config:   " + opts_.config_path + (last_error_.empty() ? " (applied)\n" : " (LAST RELOAD FAILED)\n");
    if (!last_error_.empty()) o += last_error_;
    if (running_) {
        auto& lan = running_->lan;
        o += "lan:      " + (lan_ifname_.empty() ? lan.interface.describe() : lan_ifname_) + " " + lan.ipv4.str();
        for (auto& p : lan.ipv6_prefixes) o += " " + p.with_host(1).str() + "/" + std::to_string(p.len);
        o += "\n";
        o += "wan:      " + running_->wan.interface.describe() + " (WAN not managed yet)\n";
    } else {
        o += "lan:      not configured\n";
    }
    o += "services:\n";
    char line[160];
    std::snprintf(line, sizeof(line), "  %-8s %-9s %6s %8s %8s  %s\n", "NAME", "STATE", "PID", "UPTIME", "RESTARTS",
                  "LAST EXIT");
    o += line;
    for (auto& s : sup_.status()) {
        std::string pid = s.pid > 0 ? std::to_string(s.pid) : "-";
        std::string up = s.pid > 0 ? duration_text(s.uptime) : "-";
        std::string last = s.last_exit.empty() ? "-" : s.last_exit;
        if (s.adopted) last += " (adopted)";
        std::snprintf(line, sizeof(line), "  %-8s %-9s %6s %8s %8d  %s\n", s.name.c_str(), to_string(s.state),
                      pid.c_str(), up.c_str(), s.restarts, last.c_str());
        o += line;
    }
    return o;
}

std::string Daemon::status_json() {
    std::string o = "{\"config\":{\"path\":" + json_escape(opts_.config_path) +
                    ",\"ok\":" + (last_error_.empty() ? "true" : "false") + ",\"error\":" + json_escape(last_error_) + "}";
    if (running_) {
        auto& lan = running_->lan;
        o += ",\"lan\":{\"interface\":" + json_escape(lan_ifname_) + ",\"ipv4\":" + json_escape(lan.ipv4.str()) +
             ",\"ipv6\":[";
        for (size_t i = 0; i < lan.ipv6_prefixes.size(); ++i) {
            auto& p = lan.ipv6_prefixes[i];
            o += (i ? "," : "") + json_escape(p.with_host(1).str() + "/" + std::to_string(p.len));
        }
        o += "]}";
    }
    o += ",\"services\":[";
    bool first = true;
    for (auto& s : sup_.status()) {
        o += first ? "" : ",";
        first = false;
        o += "{\"name\":" + json_escape(s.name) + ",\"state\":" + json_escape(to_string(s.state)) +
             ",\"pid\":" + std::to_string(s.pid > 0 ? s.pid : 0) + ",\"uptime_s\":" +
             std::to_string(std::chrono::duration_cast<std::chrono::seconds>(s.uptime).count()) +
             ",\"restarts\":" + std::to_string(s.restarts) + ",\"last_exit\":" + json_escape(s.last_exit) +
             ",\"adopted\":" + (s.adopted ? "true" : "false") + "}";
    }
    return o + "]}\n";
}

}  // namespace netd
