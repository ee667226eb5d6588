// Native IPv6 from the ISP. The WAN's own address and the ISP router come from the ISP's RAs
// (the kernel: accept_ra 2, SLAAC, a default route with protocol "ra"); the LAN's prefix comes
// from DHCPv6 prefix delegation, through dhcpcd on the WAN, whose hook hands each event to
// netd. Every value in an event comes from the network and is hostile until checked: an event
// is accepted whole or rejected whole, with the reason, exactly as udhcpc's are.
//
// This module keeps the delegation, takes the LAN's /64 from it by subnet id (a stable id, as
// OpenWrt's ip6hint, so the LAN keeps its place across renumbering), decides which uplink
// carries the LAN's IPv6 ([ipv6] uplink), and remembers the prefixes it no longer announces:
// those stay in the RAs with zero lifetimes for a while (RFC 9096), so LAN hosts stop using
// them at once instead of after hours. Everything here is pure; the daemon applies it.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "config.h"
#include "net_types.h"
#include "unique_fd.h"

namespace netd {

struct DelegatedPrefix {
    Ipv6Prefix prefix;
    uint32_t preferred = 0, valid = 0;   // seconds, as the server gave them
    bool operator==(const DelegatedPrefix&) const = default;
};

enum class Dhcp6Kind {
    lease,    // BOUND6, RENEW6, REBIND6, REBOOT6: the prefixes now delegated, all of them
    lost,     // EXPIRE6, RELEASE6, STOP6, STOPPED, NOCARRIER, DEPARTED: nothing delegated now
    other,    // dhcpcd's other reasons (PREINIT, CARRIER, ROUTERADVERT, ...): nothing to do
};

struct Dhcp6Event {
    std::string reason;                     // dhcpcd's $reason, checked: [A-Z0-9] only
    Dhcp6Kind kind = Dhcp6Kind::other;
    std::string interface;
    std::vector<DelegatedPrefix> prefixes;  // lease: those with a valid lifetime above 0
    std::vector<Ipv6Addr> dns;              // new_dhcp6_name_servers
};

// args: dhcpcd's reason, then KEY=VALUE pairs from its environment: interface,
// new_dhcp6_ia_pd<I>_prefix<J> with _length, _pltime and _vltime, new_dhcp6_name_servers
// (others are ignored). Rejected: a prefix that is not global unicast (2000::/3), has host bits
// set, is shorter than /kMinDelegatedLen or longer than /64 (no /64 for the LAN in it: /128 and
// /0 are the classic hostile ones), a preferred lifetime above the valid one, a missing or
// malformed field, more than kMaxDelegated prefixes, overlapping prefixes, an over-long value.
Result<Dhcp6Event> parse_dhcp6_event(const std::vector<std::string>& args);

inline constexpr size_t kMaxDelegated = 8;
inline constexpr uint8_t kMinDelegatedLen = 32;   // no home ISP delegates more than a /32


// RFC 9096 L-2/L-3: the lifetimes announced on the LAN for a delegated prefix are at most
// these (a host then stops using a prefix that went away without notice within 45 min, and
// drops its address within 90 min).
inline constexpr uint32_t kNdPreferredLimit = 2700, kNdValidLimit = 5400;
// A prefix no longer announced stays in the RAs with zero lifetimes for (RFC 9096 L-13):
inline constexpr std::chrono::seconds kStaleAnnounce{7200};

enum class Uplink6Use { none, tunnel, native };
const char* to_string(Uplink6Use u);

struct PrefixLifetimes {
    uint32_t preferred = 0, valid = 0;
    bool operator==(const PrefixLifetimes&) const = default;
};

// What the desired state takes from this module.
struct Ipv6Facts {
    Uplink6Use in_use = Uplink6Use::none;
    std::string why;                                // in words, for status
    bool dhcp6_client = false;                      // dhcpcd on the WAN, the WAN accepts RAs
    std::vector<Ipv6Prefix> lan_prefixes;           // announced and on the LAN links (router ::1)
    std::map<Ipv6Prefix, std::string> segment;      // each of lan_prefixes and stale: on which segment
    std::map<Ipv6Prefix, PrefixLifetimes> lifetimes;  // for those from the delegation
    std::vector<Ipv6Prefix> stale;                  // announced with zero lifetimes
    std::vector<Ipv6Addr> dns;                      // resolvers from DHCPv6
    std::string problem;                            // a delegation that cannot be used, and why
    std::optional<std::chrono::steady_clock::time_point> next_change;  // recompute then
};

// For a configuration without [ipv6] (and for tests): the tunnel when there is one.
Ipv6Facts static_ipv6_facts(const Config& c);

class Native6 {
public:
    using Clock = std::chrono::steady_clock;

    struct Delegation {
        std::vector<DelegatedPrefix> prefixes;
        std::vector<Ipv6Addr> dns;
        Clock::time_point at{};      // when the server last confirmed them
        std::string reason;          // the event that brought them
        bool operator==(const Delegation&) const = default;
    };

    // A (re)loaded configuration: the auto wait starts over only when the uplink setting or the
    // WAN link changed.
    void configure(const Config& c, const std::string& wan_if, Clock::time_point now);

    // The delegation after an event (pure); commit() once the kernel holds its state.
    std::optional<Delegation> next(const Dhcp6Event& ev, Clock::time_point now) const;
    void commit(std::optional<Delegation> d, const std::string& reason, Clock::time_point now);
    // A restarted netd: the delegation dhcpcd (adopted) holds, from the last event accepted.
    void restore(Delegation d);

    // What the desired state gets, now (pure).
    Ipv6Facts facts(const Config& c, const std::optional<Delegation>& d, Clock::time_point now) const;
    Ipv6Facts facts(const Config& c, Clock::time_point now) const { return facts(c, delegation_, now); }
    // The facts the kernel now holds: the prefixes announced and the switch of uplink.
    void applied(const Ipv6Facts& f, Clock::time_point now);

    void note_rejected(const std::string& reason);
    const std::optional<Delegation>& delegation() const { return delegation_; }
    std::vector<Ipv6Prefix> announced_on(const std::string& segment) const;
    std::vector<Ipv6Prefix> announced() const;
    nlohmann::json status_json(const Config& c, Clock::time_point now) const;
    std::string status_text(const Config& c, Clock::time_point now) const;

private:
    std::optional<Delegation> delegation_;
    std::string last_event_;                 // dhcpcd's last reason and what it brought
    bool lost_ = false;                      // a delegation went away (auto: the tunnel at once)
    Uplink6 uplink_ = Uplink6::unset;
    std::string wan_if_;
    Clock::time_point wait_until_{};         // auto: the tunnel after this without a delegation
    std::map<Ipv6Prefix, uint32_t> announced_;       // LAN prefixes in the RAs: valid lifetime
    std::vector<Ipv6Prefix> lan_now_;                // the same, in order
    std::map<Ipv6Prefix, Clock::time_point> stale_;  // announced deprecated until
    std::map<Ipv6Prefix, std::string> where_;        // the segment each was announced on
    Uplink6Use in_use_ = Uplink6Use::none;
    std::string why_;
    Clock::time_point switched_at_{};
    std::vector<std::string> switches_;      // the last few switches, for status
    unsigned rejected_ = 0;
    std::string last_rejected_;
};

}  // namespace netd
