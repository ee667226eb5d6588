// All of netd's access to the kernel's network state goes through this one interface: links,
// addresses, routes, the sit device, sysctls and the nftables ruleset. A real implementation
// (libnl-3 route, /proc/sys, libnftnl) and a recording one (recording_kernel.h) that keeps an
// in-memory kernel and writes down every change, so the reconciler and the daemon can be
// tested for the exact operations they make.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config.h"
#include "firewall.h"
#include "net_types.h"
#include "unique_fd.h"

namespace netd {

// netd's routes carry this protocol number (rtm_protocol; iproute2 shows it as "proto 77"):
// the reconciler reads back and changes only routes with it, never what others created.
inline constexpr uint8_t kNetdRouteProto = 77;
// netd's IPv6 routes go ahead of those the kernel learns from RAs (1024).
inline constexpr uint32_t kNetdRoute6Metric = 512;

// The 6in4 device's parameters (local 0.0.0.0: any, the heartbeat's `sender` mode).
struct SitSpec {
    std::string name;
    Ipv4Addr local;
    Ipv4Addr remote;
    uint8_t ttl = 64;
    unsigned mtu = 1480;
    auto operator<=>(const SitSpec&) const = default;
};

// An 802.1Q VLAN link on a trunk NIC (a LAN segment with `vlan`).
struct VlanSpec {
    std::string name;     // vlan_link_name(parent, id)
    std::string parent;
    uint16_t id = 0;
    auto operator<=>(const VlanSpec&) const = default;
};

struct LinkInfo {
    int ifindex = 0;
    std::string name;
    std::optional<MacAddr> mac;
    bool up = false;
    unsigned mtu = 0;
    std::optional<SitSpec> sit;   // set for sit devices (name and mtu repeated)
    std::optional<VlanSpec> vlan; // set for VLAN links (their MAC is the trunk's)
    uint64_t rx_packets = 0, tx_packets = 0;
    uint64_t rx_bytes = 0, tx_bytes = 0;
};

// A link's traffic counters (the kernel's link statistics), added up across the devices that
// held them (metrics.h: the sit device netd deleted and the one it has now).
struct LinkTraffic {
    uint64_t rx_packets = 0, tx_packets = 0, rx_bytes = 0, tx_bytes = 0;
    static LinkTraffic of(const LinkInfo& l) { return {l.rx_packets, l.tx_packets, l.rx_bytes, l.tx_bytes}; }
    LinkTraffic& operator+=(const LinkTraffic& o) {
        rx_packets += o.rx_packets;
        tx_packets += o.tx_packets;
        rx_bytes += o.rx_bytes;
        tx_bytes += o.tx_bytes;
        return *this;
    }
    bool operator==(const LinkTraffic&) const = default;
};

// An address on a link.
struct IfAddr {
    std::string link;
    IpCidr addr;
    auto operator<=>(const IfAddr&) const = default;
    std::string str() const { return link + " " + addr.str(); }
};

// A route in the main table, with netd's protocol number.
struct Route {
    IpCidr dst;                       // e.g. 0.0.0.0/0
    std::string link;                 // empty for an unreachable route
    std::optional<IpCidr> gateway;    // none: on-link (a point-to-point tunnel)
    // An unreachable route (no link): the unused rest of a routed prefix is answered with
    // ICMP unreachable instead of looping back out of the default route (RFC 7084 WPD-5).
    bool unreachable = false;
    auto operator<=>(const Route&) const = default;
    std::string str() const {
        if (unreachable) return "unreachable " + dst.str();
        return dst.str() + (gateway ? " via " + gateway->addr_str() : "") + " dev " + link;
    }
};

class Kernel {
public:
    virtual ~Kernel() = default;
    virtual Result<std::vector<LinkInfo>> links() = 0;
    // Every address on every link.
    virtual Result<std::vector<IfAddr>> addresses() = 0;
    // The routes with protocol kNetdRouteProto, main table, both families.
    virtual Result<std::vector<Route>> routes() = 0;

    virtual Status set_up(const std::string& link, bool up) = 0;
    virtual Status set_mtu(const std::string& link, unsigned mtu) = 0;
    // IPv6 addresses are added without duplicate address detection: usable at once.
    virtual Status add_address(const IfAddr& a) = 0;
    virtual Status del_address(const IfAddr& a) = 0;
    // Refused when a route for the same destination exists (whoever made it).
    virtual Status add_route(const Route& r) = 0;
    virtual Status del_route(const Route& r) = 0;
    // Creates the sit device, or changes an existing one in place (its addresses stay).
    virtual Status put_sit(const SitSpec& s) = 0;
    // Creates the VLAN link (down); refused when a link of that name exists.
    virtual Status add_vlan(const VlanSpec& v) = 0;
    virtual Status del_link(const std::string& link) = 0;
    // key as under /proc/sys, e.g. "net/ipv6/conf/eth1/accept_ra".
    virtual Result<std::string> read_sysctl(const std::string& key) = 0;
    virtual Status write_sysctl(const std::string& key, const std::string& value) = 0;
    // One nftables transaction (see firewall.h): all or nothing.
    virtual Result<LoadStats> load_ruleset(const nft::Ruleset& r) = 0;
    // What the counted drop rules of netd's filter table hold, per chain (firewall.h).
    virtual Result<std::map<std::string, DropCount>> firewall_drops() = 0;
};

// The real kernel: libnl-3 over NETLINK_ROUTE, /proc/sys, libnftnl.
Result<std::unique_ptr<Kernel>> make_linux_kernel();

}  // namespace netd
