#include "tunnel.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <mbedtls/md5.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <syslog.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <ctime>

#include <nlohmann/json.hpp>

namespace netd {

std::string heartbeat_packet(const std::string& local_v6, const std::string& local_v4_or_sender, int64_t unix_time,
                             const std::string& password) {
    std::string head = "HEARTBEAT TUNNEL " + local_v6 + " " + local_v4_or_sender + " " + std::to_string(unix_time) + " ";
    std::string signed_line = head + password;
    unsigned char md[16];
    mbedtls_md5_ret(reinterpret_cast<const unsigned char*>(signed_line.data()), signed_line.size(), md);
    char hex[2 * sizeof(md) + 1];
    for (unsigned i = 0; i < sizeof(md); ++i) std::snprintf(hex + 2 * i, 3, "%02x", md[i]);
    return head + std::string(hex, 2 * sizeof(md));
}

Registration UpdateRunner::start_tic(const TicSettings&, std::function<void(const std::string&)> done) {
    done("ERROR internal no TIC helper\n");
    return {};
}

const char* to_string(HeOutcome o) {
    switch (o) {
        case HeOutcome::good: return "good";
        case HeOutcome::nochg: return "nochg";
        case HeOutcome::badauth: return "badauth";
        case HeOutcome::abuse: return "abuse";
        case HeOutcome::failed: return "failed";
    }
    return "?";
}

HeOutcome parse_he_reply(int http_status, std::string_view body) {
    // The first word of the body decides (dyndns2 style: "good 192.0.2.7", "nochg ...").
    size_t b = 0;
    while (b < body.size() && (body[b] == ' ' || body[b] == '\t' || body[b] == '\r' || body[b] == '\n')) ++b;
    size_t e = b;
    while (e < body.size() && body[e] != ' ' && body[e] != '\r' && body[e] != '\n' && body[e] != '\t') ++e;
    std::string_view word = body.substr(b, e - b);
    if (word == "badauth") return HeOutcome::badauth;  // HE answers it with 401 or 200
    if (word == "abuse") return HeOutcome::abuse;
    if (http_status != 200) return HeOutcome::failed;
    if (word == "good") return HeOutcome::good;
    if (word == "nochg") return HeOutcome::nochg;
    return HeOutcome::failed;
}

std::chrono::seconds update_retry_delay(unsigned failures) {
    if (failures == 0) return std::chrono::seconds{0};
    long s = 15;
    for (unsigned i = 1; i < failures && s < 1800; ++i) s *= 2;
    return std::chrono::seconds{std::min(s, 1800L)};
}

std::chrono::seconds burst_gap(unsigned previous) {
    long s = 5;
    for (unsigned i = 1; i < previous && s < 60; ++i) s *= 2;
    return std::chrono::seconds{std::min(s, 60L)};
}

const char* to_string(TunnelState s) {
    switch (s) {
        case TunnelState::not_configured: return "not-configured";
        case TunnelState::waiting_wan: return "waiting-for-wan";
        case TunnelState::waiting_clock: return "waiting-for-clock";
        case TunnelState::updating: return "updating";
        case TunnelState::up: return "up";
        case TunnelState::refused: return "refused";
        case TunnelState::retrying: return "retrying";
        case TunnelState::held_back: return "held-back";
    }
    return "?";
}

namespace {

using std::chrono::system_clock;

// Spaces out the messages of a burst (see burst_gap): after each one a gate stays closed for
// the burst's next gap; `reopened` runs when it opens again.
class BurstGate {
public:
    BurstGate(Scheduler& sched, std::function<void()> reopened) : sched_(sched), reopened_(std::move(reopened)) {}

    bool open() const { return !gate_; }
    void sent() {
        ++in_burst_;
        gate_ = sched_.after(burst_gap(in_burst_), [this] {
            gate_.reset();
            reopened_();
        });
        quiet_ = sched_.after(kBurstQuiet, [this] { in_burst_ = 0; });
    }
    void reset() {
        gate_.reset();
        quiet_.reset();
        in_burst_ = 0;
    }

private:
    Scheduler& sched_;
    std::function<void()> reopened_;
    Registration gate_, quiet_;
    unsigned in_burst_ = 0;
};

class StaticHandler final : public TunnelHandler {
public:
    void wan_changed(std::optional<Ipv4Addr> wan) override { wan_ = wan; }
    void reload() override {}
    void retry_now() override {}
    TunnelStatus status() const override {
        TunnelStatus s;
        s.mode = TunnelMode::static_;
        s.state = wan_ ? TunnelState::up : TunnelState::waiting_wan;
        return s;
    }

private:
    std::optional<Ipv4Addr> wan_;
};

// he: at most one update in flight; a WAN change cancels one for an address the router no
// longer holds; updates of a burst of WAN changes are spaced out (BurstGate), and the last one
// carries the address the router holds then; "up" only when the broker acknowledged the
// router's current address.
class HeHandler final : public TunnelHandler {
public:
    HeHandler(const TunnelConfig& c, TunnelDeps d) : cfg_(c), d_(std::move(d)), gate_(d_.sched, [this] { kick(); }) {}

    void wan_changed(std::optional<Ipv4Addr> wan) override {
        if (wan == wan_) return;
        wan_ = wan;
        if (inflight_ && inflight_for_ != wan_) {
            inflight_.reset();
            // The cancelled request may have reached the broker: what it holds is unknown now.
            acked_.reset();
            syslog(LOG_INFO, "tunnel: update for %s cancelled: the WAN address changed", inflight_for_.str().c_str());
        }
        // A new address is worth telling at once, whatever failed for the previous one.
        failures_ = 0;
        retry_.reset();
        kick();
    }

    void reload() override {
        // A reload (credentials fixed on the broker's side) resumes after badauth, at once: the
        // administrator asked.
        if (refused_) syslog(LOG_NOTICE, "tunnel: reload: endpoint updates resume");
        refused_ = false;
        if (!acked_ || acked_ != wan_) {
            failures_ = 0;
            retry_.reset();
            gate_.reset();
            kick();
        }
    }

    void retry_now() override {
        // The administrator asks: no spacing either.
        refused_ = false;
        failures_ = 0;
        acked_.reset();
        retry_.reset();
        inflight_.reset();
        gate_.reset();
        kick();
    }

    TunnelStatus status() const override {
        TunnelStatus s = st_;
        s.mode = TunnelMode::he;
        s.updates_sent = sent_;
        s.failures = failures_;
        s.broker_address = broker_address_;
        if (!wan_)
            s.state = TunnelState::waiting_wan;
        else if (inflight_)
            s.state = TunnelState::updating;
        else if (refused_)
            s.state = TunnelState::refused;
        else if (acked_ && *acked_ == *wan_)
            s.state = TunnelState::up;
        else if (!retry_ && !gate_.open())
            s.state = TunnelState::held_back;
        else
            s.state = TunnelState::retrying;
        if (!retry_) s.next_at = {};
        return s;
    }

private:
    void kick() {
        if (!wan_ || refused_ || inflight_ || retry_) return;
        if (acked_ && *acked_ == *wan_) return;
        if (!gate_.open()) {
            st_.detail = "the WAN address changes often: the update for " + wan_->str() +
                         " waits its turn (at most 60 s)";
            return;
        }
        HeRequest r{cfg_.update_url, cfg_.username, cfg_.update_key, cfg_.tunnel_id, cfg_.ca_file, std::nullopt};
        // Behind a NAT the WAN address means nothing to the broker: leave myip out and let it
        // take the address the request comes from (as OpenWrt's 6in4 does).
        if (is_public_ipv4(*wan_)) r.myip = *wan_;
        inflight_for_ = *wan_;
        st_.detail = "updating the endpoint (" + wan_->str() + (r.myip ? "" : ", behind NAT: myip left out") + ")";
        st_.last_at = system_clock::now();
        inflight_ = d_.updates.start(r, [this](const std::string& out) { finished(out); });
        // An empty handle: the helper could not even start (finished() has said why).
        if (inflight_) {
            ++sent_;
            gate_.sent();
            if (d_.on_sent) d_.on_sent("update");
            count(TunnelEvent::update_sent);
        }
    }

    void finished(const std::string& output) {
        Ipv4Addr sent_for = inflight_for_;
        inflight_.reset();
        int status = 0;
        std::string first = output.substr(0, output.find('\n'));
        std::string body = output.find('\n') == std::string::npos ? "" : output.substr(output.find('\n') + 1);
        while (!body.empty() && (body.back() == '\n' || body.back() == '\r')) body.pop_back();
        // Both lines reach the status (whose JSON refuses bytes that are not UTF-8) and the log.
        for (std::string* line : {&first, &body})
            for (char& c : *line)
                if (c < 0x20 || c > 0x7e) c = '?';
        HeOutcome o = HeOutcome::failed;
        std::string what;
        if (std::sscanf(first.c_str(), "HTTP %d", &status) == 1) {
            o = parse_he_reply(status, body);
            what = "HTTP " + std::to_string(status) + " '" + body.substr(0, 80) + "'";
        } else {
            what = first.empty() ? "update helper ended without an answer" : first.substr(0, 160);
        }
        st_.last_at = system_clock::now();
        st_.last = std::string("update ") + to_string(o) + ": " + what;
        switch (o) {
            case HeOutcome::good:
            case HeOutcome::nochg: {
                failures_ = 0;
                acked_ = sent_for;
                // "good 198.51.100.7": the address the broker now sends the tunnel to.
                auto sp = body.find(' ');
                auto ip = sp == std::string::npos ? std::nullopt : Ipv4Addr::parse(body.substr(sp + 1, body.find(' ', sp + 1) - sp - 1));
                broker_address_ = ip ? ip->str() : "";
                st_.detail = "the broker sends the tunnel to " + (ip ? ip->str() : sent_for.str());
                syslog(LOG_NOTICE, "tunnel: endpoint update %s", st_.last.c_str());
                break;
            }
            case HeOutcome::badauth:
                refused_ = true;
                st_.detail = "badauth: check tunnel.username and tunnel.update_key; not retried until "
                             "'netctl reload' or 'netctl tunnel-update'";
                syslog(LOG_ERR, "tunnel: endpoint update refused: badauth (wrong username or update key); not retrying");
                count(TunnelEvent::update_badauth);
                break;
            case HeOutcome::abuse:
                st_.detail = "abuse: the broker refuses updates for now; next try in 2 h";
                syslog(LOG_ERR, "tunnel: endpoint update refused: abuse; next try in 2 h");
                count(TunnelEvent::update_abuse);
                schedule(std::chrono::duration_cast<std::chrono::seconds>(kAbuseDelay));
                break;
            case HeOutcome::failed: {
                ++failures_;
                auto delay = update_retry_delay(failures_);
                st_.detail = "endpoint update failed " + std::to_string(failures_) + "x, retry in " +
                             std::to_string(delay.count()) + " s";
                syslog(LOG_WARNING, "tunnel: endpoint update failed (%s); retry %u in %lld s", what.c_str(), failures_,
                       static_cast<long long>(delay.count()));
                schedule(delay);
                count(TunnelEvent::update_error);
                break;
            }
        }
        // The WAN moved while the update ran: tell the broker the newest address.
        if (wan_ && *wan_ != sent_for) {
            retry_.reset();
            failures_ = 0;
            kick();
        }
    }

    void count(TunnelEvent e) {
        if (d_.on_event) d_.on_event(e);
    }

    void schedule(std::chrono::seconds delay) {
        st_.next_at = system_clock::now() + delay;
        retry_ = d_.sched.after(delay, [this] {
            retry_.reset();
            kick();  // reads the WAN address as it is then: none means wait for one
        });
    }

    TunnelConfig cfg_;
    TunnelDeps d_;
    std::optional<Ipv4Addr> wan_, acked_;
    Ipv4Addr inflight_for_;
    Registration inflight_, retry_;
    bool refused_ = false;
    unsigned failures_ = 0;
    uint64_t sent_ = 0;
    std::string broker_address_;
    TunnelStatus st_;
    BurstGate gate_;
};

// heartbeat: the beat is rescheduled every interval whatever happens, so it never stops for
// good; without a WAN address or a synchronised clock a beat is skipped, not the schedule.
class HeartbeatHandler final : public TunnelHandler {
public:
    HeartbeatHandler(const TunnelConfig& c, TunnelDeps d)
        : cfg_(c), d_(std::move(d)), gate_(d_.sched, [this] {
              // A beat held back by the gate, for the address the router holds now.
              if (wan_ && wan_ != beat_for_ && beat()) gate_.sent();
          }) {}

    void wan_changed(std::optional<Ipv4Addr> wan) override {
        if (wan == wan_) return;
        wan_ = wan;
        if (wan_) {
            // At once for a new or returning address, spaced out when the WAN flaps (the
            // regular schedule goes on regardless). Only a beat that left closes the gate: one
            // held back for the clock at boot must not delay the first real WAN change.
            if (gate_.open() && beat()) gate_.sent();
        } else {
            syslog(LOG_NOTICE, "tunnel: no WAN address: heartbeats wait for one");
        }
    }

    void clock_synced(bool synced) override {
        bool was = clock_;
        clock_ = synced;
        if (!was && synced) {
            syslog(LOG_NOTICE, "tunnel: clock synchronised: heartbeats start");
            if (wan_) beat();
        } else if (was && !synced) {
            syslog(LOG_WARNING, "tunnel: CLOCK NOT SYNCHRONISED (ntpd): heartbeats stop until it is");
        }
    }

    void reload() override {
        if (wan_) beat();
    }
    void retry_now() override { reload(); }

    TunnelStatus status() const override {
        TunnelStatus s = st_;
        s.mode = TunnelMode::heartbeat;
        s.failures = failures_;
        s.updates_sent = sent_;
        if (!wan_)
            s.state = TunnelState::waiting_wan;
        else if (!clock_)
            s.state = TunnelState::waiting_clock;
        else if (failures_)
            s.state = TunnelState::retrying;
        else
            s.state = st_.last.empty() ? TunnelState::retrying : TunnelState::up;
        s.detail = clock_ ? "clock synchronised" : "no heartbeat is sent until ntpd synchronises the clock";
        return s;
    }

private:
    // Sends a heartbeat now (if there is an address and a synchronised clock) and restarts the
    // regular schedule; true when one left.
    bool beat() {
        st_.next_at = system_clock::now() + std::chrono::seconds{cfg_.interval};
        timer_ = d_.sched.after(std::chrono::seconds{cfg_.interval}, [this] { beat(); });
        if (!wan_) return false;
        if (!clock_) {
            syslog(LOG_WARNING, "tunnel: clock not synchronised (ntpd): heartbeat held back");
            return false;
        }
        std::string pkt = heartbeat_packet(cfg_.local_ipv6.str(), cfg_.sender ? "sender" : wan_->str(), d_.unix_time(),
                                           cfg_.password);
        std::string err = d_.datagrams.send(pkt, cfg_.remote, kHeartbeatPort);
        st_.last_at = system_clock::now();
        if (err.empty()) {
            failures_ = 0;
            ++sent_;
            beat_for_ = wan_;
            st_.last = "heartbeat sent";
            if (d_.on_sent) d_.on_sent("heartbeat");
            if (d_.on_event) d_.on_event(TunnelEvent::heartbeat_sent);
            return true;
        }
        ++failures_;
        st_.last = "heartbeat NOT sent: " + err;
        syslog(LOG_WARNING, "tunnel: %s", st_.last.c_str());
        if (d_.on_event) d_.on_event(TunnelEvent::heartbeat_failed);
        return false;
    }

    TunnelConfig cfg_;
    TunnelDeps d_;
    std::optional<Ipv4Addr> wan_, beat_for_;
    bool clock_ = false;
    unsigned failures_ = 0;
    uint64_t sent_ = 0;
    Registration timer_;
    TunnelStatus st_;
    BurstGate gate_;
};

std::string clock_text(system_clock::time_point t) {
    if (t.time_since_epoch().count() == 0) return "-";
    time_t tt = system_clock::to_time_t(t);
    char buf[32];
    struct tm tm;
    gmtime_r(&tt, &tm);
    std::strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%SZ", &tm);
    return buf;
}

std::string local_text(const TunnelConfig& c, std::optional<Ipv4Addr> wan) {
    if (c.mode == TunnelMode::heartbeat && c.sender) return "(sender)";
    return wan ? wan->str() : "-";
}

}  // namespace

std::unique_ptr<TunnelHandler> make_tunnel_handler(const TunnelConfig& c, TunnelDeps deps) {
    switch (c.mode) {
        case TunnelMode::he: return std::make_unique<HeHandler>(c, std::move(deps));
        case TunnelMode::heartbeat: return std::make_unique<HeartbeatHandler>(c, std::move(deps));
        case TunnelMode::static_: return std::make_unique<StaticHandler>();
        case TunnelMode::none: break;
    }
    return nullptr;
}

std::string tunnel_return_warning(const TunnelConfig& c, std::optional<Ipv4Addr> wan,
                                  const std::optional<TunnelTraffic>& t) {
    if (c.mode == TunnelMode::none || !t || t->packets_out < kNoReturnAfter || t->packets_in > 0) return {};
    std::string w = "no IPv6-in-IPv4 (IP protocol 41) packet has come back from " + c.remote.str() + " (" +
                    std::to_string(t->packets_out) + " sent)";
    if (wan && !is_public_ipv4(*wan))
        w += ": behind a NAT, the upstream router must forward IP protocol 41 to this router's WAN address " +
             wan->str() + " (\"DMZ\" or \"exposed host\")";
    else
        w += ": check that the broker has this endpoint and that nothing upstream drops protocol 41";
    return w;
}

std::string tunnel_status_text(const TunnelStatus& s, const TunnelConfig& c, std::optional<Ipv4Addr> wan,
                               const std::optional<TunnelTraffic>& traffic) {
    if (c.mode == TunnelMode::none) return "not configured\n";
    std::string o = std::string(to_string(c.mode)) + " " + kTunnelIf + " " + to_string(s.state);
    if (!s.detail.empty()) o += " (" + s.detail + ")";
    o += "\n          local " + local_text(c, wan) + " remote " + c.remote.str() + " mtu " + std::to_string(c.mtu) +
         " ipv6 " + c.local_ipv6.str() + "/" + std::to_string(c.local_ipv6_len);
    if (!s.broker_address.empty()) o += " broker sees " + s.broker_address;
    o += "\n          last: " + (s.last.empty() ? std::string("-") : s.last + " at " + clock_text(s.last_at));
    if (s.next_at.time_since_epoch().count()) o += "; next at " + clock_text(s.next_at);
    o += "\n";
    if (traffic)
        o += "          packets out " + std::to_string(traffic->packets_out) + ", in " +
             std::to_string(traffic->packets_in) + "\n";
    if (auto w = tunnel_return_warning(c, wan, traffic); !w.empty()) o += "          WARNING: " + w + "\n";
    return o;
}

nlohmann::json tunnel_status_json(const TunnelStatus& s, const TunnelConfig& c, std::optional<Ipv4Addr> wan,
                                  const std::optional<TunnelTraffic>& traffic) {
    return {{"mode", to_string(c.mode)},
            {"packets_out", traffic ? traffic->packets_out : 0},
            {"packets_in", traffic ? traffic->packets_in : 0},
            {"warning", tunnel_return_warning(c, wan, traffic)},
            {"state", to_string(s.state)},
            {"up", s.state == TunnelState::up},
            {"detail", s.detail},
            {"remote", c.remote.str()},
            {"local", local_text(c, wan)},
            {"mtu", c.mtu},
            {"last", s.last},
            {"last_at", clock_text(s.last_at)},
            {"next_at", clock_text(s.next_at)},
            {"failures", s.failures},
            {"sent", s.updates_sent},
            {"broker_address", s.broker_address}};
}

}  // namespace netd
