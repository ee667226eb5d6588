// The 6in4 tunnel's conversation with the broker, one handler per mode behind one small
// interface. The kernel side (the sit device "sit6in4", its address, the IPv6 default route)
// is part of the desired state (desired_state.h) and follows the WAN address there; the
// handler is told when that address changed and tells the broker:
//   he         the Hurricane Electric endpoint update over HTTPS (a helper process, `netd
//              --he-update`, so slow DNS or TLS never blocks netd's loop); behind a NAT (a
//              private or shared WAN address) without `myip`, so the broker takes the
//              request's source address, and the address it reports is shown;
//   heartbeat  SixXS/AICCU style: the signed UDP heartbeat to port 3740 every interval, and at
//              once when the WAN address comes or changes, only once ntpd says the clock is
//              synchronised;
//   static     fixed endpoints, nothing to tell.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

#include "config.h"
#include "event_loop.h"

namespace netd {

struct TicSettings;   // tic.h

inline constexpr uint16_t kHeartbeatPort = 3740;

// The heartbeat datagram: "HEARTBEAT TUNNEL <v6> <v4|sender> <time> <md5hex>", where the
// digest is MD5 over the same line with the password in its place (no trailing newline).
std::string heartbeat_packet(const std::string& local_v6, const std::string& local_v4_or_sender, int64_t unix_time,
                             const std::string& password);

enum class HeOutcome { good, nochg, badauth, abuse, failed };
const char* to_string(HeOutcome o);
// Classifies the update server's answer (HTTP status and body).
HeOutcome parse_he_reply(int http_status, std::string_view body);

// A flapping WAN must not look like abuse to the broker. The first update (or out-of-schedule
// heartbeat) after a quiet spell goes at once; each further one waits until a gap after the
// previous one: 5 s, doubling up to 60 s; 5 minutes without one starts over.
std::chrono::seconds burst_gap(unsigned previous_in_burst);
inline constexpr std::chrono::seconds kBurstQuiet{300};

// Retry schedule after failed updates: 15 s doubling to 30 min; `abuse` waits 2 h.
std::chrono::seconds update_retry_delay(unsigned consecutive_failures);
inline constexpr std::chrono::seconds kAbuseDelay{7200};
inline constexpr std::chrono::seconds kUpdateTimeout{30};

// The helper: reads url, username, key, tunnel id, myip (may be empty: left out of the
// request), CA file (one per line) on stdin, does the HTTPS GET with a verified certificate,
// prints "HTTP <status>\n<first body line>\n" or "ERROR <dns|connect|tls|http> <message>\n".
int he_update_main();
// The helpers (he-update, tic-fetch) need no privilege once they have their input: they become
// nobody without capabilities and with no_new_privs. Returns why not, empty on success.
std::string drop_privileges();

enum class TunnelState {
    not_configured,
    waiting_wan,      // no WAN address: the broker cannot be told anything
    waiting_clock,    // heartbeat: ntpd has not synchronised the clock
    updating,         // he: an update is in flight
    up,               // the broker holds the router's current address (he), or beats go out
    refused,          // he: badauth; not retried until a reload or tunnel-update
    retrying,         // a failure; the next try is scheduled
    held_back,        // he: the WAN address changes often; the next update waits its turn
};
// Stable words for status and scripts: "up", "retrying", "refused", ...
const char* to_string(TunnelState s);

struct TunnelStatus {
    TunnelMode mode = TunnelMode::none;
    TunnelState state = TunnelState::not_configured;
    std::string detail;                       // why, in words
    std::string last;                         // last update or heartbeat and its result
    std::chrono::system_clock::time_point last_at{}, next_at{};
    unsigned failures = 0;
    uint64_t updates_sent = 0;                // updates started (he) or heartbeats sent, since start
    std::string broker_address;               // he: the address the broker reported (good/nochg)
};

// One HE update: the helper run for one request. Released (the helper killed) with the handle.
struct HeRequest {
    std::string url, username, key, tunnel_id, ca_file;
    std::optional<Ipv4Addr> myip;   // none: the broker takes the request's source address
};
class UpdateRunner {
public:
    virtual ~UpdateRunner() = default;
    // `done` gets the helper's output (see he_update_main) once it ends or times out.
    [[nodiscard]] virtual Registration start(const HeRequest& r, std::function<void(const std::string& output)> done) = 0;
    // One TIC fetch (`exe --tic-fetch`, see tic.h), with the same deadline. Without a helper
    // (a test's runner) it says so at once.
    [[nodiscard]] virtual Registration start_tic(const TicSettings& s, std::function<void(const std::string& output)> done);
};
// The real one: `exe --he-update` (and `exe --tic-fetch`), with a kUpdateTimeout deadline.
std::unique_ptr<UpdateRunner> make_helper_update_runner(EventLoop& loop, std::string exe);

// Sends one UDP datagram; returns an error text, empty on success.
class DatagramSender {
public:
    virtual ~DatagramSender() = default;
    virtual std::string send(const std::string& payload, Ipv4Addr to, uint16_t port) = 0;
};
std::unique_ptr<DatagramSender> make_udp_sender();

// What a handler reports for the daemon's counters (metrics.h): each heartbeat sent or not
// sent (the datagram could not go out), each HE update started (its helper runs) and each that
// failed: badauth, abuse, or an error (DNS, connection, TLS, HTTP, another answer, a helper that
// could not start or ran out of time).
enum class TunnelEvent { heartbeat_sent, heartbeat_failed, update_sent, update_badauth, update_abuse, update_error };

struct TunnelDeps {
    Scheduler& sched;
    UpdateRunner& updates;
    DatagramSender& datagrams;
    std::function<int64_t()> unix_time;                        // heartbeat timestamps
    std::function<void(const std::string& what)> on_sent;      // figures: update/heartbeat left
    std::function<void(TunnelEvent)> on_event = {};            // counters
};

class TunnelHandler {
public:
    virtual ~TunnelHandler() = default;
    // The WAN address changed (none: lost). The kernel side already follows it.
    virtual void wan_changed(std::optional<Ipv4Addr> wan) = 0;
    // ntpd's view of the clock (its -S hook).
    virtual void clock_synced(bool) {}
    // The same [tunnel] was loaded again: resume what an error stopped (badauth).
    virtual void reload() = 0;
    // netctl tunnel-update: tell the broker again now, forgetting earlier failures.
    virtual void retry_now() = 0;
    virtual TunnelStatus status() const = 0;
};

std::unique_ptr<TunnelHandler> make_tunnel_handler(const TunnelConfig& c, TunnelDeps deps);

// The sit device's packet counters, when it exists.
struct TunnelTraffic {
    uint64_t packets_out = 0, packets_in = 0;
};
// What is missing when packets go into the tunnel and none ever came back (at least
// kNoReturnAfter out, none in): the broker does not send to us, or something on the way (a
// NAT router that does not forward IP protocol 41) drops it. Empty when nothing is amiss.
inline constexpr uint64_t kNoReturnAfter = 5;
std::string tunnel_return_warning(const TunnelConfig& c, std::optional<Ipv4Addr> wan,
                                  const std::optional<TunnelTraffic>& t);

std::string tunnel_status_text(const TunnelStatus& s, const TunnelConfig& c, std::optional<Ipv4Addr> wan,
                               const std::optional<TunnelTraffic>& traffic = std::nullopt);
nlohmann::json tunnel_status_json(const TunnelStatus& s, const TunnelConfig& c, std::optional<Ipv4Addr> wan,
                                  const std::optional<TunnelTraffic>& traffic = std::nullopt);

}  // namespace netd
