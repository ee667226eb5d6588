// All of netd's kernel network configuration goes through this narrow interface: a real
// implementation over libnl-3 (route) and fakes in tests that record what would be done.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config.h"
#include "net_types.h"
#include "unique_fd.h"

namespace netd {

struct LinkInfo {
    int ifindex = 0;
    std::string name;
    std::optional<MacAddr> mac;
    bool up = false;
    unsigned mtu = 0;
};

class Netlink {
public:
    virtual ~Netlink() = default;
    virtual Result<std::vector<LinkInfo>> links() = 0;
    virtual Status set_up(int ifindex) = 0;
    // Adds or replaces an address: applying the same address twice is not an error.
    virtual Status add_address(int ifindex, const Ipv4Cidr& addr) = 0;
    // IPv6 without duplicate address detection: the router's own ::1 is usable at once.
    virtual Status add_address(int ifindex, const Ipv6Addr& addr, uint8_t prefix_len) = 0;
    // Removing an address that is not there is not an error.
    virtual Status del_address(int ifindex, const Ipv4Cidr& addr) = 0;
    // The IPv4 default route through gateway on the link (replaces any other default route).
    virtual Status replace_default_route(int ifindex, const Ipv4Addr& gateway) = 0;
    // Removes the IPv4 default route on the link; none there is not an error.
    virtual Status del_default_route(int ifindex) = 0;
    virtual Status set_mtu(int ifindex, unsigned mtu) = 0;
    // Creates the 6in4 (sit) device, or retargets it when it exists: local 0.0.0.0 = any.
    // Returns its ifindex.
    virtual Result<int> ensure_sit(const std::string& name, Ipv4Addr local, Ipv4Addr remote, unsigned mtu) = 0;
    // The IPv6 default route out of the link (a point-to-point tunnel: no gateway).
    virtual Status replace_default_route6(int ifindex) = 0;
};

// libnl-3 over a NETLINK_ROUTE socket.
Result<std::unique_ptr<Netlink>> make_libnl_netlink();

// Finds the link an InterfaceRef names (by MAC when given, else by name).
Result<LinkInfo> resolve_link(Netlink& nl, const InterfaceRef& ref);

// Writes a value to /proc/sys (e.g. "net/ipv6/conf/eth1/accept_ra").
Status write_sysctl(const std::string& key, const std::string& value);

}  // namespace netd
