#include "native6.h"

#include <algorithm>
#include <charconv>
#include <map>
#include <sstream>

#include <nlohmann/json.hpp>

#include "dhcp_lease.h"

namespace netd {
namespace {

std::optional<uint64_t> number(std::string_view s, size_t max_digits = 10) {
    if (s.empty() || s.size() > max_digits) return std::nullopt;
    uint64_t v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc{} || p != s.data() + s.size()) return std::nullopt;
    return v;
}

std::string printable(const std::string& s, size_t max = 120) {
    std::string o;
    for (unsigned char c : s.substr(0, max)) o += (c >= 0x20 && c < 0x7f) ? static_cast<char>(c) : '?';
    return o;
}

// "new_dhcp6_ia_pd<I>_prefix<J>[_length|_pltime|_vltime]" -> (I, J, field); field "" for the
// prefix itself.
struct PdKey {
    unsigned ia = 0, n = 0;
    std::string field;
};
std::optional<PdKey> pd_key(std::string_view k) {
    constexpr std::string_view head = "new_dhcp6_ia_pd";
    if (k.substr(0, head.size()) != head) return std::nullopt;
    k.remove_prefix(head.size());
    auto us = k.find("_prefix");
    if (us == std::string_view::npos) return std::nullopt;
    auto ia = number(k.substr(0, us), 3);
    k.remove_prefix(us + 7);
    auto end = k.find('_');
    auto n = number(k.substr(0, end), 3);
    if (!ia || !n) return std::nullopt;
    PdKey key{static_cast<unsigned>(*ia), static_cast<unsigned>(*n), ""};
    if (end != std::string_view::npos) key.field = std::string(k.substr(end + 1));
    if (!key.field.empty() && key.field != "length" && key.field != "pltime" && key.field != "vltime")
        return std::nullopt;
    return key;
}

bool is_global_unicast(const Ipv6Addr& a) { return (a.bytes[0] & 0xe0) == 0x20; }

bool overlaps(const Ipv6Prefix& a, const Ipv6Prefix& b) {
    return a.len <= b.len ? a.contains(b.addr) : b.contains(a.addr);
}

Dhcp6Kind kind_of(const std::string& reason) {
    for (const char* r : {"BOUND6", "RENEW6", "REBIND6", "REBOOT6"})
        if (reason == r) return Dhcp6Kind::lease;
    for (const char* r : {"EXPIRE6", "RELEASE6", "STOP6", "STOPPED", "NOCARRIER", "DEPARTED"})
        if (reason == r) return Dhcp6Kind::lost;
    return Dhcp6Kind::other;
}

std::string seconds_text(Native6::Clock::duration d) {
    return std::to_string(std::chrono::duration_cast<std::chrono::seconds>(d).count()) + " s";
}

}  // namespace

const char* to_string(Uplink6Use u) {
    switch (u) {
        case Uplink6Use::none: return "none";
        case Uplink6Use::tunnel: return "tunnel";
        case Uplink6Use::native: return "native";
    }
    return "?";
}

Result<Dhcp6Event> parse_dhcp6_event(const std::vector<std::string>& args) {
    if (args.empty()) return Error{"no reason"};
    Dhcp6Event ev;
    ev.reason = args[0];
    if (ev.reason.empty() || ev.reason.size() > 16 ||
        !std::all_of(ev.reason.begin(), ev.reason.end(), [](char c) { return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); }))
        return Error{"reason '" + printable(ev.reason, 20) + "' is not one of dhcpcd's"};
    ev.kind = kind_of(ev.reason);

    struct Raw {
        std::string prefix, length, pltime, vltime;
    };
    std::map<std::pair<unsigned, unsigned>, Raw> raw;
    std::string dns;
    bool have_interface = false;
    for (size_t i = 1; i < args.size(); ++i) {
        const std::string& a = args[i];
        auto eq = a.find('=');
        if (eq == std::string::npos) return Error{"argument '" + printable(a, 40) + "' is not KEY=VALUE"};
        std::string key = a.substr(0, eq), value = a.substr(eq + 1);
        if (value.size() > kMaxDhcpValue)
            return Error{printable(key, 40) + ": " + std::to_string(value.size()) + " bytes, at most " +
                         std::to_string(kMaxDhcpValue)};
        if (key == "interface") {
            if (value.empty() || value.size() > 15 ||
                !std::all_of(value.begin(), value.end(), [](unsigned char c) { return std::isalnum(c) || c == '.' || c == '-' || c == '_'; }))
                return Error{"interface: '" + printable(value, 20) + "' is not an interface name"};
            ev.interface = value;
            have_interface = true;
        } else if (key == "new_dhcp6_name_servers") {
            dns = value;
        } else if (auto k = pd_key(key)) {
            if (k->ia == 0 || k->n == 0) return Error{key + ": numbered from 1"};
            auto& r = raw[{k->ia, k->n}];
            if (raw.size() > kMaxDelegated)
                return Error{"more than " + std::to_string(kMaxDelegated) + " delegated prefixes"};
            (k->field.empty() ? r.prefix : k->field == "length" ? r.length : k->field == "pltime" ? r.pltime : r.vltime) = value;
        }
    }
    if (!have_interface) return Error{"no interface"};

    std::istringstream words(dns);
    for (std::string w; words >> w;) {
        auto a = Ipv6Addr::parse(w);
        if (!a || a->is_multicast() || *a == Ipv6Addr{} || *a == *Ipv6Addr::parse("::1"))
            return Error{"new_dhcp6_name_servers: '" + printable(w, 50) + "' is not a unicast IPv6 address"};
        if (ev.dns.size() == kMaxDhcpList)
            return Error{"new_dhcp6_name_servers: more than " + std::to_string(kMaxDhcpList) + " servers"};
        ev.dns.push_back(*a);
    }

    if (ev.kind != Dhcp6Kind::lease) return ev;   // only a lease's prefixes mean anything
    for (auto& [id, r] : raw) {
        std::string name = "prefix " + std::to_string(id.first) + "." + std::to_string(id.second);
        if (r.prefix.empty() || r.length.empty() || r.pltime.empty() || r.vltime.empty())
            return Error{name + ": prefix, length, pltime and vltime are all needed"};
        auto len = number(r.length, 3);
        if (!len || *len > 128) return Error{name + ": length '" + printable(r.length, 20) + "' is not 0..128"};
        auto p = Ipv6Prefix::parse(r.prefix + "/" + std::to_string(*len));
        if (!p) return Error{name + ": '" + printable(r.prefix, 50) + "/" + std::to_string(*len) + "' is not an IPv6 prefix without host bits"};
        if (p->len > 64 || p->len < kMinDelegatedLen)
            return Error{name + ": " + p->str() + ": a delegated prefix must be /" + std::to_string(kMinDelegatedLen) +
                         " to /64 (a LAN needs a /64)"};
        if (!is_global_unicast(p->addr)) return Error{name + ": " + p->str() + " is not global unicast (2000::/3)"};
        auto pl = number(r.pltime), vl = number(r.vltime);
        if (!pl || *pl > 0xffffffffu) return Error{name + ": pltime '" + printable(r.pltime, 20) + "' is not 0..4294967295"};
        if (!vl || *vl > 0xffffffffu) return Error{name + ": vltime '" + printable(r.vltime, 20) + "' is not 0..4294967295"};
        if (*pl > *vl) return Error{name + ": " + p->str() + ": preferred lifetime " + std::to_string(*pl) +
                                    " above the valid lifetime " + std::to_string(*vl)};
        for (auto& other : ev.prefixes)
            if (overlaps(other.prefix, *p)) return Error{name + ": " + p->str() + " overlaps " + other.prefix.str()};
        // A valid lifetime of 0: the server takes the prefix back (RFC 8415 18.2.10.1).
        if (*vl == 0) continue;
        ev.prefixes.push_back({*p, static_cast<uint32_t>(*pl), static_cast<uint32_t>(*vl)});
    }
    return ev;
}

Ipv6Facts static_ipv6_facts(const Config& c) {
    Ipv6Facts f;
    bool tunnel = c.tunnel.mode != TunnelMode::none;
    f.in_use = tunnel ? Uplink6Use::tunnel : Uplink6Use::none;
    f.why = tunnel ? "the [tunnel]" : "no [tunnel] and no [ipv6]";
    for (auto& l : c.lans)
        for (auto& p : c.tunnel_prefixes(l)) {
            f.lan_prefixes.push_back(p);
            f.segment[p] = l.name;
        }
    return f;
}

void Native6::configure(const Config& c, const std::string& wan_if, Clock::time_point now) {
    if (c.ipv6.uplink == uplink_ && wan_if == wan_if_) return;
    if (!wan_if_.empty() && wan_if != wan_if_) delegation_.reset();   // it belonged to the other link
    uplink_ = c.ipv6.uplink;
    wan_if_ = wan_if;
    wait_until_ = now + std::chrono::seconds(c.ipv6.native_wait);
    lost_ = false;
}

std::optional<Native6::Delegation> Native6::next(const Dhcp6Event& ev, Clock::time_point now) const {
    switch (ev.kind) {
        case Dhcp6Kind::lease:
            // A lease without a prefix: the server has none for us (NoPrefixAvail).
            if (ev.prefixes.empty()) return std::nullopt;
            return Delegation{ev.prefixes, ev.dns, now, ev.reason};
        case Dhcp6Kind::lost: return std::nullopt;
        case Dhcp6Kind::other: break;
    }
    return delegation_;
}

void Native6::restore(Delegation d) {
    last_event_ = d.reason + " (restored after a netd restart)";
    delegation_ = std::move(d);
}

void Native6::commit(std::optional<Delegation> d, const std::string& reason, Clock::time_point now) {
    (void)now;
    if (!d && delegation_) lost_ = true;
    if (d) lost_ = false;
    delegation_ = std::move(d);
    last_event_ = reason;
}

Ipv6Facts Native6::facts(const Config& c, const std::optional<Delegation>& d, Clock::time_point now) const {
    const Uplink6 u = c.ipv6.uplink;
    Ipv6Facts f;
    auto soonest = [&](Clock::time_point t) {
        if (!f.next_change || t < *f.next_change) f.next_change = t;
    };
    bool lost = lost_ || (delegation_ && !d);
    // The segments' /64s of the delegated prefix in use (the first that is still valid).
    std::vector<std::pair<Ipv6Prefix, std::string>> native64;
    std::string delegated_text;
    if (u == Uplink6::unset) {
        f = static_ipv6_facts(c);
    } else {
        f.dhcp6_client = u == Uplink6::native || u == Uplink6::auto_;
        if (d && f.dhcp6_client) {
            auto age = std::chrono::duration_cast<std::chrono::seconds>(now - d->at).count();
            for (auto& p : d->prefixes) {
                if (age >= static_cast<int64_t>(p.valid)) {
                    lost = true;   // dhcpcd did not renew it in time: gone
                    continue;
                }
                for (auto& l : c.lans) {
                    auto id = c.subnet_id(l);
                    if (!id) continue;
                    auto s = lan_subnet(p.prefix, *id);
                    if (!s) {
                        f.problem = "the delegated " + s.error().str() + " (segment '" + l.name + "' subnet_id)";
                        continue;
                    }
                    native64.emplace_back(*s, l.name);
                    f.lifetimes[*s] = {std::min(p.preferred, kNdPreferredLimit), std::min(p.valid, kNdValidLimit)};
                }
                if (native64.empty()) continue;
                delegated_text = p.prefix.str();
                soonest(d->at + std::chrono::seconds(p.valid));
                break;
            }
            if (!native64.empty()) f.dns = d->dns;
        }
        if (u == Uplink6::tunnel) {
            f.in_use = Uplink6Use::tunnel;
            f.why = "[ipv6] uplink = \"tunnel\"";
        } else if (!native64.empty()) {
            f.in_use = Uplink6Use::native;
            f.why = delegated_text + " delegated by DHCPv6 (" + d->reason + ")";
        } else if (u == Uplink6::native) {
            f.in_use = Uplink6Use::none;
            f.why = f.problem.empty() ? "no prefix delegated by DHCPv6 yet" : f.problem;
        } else if (lost) {
            f.in_use = Uplink6Use::tunnel;
            f.why = "the delegated prefix went away";
        } else if (!f.problem.empty()) {
            f.in_use = Uplink6Use::tunnel;
            f.why = f.problem;
        } else if (now >= wait_until_) {
            f.in_use = Uplink6Use::tunnel;
            f.why = "no prefix delegated by DHCPv6 within " + std::to_string(c.ipv6.native_wait) + " s";
        } else {
            f.in_use = Uplink6Use::none;
            f.why = "waiting up to " + std::to_string(c.ipv6.native_wait) + " s for a prefix delegated by DHCPv6";
            soonest(wait_until_);
        }
        if (f.in_use == Uplink6Use::native)
            for (auto& [p, seg] : native64) {
                f.lan_prefixes.push_back(p);
                f.segment[p] = seg;
            }
        else
            f.lifetimes.clear();
        // The segments' ipv6_prefixes (and routed /64s): the tunnel's (routed by the broker),
        // or with uplink "native" extra prefixes of their own (a ULA).
        for (auto& l : c.lans) {
            if (f.in_use == Uplink6Use::tunnel)
                for (auto& p : c.tunnel_prefixes(l)) {
                    f.lan_prefixes.push_back(p);
                    f.segment[p] = l.name;
                }
            else if (u == Uplink6::native)
                for (auto& p : l.ipv6_prefixes) {
                    f.lan_prefixes.push_back(p);
                    f.segment[p] = l.name;
                }
        }
    }
    // Prefixes announced until now and no longer: deprecated in the RAs for a while. Only with
    // native IPv6 (renumbering); a prefix removed from the file is simply gone, as after a boot.
    if (!f.dhcp6_client) return f;
    auto wanted = [&](const Ipv6Prefix& p) {
        return std::find(f.lan_prefixes.begin(), f.lan_prefixes.end(), p) != f.lan_prefixes.end();
    };
    std::map<Ipv6Prefix, Clock::time_point> stale;
    for (auto& [p, until] : stale_)
        if (until > now && !wanted(p)) stale[p] = until;
    for (auto& [p, valid] : announced_)
        if (!wanted(p) && !stale.count(p))
            stale[p] = now + std::min<std::chrono::seconds>(std::chrono::seconds(valid), kStaleAnnounce);
    for (auto& [p, until] : stale) {
        // On the segment it was announced on, while that segment exists.
        auto w = where_.find(p);
        if (w == where_.end() || !c.lan_named(w->second)) continue;
        f.stale.push_back(p);
        f.segment[p] = w->second;
        soonest(until);
    }
    return f;
}

void Native6::applied(const Ipv6Facts& f, Clock::time_point now) {
    std::map<Ipv6Prefix, Clock::time_point> stale;
    for (auto& [p, until] : stale_)
        if (until > now) stale[p] = until;
    for (auto& [p, valid] : announced_)
        if (!stale.count(p))
            stale[p] = now + std::min<std::chrono::seconds>(std::chrono::seconds(valid), kStaleAnnounce);
    announced_.clear();
    lan_now_ = f.lan_prefixes;
    for (auto& [p, seg] : f.segment) where_[p] = seg;
    for (auto& p : f.lan_prefixes) {
        stale.erase(p);
        auto lt = f.lifetimes.find(p);
        announced_[p] = lt != f.lifetimes.end() ? lt->second.valid : 86400;   // radvd's default
    }
    // Only what the state announced as stale stays so (a prefix found stale just now included).
    stale_.clear();
    if (!f.dhcp6_client) stale.clear();
    for (auto& p : f.stale)
        if (stale.count(p)) stale_[p] = stale[p];
    std::erase_if(where_, [&](const auto& w) { return !announced_.count(w.first) && !stale_.count(w.first); });
    if (f.in_use != in_use_ || switches_.empty()) {
        if (!switches_.empty() || f.in_use != Uplink6Use::none) {
            switches_.push_back(std::string(to_string(in_use_)) + " -> " + to_string(f.in_use) + ": " + f.why);
            if (switches_.size() > 8) switches_.erase(switches_.begin());
        }
        switched_at_ = now;
    }
    in_use_ = f.in_use;
    why_ = f.why;
}

std::vector<Ipv6Prefix> Native6::announced() const { return lan_now_; }

std::vector<Ipv6Prefix> Native6::announced_on(const std::string& segment) const {
    std::vector<Ipv6Prefix> out;
    for (auto& p : lan_now_)
        if (auto w = where_.find(p); w != where_.end() && w->second == segment) out.push_back(p);
    return out;
}

void Native6::note_rejected(const std::string& reason) {
    ++rejected_;
    last_rejected_ = reason;
}

nlohmann::json Native6::status_json(const Config& c, Clock::time_point now) const {
    using nlohmann::json;
    json j = {{"uplink", to_string(c.ipv6.uplink)}, {"in_use", to_string(in_use_)}, {"why", why_},
              {"since_s", std::chrono::duration_cast<std::chrono::seconds>(now - switched_at_).count()},
              {"last_event", last_event_}, {"rejected", rejected_}, {"last_rejected", last_rejected_},
              {"switches", switches_}};
    json del = json::array();
    if (delegation_)
        for (auto& p : delegation_->prefixes)
            del.push_back({{"prefix", p.prefix.str()}, {"preferred", p.preferred}, {"valid", p.valid},
                           {"age_s", std::chrono::duration_cast<std::chrono::seconds>(now - delegation_->at).count()}});
    j["delegated"] = del;
    json ann = json::array(), st = json::array();
    for (auto& [p, v] : announced_) ann.push_back(p.str());
    for (auto& [p, until] : stale_)
        st.push_back({{"prefix", p.str()},
                      {"for_s", std::chrono::duration_cast<std::chrono::seconds>(until - now).count()}});
    j["announced"] = ann;
    j["deprecated"] = st;
    return j;
}

std::string Native6::status_text(const Config& c, Clock::time_point now) const {
    std::string o = std::string(to_string(in_use_)) + " (uplink " + to_string(c.ipv6.uplink) + "): " + why_ +
                    ", for " + seconds_text(now - switched_at_) + "\n";
    if (delegation_)
        for (auto& p : delegation_->prefixes)
            o += "          delegated " + p.prefix.str() + " preferred " + std::to_string(p.preferred) + " s valid " +
                 std::to_string(p.valid) + " s, " + seconds_text(now - delegation_->at) + " ago\n";
    for (auto& [p, until] : stale_)
        o += "          deprecated " + p.str() + " (announced with zero lifetimes for " + seconds_text(until - now) + ")\n";
    if (rejected_)
        o += "          " + std::to_string(rejected_) + " DHCPv6 events rejected, last: " + last_rejected_ + "\n";
    return o;
}

}  // namespace netd
