#include "tunnel.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <syslog.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <ctime>

#include "control.h"
#include "process.h"

namespace netd {

std::string heartbeat_packet(const std::string& local_v6, const std::string& local_v4_or_sender, int64_t unix_time,
                             const std::string& password) {
    std::string head = "HEARTBEAT TUNNEL " + local_v6 + " " + local_v4_or_sender + " " + std::to_string(unix_time) + " ";
    std::string signed_line = head + password;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_Digest(signed_line.data(), signed_line.size(), md, &len, EVP_md5(), nullptr);
    char hex[2 * EVP_MAX_MD_SIZE + 1];
    for (unsigned i = 0; i < len; ++i) std::snprintf(hex + 2 * i, 3, "%02x", md[i]);
    return head + std::string(hex, 2 * len);
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

namespace {

std::string clock_text(std::chrono::system_clock::time_point t) {
    if (t.time_since_epoch().count() == 0) return "-";
    time_t tt = std::chrono::system_clock::to_time_t(t);
    char buf[32];
    struct tm tm;
    gmtime_r(&tt, &tm);
    std::strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%SZ", &tm);
    return buf;
}

}  // namespace

Tunnel::Tunnel(EventLoop& loop, Netlink& nl, std::string helper_exe)
    : loop_(loop), nl_(nl), helper_exe_(std::move(helper_exe)) {}

Tunnel::~Tunnel() {
    if (timer_) loop_.cancel_timer(timer_);
    if (helper_timeout_) loop_.cancel_timer(helper_timeout_);
    if (helper_out_) loop_.unwatch(helper_out_.get());
    if (helper_pidfd_) {
        loop_.unwatch(helper_pidfd_.get());
        send_signal(helper_pidfd_.get(), SIGKILL);
    }
}

bool Tunnel::configure(const TunnelConfig& tc) {
    if (tc == cfg_) return false;
    cfg_ = tc;
    applied_local_.reset();
    failures_ = 0;
    stopped_badauth_ = false;
    up_ = false;
    if (!enabled()) {
        state_ = "not configured";
        return true;
    }
    apply();
    return true;
}

void Tunnel::wan_changed(std::optional<Ipv4Addr> wan) {
    if (wan == wan_) return;
    wan_ = wan;
    if (enabled()) apply();
}

void Tunnel::clock_synced(bool synced) {
    bool was = clock_synced_;
    clock_synced_ = synced;
    if (!was && synced && cfg_.mode == TunnelMode::heartbeat && up_) {
        syslog(LOG_NOTICE, "tunnel: clock synchronised: heartbeats start");
        send_heartbeat();
    } else if (was && !synced && cfg_.mode == TunnelMode::heartbeat) {
        syslog(LOG_WARNING, "tunnel: CLOCK NOT SYNCHRONISED (ntpd): heartbeats stop until it is");
    }
}

void Tunnel::schedule(std::chrono::seconds after, std::function<void()> fn) {
    if (timer_) loop_.cancel_timer(timer_);
    next_retry_ = std::chrono::system_clock::now() + after;
    timer_ = loop_.add_timer(after, [this, fn = std::move(fn)] {
        timer_ = 0;
        fn();
    });
}

void Tunnel::apply() {
    if (!wan_) {
        state_ = "waiting for a WAN address";
        return;
    }
    // In sender mode (behind NAT) the local end stays unset: the PoP answers whatever source
    // address the heartbeat arrives from.
    Ipv4Addr local = cfg_.mode == TunnelMode::heartbeat && cfg_.sender ? Ipv4Addr{0} : *wan_;
    bool retarget = applied_local_ != local;
    if (retarget || !up_) {
        auto idx = nl_.ensure_sit(kTunnelIf, local, cfg_.remote, cfg_.mtu);
        Status st = idx ? Status(Ok{}) : Status(idx.error());
        if (st) st = nl_.set_up(*idx);
        if (st) st = nl_.set_mtu(*idx, cfg_.mtu);
        if (st) st = nl_.add_address(*idx, cfg_.local_ipv6, cfg_.local_ipv6_len);
        if (st) st = nl_.replace_default_route6(*idx);
        if (!st) {
            state_ = "DOWN: " + st.error().str();
            syslog(LOG_ERR, "tunnel: %s", state_.c_str());
            up_ = false;
            schedule(std::chrono::seconds{10}, [this] { apply(); });
            return;
        }
        syslog(LOG_NOTICE, "tunnel: %s local %s remote %s mtu %u", kTunnelIf, local.str().c_str(),
               cfg_.remote.str().c_str(), cfg_.mtu);
        applied_local_ = local;
        up_ = true;
    }
    state_ = "up";
    switch (cfg_.mode) {
        case TunnelMode::he:
            if (retarget && !stopped_badauth_) {
                failures_ = 0;
                start_update();
            }
            break;
        case TunnelMode::heartbeat:
            if (retarget) send_heartbeat();
            break;
        default:
            break;
    }
}

void Tunnel::send_heartbeat() {
    if (cfg_.mode != TunnelMode::heartbeat || !up_ || !wan_) return;
    if (!clock_synced_) {
        state_ = "up, WAITING FOR CLOCK SYNC (ntpd): no heartbeat is sent until then";
        syslog(LOG_WARNING, "tunnel: clock not synchronised (ntpd): heartbeat held back");
        schedule(std::chrono::seconds{cfg_.interval}, [this] { send_heartbeat(); });
        return;
    }
    state_ = "up";
    if (!udp_) udp_.reset(socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    std::string pkt = heartbeat_packet(cfg_.local_ipv6.str(), cfg_.sender ? "sender" : wan_->str(),
                                       static_cast<int64_t>(time(nullptr)), cfg_.password);
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(kHeartbeatPort);
    to.sin_addr = cfg_.remote.to_in_addr();
    ssize_t n = sendto(udp_.get(), pkt.data(), pkt.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof(to));
    last_event_time_ = std::chrono::system_clock::now();
    if (n == static_cast<ssize_t>(pkt.size())) {
        last_event_ = "heartbeat sent";
        if (on_sent) on_sent("heartbeat");
    } else {
        last_event_ = std::string("heartbeat NOT sent: ") + std::strerror(errno);
        syslog(LOG_WARNING, "tunnel: %s", last_event_.c_str());
    }
    schedule(std::chrono::seconds{cfg_.interval}, [this] { send_heartbeat(); });
}

void Tunnel::retry_now() {
    stopped_badauth_ = false;
    failures_ = 0;
    applied_local_.reset();
    if (enabled()) apply();
}

void Tunnel::start_update() {
    // One update at a time: when it ends, a newer WAN address (if any) gets its own update.
    if (helper_pidfd_) return;
    int in[2], out[2];
    if (pipe2(in, O_CLOEXEC) != 0) return;
    if (pipe2(out, O_CLOEXEC | O_NONBLOCK) != 0) {
        close(in[0]);
        close(in[1]);
        return;
    }
    UniqueFd in_r(in[0]), in_w(in[1]), out_r(out[0]), out_w(out[1]);
    SpawnOptions so;
    so.argv = {helper_exe_, "--he-update"};
    so.env = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin"};
    so.stdin_fd = in_r.get();
    so.stdout_fd = out_w.get();
    auto sp = spawn(so);
    if (!sp) {
        last_event_ = "update not started: " + sp.error().str();
        return;
    }
    // Credentials go through a pipe, never on a command line (ps would show them).
    std::string req = cfg_.update_url + "\n" + cfg_.username + "\n" + cfg_.update_key + "\n" + cfg_.tunnel_id + "\n" +
                      wan_->str() + "\n" + cfg_.ca_file + "\n";
    if (write(in_w.get(), req.data(), req.size()) < 0) syslog(LOG_WARNING, "tunnel: writing to the update helper failed");
    in_w.reset();
    helper_pidfd_ = std::move(sp->pidfd);
    helper_out_ = std::move(out_r);
    helper_buf_.clear();
    std::string sent_for = wan_->str();
    state_ = "up, updating the endpoint (" + sent_for + ")";
    if (on_sent) on_sent("update");
    last_event_time_ = std::chrono::system_clock::now();
    // Output is collected as it comes and once more when the helper has exited.
    auto drain = [this] {
        char buf[1024];
        ssize_t n;
        while ((n = read(helper_out_.get(), buf, sizeof(buf))) > 0)
            if (helper_buf_.size() < 4096) helper_buf_.append(buf, static_cast<size_t>(n));
        return n;
    };
    loop_.watch(helper_out_.get(), EPOLLIN, [this, drain](uint32_t) {
        if (drain() == 0) loop_.unwatch(helper_out_.get());
    });
    loop_.watch(helper_pidfd_.get(), EPOLLIN, [this, sent_for, drain](uint32_t) {
        drain();
        loop_.unwatch(helper_pidfd_.get());
        loop_.unwatch(helper_out_.get());
        std::string desc = reap(helper_pidfd_.get());
        helper_pidfd_.reset();
        helper_out_.reset();
        if (helper_timeout_) loop_.cancel_timer(std::exchange(helper_timeout_, 0));
        update_finished(helper_buf_, desc);
        // The WAN moved while the update ran: tell the broker the newest address.
        if (wan_ && wan_->str() != sent_for && !stopped_badauth_) start_update();
    });
    helper_timeout_ = loop_.add_timer(std::chrono::seconds{30}, [this] {
        helper_timeout_ = 0;
        if (helper_pidfd_) send_signal(helper_pidfd_.get(), SIGKILL);
        helper_buf_ += "ERROR timeout no answer within 30 s\n";
    });
}

void Tunnel::update_finished(const std::string& output, const std::string& exit_desc) {
    int status = 0;
    std::string first = output.substr(0, output.find('\n'));
    std::string body = output.find('\n') == std::string::npos ? "" : output.substr(output.find('\n') + 1);
    while (!body.empty() && (body.back() == '\n' || body.back() == '\r')) body.pop_back();
    for (char& c : body)
        if (c < 0x20 || c > 0x7e) c = '?';
    HeOutcome o = HeOutcome::failed;
    std::string what;
    if (std::sscanf(first.c_str(), "HTTP %d", &status) == 1) {
        o = parse_he_reply(status, body);
        what = "HTTP " + std::to_string(status) + " '" + body.substr(0, 80) + "'";
    } else {
        what = first.empty() ? "update helper " + exit_desc : first.substr(0, 160);
    }
    last_event_time_ = std::chrono::system_clock::now();
    last_event_ = std::string("update ") + to_string(o) + ": " + what;
    switch (o) {
        case HeOutcome::good:
        case HeOutcome::nochg:
            failures_ = 0;
            state_ = "up";
            syslog(LOG_NOTICE, "tunnel: endpoint update %s", last_event_.c_str());
            if (timer_) loop_.cancel_timer(std::exchange(timer_, 0));
            next_retry_ = {};
            return;
        case HeOutcome::badauth:
            stopped_badauth_ = true;
            state_ = "up, UPDATE REFUSED (badauth): check tunnel.username and tunnel.update_key; not retried";
            syslog(LOG_ERR, "tunnel: endpoint update refused: badauth (wrong username or update key); not retrying");
            if (timer_) loop_.cancel_timer(std::exchange(timer_, 0));
            next_retry_ = {};
            return;
        case HeOutcome::abuse:
            state_ = "up, update refused (abuse): waiting 2 h";
            syslog(LOG_ERR, "tunnel: endpoint update refused: abuse; next try in 2 h");
            schedule(std::chrono::duration_cast<std::chrono::seconds>(kAbuseDelay), [this] { start_update(); });
            return;
        case HeOutcome::failed: {
            ++failures_;
            auto d = update_retry_delay(failures_);
            state_ = "up, endpoint update FAILED (" + std::to_string(failures_) + "x), retry in " +
                     std::to_string(d.count()) + " s";
            syslog(LOG_WARNING, "tunnel: endpoint update failed (%s); retry %u in %lld s", what.c_str(), failures_,
                   static_cast<long long>(d.count()));
            schedule(d, [this] { start_update(); });
            return;
        }
    }
}

std::string Tunnel::status_text() const {
    if (!enabled()) return "not configured\n";
    std::string o = std::string(to_string(cfg_.mode)) + " " + kTunnelIf + " " + state_ + "\n";
    o += "          local " +
         (cfg_.mode == TunnelMode::heartbeat && cfg_.sender ? std::string("(sender)")
                                                            : (wan_ ? wan_->str() : std::string("-"))) +
         " remote " + cfg_.remote.str() + " mtu " + std::to_string(cfg_.mtu) + " ipv6 " + cfg_.local_ipv6.str() + "/" +
         std::to_string(cfg_.local_ipv6_len) + "\n";
    o += "          last: " + (last_event_.empty() ? std::string("-") : last_event_ + " at " + clock_text(last_event_time_));
    if (next_retry_.time_since_epoch().count() && timer_) o += "; next at " + clock_text(next_retry_);
    if (cfg_.mode == TunnelMode::heartbeat) o += clock_synced_ ? "; clock synchronised" : "; CLOCK NOT SYNCHRONISED";
    return o + "\n";
}

std::string Tunnel::status_json() const {
    std::string o = "{\"mode\":" + json_escape(to_string(cfg_.mode)) + ",\"state\":" + json_escape(state_) +
                    ",\"up\":" + (up_ ? "true" : "false") + ",\"remote\":" + json_escape(cfg_.remote.str()) +
                    ",\"local\":" + json_escape(wan_ ? wan_->str() : "") + ",\"mtu\":" + std::to_string(cfg_.mtu) +
                    ",\"last\":" + json_escape(last_event_) + ",\"last_at\":" + json_escape(clock_text(last_event_time_)) +
                    ",\"failures\":" + std::to_string(failures_) + ",\"clock_synced\":" + (clock_synced_ ? "true" : "false");
    return o + "}";
}

}  // namespace netd
