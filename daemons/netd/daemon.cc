#include "daemon.h"

#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <set>

namespace netd {

Daemon::Daemon(EventLoop& loop, Netlink& nl, Supervisor& sup, DaemonOptions opts)
    : loop_(loop), nl_(nl), sup_(sup), opts_(std::move(opts)), wan_(nl), tunnel_(loop, nl, opts_.self_exe) {
    // The figure the tunnel issue asks for: from the new WAN lease to the broker being told.
    tunnel_.on_sent = [this](const std::string& what) {
        if (wan_changed_at_ == std::chrono::steady_clock::time_point{}) return;
        auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - wan_changed_at_);
        syslog(LOG_INFO, "tunnel: %s left %lld ms after the WAN address changed", what.c_str(),
               static_cast<long long>(ms.count()));
        wan_changed_at_ = {};
    };
}

namespace {

double uptime_seconds() {
    std::ifstream up("/proc/uptime");
    double uptime = 0;
    up >> uptime;
    return uptime;
}

std::string last_event_path(const std::string& run_dir) { return run_dir + "/wan.event"; }

}  // namespace

void Daemon::start() {
    mkdir(opts_.run_dir.c_str(), 0755);
    reload();
    // After a restart of netd, udhcpc (adopted, still running) holds a lease that it will only
    // report at its next renewal: replay the last accepted event, checked again like new.
    std::ifstream in(last_event_path(opts_.run_dir), std::ios::binary);
    if (running_ && in) {
        std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        std::vector<std::string> args{"dhcp-event"};
        size_t pos = 0;
        while (pos < all.size()) {
            size_t end = all.find('\0', pos);
            if (end == std::string::npos) end = all.size();
            args.push_back(all.substr(pos, end - pos));
            pos = end + 1;
        }
        if (args.size() > 1 && args[1] == "bound") args[1] = "renew";
        auto r = dhcp_event(args, true);
        syslog(r.ok ? LOG_INFO : LOG_WARNING, "wan: restored the lease udhcpc holds: %s", r.text.c_str());
    }
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
        double uptime = uptime_seconds();
        auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started_);
        // On the console (init gives netd its stdout): what the boot tests and a person wait for.
        std::printf("netd: router ready at uptime %.2f s (services started %lld ms after netd started)\n", uptime,
                    static_cast<long long>(ms.count()));
        std::fflush(stdout);
    }
}

Status Daemon::load_firewall(const Config& c) {
    auto in = firewall_inputs(c, lan_ifname_, wan_.ifname());
    auto rs = build_ruleset(in);
    auto text = render_nft(rs);
    if (text == firewall_text_) return Ok{};
    auto t0 = std::chrono::steady_clock::now();
    auto st = load_ruleset(rs);
    if (!st) return Error{"firewall: " + st.error().str()};
    auto us = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0).count();
    firewall_text_ = std::move(text);
    char info[200];
    std::snprintf(info, sizeof(info), "loaded at uptime %.2f s in %.1f ms (%zu messages, %zu bytes, one transaction)",
                  uptime_seconds(), static_cast<double>(us) / 1000.0, st->messages, st->bytes);
    firewall_info_ = info;
    syslog(LOG_INFO, "firewall: %s", info);
    return Ok{};
}

Status Daemon::apply(const Config& c) {
    auto lan = resolve_link(nl_, c.lan.interface);
    if (!lan) return Error{"LAN: " + lan.error().str()};
    auto wan = resolve_link(nl_, c.wan.interface);
    if (!wan) return Error{"WAN: " + wan.error().str()};
    lan_ifname_ = lan->name;
    wan_.set_link(wan->ifindex, wan->name);

    // The firewall first, before any link is up and before forwarding (fail closed). If the
    // kernel refuses it, nothing below happens: at boot the links stay down; on a reload the
    // previous ruleset stays in the kernel and the running configuration stays.
    if (auto st = load_firewall(c); !st) return st;
    if (!forwarding_) {
        for (const char* key : {"net/ipv4/ip_forward", "net/ipv6/conf/all/forwarding"})
            if (auto st = write_sysctl(key, "1"); !st) return st.error();
        forwarding_ = true;
        syslog(LOG_INFO, "forwarding on: the firewall is loaded");
    }

    if (auto st = nl_.set_up(lan->ifindex); !st) return st.error();
    if (auto st = nl_.add_address(lan->ifindex, c.lan.ipv4); !st) return st.error();
    // The router does not autoconfigure itself from RAs on its own LAN.
    write_sysctl("net/ipv6/conf/" + lan->name + "/accept_ra", "0");
    for (auto& p : c.lan.ipv6_prefixes)
        if (auto st = nl_.add_address(lan->ifindex, p.with_host(1), p.len); !st) return st.error();
    facts_.lan_ifname = lan->name;
    facts_.lan_mtu = lan->mtu ? lan->mtu : 1500;

    // The IPv4-only ISP's RAs are not the router's business either.
    write_sysctl("net/ipv6/conf/" + wan->name + "/accept_ra", "0");
    if (auto st = nl_.set_up(wan->ifindex); !st) return st.error();

    // The tunnel follows the WAN address; with one, the router is the LAN's IPv6 default router
    // and RAs carry the tunnel MTU.
    tunnel_.configure(c.tunnel);
    if (auto& l = wan_.lease()) tunnel_.wan_changed(l->address.addr);
    facts_.ipv6_uplink = tunnel_.enabled();
    if (tunnel_.enabled()) facts_.lan_mtu = std::min(facts_.lan_mtu, tunnel_.mtu());
    return apply_services(c);
}

Status Daemon::apply_services(const Config& c) {
    // The resolvers from the WAN lease; dnsmasq rereads the file when it changes.
    std::string resolv = "# Generated by netd from the WAN lease: do not edit.\n";
    if (auto& l = wan_.lease())
        for (auto& d : l->dns) resolv += "nameserver " + d.str() + "\n";
    if (auto w = write_file_atomic(wan_resolv_path(opts_.run_dir), resolv); !w) return w.error();
    facts_.wan_ntp.clear();
    if (auto& l = wan_.lease())
        for (auto& n : l->ntp) facts_.wan_ntp.push_back(n.str());

    std::vector<GeneratedService> wanted = {dnsmasq_service(c, facts_, opts_.run_dir), ntpd_service(c, facts_)};
    // udhcpc in the foreground on WAN; its hook hands every event to netd (dhcp-event).
    GeneratedService udhcpc;
    udhcpc.spec = {"udhcpc",
                   {"/bin/busybox", "udhcpc", "-f", "-i", wan_.ifname(), "-s", opts_.udhcpc_hook, "-t", "4", "-T",
                    "3", "-A", "10", "-O", "mtu", "-O", "ntpsrv", "-O", "search"}};
    wanted.insert(wanted.begin(), udhcpc);
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
    if (cmd == "firewall" && args.size() == 1) {
        if (firewall_text_.empty()) return {false, "the firewall is not loaded: " + last_error_ + "\n"};
        return {true, "# " + firewall_info_ + "\n" + firewall_text_};
    }
    if (cmd == "dhcp-event") return dhcp_event(args);
    if (cmd == "ntp-event" && args.size() >= 2) {
        // From ntpd's -S hook: step, stratum, periodic (with $stratum) or unsync.
        int stratum = 16;
        for (size_t i = 2; i < args.size(); ++i)
            if (args[i].rfind("stratum=", 0) == 0) stratum = std::atoi(args[i].c_str() + 8);
        bool synced = args[1] != "unsync" && stratum > 0 && stratum < 16;
        syslog(LOG_INFO, "ntp: %s (stratum %d): clock %s", args[1].c_str(), stratum, synced ? "synchronised" : "not synchronised");
        tunnel_.clock_synced(synced);
        return {true, ""};
    }
    if (cmd == "tunnel-update" && args.size() == 1) {
        if (!tunnel_.enabled()) return {false, "no tunnel configured\n"};
        tunnel_.retry_now();
        return {true, "tunnel: retargeted; update or heartbeat sent again\n"};
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

ControlReply Daemon::dhcp_event(const std::vector<std::string>& args, bool replay) {
    std::vector<std::string> ev_args(args.begin() + 1, args.end());
    auto ev = parse_dhcp_event(ev_args);
    std::string action = ev_args.empty() ? "?" : ev_args[0];
    for (char& ch : action)
        if (ch < 'a' || ch > 'z') ch = '?';
    if (ev && ev->interface != wan_.ifname())
        ev = Error{"interface '" + ev->interface + "' is not the WAN link " + wan_.ifname()};
    if (!ev) {
        // Hostile or broken: nothing of it is applied.
        syslog(LOG_WARNING, "wan: REJECTED %s event from udhcpc: %s", action.c_str(), ev.error().str().c_str());
        wan_.note_rejected(action + ": " + ev.error().str());
        return {false, "rejected: " + ev.error().str() + "\n"};
    }
    if (!running_) return {false, "not configured\n"};
    auto ch = wan_.handle(*ev);
    if (!ch) {
        syslog(LOG_ERR, "wan: applying the %s event: %s", action.c_str(), ch.error().str().c_str());
        return {false, ch.error().str() + "\n"};
    }
    if (!replay) {
        // Kept (tmpfs, root only) so that a restarted netd knows the lease udhcpc holds.
        std::string rec;
        if (ev->lease) {
            for (auto& a : ev_args) rec += a + std::string(1, '\0');
            write_file_atomic(last_event_path(opts_.run_dir), rec, 0600);
        } else if (ev->action == DhcpAction::deconfig) {
            unlink(last_event_path(opts_.run_dir).c_str());
        }
    }
    if (ch->dns || ch->ntp) {
        if (auto st = apply_services(*running_); !st)
            syslog(LOG_ERR, "wan: updating services: %s", st.error().str().c_str());
    }
    if (ch->address) wan_address_changed();
    return {true, std::string(to_string(ev->action)) + ": " + wan_.status_line() + "\n"};
}

void Daemon::wan_address_changed() {
    // The 6in4 tunnel follows the WAN address at once (its local end, then the broker update or
    // heartbeat). Nothing else depends on it: NAT44 masquerades to whatever the WAN holds.
    auto& l = wan_.lease();
    syslog(LOG_NOTICE, "wan: address now %s", l ? l->address.str().c_str() : "none");
    if (l) wan_changed_at_ = std::chrono::steady_clock::now();
    tunnel_.wan_changed(l ? std::optional<Ipv4Addr>(l->address.addr) : std::nullopt);
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
        o += "wan:      " + wan_.status_line() + "\n";
    } else {
        o += "lan:      not configured\n";
    }
    o += "tunnel:   " + tunnel_.status_text();
    o += "firewall: " + (firewall_text_.empty() ? std::string("NOT LOADED (nothing is forwarded)") : firewall_info_) +
         "\n";
    o += std::string("forward:  ") + (forwarding_ ? "on" : "off") + "\n";
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
        o += ",\"wan\":" + wan_.status_json();
        o += ",\"tunnel\":" + tunnel_.status_json();
    }
    o += ",\"firewall\":{\"loaded\":" + std::string(firewall_text_.empty() ? "false" : "true") +
         ",\"info\":" + json_escape(firewall_info_) + "},\"forwarding\":" + (forwarding_ ? "true" : "false");
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
