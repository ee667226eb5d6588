// The LAN segment's part of the desired state: the link up, the router's IPv4 address and
// ::1 in each IPv6 prefix, no autoconfiguration from RAs on its own LAN.
#pragma once

#include "desired_state.h"

namespace netd {

void add_lan(DesiredState& d, const LanConfig& lan, const LinkInfo& link);

// The router's own IPv6 addresses on the LAN: "2001:db8:7::1/64", ...
std::vector<std::string> lan_ipv6_addresses(const LanConfig& lan);
// "eth1 192.168.7.1/24 2001:db8:7::1/64" for `netctl status`.
std::string lan_summary(const LanConfig& lan, const std::string& ifname);

}  // namespace netd
