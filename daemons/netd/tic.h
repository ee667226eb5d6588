// SixXS TIC (Tunnel Information and Control) for the heartbeat tunnel: netd fetches the
// tunnel's parameters (PoP, addresses, heartbeat password, interval, MTU) from the broker
// instead of reading them from [tunnel].
//
//   - the pure parts: the reply parsing, the MD5 challenge response, the clock-skew check and
//     the validation of everything the server says (hostile input);
//   - the helper process `netd --tic-fetch` (tic_fetch_main): the TCP exchange, so a slow DNS
//     or server never blocks netd's loop;
//   - TicClient: when netd may contact TIC (once per netd start or per reload that changes
//     the tic settings, never more than kTicMaxLoginsPerHour in any hour, a record of the
//     logins kept on the data disk), and the cached parameters used when it may not, or when
//     TIC fails.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "config.h"
#include "event_loop.h"
#include "net_types.h"
#include "unique_fd.h"

namespace netd {

class UpdateRunner;

inline constexpr uint16_t kTicPort = 3874;
inline constexpr int64_t kTicMaxSkew = 120;            // seconds between the server's clock and ours
inline constexpr unsigned kTicMaxLoginsPerHour = 5;    // SixXS disabled accounts above that
inline constexpr size_t kTicMaxLine = 512;             // bytes in one line from the server
inline constexpr size_t kTicMaxLines = 64;             // lines in the "tunnel show" list

// Where TIC is, as in tunnel.tic_server: "host" or "host:port"; host an IPv4 address or a host
// name. None when malformed.
struct TicServer {
    std::string host;
    uint16_t port = kTicPort;
    static std::optional<TicServer> parse(std::string_view text);
    std::string str() const;   // "host:port"
};

// What [tunnel] says about TIC.
struct TicSettings {
    std::string server, username, password, tunnel_id;
    // The cache is for this server, user and tunnel (the password is not part of it).
    std::string cache_key() const;
    bool operator==(const TicSettings&) const = default;
};
// The settings a tunnel config names; none when it does not use TIC.
std::optional<TicSettings> tic_settings(const TunnelConfig& t);

// The tunnel's parameters, as "tunnel show" gave them, validated.
struct TicParams {
    std::string tunnel_id;
    std::string type;              // 6in4-heartbeat (or 6in4 / 6in4-static)
    Ipv6Addr ipv6_endpoint;        // ours, on the sit device
    Ipv6Addr ipv6_pop;
    uint8_t prefix_len = 64;
    std::string ipv4_endpoint;     // "heartbeat" or an IPv4 address: we use the WAN address anyway
    Ipv4Addr ipv4_pop;
    std::string password;          // the heartbeat password
    unsigned interval = 60;
    unsigned mtu = 1280;
    std::vector<std::string> lines;   // the validated "Key: value" lines (the cache keeps these)
    bool operator==(const TicParams&) const = default;
};

// The reply code of a TIC line ("200 ..." -> 200); none when the line does not start with three
// digits and a space (or end there). Success is 2xx.
std::optional<int> tic_code(std::string_view line);
// "200 1700000000" -> 1700000000.
std::optional<int64_t> tic_unixtime(std::string_view reply);
// The server's clock minus ours; nullopt when within kTicMaxSkew.
std::optional<int64_t> tic_clock_skew(int64_t server_time, int64_t our_time);
// "TIC server clock is 300 s off (ahead of the router's)".
std::string tic_skew_text(int64_t skew);
// md5hex(challenge + md5hex(password)): the "authenticate md5" response.
std::string tic_md5_response(std::string_view challenge, std::string_view password);
std::string md5_hex(std::string_view data);
// The "Key: value" lines between "201" and "202" of "tunnel show": every value checked (IPv6
// and IPv4 syntax, prefix length 1..128, MTU 1280..1480, interval 10..3600, a printable
// password without spaces, the tunnel id the one asked for, both states "enabled", a 6in4
// type). The error says which value is wrong.
Result<TicParams> parse_tunnel_show(const std::vector<std::string>& lines, const std::string& want_id);
// The heartbeat TunnelConfig the parameters make: the file's [tunnel] (mode, tic settings,
// sender) with remote, local_ipv6/len, remote_ipv6, password, interval and mtu from TIC.
TunnelConfig tic_tunnel(const TunnelConfig& file, const TicParams& p);
// The same file's [tunnel] while the parameters are not known: no tunnel (mode none), the
// tic settings kept (so a reload can compare them).
TunnelConfig tic_pending_tunnel(const TunnelConfig& file);

// The login record: the unix times of the logins started; those within the last hour count.
// A time more than an hour ahead of `now` (the clock went back a long way) is forgotten.
struct TicLoginRecord {
    std::vector<int64_t> times;
    static TicLoginRecord parse(std::string_view text);
    std::string str() const;
    void prune(int64_t now);            // drops what no longer counts
    unsigned in_last_hour(int64_t now) const;
    // When a login is allowed again (now when it is).
    int64_t allowed_at(int64_t now) const;
};

// A durable write: temp file (mode), fsync, rename, fsync of the directory.
Status write_file_durable(const std::string& path, const std::string& content, unsigned mode = 0600);

// The helper: reads server, username, password, tunnel id (one per line) on stdin, drops root,
// runs the exchange, prints "OK\n" and the validated "Key: value" lines, or
// "ERROR <dns|connect|timeout|protocol|clock|auth|tunnel|invalid|input|internal> <message>\n".
int tic_fetch_main();

enum class TicState {
    none,            // no TIC in [tunnel]
    waiting,         // not contacted yet: waiting for a WAN address and a synchronised clock
    fetching,        // the helper runs
    fetched,         // the parameters came from TIC now
    from_cache,      // TIC may not be contacted, or failed: the cached parameters are used
    refused,         // no parameters: the server's clock is off, or it refused (auth, tunnel)
    rate_limited,    // no parameters: kTicMaxLoginsPerHour logins in the last hour
    failed,          // no parameters: no answer (DNS, connect, timeout, a broken reply)
};
const char* to_string(TicState s);   // "waiting-for-tic", "fetching", "from-cache", ...

struct TicStatus {
    TicState state = TicState::none;
    std::string detail;                          // why, in words
    std::string server, username, tunnel_id;
    unsigned logins_last_hour = 0;
    int64_t retry_at = 0;                        // rate-limited: when a login is allowed again
    int64_t fetched_at = 0;                      // when the parameters in use were fetched
    std::string parameters;                      // "tic", "cache" or "none"
};
std::string tic_status_text(const TicStatus& s);
nlohmann::json tic_status_json(const TicStatus& s);

// netd's side: owns the settings, the record and the cache files in state_dir, and one helper
// run at a time. `changed` runs when the parameters to use changed (a tunnel appears, goes or
// is different).
class TicClient {
public:
    struct Deps {
        Scheduler& sched;
        UpdateRunner& runner;
        std::string state_dir;                       // /data/state
        std::function<int64_t()> unix_time;
        std::function<void()> changed;
    };
    explicit TicClient(Deps d);
    ~TicClient();

    // The settings from the file (none: TIC not used). Contacts TIC (once the WAN and the clock
    // allow) when they differ from the previous ones: the first call of a netd is its start.
    // The cached parameters for the same server, user and tunnel are used meanwhile.
    void configure(const std::optional<TicSettings>& s);
    void wan_changed(bool have_wan);
    void clock_synced(bool synced);
    // netctl tunnel-update: contact TIC again if the last contact brought no parameters (still
    // within the hourly limit). Returns what it did, in words.
    std::string retry_now();

    bool active() const { return settings_.has_value(); }
    const std::optional<TicSettings>& settings() const { return settings_; }
    const std::optional<TicParams>& params() const { return params_; }
    // Only the cache, no contact: the parameters a previous netd most likely ran with.
    std::optional<TicParams> cached(const TicSettings& s) const;
    TicStatus status() const;

    std::string record_path() const { return d_.state_dir + "/tic-logins"; }
    std::string cache_path() const { return d_.state_dir + "/tic-cache.json"; }

private:
    void maybe_contact();
    void finished(const std::string& output);
    void use_cache_or(TicState no_cache_state, const std::string& why);
    void set_params(std::optional<TicParams> p, int64_t fetched_at);

    Deps d_;
    std::optional<TicSettings> settings_;
    std::optional<TicParams> params_;
    bool contact_pending_ = false;    // a contact is owed (start, changed settings, retry)
    bool have_wan_ = false, clock_ = false;
    TicState state_ = TicState::none;
    std::string detail_;
    int64_t retry_at_ = 0, fetched_at_ = 0;
    std::string parameters_ = "none";
    std::chrono::steady_clock::time_point started_{};
    Registration inflight_, deferred_, notify_;
    TicLoginRecord record_;
};

}  // namespace netd
