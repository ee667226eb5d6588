#include "tic.h"

#include <fcntl.h>
#include <mbedtls/md5.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <iterator>
#include <map>
#include <sstream>

#include <nlohmann/json.hpp>

#include "service_configs.h"
#include "tunnel.h"

namespace netd {

// ---- the pure parts ----------------------------------------------------------------------------

std::optional<TicServer> TicServer::parse(std::string_view text) {
    TicServer s;
    std::string_view host = text;
    if (auto c = text.rfind(':'); c != std::string_view::npos) {
        host = text.substr(0, c);
        std::string_view port = text.substr(c + 1);
        if (port.empty() || port.size() > 5) return std::nullopt;
        unsigned v = 0;
        for (char ch : port) {
            if (ch < '0' || ch > '9') return std::nullopt;
            v = v * 10 + static_cast<unsigned>(ch - '0');
        }
        if (v == 0 || v > 65535) return std::nullopt;
        s.port = static_cast<uint16_t>(v);
    }
    if (host.empty()) return std::nullopt;
    if (auto a = Ipv4Addr::parse(host)) {
        if (!is_unicast_host(*a)) return std::nullopt;
        s.host = a->str();
        return s;
    }
    if (!is_valid_domain_name(host)) return std::nullopt;
    // A name whose last label is all digits is not a host name: getaddrinfo would read "1.2.3"
    // as an IPv4 address.
    std::string_view last = host.substr(host.rfind('.') == std::string_view::npos ? 0 : host.rfind('.') + 1);
    if (last.empty() || std::all_of(last.begin(), last.end(), [](char ch) { return ch >= '0' && ch <= '9'; }))
        return std::nullopt;
    s.host = std::string(host);
    return s;
}

std::string TicServer::str() const { return host + ":" + std::to_string(port); }

std::string TicSettings::cache_key() const {
    auto s = TicServer::parse(server);
    return (s ? s->str() : server) + " " + username + " " + tunnel_id;
}

std::optional<TicSettings> tic_settings(const TunnelConfig& t) {
    if (t.tic_server.empty()) return std::nullopt;
    return TicSettings{t.tic_server, t.tic_username, t.tic_password, t.tunnel_id};
}

std::optional<int> tic_code(std::string_view line) {
    if (line.size() < 3) return std::nullopt;
    for (int i = 0; i < 3; ++i)
        if (line[i] < '0' || line[i] > '9') return std::nullopt;
    if (line.size() > 3 && line[3] != ' ') return std::nullopt;
    return (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
}

std::optional<int64_t> tic_unixtime(std::string_view reply) {
    auto code = tic_code(reply);
    if (!code || *code / 100 != 2 || reply.size() < 5) return std::nullopt;
    std::string_view v = reply.substr(4);
    while (!v.empty() && (v.back() == ' ' || v.back() == '\r')) v.remove_suffix(1);
    if (v.empty() || v.size() > 12) return std::nullopt;
    int64_t t = 0;
    for (char ch : v) {
        if (ch < '0' || ch > '9') return std::nullopt;
        t = t * 10 + (ch - '0');
    }
    return t;
}

std::optional<int64_t> tic_clock_skew(int64_t server_time, int64_t our_time) {
    int64_t d = server_time - our_time;
    if (d >= -kTicMaxSkew && d <= kTicMaxSkew) return std::nullopt;
    return d;
}

std::string tic_skew_text(int64_t skew) {
    int64_t a = skew < 0 ? -skew : skew;
    return "TIC server clock is " + std::to_string(a) + " s off (" + (skew > 0 ? "ahead of" : "behind") +
           " the router's; at most " + std::to_string(kTicMaxSkew) + " s)";
}

std::string md5_hex(std::string_view data) {
    unsigned char md[16];
    mbedtls_md5_ret(reinterpret_cast<const unsigned char*>(data.data()), data.size(), md);
    static const char* hex = "0123456789abcdef";
    std::string out;
    for (unsigned i = 0; i < sizeof(md); ++i) {
        out += hex[md[i] >> 4];
        out += hex[md[i] & 15];
    }
    return out;
}

std::string tic_md5_response(std::string_view challenge, std::string_view password) {
    return md5_hex(std::string(challenge) + md5_hex(password));
}

namespace {

bool printable_token(std::string_view v, size_t max) {
    if (v.empty() || v.size() > max) return false;
    for (char ch : v)
        if (ch <= ' ' || ch >= 0x7f) return false;
    return true;
}

std::optional<unsigned> number(std::string_view v, unsigned min, unsigned max) {
    if (v.empty() || v.size() > 6) return std::nullopt;
    unsigned n = 0;
    for (char ch : v) {
        if (ch < '0' || ch > '9') return std::nullopt;
        n = n * 10 + static_cast<unsigned>(ch - '0');
    }
    if (n < min || n > max) return std::nullopt;
    return n;
}

// What a value may show in a message: printable, short.
std::string shown(std::string_view v) {
    std::string o;
    for (char ch : v.substr(0, 64)) o += (ch < 0x20 || ch > 0x7e) ? '?' : ch;
    if (v.size() > 64) o += "...";
    return o;
}

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return in ? std::string((std::istreambuf_iterator<char>(in)), {}) : std::string();
}

std::string time_text(int64_t t) {
    if (t <= 0) return "-";
    time_t tt = static_cast<time_t>(t);
    struct tm tm;
    gmtime_r(&tt, &tm);
    char buf[32];
    std::strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%SZ", &tm);
    return buf;
}

}  // namespace

Result<TicParams> parse_tunnel_show(const std::vector<std::string>& lines, const std::string& want_id) {
    if (lines.size() > kTicMaxLines)
        return Error{"tunnel show: " + std::to_string(lines.size()) + " lines (at most " + std::to_string(kTicMaxLines) + ")"};
    // The keys netd uses; others (Tunnel Name, POP Id, ...) are ignored.
    static const char* const known[] = {"TunnelId",  "Type",     "IPv6 Endpoint", "IPv6 POP",
                                        "IPv6 PrefixLength", "IPv4 Endpoint", "IPv4 POP", "UserState",
                                        "AdminState", "Password", "Heartbeat_Interval", "Tunnel MTU"};
    std::map<std::string, std::string> kv;
    TicParams p;
    for (const auto& line : lines) {
        if (line.size() > kTicMaxLine) return Error{"tunnel show: a line of " + std::to_string(line.size()) + " bytes"};
        for (unsigned char ch : line)
            if (ch < 0x20 || ch > 0x7e) return Error{"tunnel show: a line holds a control or non-ASCII byte"};
        auto colon = line.find(": ");
        if (colon == std::string::npos) return Error{"tunnel show: not a 'Key: value' line: '" + shown(line) + "'"};
        std::string key = line.substr(0, colon), value = line.substr(colon + 2);
        if (std::find_if(std::begin(known), std::end(known), [&](const char* k) { return key == k; }) == std::end(known))
            continue;
        if (!kv.emplace(key, value).second) return Error{"tunnel show: '" + key + "' given twice"};
        p.lines.push_back(key + ": " + value);
    }
    for (const char* k : known)
        if (!kv.count(k)) return Error{std::string("tunnel show: no '") + k + "'"};
    auto bad = [&](const char* key, const std::string& what) {
        return Error{std::string("tunnel show: ") + key + " '" + shown(kv[key]) + "' is not " + what};
    };
    p.tunnel_id = kv["TunnelId"];
    if (!printable_token(p.tunnel_id, 64)) return bad("TunnelId", "a tunnel id");
    if (p.tunnel_id != want_id) return Error{"tunnel show: the server answered for tunnel '" + shown(p.tunnel_id) +
                                             "', not '" + want_id + "'"};
    p.type = kv["Type"];
    if (p.type != "6in4-heartbeat" && p.type != "6in4" && p.type != "6in4-static")
        return Error{"tunnel show: the tunnel's type is '" + shown(p.type) + "': netd runs 6in4 (heartbeat) tunnels only"};
    for (const char* k : {"UserState", "AdminState"})
        if (kv[k] != "enabled") return Error{std::string("tunnel show: the tunnel is not enabled (") + k + " '" + shown(kv[k]) + "')"};
    auto v6 = Ipv6Addr::parse(kv["IPv6 Endpoint"]);
    if (!v6 || v6->is_link_local() || v6->is_multicast() || *v6 == Ipv6Addr{})
        return bad("IPv6 Endpoint", "a global IPv6 address");
    p.ipv6_endpoint = *v6;
    auto pop6 = Ipv6Addr::parse(kv["IPv6 POP"]);
    if (!pop6 || pop6->is_multicast() || *pop6 == Ipv6Addr{}) return bad("IPv6 POP", "an IPv6 address");
    p.ipv6_pop = *pop6;
    auto len = number(kv["IPv6 PrefixLength"], 1, 128);
    if (!len) return bad("IPv6 PrefixLength", "a prefix length 1..128");
    p.prefix_len = static_cast<uint8_t>(*len);
    p.ipv4_endpoint = kv["IPv4 Endpoint"];
    if (p.ipv4_endpoint != "heartbeat" && !Ipv4Addr::parse(p.ipv4_endpoint))
        return bad("IPv4 Endpoint", "'heartbeat' or an IPv4 address");
    auto pop4 = Ipv4Addr::parse(kv["IPv4 POP"]);
    if (!pop4 || !is_unicast_host(*pop4)) return bad("IPv4 POP", "a unicast IPv4 address");
    p.ipv4_pop = *pop4;
    p.password = kv["Password"];
    if (!printable_token(p.password, 128)) return Error{"tunnel show: Password is not 1..128 printable characters without spaces"};
    auto iv = number(kv["Heartbeat_Interval"], 10, 3600);
    if (!iv) return bad("Heartbeat_Interval", "10..3600 seconds");
    p.interval = *iv;
    auto mtu = number(kv["Tunnel MTU"], 1280, 1480);
    if (!mtu) return bad("Tunnel MTU", "1280..1480");
    p.mtu = *mtu;
    return p;
}

TunnelConfig tic_tunnel(const TunnelConfig& file, const TicParams& p) {
    TunnelConfig t = file;
    t.mode = TunnelMode::heartbeat;
    t.remote = p.ipv4_pop;
    t.local_ipv6 = p.ipv6_endpoint;
    t.local_ipv6_len = p.prefix_len;
    t.remote_ipv6 = p.ipv6_pop;
    t.password = p.password;
    t.interval = p.interval;
    t.mtu = p.mtu;
    return t;
}

TunnelConfig tic_pending_tunnel(const TunnelConfig& file) {
    TunnelConfig t;
    t.tic_server = file.tic_server;
    t.tic_username = file.tic_username;
    t.tic_password = file.tic_password;
    t.tunnel_id = file.tunnel_id;
    t.sender = file.sender;
    return t;   // mode none: no sit device, no route, no handler
}

// ---- the login record --------------------------------------------------------------------------

TicLoginRecord TicLoginRecord::parse(std::string_view text) {
    TicLoginRecord r;
    std::istringstream in{std::string(text)};
    std::string line;
    while (std::getline(in, line) && r.times.size() < 1000) {
        if (line.empty() || line[0] == '#') continue;
        char* end = nullptr;
        long long t = std::strtoll(line.c_str(), &end, 10);
        if (end && *end == '\0' && t > 0) r.times.push_back(t);
    }
    return r;
}

std::string TicLoginRecord::str() const {
    std::string o = "# netd: TIC logins (unix time), at most " + std::to_string(kTicMaxLoginsPerHour) + " in an hour\n";
    for (auto t : times) o += std::to_string(t) + "\n";
    return o;
}

void TicLoginRecord::prune(int64_t now) {
    std::erase_if(times, [now](int64_t t) { return t <= now - 3600 || t > now + 3600; });
    std::sort(times.begin(), times.end());
}

unsigned TicLoginRecord::in_last_hour(int64_t now) const {
    return static_cast<unsigned>(
        std::count_if(times.begin(), times.end(), [now](int64_t t) { return t > now - 3600 && t <= now + 3600; }));
}

int64_t TicLoginRecord::allowed_at(int64_t now) const {
    std::vector<int64_t> in;
    for (auto t : times)
        if (t > now - 3600 && t <= now + 3600) in.push_back(t);
    if (in.size() < kTicMaxLoginsPerHour) return now;
    std::sort(in.begin(), in.end());
    // The oldest of the last kTicMaxLoginsPerHour must be an hour old.
    return in[in.size() - kTicMaxLoginsPerHour] + 3600;
}

Status write_file_durable(const std::string& path, const std::string& content, unsigned mode) {
    // Temporary file, fsync, rename (an unchanged file is left as it is), then the directory.
    if (auto w = write_file_atomic(path, content, mode); !w) return w.error();
    std::string dir = path.find('/') == std::string::npos ? "." : path.substr(0, path.rfind('/'));
    if (dir.empty()) dir = "/";
    UniqueFd d(open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!d || fsync(d.get()) < 0) return Error::from_errno("fsync " + dir);
    return Ok{};
}

// ---- status --------------------------------------------------------------------------------------

const char* to_string(TicState s) {
    switch (s) {
        case TicState::none: return "none";
        case TicState::waiting: return "waiting-for-tic";
        case TicState::fetching: return "fetching";
        case TicState::fetched: return "fetched";
        case TicState::from_cache: return "from-cache";
        case TicState::refused: return "tic-refused";
        case TicState::rate_limited: return "tic-rate-limited";
        case TicState::failed: return "tic-failed";
    }
    return "?";
}

std::string tic_status_text(const TicStatus& s) {
    std::string o = to_string(s.state);
    if (s.state == TicState::rate_limited) o += " until " + time_text(s.retry_at);
    if (!s.detail.empty()) o += " (" + s.detail + ")";
    o += "\n          server " + s.server + " user " + s.username + " tunnel " + s.tunnel_id + "; " +
         std::to_string(s.logins_last_hour) + " login" + (s.logins_last_hour == 1 ? "" : "s") +
         " in the last hour (at most " + std::to_string(kTicMaxLoginsPerHour) + ")";
    if (s.parameters == "cache")
        o += "; cached parameters from " + time_text(s.fetched_at);
    else if (s.parameters == "tic")
        o += "; parameters fetched " + time_text(s.fetched_at);
    else
        o += "; no parameters: no tunnel";
    return o + "\n";
}

nlohmann::json tic_status_json(const TicStatus& s) {
    return {{"state", to_string(s.state)},
            {"detail", s.detail},
            {"server", s.server},
            {"username", s.username},
            {"tunnel_id", s.tunnel_id},
            {"logins_last_hour", s.logins_last_hour},
            {"max_logins_per_hour", kTicMaxLoginsPerHour},
            {"retry_at", s.retry_at ? time_text(s.retry_at) : "-"},
            {"parameters", s.parameters},
            {"fetched_at", time_text(s.fetched_at)}};
}

// ---- netd's side ---------------------------------------------------------------------------------

TicClient::TicClient(Deps d) : d_(std::move(d)) {
    record_ = TicLoginRecord::parse(read_file(record_path()));
}

TicClient::~TicClient() = default;

namespace {

struct CacheEntry {
    TicParams params;
    int64_t fetched_at = 0;
};

std::optional<CacheEntry> load_cache(const std::string& path, const TicSettings& s) {
    std::string text = read_file(path);
    if (text.empty() || text.size() > 65536) return std::nullopt;
    auto j = nlohmann::json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return std::nullopt;
    if (j.value("key", std::string()) != s.cache_key()) return std::nullopt;
    auto lines = j.find("lines");
    if (lines == j.end() || !lines->is_array()) return std::nullopt;
    std::vector<std::string> l;
    for (auto& x : *lines) {
        if (!x.is_string()) return std::nullopt;
        l.push_back(x.get<std::string>());
    }
    // The file is ours, but checked as the server's answer was: a damaged one is not used.
    auto p = parse_tunnel_show(l, s.tunnel_id);
    if (!p) {
        syslog(LOG_WARNING, "tic: %s: cached parameters not usable: %s", path.c_str(), p.error().str().c_str());
        return std::nullopt;
    }
    auto at = j.find("fetched_at");
    return CacheEntry{*p, at != j.end() && at->is_number_integer() ? at->get<int64_t>() : 0};
}

}  // namespace

std::optional<TicParams> TicClient::cached(const TicSettings& s) const {
    if (auto c = load_cache(cache_path(), s)) return c->params;
    return std::nullopt;
}

void TicClient::configure(const std::optional<TicSettings>& s) {
    if (s == settings_) return;   // unchanged (a reload of the same settings): no contact
    inflight_.reset();
    deferred_.reset();
    settings_ = s;
    detail_.clear();
    retry_at_ = 0;
    if (!s) {
        state_ = TicState::none;
        params_.reset();
        parameters_ = "none";
        contact_pending_ = false;
        return;
    }
    // The cached parameters for this server, user and tunnel meanwhile.
    if (auto c = load_cache(cache_path(), *s)) {
        params_ = c->params;
        fetched_at_ = c->fetched_at;
        parameters_ = "cache";
    } else {
        params_.reset();
        fetched_at_ = 0;
        parameters_ = "none";
    }
    contact_pending_ = true;
    state_ = TicState::waiting;
    maybe_contact();
}

void TicClient::wan_changed(bool have_wan) {
    have_wan_ = have_wan;
    maybe_contact();
}

void TicClient::clock_synced(bool synced) {
    clock_ = synced;
    maybe_contact();
}

std::string TicClient::retry_now() {
    if (!settings_) return "TIC is not used";
    if (state_ == TicState::fetching) return "a TIC login is under way";
    if (state_ == TicState::fetched) return "the parameters were fetched from TIC at " + time_text(fetched_at_) + ": not contacted again";
    deferred_.reset();
    contact_pending_ = true;
    maybe_contact();
    return std::string(to_string(state_)) + (detail_.empty() ? "" : " (" + detail_ + ")");
}

void TicClient::use_cache_or(TicState no_cache_state, const std::string& why) {
    detail_ = why;
    state_ = parameters_ == "cache" ? TicState::from_cache : no_cache_state;
    if (state_ == TicState::from_cache) detail_ += "; using the cached parameters";
}

void TicClient::maybe_contact() {
    if (!settings_ || !contact_pending_ || inflight_) return;
    if (!have_wan_ || !clock_) {
        state_ = TicState::waiting;
        detail_ = !have_wan_ ? "waiting for a WAN address" : "waiting for ntpd to synchronise the clock";
        if (parameters_ == "cache") detail_ += "; using the cached parameters meanwhile";
        return;
    }
    int64_t now = d_.unix_time();
    record_.prune(now);
    if (record_.in_last_hour(now) >= kTicMaxLoginsPerHour) {
        retry_at_ = record_.allowed_at(now);
        std::string why = std::to_string(record_.in_last_hour(now)) + " TIC logins in the last hour (at most " +
                          std::to_string(kTicMaxLoginsPerHour) + "): not contacting " + settings_->server +
                          " before " + time_text(retry_at_);
        syslog(LOG_WARNING, "tic: %s", why.c_str());
        use_cache_or(TicState::rate_limited, why);
        if (state_ == TicState::from_cache) {
            contact_pending_ = false;   // the cached parameters do
        } else {
            // Without parameters the contact owed waits for its turn.
            auto delay = std::chrono::seconds(std::max<int64_t>(retry_at_ - now, 0) + 1);
            deferred_ = d_.sched.after(std::chrono::duration_cast<std::chrono::milliseconds>(delay), [this] {
                deferred_.reset();
                maybe_contact();
            });
        }
        return;
    }
    retry_at_ = 0;
    // Recorded before the login, durably: a netd that dies during it has still used it.
    record_.times.push_back(now);
    if (auto w = write_file_durable(record_path(), record_.str(), 0600); !w)
        syslog(LOG_WARNING, "tic: cannot keep the login record: %s", w.error().str().c_str());
    contact_pending_ = false;
    state_ = TicState::fetching;
    detail_ = "logging in to " + settings_->server + " as " + settings_->username + " (login " +
              std::to_string(record_.in_last_hour(now)) + " of at most " + std::to_string(kTicMaxLoginsPerHour) +
              " in an hour)";
    if (parameters_ == "cache") detail_ += "; using the cached parameters meanwhile";
    syslog(LOG_NOTICE, "tic: %s", detail_.c_str());
    started_ = std::chrono::steady_clock::now();
    auto reg = d_.runner.start_tic(*settings_, [this](const std::string& out) { finished(out); });
    // Empty when the helper could not start: finished() has already run.
    if (state_ == TicState::fetching) inflight_ = std::move(reg);
}

void TicClient::finished(const std::string& raw) {
    inflight_.reset();
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started_).count();
    std::vector<std::string> lines;
    {
        std::istringstream in(raw);
        std::string l;
        while (std::getline(in, l) && lines.size() <= kTicMaxLines + 1) lines.push_back(l);
    }
    std::string first = lines.empty() ? "" : lines.front();
    for (char& c : first)
        if (c < 0x20 || c > 0x7e) c = '?';
    if (first == "OK") {
        lines.erase(lines.begin());
        auto p = parse_tunnel_show(lines, settings_->tunnel_id);
        if (p) {
            int64_t now = d_.unix_time();
            nlohmann::json j = {{"key", settings_->cache_key()}, {"fetched_at", now}, {"lines", p->lines}};
            if (auto w = write_file_durable(cache_path(), j.dump(1) + "\n", 0600); !w)
                syslog(LOG_WARNING, "tic: cannot cache the parameters: %s", w.error().str().c_str());
            state_ = TicState::fetched;
            detail_ = "fetched from " + settings_->server + " in " + std::to_string(ms) + " ms";
            syslog(LOG_NOTICE, "tic: tunnel %s: parameters fetched from %s in %lld ms: PoP %s, %s/%u, mtu %u, interval %u s",
                   settings_->tunnel_id.c_str(), settings_->server.c_str(), static_cast<long long>(ms),
                   p->ipv4_pop.str().c_str(), p->ipv6_endpoint.str().c_str(), p->prefix_len, p->mtu, p->interval);
            set_params(*p, now);
            return;
        }
        first = "ERROR invalid " + p.error().str();
        for (char& c : first)
            if (c < 0x20 || c > 0x7e) c = '?';
    }
    if (first.empty()) first = "ERROR failed the TIC helper ended without an answer";
    std::string kind, msg = first.substr(0, 300);
    if (first.rfind("ERROR ", 0) == 0) {
        auto sp = first.find(' ', 6);
        kind = first.substr(6, sp == std::string::npos ? std::string::npos : sp - 6);
        msg = sp == std::string::npos ? kind : first.substr(sp + 1, 300);
    }
    // The server answered and said no (or said something wrong): "refused"; no answer: "failed".
    bool refused = kind == "clock" || kind == "auth" || kind == "tunnel" || kind == "invalid";
    std::string why = (kind == "clock" ? "clock skew: " : "") + msg;
    syslog(LOG_ERR, "tic: tunnel %s at %s: %s%s", settings_->tunnel_id.c_str(), settings_->server.c_str(),
           why.c_str(), parameters_ == "cache" ? "; using the cached parameters" : "; no tunnel");
    use_cache_or(refused ? TicState::refused : TicState::failed, why);
}

void TicClient::set_params(std::optional<TicParams> p, int64_t fetched_at) {
    bool same = p == params_;
    params_ = std::move(p);
    fetched_at_ = fetched_at;
    parameters_ = params_ ? "tic" : "none";
    // Told from the loop, never from inside a call of the daemon's.
    if (!same && d_.changed) notify_ = d_.sched.after(std::chrono::milliseconds(0), [this] {
        notify_.reset();
        d_.changed();
    });
}

TicStatus TicClient::status() const {
    TicStatus s;
    s.state = state_;
    s.detail = detail_;
    if (settings_) {
        auto srv = TicServer::parse(settings_->server);
        s.server = srv ? srv->str() : settings_->server;
        s.username = settings_->username;
        s.tunnel_id = settings_->tunnel_id;
    }
    int64_t now = d_.unix_time();
    s.logins_last_hour = record_.in_last_hour(now);
    s.retry_at = retry_at_;
    s.fetched_at = fetched_at_;
    s.parameters = parameters_;
    return s;
}

}  // namespace netd
