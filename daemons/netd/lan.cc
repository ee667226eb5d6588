#include "lan.h"

namespace netd {

Result<std::string> segment_link(const LanConfig& lan, const std::vector<LinkInfo>& links) {
    auto nic = resolve_link(links, lan.interface);
    if (!nic) return nic.error();
    if (!lan.vlan) return nic->name;
    std::string name = vlan_link_name(nic->name, lan.vlan);
    if (name.size() > 15) return Error{"the VLAN link name " + name + " is longer than 15 characters"};
    return name;
}

void add_lan(DesiredState& d, const LanConfig& lan, const std::string& link, const std::vector<LinkInfo>& links) {
    d.lan_ifs[lan.name] = link;
    if (lan.vlan) {
        // The trunk carries the VLAN: it is up too (and has no address of its own unless
        // another segment is on it untagged).
        auto nic = resolve_link(links, lan.interface);
        if (nic) {
            d.vlans.push_back({link, nic->name, lan.vlan});
            if (!d.link(nic->name)) d.links.push_back({nic->name, true, std::nullopt});
        }
    }
    if (!d.link(link)) d.links.push_back({link, true, std::nullopt});
    d.addresses.insert({link, IpCidr::v4(lan.ipv4)});
    for (auto& p : lan.ipv6_prefixes) d.addresses.insert({link, IpCidr::v6(p.with_host(1), p.len)});
    // The router does not autoconfigure itself from RAs on its own LAN.
    d.sysctls[accept_ra_key(link)] = "0";
    // No duplicate address detection for the router's link-local address either (its other
    // addresses on the segment are added without it, IFA_F_NODAD): radvd cannot send an RA
    // from a tentative address, and DAD (a random wait of up to 1 s, then 1 s for the probe)
    // then radvd's retry kept the first RA 4.4 s after "router ready" in the Xen test, with
    // every client on the segment waiting for it. The link-local address comes from the NIC's
    // MAC, which the host gives each instance: a duplicate would break the segment anyway.
    // Set before the link comes up (reconcile: sysctls, then links).
    d.sysctls["net/ipv6/conf/" + link + "/dad_transmits"] = "0";
    d.sysctls["net/ipv6/conf/" + link + "/router_solicitation_delay"] = "0";
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
