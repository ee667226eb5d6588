// A LAN segment's part of the desired state: its link (an 802.1Q VLAN on its trunk when it
// has one) up, the router's IPv4 address and ::1 in each IPv6 prefix, no autoconfiguration
// from RAs on its own link.
#pragma once

#include "desired_state.h"

namespace netd {

// The segment's link: the NIC itself, or the VLAN on it. An error when the NIC is missing.
Result<std::string> segment_link(const LanConfig& lan, const std::vector<LinkInfo>& links);

void add_lan(DesiredState& d, const LanConfig& lan, const std::string& link, const std::vector<LinkInfo>& links);

// The router's own IPv6 addresses on the segment: "2001:db8:7::1/64", ...
std::vector<std::string> lan_ipv6_addresses(const LanConfig& lan);
// "main eth1 192.168.7.1/24 2001:db8:7::1/64 (full)" for `netctl status`.
std::string lan_summary(const LanConfig& lan, const std::string& ifname);

}  // namespace netd
