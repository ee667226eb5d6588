#include "daemon.h"

#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <iterator>
#include <map>
#include <set>
#include <sstream>
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
      reconciler_(k, sup, opts_.paths.run_dir + "/owned.json"),
      store_(opts_.config_path, opts_.state_dir) {}

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

std::string Daemon::check_data_format() {
    if (opts_.data_format_file.empty()) return "";
    std::string text = read_file(opts_.data_format_file);
    int have = text.empty() ? 0 : std::atoi(text.c_str());
    if (have == kDataFormat) return "";
    if (have > kDataFormat || (!text.empty() && have <= 0)) {
        std::string t = text.substr(0, text.find('\n')).substr(0, 20);
        return "the data disk has format '" + t + "' (" + opts_.data_format_file + "), newer than this netd knows (" +
               std::to_string(kDataFormat) + "): it was written by a newer image. Nothing is configured and nothing "
               "on the data disk is changed; boot the image that wrote it (an upgrade that went back restores the "
               "data disk it saved)";
    }
    // Older (or none yet): 1 -> 2 adds the history, which the first configuration seeds.
    if (auto w = write_file_atomic(opts_.data_format_file, std::to_string(kDataFormat) + "\n", 0644); !w)
        syslog(LOG_WARNING, "data disk: cannot record format %d: %s", kDataFormat, w.error().str().c_str());
    else if (have == 0)
        syslog(LOG_NOTICE, "data disk: a new disk, format %d recorded", kDataFormat);
    else
        syslog(LOG_NOTICE, "data disk: format %d migrated to %d (configuration history added)", have, kDataFormat);
    return "";
}

void Daemon::start() {
    mkdir(opts_.paths.run_dir.c_str(), 0755);
    data_refused_ = check_data_format();
    if (!data_refused_.empty()) {
        last_error_ = data_refused_ + "\n";
        syslog(LOG_CRIT, "%s", data_refused_.c_str());
        std::printf("netd: NOT READY: %s\n", data_refused_.c_str());
        std::fflush(stdout);
        return;
    }
    // A trial a reboot or a netd restart interrupted: the last confirmed configuration runs.
    if (std::string r = store_.recover(); !r.empty()) syslog(LOG_WARNING, "config: %s", r.c_str());
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
            running_text_ = read_file(running_record(opts_.paths));
            follow_tunnel(*running_, false);
        }
        last_error_ = err;
    }
    // The names file from the start (the leases dnsmasq kept across a reboot), so that a
    // fresh start holds it as a long-running netd does; the timer keeps it current.
    if (names6_)
        if (auto r = names6_->refresh(name_segments(), opts_.dnsmasq_leases, opts_.paths.run_dir + "/hosts/ipv6-hosts"); !r)
            syslog(LOG_WARNING, "names: %s", r.error().str().c_str());
    // The links as found, also when nothing could be applied: only a later change is followed.
    links_seen_ = links_signature();
}

void Daemon::links_changed() {
    if (stopping_) return;
    // A NIC's arrival comes as several notifications (made, renamed, its MTU, up): one check
    // 200 ms after the last, or 2 s after the first of a burst that goes on.
    auto now = std::chrono::steady_clock::now();
    if (!links_timer_)
        links_burst_ = now;
    else if (now - links_burst_ > std::chrono::seconds(2))
        return;
    links_timer_ = sched_.after(std::chrono::milliseconds(200), [this] {
        links_timer_ = {};
        check_links();
    });
}

namespace {

std::string link_line(const LinkInfo& l) {
    return std::to_string(l.ifindex) + " " + l.name + " " + (l.mac ? l.mac->str() : "-");
}

std::string join_sorted(std::vector<std::string> lines) {
    std::sort(lines.begin(), lines.end());
    std::string o;
    for (auto& s : lines) o += s + "\n";
    return o;
}

}  // namespace

std::string Daemon::links_signature() {
    auto links = kernel_.links();
    if (!links) return "";
    std::vector<std::string> lines;
    for (auto& l : *links) lines.push_back(link_line(l));
    return join_sorted(std::move(lines));
}

void Daemon::remember_links(const std::vector<LinkInfo>& before, const DesiredState& want) {
    std::set<std::string> own = {kTunnelIf};
    for (const DesiredState* d : {&want, current_ ? static_cast<const DesiredState*>(&*current_) : nullptr})
        if (d)
            for (auto& v : d->vlans) own.insert(v.name);
    auto now = kernel_.links();
    if (!now) {
        links_seen_.clear();
        return;
    }
    std::vector<std::string> lines;
    for (auto& l : before)
        if (!own.count(l.name)) lines.push_back(link_line(l));
    for (auto& l : *now)
        if (own.count(l.name)) lines.push_back(link_line(l));
    links_seen_ = join_sorted(std::move(lines));
}

void Daemon::check_links() {
    if (stopping_ || !data_refused_.empty()) return;
    std::string now = links_signature();
    if (now.empty() || now == links_seen_) return;
    // What came and went, for the log: "+7 eth1 52:54:00:12:34:02 -3 eth1 52:54:00:12:34:02".
    auto lines = [](const std::string& s) {
        std::set<std::string> out;
        std::istringstream in(s);
        for (std::string l; std::getline(in, l);) out.insert(l);
        return out;
    };
    auto before = lines(links_seen_), after = lines(now);
    std::string what;
    for (auto& l : after)
        if (!before.count(l)) what += " +" + l;
    for (auto& l : before)
        if (!after.count(l)) what += " -" + l;
    syslog(LOG_NOTICE, "links changed:%s; converging again", what.c_str());
    links_seen_ = now;
    if (running_) {
        if (auto st = apply_config(*running_); !st)
            syslog(LOG_ERR, "after the links changed: %s", st.error().str().c_str());
        else
            follow_tunnel(*running_, false);
    } else {
        reload();
    }
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
        remember_links(*links, *want);
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
    remember_links(*links, *want);
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
    note_wan_address(*want);
    current_ = std::move(*want);
    return Ok{};
}

void Daemon::reload() {
    if (!data_refused_.empty()) return;
    if (trial_) {
        // router.conf holds the last confirmed configuration: reading it now would end the
        // trial behind the back of whoever started it.
        syslog(LOG_WARNING, "reload ignored: a trial (%s by %s) waits for its confirm", trial_->how.c_str(),
               trial_->who.c_str());
        return;
    }
    // The text parsed is the text kept as running.conf: an edit after this moment is not.
    std::string text = read_file(opts_.config_path);
    auto res = text.empty() ? load_config(opts_.config_path) : parse_config_text(text, opts_.config_path);
    if (!res.config) {
        count_reload(false);
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
    if (auto st = adopt(std::move(*res.config), text); !st) {
        count_reload(false);
        last_error_ = st.error().str() + "\n";
        syslog(LOG_ERR, "applying %s: %s", opts_.config_path.c_str(), last_error_.c_str());
        if (!announced_ready_) {
            std::printf("netd: NOT READY: applying %s: %s", opts_.config_path.c_str(), last_error_.c_str());
            std::fflush(stdout);
        }
        return;
    }
    count_reload(true);
    last_error_.clear();
    if (auto n = store_.record(text, "file", announced_ready_ ? "reload" : "boot", time(nullptr)); !n)
        syslog(LOG_WARNING, "config: cannot add it to the history: %s", n.error().str().c_str());
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

Status Daemon::adopt(Config c, const std::string& text) {
    tic_configure(c);   // [tunnel] with TIC: the tunnel TIC gave, or none yet
    if (auto st = apply_config(c); !st) return st;
    if (auto w = write_file_atomic(running_record(opts_.paths), text, 0600); !w)
        syslog(LOG_WARNING, "cannot keep the running configuration for a restart: %s", w.error().str().c_str());
    running_ = std::move(c);
    running_text_ = text;
    follow_tunnel(*running_, true);
    return Ok{};
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
        deps.on_event = [this](TunnelEvent e) { counters_.tunnel_event(e); };
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
    stopping_ = true;
    links_timer_ = {};
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
        {"apply", &Daemon::cmd_apply},           {"edit", &Daemon::cmd_apply},
        {"confirm", &Daemon::cmd_confirm},       {"cancel", &Daemon::cmd_cancel},
        {"history", &Daemon::cmd_history},       {"diff", &Daemon::cmd_diff},
        {"rollback", &Daemon::cmd_rollback},
        {"metrics", &Daemon::cmd_metrics},
        {"log", &Daemon::cmd_log},
    };
    return h;
}

bool Daemon::handles(const std::string& command) { return handlers().count(command) > 0; }

ControlReply Daemon::control(const std::vector<std::string>& args) {
    if (args.empty()) return {false, "empty request\n"};
    auto h = handlers().find(args[0]);
    if (!command_for_request(args) || h == handlers().end())
        return {false, "unknown or malformed request '" + args[0] + "' (see netctl --help)\n"};
    auto reply = (this->*(h->second))(args);
    // A hook's event counts as accepted when its netctl call succeeds (the hook exits 0).
    if (args[0] == "dhcp-event") counters_.dhcp_event(args.size() > 1 ? args[1] : "", reply.ok);
    if (args[0] == "dhcp6-event") ++(reply.ok ? counters_.dhcp6_accepted : counters_.dhcp6_rejected);
    return reply;
}

ControlReply Daemon::cmd_status(const std::vector<std::string>& args) {
    return {true, args.size() == 2 ? status_json() : status_text()};
}

ControlReply Daemon::cmd_reload(const std::vector<std::string>&) {
    if (trial_)
        return {false, "a trial (" + trial_->how + " by " + trial_->who +
                           ") waits for its confirm: 'netctl confirm' or 'netctl cancel' first\n"};
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

namespace {

// "by=WHO" that netctl adds to the commands that change the configuration.
std::string requester(const std::vector<std::string>& args) {
    if (!args.empty() && args.back().rfind("by=", 0) == 0) return header_safe(args.back().substr(3));
    return "unknown";
}

}  // namespace

ControlReply Daemon::cmd_apply(const std::vector<std::string>& args) {
    // args: apply|edit FILE [SECONDS] [by=WHO]. netd reads the file itself (it runs as root on
    // the same filesystem as netctl); the errors name it as the admin wrote it.
    if (args.size() < 2 || args[1].rfind("by=", 0) == 0) return {false, args[0] + ": no file named\n"};
    std::ifstream in(args[1], std::ios::binary);
    if (!in) return {false, args[1] + ": cannot read it; nothing changed\n"};
    std::string text((std::istreambuf_iterator<char>(in)), {});
    return start_trial(text, args[1], args, 2, args[0]);
}

ControlReply Daemon::cmd_rollback(const std::vector<std::string>& args) {
    unsigned n = static_cast<unsigned>(std::strtoul(args[1].c_str(), nullptr, 10));
    auto r = store_.revision(n);
    if (!r) return {false, "no revision '" + args[1] + "' in the history (see netctl history)\n"};
    return start_trial(r->text, "revision " + std::to_string(n), args, 2, "rollback to " + std::to_string(n));
}

ControlReply Daemon::start_trial(const std::string& text, const std::string& label, const std::vector<std::string>& args,
                                 size_t seconds_at, const std::string& how) {
    if (!data_refused_.empty()) return {false, data_refused_ + "\n"};
    if (trial_)
        return {false, "a trial (" + trial_->how + " by " + trial_->who +
                           ") waits for its confirm: 'netctl confirm' or 'netctl cancel' first; nothing changed\n"};
    unsigned seconds = 120;
    if (args.size() > seconds_at && args[seconds_at].rfind("by=", 0) != 0) {
        char* end = nullptr;
        unsigned long v = std::strtoul(args[seconds_at].c_str(), &end, 10);
        if (!end || *end || v < 10 || v > 3600)
            return {false, "'" + args[seconds_at] + "': the confirm deadline is 10 to 3600 seconds; nothing changed\n"};
        seconds = static_cast<unsigned>(v);
    }
    auto res = parse_config_text(text, label);
    if (!res.config) {
        std::string o;
        for (auto& e : res.errors) o += e.str() + "\n";
        return {false, o + label + ": " + std::to_string(res.errors.size()) + " error(s); nothing changed\n"};
    }
    std::string diff = unified_diff(running_text_, text, "running", label);
    if (diff.empty()) return {true, "no change: " + label + " is the running configuration\n"};
    Trial t{text, requester(args), how, static_cast<int64_t>(time(nullptr)), seconds};
    // Recorded before it runs: a power cut from here on boots the last confirmed configuration.
    if (auto st = store_.begin(t); !st)
        return {false, diff + "cannot record the trial on the data disk: " + st.error().str() + "; nothing changed\n"};
    std::string before = running_text_;
    if (auto st = adopt(std::move(*res.config), text); !st) {
        (void)store_.drop();
        syslog(LOG_ERR, "config: %s by %s refused: %s", how.c_str(), t.who.c_str(), st.error().str().c_str());
        return {false, diff + st.error().str() + "\nnothing changed\n"};
    }
    syslog(LOG_NOTICE, "config: %s by %s applied (%s); confirm within %u s or it is undone", how.c_str(), t.who.c_str(),
           last_transition_.c_str(), seconds);
    trial_ = t;
    trial_previous_ = before;
    trial_timer_ = sched_.after(std::chrono::seconds(seconds), [this, seconds] {
        end_trial("not confirmed within " + std::to_string(seconds) + " s");
    });
    return {true, diff + "applied: " + last_transition_ + "\nconfirm within " + std::to_string(seconds) +
                      " s with 'netctl confirm' (from a new session if this one is cut), or the previous "
                      "configuration comes back by itself\n"};
}

void Daemon::end_trial(const std::string& why) {
    if (!trial_) return;
    Trial t = *trial_;
    trial_.reset();
    trial_timer_ = {};
    syslog(LOG_WARNING, "config: %s by %s %s: going back to the configuration before it", t.how.c_str(), t.who.c_str(),
           why.c_str());
    auto res = parse_config_text(trial_previous_, opts_.config_path);
    if (!res.config) {
        // Nothing ran before the trial (the first configuration): nothing to go back to.
        syslog(LOG_WARNING, "config: nothing ran before the trial: it stays, unconfirmed; router.conf is unchanged");
    } else if (auto st = adopt(std::move(*res.config), trial_previous_); !st) {
        last_error_ = "going back after an unconfirmed trial: " + st.error().str() + "\n";
        syslog(LOG_ERR, "config: going back failed: %s", st.error().str().c_str());
    } else {
        syslog(LOG_NOTICE, "config: the previous configuration runs again: %s", last_transition_.c_str());
    }
    if (auto st = store_.drop(); !st) syslog(LOG_ERR, "config: removing the trial's record: %s", st.error().str().c_str());
}

ControlReply Daemon::cmd_confirm(const std::vector<std::string>& args) {
    if (!trial_) return {false, "no trial waits for a confirm\n"};
    auto n = store_.confirm(*trial_, time(nullptr));
    if (!n) return {false, "cannot keep it on the data disk: " + n.error().str() + "; the trial goes on\n"};
    syslog(LOG_NOTICE, "config: %s by %s confirmed by %s: revision %u", trial_->how.c_str(), trial_->who.c_str(),
           requester(args).c_str(), *n);
    std::string o = "kept: revision " + std::to_string(*n) + " (" + trial_->how + " by " + trial_->who + ")\n";
    trial_.reset();
    trial_timer_ = {};
    trial_previous_.clear();
    return {true, o};
}

ControlReply Daemon::cmd_cancel(const std::vector<std::string>& args) {
    if (!trial_) return {false, "no trial waits for a confirm\n"};
    end_trial("cancelled by " + requester(args));
    return {last_error_.empty(), last_error_.empty() ? "the previous configuration runs again: " + last_transition_ + "\n"
                                                     : last_error_};
}

ControlReply Daemon::cmd_history(const std::vector<std::string>&) {
    std::string o;
    char line[256];
    if (trial_) {
        auto left = trial_->started + trial_->timeout - static_cast<int64_t>(time(nullptr));
        std::snprintf(line, sizeof(line), "trial  %s  %-20s %s, %lld s left to confirm\n", utc_time(trial_->started).c_str(),
                      trial_->who.c_str(), trial_->how.c_str(), static_cast<long long>(std::max<int64_t>(0, left)));
        o += line;
    }
    std::snprintf(line, sizeof(line), "%-5s  %-19s  %-20s %s\n", "REV", "CONFIRMED (UTC)", "BY", "HOW");
    o = line + o;
    auto h = store_.history();
    bool marked = false;   // the newest revision with the running text (an older one may equal it)
    for (auto& r : h) {
        bool running = !marked && r.text == running_text_;
        marked = marked || running;
        std::snprintf(line, sizeof(line), "%5u  %s  %-20s %s%s\n", r.number, utc_time(r.time).c_str(), r.who.c_str(),
                      r.how.c_str(), running ? "  (running)" : "");
        o += line;
    }
    if (h.empty()) o += "(no configuration confirmed yet)\n";
    return {true, o};
}

ControlReply Daemon::cmd_diff(const std::vector<std::string>& args) {
    auto rev = [&](const std::string& s) { return store_.revision(static_cast<unsigned>(std::strtoul(s.c_str(), nullptr, 10))); };
    auto a = rev(args[1]);
    if (!a) return {false, "no revision '" + args[1] + "' in the history (see netctl history)\n"};
    std::string b_text = running_text_, b_label = "running";
    if (args.size() > 2) {
        auto b = rev(args[2]);
        if (!b) return {false, "no revision '" + args[2] + "' in the history (see netctl history)\n"};
        b_text = b->text;
        b_label = "revision " + args[2];
    }
    std::string d = unified_diff(a->text, b_text, "revision " + args[1], b_label);
    return {true, d.empty() ? "no difference\n" : d};
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
    if (trial_) {
        auto left = trial_->started + trial_->timeout - static_cast<int64_t>(time(nullptr));
        o += "trial:    " + trial_->how + " by " + trial_->who + ": " + std::to_string(std::max<int64_t>(0, left)) +
             " s left to confirm ('netctl confirm' keeps it, 'netctl cancel' undoes it)\n";
    }
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
    if (trial_)
        j["trial"] = {{"how", trial_->how}, {"by", trial_->who}, {"started", trial_->started},
                      {"deadline", trial_->started + trial_->timeout}};
    else
        j["trial"] = nullptr;
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
    j["metrics"] = metrics_json(metrics());
    return j.dump() + "\n";
}

// ---- metrics (metrics.h) ----
ControlReply Daemon::cmd_metrics(const std::vector<std::string>&) { return {true, render_prometheus(metrics())}; }

ControlReply Daemon::cmd_log(const std::vector<std::string>&) {
    // The log is larger than a reply and must be readable while netd is down.
    return {false, "netd does not serve the log: netctl log reads /data/log itself\n"};
}

std::vector<MetricFamily> Daemon::metrics() {
    MetricsInputs in;
    in.counters = counters_;
    in.start_time_s = std::chrono::duration<double>(started_wall_.time_since_epoch()).count();
    in.uptime_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
    // The sit device's counters, plus those of the devices netd deleted: shown once a tunnel
    // has existed in this netd's life.
    LinkTraffic t = reconciler_.retired_tunnel_traffic();
    bool tunnel = t != LinkTraffic{};
    if (auto links = kernel_.links())
        for (auto& l : *links)
            if (l.name == kTunnelIf) {
                t += LinkTraffic::of(l);
                tunnel = true;
            }
    if (tunnel) in.tunnel = t;
    if (tunnel_) in.tunnel_up = tunnel_->status().state == TunnelState::up;
    // The drops the kernel counts now, plus those of the rulesets netd replaced. Unreadable: no
    // figure rather than one that goes back.
    if (current_ && !current_->ruleset_text.empty()) {
        if (auto d = kernel_.firewall_drops()) {
            for (auto& [chain, n] : reconciler_.retired_drops()) (*d)[chain] += n;
            in.firewall_drops = std::move(*d);
        } else {
            syslog(LOG_WARNING, "metrics: firewall counters: %s", d.error().str().c_str());
        }
    }
    in.services = sup_.status();
    return collect_metrics(in);
}

void Daemon::count_reload(bool ok) {
    if (std::exchange(first_load_, false)) return;   // netd's start
    ++(ok ? counters_.reloads_ok : counters_.reloads_failed);
}

void Daemon::note_wan_address(const DesiredState& d) {
    std::optional<IpCidr> now;
    for (auto& a : d.addresses)
        if (a.link == d.wan_if && a.addr.family == 4) now = a.addr;
    if (wan_seen_ && now != wan_address_) ++counters_.wan_address_changes;
    wan_seen_ = true;
    wan_address_ = now;
}

}  // namespace netd
