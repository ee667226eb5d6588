#include "lan.h"

namespace netd {

void add_lan(DesiredState& d, const LanConfig& lan, const LinkInfo& link) {
    d.lan_if = link.name;
    d.links.push_back({link.name, true, std::nullopt});
    d.addresses.insert({link.name, IpCidr::v4(lan.ipv4)});
    for (auto& p : lan.ipv6_prefixes) d.addresses.insert({link.name, IpCidr::v6(p.with_host(1), p.len)});
    // The router does not autoconfigure itself from RAs on its own LAN.
    d.sysctls[accept_ra_key(link.name)] = "0";
}

std::vector<std::string> lan_ipv6_addresses(const LanConfig& lan) {
    std::vector<std::string> out;
    for (auto& p : lan.ipv6_prefixes) out.push_back(IpCidr::v6(p.with_host(1), p.len).str());
    return out;
}

std::string lan_summary(const LanConfig& lan, const std::string& ifname) {
    std::string o = (ifname.empty() ? lan.interface.describe() : ifname) + " " + lan.ipv4.str();
    for (auto& a : lan_ipv6_addresses(lan)) o += " " + a;
    return o;
}

}  // namespace netd
