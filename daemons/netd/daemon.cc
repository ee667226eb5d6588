#include "daemon.h"

#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "lan.h"

namespace netd {
namespace {

double uptime_seconds() {
    std::ifstream up("/proc/uptime");
    double uptime = 0;
    up >> uptime;
    return uptime;
}

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return in ? std::string((std::istreambuf_iterator<char>(in)), {}) : std::string();
}

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

Daemon::Daemon(Kernel& k, ServiceControl& sup, Scheduler& sched, UpdateRunner& updates, DatagramSender& datagrams,
               DaemonOptions opts)
    : kernel_(k),
      sup_(sup),
      sched_(sched),
      updates_(updates),
      datagrams_(datagrams),
      opts_(std::move(opts)),
      reconciler_(k, sup, opts_.paths.run_dir + "/owned.json") {}

// Kept in the run directory (a tmpfs, root only) for a restarted netd: the last lease event
// it accepted and the configuration it ran.
static std::string lease_record(const Paths& p) { return p.run_dir + "/wan.event"; }
static std::string running_record(const Paths& p) { return p.run_dir + "/running.conf"; }
// The last DHCPv6 event with a delegation netd accepted (dhcpcd, adopted, reports again only
// at its next renewal).
static std::string dhcp6_record(const Paths& p) { return p.run_dir + "/dhcp6.event"; }

static std::vector<std::string> split_nul(const std::string& rec) {
    std::vector<std::string> args;
    for (size_t pos = 0; pos < rec.size();) {
        size_t end = rec.find('\0', pos);
        if (end == std::string::npos) end = rec.size();
        args.push_back(rec.substr(pos, end - pos));
        pos = end + 1;
    }
    return args;
}

void Daemon::start() {
    mkdir(opts_.paths.run_dir.c_str(), 0755);
    // dnsmasq's hostsdir (names of IPv6 hosts): it must exist when dnsmasq starts.
    mkdir((opts_.paths.run_dir + "/hosts").c_str(), 0755);
    if (opts_.names6_neighbours && opts_.names6_ping) {
        names6_.emplace(opts_.names6_neighbours, opts_.names6_ping);
        names_timer_ = sched_.after(std::chrono::seconds(5), [this] { names_tick(true); });
    }
    // Children a previous netd left running: adopted, wanted or not; the first convergence
    // stops those the configuration no longer wants.
    sup_.adopt_recorded();
    // udhcpc (adopted) holds a lease it will only report at its next renewal: the last
    // accepted event is checked again like a new one and is part of the first desired state.
    std::string rec = read_file(lease_record(opts_.paths));
    if (!rec.empty()) {
        if (auto ev = parse_dhcp_event(split_nul(rec)); ev && ev->lease) {
            wan_.set_link(ev->interface);
            wan_.commit(wan_.next(*ev, std::chrono::steady_clock::now()));
            syslog(LOG_INFO, "wan: restored the lease udhcpc holds: %s", ev->lease->address.str().c_str());
        } else {
            syslog(LOG_WARNING, "wan: the recorded lease is not valid: ignored");
        }
    }
    // The same for the delegation dhcpcd holds; its lifetimes count from when it was recorded.
    std::string rec6 = read_file(dhcp6_record(opts_.paths));
    if (!rec6.empty()) {
        struct stat st {};
        auto ev = parse_dhcp6_event(split_nul(rec6));
        if (ev && ev->kind == Dhcp6Kind::lease && !ev->prefixes.empty() && stat(dhcp6_record(opts_.paths).c_str(), &st) == 0) {
            auto age = std::chrono::seconds(std::max<int64_t>(0, time(nullptr) - st.st_mtime));
            native6_.restore({ev->prefixes, ev->dns, std::chrono::steady_clock::now() - age, ev->reason});
            syslog(LOG_INFO, "ipv6: restored the delegation dhcpcd holds: %s", ev->prefixes.front().prefix.str().c_str());
        } else {
            syslog(LOG_WARNING, "ipv6: the recorded DHCPv6 event is not valid: ignored");
        }
    }
    // The state a previous netd converged on is the rollback target until this one has its own.
    auto prev = load_config(running_record(opts_.paths));
    if (prev.config) {
        tic_cached(*prev.config);   // [tunnel] with TIC: what the previous netd most likely ran
        if (auto links = kernel_.links())
            if (auto d = desired_state(*prev.config, *links, wan_.lease(), opts_.paths)) current_ = std::move(*d);
    }
    reload();
    if (!running_ && prev.config) {
        // The file is broken: keep what the previous netd ran rather than nothing.
        syslog(LOG_WARNING, "%s cannot be applied: converging on the configuration the previous netd ran",
               opts_.config_path.c_str());
        std::string err = last_error_;
        tic_configure(*prev.config);
        if (apply_config(*prev.config)) {
            running_ = prev.config;
            follow_tunnel(*running_, false);
        }
        last_error_ = err;
    }
    // The names file from the start (the leases dnsmasq kept across a reboot), so that a
    // fresh start holds it as a long-running netd does; the timer keeps it current.
    if (names6_)
        if (auto r = names6_->refresh(name_segments(), opts_.dnsmasq_leases, opts_.paths.run_dir + "/hosts/ipv6-hosts"); !r)
            syslog(LOG_WARNING, "names: %s", r.error().str().c_str());
}

std::vector<NameSegment> Daemon::name_segments() const {
    std::vector<NameSegment> out;
    if (!running_ || !current_) return out;
    for (auto& l : running_->lans) {
        auto it = current_->lan_ifs.find(l.name);
        if (it == current_->lan_ifs.end()) continue;
        out.push_back({it->second, l.domain, native6_.announced_on(l.name)});
    }
    return out;
}

void Daemon::names_tick(bool probe) {
    // Probe, then read the table a few seconds later (the answers take a moment); refresh
    // every 10 s, probe every minute.
    constexpr auto kRefresh = std::chrono::seconds(10);
    constexpr unsigned kProbeEvery = 6;
    auto segments = name_segments();
    if (probe) {
        if (auto st = names6_->probe(segments); !st)
            syslog(LOG_DEBUG, "names: all-nodes ping: %s", st.error().str().c_str());
        names_timer_ = sched_.after(std::chrono::seconds(2), [this] { names_tick(false); });
        return;
    }
    auto r = names6_->refresh(segments, opts_.dnsmasq_leases, opts_.paths.run_dir + "/hosts/ipv6-hosts");
    if (!r)
        syslog(LOG_WARNING, "names: %s", r.error().str().c_str());
    else if (*r)
        syslog(LOG_INFO, "names: IPv6 host names rewritten");
    bool next_probe = ++names_ticks_ % kProbeEvery == 0;
    names_timer_ = sched_.after(kRefresh, [this, next_probe] { names_tick(next_probe); });
}

Status Daemon::transition(const Config& c, const std::optional<DhcpLease>& lease) {
    return transition(c, lease, native6_.facts(c, std::chrono::steady_clock::now()));
}

void Daemon::schedule_ipv6(const Ipv6Facts& f6) {
    ipv6_timer_ = {};
    if (!f6.next_change) return;
    auto delay = std::chrono::duration_cast<std::chrono::milliseconds>(*f6.next_change - std::chrono::steady_clock::now());
    ipv6_timer_ = sched_.after(std::max(delay, std::chrono::milliseconds(0)) + std::chrono::milliseconds(50), [this] {
        if (!running_) return;
        if (auto st = transition(*running_, wan_.lease()); !st)
            syslog(LOG_ERR, "ipv6: the change the time brought was refused: %s", st.error().str().c_str());
    });
}

Status Daemon::transition(const Config& c, const std::optional<DhcpLease>& lease, const Ipv6Facts& f6) {
    auto t0 = std::chrono::steady_clock::now();
    auto links = kernel_.links();
    if (!links) return links.error();
    auto want = desired_state(c, *links, lease, opts_.paths, &f6);
    if (!want) return want.error();
    auto load_before = reconciler_.last_ruleset_load();
    Applied applied;
    auto st = reconciler_.converge(*want, applied);
    if (!st) {
        // Back to the previous state, whole: a rollback is one more convergence.
        Applied back;
        auto rb = reconciler_.converge(current_ ? *current_ : reconciler_.nothing(), back);
        std::string msg = st.error().str() + (rb ? "; rolled back to the previous state (" + std::to_string(back.count()) +
                                                       " operations)"
                                                 : "; ROLLBACK FAILED too: " + rb.error().str());
        syslog(LOG_ERR, "transition refused after %zu operations: %s", applied.count(), msg.c_str());
        for (auto& op : applied.kernel) syslog(LOG_ERR, "  done, then undone: %s", op.c_str());
        for (auto& op : back.kernel) syslog(LOG_ERR, "  rollback: %s", op.c_str());
        last_transition_ = "REFUSED: " + msg;
        return Error{msg};
    }
    {
        auto before = native6_.announced();
        auto now = std::chrono::steady_clock::now();
        auto used = native6_.status_json(c, now).value("in_use", std::string());
        native6_.applied(f6, now);
        if (used != to_string(f6.in_use))
            syslog(LOG_NOTICE, "ipv6: uplink in use now %s (was %s): %s", to_string(f6.in_use), used.c_str(), f6.why.c_str());
        if (before != f6.lan_prefixes || !f6.stale.empty()) {
            std::string lan, dep;
            for (auto& p : f6.lan_prefixes) lan += " " + p.str();
            for (auto& p : f6.stale) dep += " " + p.str();
            if (before != f6.lan_prefixes)
                syslog(LOG_NOTICE, "ipv6: LAN prefixes now%s%s%s", lan.empty() ? " none" : lan.c_str(),
                       dep.empty() ? "" : "; announced deprecated:", dep.c_str());
        }
        schedule_ipv6(f6);
    }
    auto us = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0).count();
    for (auto& op : applied.kernel) syslog(LOG_INFO, "kernel: %s", op.c_str());
    for (auto& op : applied.services) syslog(LOG_INFO, "services: %s", op.c_str());
    char buf[160];
    std::snprintf(buf, sizeof(buf), "%zu operations (%zu kernel, %zu services) in %.1f ms", applied.count(),
                  applied.kernel.size(), applied.services.size(), static_cast<double>(us) / 1000.0);
    last_transition_ = buf;
    if (auto& l = reconciler_.last_ruleset_load(); l && (!load_before || l->ms != load_before->ms || l->bytes != load_before->bytes)) {
        char info[200];
        std::snprintf(info, sizeof(info), "loaded at uptime %.2f s in %.1f ms (%zu messages, %zu bytes, one transaction)",
                      uptime_seconds(), l->ms, l->messages, l->bytes);
        firewall_info_ = info;
    }
    last_applied_ = std::move(applied);
    current_ = std::move(*want);
    return Ok{};
}

void Daemon::reload() {
    // The text parsed is the text kept as running.conf: an edit after this moment is not.
    std::string text = read_file(opts_.config_path);
    auto res = text.empty() ? load_config(opts_.config_path) : parse_config_text(text, opts_.config_path);
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
    tic_configure(*res.config);   // [tunnel] with TIC: the tunnel TIC gave, or none yet
    if (auto st = apply_config(*res.config); !st) {
        last_error_ = st.error().str() + "\n";
        syslog(LOG_ERR, "applying %s: %s", opts_.config_path.c_str(), last_error_.c_str());
        if (!announced_ready_) {
            std::printf("netd: NOT READY: applying %s: %s", opts_.config_path.c_str(), last_error_.c_str());
            std::fflush(stdout);
        }
        return;
    }
    last_error_.clear();
    if (auto w = write_file_atomic(running_record(opts_.paths), text, 0600); !w)
        syslog(LOG_WARNING, "cannot keep the running configuration for a restart: %s", w.error().str().c_str());
    running_ = std::move(res.config);
    follow_tunnel(*running_, true);
    syslog(LOG_INFO, "configuration %s applied: %s", opts_.config_path.c_str(), last_transition_.c_str());
    if (!announced_ready_) {
        announced_ready_ = true;
        auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started_);
        // On the console (init gives netd its stdout): what the boot tests and a person wait for.
        std::printf("netd: router ready at uptime %.2f s (services started %lld ms after netd started)\n",
                    uptime_seconds(), static_cast<long long>(ms.count()));
        std::fflush(stdout);
    }
}

Status Daemon::apply_config(const Config& c) {
    // The lease belongs to the link udhcpc runs on: on another WAN link it is not applied, and
    // the WAN switches over only once the transition has succeeded.
    std::optional<DhcpLease> lease = wan_.lease();
    if (auto links = kernel_.links())
        if (auto w = resolve_link(*links, c.wan.interface); w && w->name != wan_.ifname()) lease.reset();
    if (auto links = kernel_.links())
        if (auto w = resolve_link(*links, c.wan.interface)) native6_.configure(c, w->name, std::chrono::steady_clock::now());
    if (auto st = transition(c, lease); !st) return st;
    wan_.set_link(current_->wan_if);
    if (c.wan.ipv4 && wan_.lease()) {
        // udhcpc has stopped: its lease is over, and must not come back when DHCP does (a
        // fresh boot on the DHCP file would start without one).
        wan_.commit({});
        unlink(lease_record(opts_.paths).c_str());
    }
    return Ok{};
}

std::string Daemon::wan_status_line() const {
    if (!running_ || !running_->wan.ipv4) return wan_.status_line();
    auto& w = running_->wan;
    std::string o = (current_ ? current_->wan_if : std::string("?")) + " static " + w.ipv4->str();
    if (w.gateway) o += " router " + w.gateway->str();
    if (!w.dns.empty()) {
        o += " dns";
        for (auto& d : w.dns) o += " " + d.str();
    }
    return o;
}

std::optional<TunnelTraffic> Daemon::tunnel_traffic() {
    auto links = kernel_.links();
    if (!links) return std::nullopt;
    for (auto& l : *links)
        if (l.name == kTunnelIf) return TunnelTraffic{l.tx_packets, l.rx_packets};
    return std::nullopt;
}

std::optional<Ipv4Addr> Daemon::wan_address() const {
    if (running_ && running_->wan.ipv4) return running_->wan.ipv4->addr;
    if (auto& l = wan_.lease()) return l->address.addr;
    return std::nullopt;
}

void Daemon::follow_tunnel(const Config& c, bool reloaded) {
    if (c.tunnel != tunnel_cfg_ || (!tunnel_ && c.tunnel.mode != TunnelMode::none)) {
        tunnel_cfg_ = c.tunnel;
        tunnel_.reset();  // its timers and its update in flight go with it
        TunnelDeps deps{sched_, updates_, datagrams_, [] { return static_cast<int64_t>(time(nullptr)); },
                        [this](const std::string& what) {
                            if (wan_changed_at_ == std::chrono::steady_clock::time_point{}) return;
                            auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                std::chrono::steady_clock::now() - wan_changed_at_);
                            syslog(LOG_INFO, "tunnel: %s left %lld ms after the WAN address changed", what.c_str(),
                                   static_cast<long long>(ms.count()));
                            wan_changed_at_ = {};
                        }};
        tunnel_ = make_tunnel_handler(c.tunnel, std::move(deps));
        if (tunnel_) tunnel_->clock_synced(clock_synced_);
    } else if (tunnel_ && reloaded) {
        tunnel_->reload();
    }
    if (tunnel_) tunnel_->wan_changed(wan_address());
    if (tic_) tic_->wan_changed(wan_address().has_value());
}

// ---- [tunnel] with SixXS TIC (tic.h) ----
void Daemon::tic_configure(Config& c) {
    auto s = tic_settings(c.tunnel);
    if (!s && !tic_) return;
    if (!tic_) {
        tic_ = std::make_unique<TicClient>(TicClient::Deps{
            sched_, updates_, opts_.state_dir, [] { return static_cast<int64_t>(time(nullptr)); },
            [this] { tic_changed(); }});
        tic_->clock_synced(clock_synced_);
    }
    tic_->configure(s);
    if (s) c.tunnel = tic_->params() ? tic_tunnel(c.tunnel, *tic_->params()) : tic_pending_tunnel(c.tunnel);
}

void Daemon::tic_cached(Config& c) {
    auto s = tic_settings(c.tunnel);
    if (!s) return;
    TicClient cache({sched_, updates_, opts_.state_dir, [] { return static_cast<int64_t>(time(nullptr)); }, {}});
    auto p = cache.cached(*s);
    c.tunnel = p ? tic_tunnel(c.tunnel, *p) : tic_pending_tunnel(c.tunnel);
}

void Daemon::tic_changed() {
    // Only for the settings the running configuration names (a failed reload may have changed them).
    if (!running_ || !tic_ || !tic_->active() || tic_settings(running_->tunnel) != tic_->settings()) return;
    Config c = *running_;
    c.tunnel = tic_->params() ? tic_tunnel(c.tunnel, *tic_->params()) : tic_pending_tunnel(c.tunnel);
    if (c.tunnel == running_->tunnel) return;
    if (auto st = transition(c, wan_.lease()); !st) {
        syslog(LOG_ERR, "tic: the tunnel from TIC was refused: %s", st.error().str().c_str());
        return;
    }
    running_->tunnel = c.tunnel;
    syslog(LOG_NOTICE, "tic: tunnel %s: %s", c.tunnel.mode == TunnelMode::none ? "removed" : "set up from TIC",
           last_transition_.c_str());
    follow_tunnel(*running_, false);
}
// ---- end of [tunnel] with TIC ----

void Daemon::stop(std::function<void()> done) {
    tunnel_.reset();
    tic_.reset();
    sup_.stop_all(std::move(done));
}

// Every command of the table in commands.h has its handler here (daemon_test checks it).
const std::map<std::string, Daemon::Handler>& Daemon::handlers() {
    static const std::map<std::string, Handler> h = {
        {"status", &Daemon::cmd_status},         {"reload", &Daemon::cmd_reload},
        {"restart", &Daemon::cmd_restart},       {"firewall", &Daemon::cmd_firewall},
        {"tunnel-update", &Daemon::cmd_tunnel_update}, {"dhcp-event", &Daemon::dhcp_event},
        {"ntp-event", &Daemon::ntp_event},       {"dhcp6-event", &Daemon::dhcp6_event},
    };
    return h;
}

bool Daemon::handles(const std::string& command) { return handlers().count(command) > 0; }

ControlReply Daemon::control(const std::vector<std::string>& args) {
    if (args.empty()) return {false, "empty request\n"};
    auto h = handlers().find(args[0]);
    if (!command_for_request(args) || h == handlers().end())
        return {false, "unknown or malformed request '" + args[0] + "' (see netctl --help)\n"};
    return (this->*(h->second))(args);
}

ControlReply Daemon::cmd_status(const std::vector<std::string>& args) {
    return {true, args.size() == 2 ? status_json() : status_text()};
}

ControlReply Daemon::cmd_reload(const std::vector<std::string>&) {
    syslog(LOG_INFO, "control: reload requested");
    reload();
    if (!last_error_.empty())
        return {false, last_error_ + (running_ ? "reload failed: the running configuration stays in place\n"
                                               : "reload failed: nothing is configured\n")};
    return {true, "configuration " + opts_.config_path + " applied: " + last_transition_ + "\n"};
}

ControlReply Daemon::cmd_firewall(const std::vector<std::string>&) {
    if (!current_ || current_->ruleset_text.empty()) return {false, "the firewall is not loaded: " + last_error_ + "\n"};
    return {true, "# " + firewall_info_ + "\n" + current_->ruleset_text};
}

ControlReply Daemon::cmd_tunnel_update(const std::vector<std::string>&) {
    // With TIC: contacts TIC again if the last contact brought no parameters.
    std::string tic = tic_ && tic_->active() ? "tic: " + tic_->retry_now() + "\n" : "";
    if (!tunnel_) return {!tic.empty(), tic.empty() ? "no tunnel configured\n" : tic};
    tunnel_->retry_now();
    return {true, tic + "tunnel: update or heartbeat sent again\n"};
}

ControlReply Daemon::cmd_restart(const std::vector<std::string>& args) {
    if (!sup_.spec_of(args[1])) return {false, "no service '" + args[1] + "'\n"};
    syslog(LOG_INFO, "control: restart of %s requested", args[1].c_str());
    sup_.restart(args[1]);
    return {true, args[1] + ": restarting\n"};
}

ControlReply Daemon::ntp_event(const std::vector<std::string>& args) {
    // From ntpd's -S hook: step, stratum, periodic (with $stratum) or unsync.
    int stratum = 16;
    for (size_t i = 2; i < args.size(); ++i)
        if (args[i].rfind("stratum=", 0) == 0) stratum = std::atoi(args[i].c_str() + 8);
    clock_synced_ = args[1] != "unsync" && stratum > 0 && stratum < 16;
    syslog(LOG_INFO, "ntp: %s (stratum %d): clock %s", args[1].c_str(), stratum,
           clock_synced_ ? "synchronised" : "not synchronised");
    if (tunnel_) tunnel_->clock_synced(clock_synced_);
    if (tic_) tic_->clock_synced(clock_synced_);
    return {true, ""};
}

ControlReply Daemon::dhcp6_event(const std::vector<std::string>& args) {
    std::vector<std::string> ev_args(args.begin() + 1, args.end());
    auto ev = parse_dhcp6_event(ev_args);
    std::string reason = ev_args.empty() ? "?" : ev_args[0].substr(0, 16);
    for (char& ch : reason)
        if (!((ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9'))) ch = '?';
    const bool client = running_ && (running_->ipv6.uplink == Uplink6::native || running_->ipv6.uplink == Uplink6::auto_);
    if (ev && !client)
        ev = Error{"no DHCPv6 client is configured ([ipv6] uplink is not native or auto)"};
    else if (ev && current_ && ev->interface != current_->wan_if)
        ev = Error{"interface '" + ev->interface + "' is not the WAN link " + current_->wan_if};
    if (!ev) {
        // Hostile or broken: nothing of it is applied.
        syslog(LOG_WARNING, "ipv6: REJECTED %s event from dhcpcd: %s", reason.c_str(), ev.error().str().c_str());
        native6_.note_rejected(reason + ": " + ev.error().str());
        return {false, "rejected: " + ev.error().str() + "\n"};
    }
    if (ev->kind == Dhcp6Kind::other) return {true, reason + ": nothing to do\n"};
    auto now = std::chrono::steady_clock::now();
    auto next = native6_.next(*ev, now);
    auto& cur = native6_.delegation();
    bool same = next.has_value() == cur.has_value() &&
                (!next || (next->prefixes == cur->prefixes && next->dns == cur->dns));
    std::string what;
    for (auto& p : ev->prefixes)
        what += " " + p.prefix.str() + " (" + std::to_string(p.preferred) + "/" + std::to_string(p.valid) + " s)";
    if (what.empty()) what = " no prefix";
    if (!same) {
        auto f6 = native6_.facts(*running_, next, now);
        if (auto st = transition(*running_, wan_.lease(), f6); !st) {
            native6_.note_rejected(reason + ": refused by the kernel: " + st.error().str());
            return {false, "refused: " + st.error().str() + "\n"};
        }
    }
    native6_.commit(next, reason + what, now);
    if (next) {
        std::string rec;
        for (auto& a : ev_args) rec += a + std::string(1, '\0');
        if (auto w = write_file_atomic(dhcp6_record(opts_.paths), rec, 0600); !w)
            syslog(LOG_WARNING, "ipv6: cannot keep the delegation for a restart: %s", w.error().str().c_str());
    } else {
        unlink(dhcp6_record(opts_.paths).c_str());
    }
    if (same) schedule_ipv6(native6_.facts(*running_, now));   // the lifetimes start again
    syslog(same ? LOG_INFO : LOG_NOTICE, "ipv6: %s from dhcpcd:%s%s", reason.c_str(), what.c_str(),
           same ? ": nothing changed" : (": " + last_transition_).c_str());
    return {true, reason + ":" + what + "\n"};
}

ControlReply Daemon::dhcp_event(const std::vector<std::string>& args) {
    std::vector<std::string> ev_args(args.begin() + 1, args.end());
    auto ev = parse_dhcp_event(ev_args);
    std::string action = ev_args.empty() ? "?" : ev_args[0];
    for (char& ch : action)
        if (ch < 'a' || ch > 'z') ch = '?';
    if (ev && running_ && running_->wan.ipv4)
        ev = Error{"the WAN address is static (wan.ipv4): no DHCP event applies"};
    else if (ev && ev->interface != wan_.ifname())
        ev = Error{"interface '" + ev->interface + "' is not the WAN link " + wan_.ifname()};
    if (!ev) {
        // Hostile or broken: nothing of it is applied.
        syslog(LOG_WARNING, "wan: REJECTED %s event from udhcpc: %s", action.c_str(), ev.error().str().c_str());
        wan_.note_rejected(action + ": " + ev.error().str());
        return {false, "rejected: " + ev.error().str() + "\n"};
    }
    if (!running_) return {false, "not configured\n"};
    auto next = wan_.next(*ev, std::chrono::steady_clock::now());
    bool address_changed = (next.lease ? std::optional(next.lease->address) : std::nullopt) !=
                           (wan_.lease() ? std::optional(wan_.lease()->address) : std::nullopt);
    if (next.lease != wan_.lease()) {
        if (auto st = transition(*running_, next.lease); !st) {
            wan_.note_refused(action + " " + (next.lease ? next.lease->address.str() : "") + ": " + st.error().str());
            return {false, "refused: " + st.error().str() + "\n"};
        }
    }
    bool changed = next.lease != wan_.lease();
    wan_.commit(std::move(next));
    wan_.note_refused("");
    if (auto& l = wan_.lease(); l && ev->lease) {
        if (changed)
            syslog(LOG_NOTICE, "wan: %s %s on %s, router %s, lease %us: %s", to_string(ev->action),
                   l->address.str().c_str(), wan_.ifname().c_str(),
                   l->routers.empty() ? "none" : l->routers.front().str().c_str(), l->lease_seconds,
                   last_transition_.c_str());
        else
            syslog(LOG_INFO, "wan: %s %s on %s: nothing changed", to_string(ev->action), l->address.str().c_str(),
                   wan_.ifname().c_str());
    }
    // Kept so that a restarted netd knows the lease udhcpc holds.
    if (ev->lease) {
        std::string rec;
        for (auto& a : ev_args) rec += a + std::string(1, '\0');
        if (auto w = write_file_atomic(lease_record(opts_.paths), rec, 0600); !w)
            syslog(LOG_WARNING, "wan: cannot keep the lease for a restart: %s", w.error().str().c_str());
    } else if (ev->action == DhcpAction::deconfig) {
        unlink(lease_record(opts_.paths).c_str());
    }
    if (address_changed) {
        syslog(LOG_NOTICE, "wan: address now %s", wan_.lease() ? wan_.lease()->address.str().c_str() : "none");
        if (wan_.lease()) wan_changed_at_ = std::chrono::steady_clock::now();
        // BusyBox ntpd started before the WAN had an address: its first queries failed
        // ("Network is unreachable") and it would try again only 32 s later, nothing telling it
        // the network came. Until the clock is synchronised (the heartbeat waits for it), a
        // new WAN address starts it over, so it asks at once.
        if (wan_.lease() && !clock_synced_ && sup_.spec_of("ntpd")) {
            syslog(LOG_INFO, "ntp: the WAN has an address and the clock is not synchronised yet: ntpd asks again now");
            sup_.restart("ntpd");
        }
        if (tunnel_) tunnel_->wan_changed(wan_address());
        if (tic_) tic_->wan_changed(wan_address().has_value());
    }
    return {true, std::string(to_string(ev->action)) + ": " + wan_.status_line() + "\n"};
}

std::string Daemon::status_text() {
    std::string o;
    o += "config:   " + opts_.config_path + (last_error_.empty() ? " (applied)\n" : " (LAST RELOAD FAILED)\n");
    if (!last_error_.empty()) o += last_error_;
    o += "last:     " + (last_transition_.empty() ? std::string("-") : last_transition_) + "\n";
    if (running_) {
        for (LanConfig lan : running_->lans) {
            lan.ipv6_prefixes = native6_.announced_on(lan.name);   // those of the uplink in use
            std::string ifname = current_ && current_->lan_ifs.count(lan.name) ? current_->lan_ifs.at(lan.name) : "";
            if (running_->lans.size() == 1)
                o += "lan:      " + lan_summary(lan, ifname) + "\n";
            else
                o += "lan:      " + lan.name + ": " + lan_summary(lan, ifname) + " (" + to_string(lan.trust) + ")\n";
        }
        o += "wan:      " + wan_status_line() + "\n";
    } else {
        o += "lan:      not configured\n";
    }
    if (running_ && running_->ipv6.uplink != Uplink6::unset)
        o += "ipv6:     " + native6_.status_text(*running_, std::chrono::steady_clock::now());
    const bool tic = tic_ && tic_->active();
    o += "tunnel:   " + (tunnel_ ? tunnel_status_text(tunnel_->status(), tunnel_cfg_, wan_address(), tunnel_traffic())
                         : tic   ? std::string("heartbeat ") + kTunnelIf + " waiting-for-tic (no tunnel until TIC gives its parameters)\n"
                                 : std::string("not configured\n"));
    if (tic) o += "tic:      " + tic_status_text(tic_->status());
    bool fw = current_ && !current_->ruleset_text.empty();
    o += "firewall: " + (fw ? firewall_info_ : std::string("NOT LOADED (nothing is forwarded)")) + "\n";
    o += std::string("forward:  ") + (fw ? "on" : "off") + "\n";
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
    using nlohmann::json;
    json j;
    j["config"] = {{"path", opts_.config_path}, {"ok", last_error_.empty()}, {"error", last_error_}};
    j["last_transition"] = last_transition_;
    if (running_) {
        json lans = json::array();
        for (LanConfig lan : running_->lans) {
            lan.ipv6_prefixes = native6_.announced_on(lan.name);
            std::string ifname = current_ && current_->lan_ifs.count(lan.name) ? current_->lan_ifs.at(lan.name) : "";
            lans.push_back({{"name", lan.name},
                            {"interface", ifname},
                            {"vlan", lan.vlan},
                            {"trust", to_string(lan.trust)},
                            {"ipv4", lan.ipv4.str()},
                            {"ipv6", lan_ipv6_addresses(lan)}});
        }
        j["lan"] = lans.front();   // the first segment (as before segments existed)
        j["lans"] = lans;
        j["wan"] = wan_.status_json();
        if (running_->wan.ipv4) {
            auto l = *static_wan_lease(running_->wan);
            j["wan"]["state"] = "static";
            j["wan"]["address"] = l.address.str();
            j["wan"]["router"] = l.routers.empty() ? "" : l.routers.front().str();
        }
        j["ipv6"] = native6_.status_json(*running_, std::chrono::steady_clock::now());
        j["tunnel"] = tunnel_ ? tunnel_status_json(tunnel_->status(), tunnel_cfg_, wan_address(), tunnel_traffic())
                              : json{{"mode", "none"}, {"state", to_string(TunnelState::not_configured)}, {"up", false}};
        if (tic_ && tic_->active()) {
            if (!tunnel_) j["tunnel"] = {{"mode", "heartbeat"}, {"state", "waiting-for-tic"}, {"up", false},
                                         {"detail", "no tunnel until TIC gives its parameters"}};
            j["tunnel"]["tic"] = tic_status_json(tic_->status());
        }
    }
    bool fw = current_ && !current_->ruleset_text.empty();
    j["firewall"] = {{"loaded", fw}, {"info", firewall_info_}};
    j["forwarding"] = fw;
    json services = json::array();
    for (auto& s : sup_.status())
        services.push_back({{"name", s.name},
                            {"state", to_string(s.state)},
                            {"pid", s.pid > 0 ? s.pid : 0},
                            {"uptime_s", std::chrono::duration_cast<std::chrono::seconds>(s.uptime).count()},
                            {"restarts", s.restarts},
                            {"last_exit", s.last_exit},
                            {"adopted", s.adopted}});
    j["services"] = services;
    return j.dump() + "\n";
}

}  // namespace netd
