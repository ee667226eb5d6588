// The 6in4 tunnel (sit device "sit6in4"): follows the WAN address, and tells the broker.
//   he         static remote; on every new WAN address: retarget the local end, then the HE
//              endpoint update over HTTPS (done by a helper process, `netd --he-update`, so a
//              slow DNS or TLS exchange never blocks netd's loop);
//   heartbeat  SixXS/AICCU style: the signed UDP heartbeat to port 3740 every interval and at
//              once after a WAN change, only once ntpd says the clock is synchronised;
//   static     fixed endpoints, nothing to tell.
// The protocol facts are in ../shared/PROTOCOLS.md.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "config.h"
#include "event_loop.h"
#include "netlink.h"
#include "unique_fd.h"

namespace netd {

inline constexpr uint16_t kHeartbeatPort = 3740;

// The heartbeat datagram: "HEARTBEAT TUNNEL <v6> <v4|sender> <time> <md5hex>", where the
// digest is MD5 over the same line with the password in its place (no trailing newline).
std::string heartbeat_packet(const std::string& local_v6, const std::string& local_v4_or_sender, int64_t unix_time,
                             const std::string& password);

enum class HeOutcome { good, nochg, badauth, abuse, failed };
const char* to_string(HeOutcome o);
// Classifies the update server's answer (HTTP status and body).
HeOutcome parse_he_reply(int http_status, std::string_view body);

// Retry schedule after failed updates: 15 s doubling to 30 min; `abuse` waits 2 h.
std::chrono::seconds update_retry_delay(unsigned consecutive_failures);
inline constexpr std::chrono::seconds kAbuseDelay{7200};

// The helper: reads url, username, key, tunnel id, myip, CA file (one per line) on stdin, does
// the HTTPS GET with a verified certificate, prints "HTTP <status>\n<first body line>\n" or
// "ERROR <dns|connect|tls|http> <message>\n". Exits 0 when it got an HTTP answer.
int he_update_main();

class Tunnel {
public:
    Tunnel(EventLoop& loop, Netlink& nl, std::string helper_exe);
    ~Tunnel();

    // On every config load; returns whether the tunnel's inputs changed.
    bool configure(const TunnelConfig& tc);
    // On every WAN address change (nullopt: no address).
    void wan_changed(std::optional<Ipv4Addr> wan);
    // ntpd's view of the clock (from its -S hook): heartbeats wait for it.
    void clock_synced(bool synced);

    bool enabled() const { return cfg_.mode != TunnelMode::none; }
    bool up() const { return up_; }
    unsigned mtu() const { return cfg_.mtu; }
    const TunnelConfig& config() const { return cfg_; }
    std::string status_text() const;
    std::string status_json() const;
    void retry_now();  // netctl tunnel-update

    // For tests and figures: when the last update or heartbeat left (steady clock).
    std::function<void(const std::string& what)> on_sent;

private:
    void apply();
    void schedule(std::chrono::seconds after, std::function<void()> fn);
    void send_heartbeat();
    void start_update();
    void update_finished(const std::string& output, const std::string& exit_desc);

    EventLoop& loop_;
    Netlink& nl_;
    std::string helper_exe_;
    TunnelConfig cfg_;
    std::optional<Ipv4Addr> wan_;
    std::optional<Ipv4Addr> applied_local_;
    bool up_ = false;
    bool clock_synced_ = false;
    std::string state_ = "not configured";
    std::string last_event_;        // last update/heartbeat: what and result
    std::chrono::system_clock::time_point last_event_time_{};
    std::chrono::system_clock::time_point next_retry_{};
    unsigned failures_ = 0;
    bool stopped_badauth_ = false;
    EventLoop::TimerId timer_ = 0;
    UniqueFd udp_;
    // the running helper
    UniqueFd helper_pidfd_, helper_out_;
    std::string helper_buf_;
    EventLoop::TimerId helper_timeout_ = 0;
};

}  // namespace netd
