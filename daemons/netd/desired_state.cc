#include "desired_state.h"

#include <algorithm>

#include "lan.h"
#include "wan.h"

namespace netd {

const DesiredLink* DesiredState::link(const std::string& name) const {
    for (auto& l : links)
        if (l.name == name) return &l;
    return nullptr;
}

Result<LinkInfo> resolve_link(const std::vector<LinkInfo>& links, const InterfaceRef& ref) {
    for (auto& l : links) {
        if (ref.mac ? (l.mac && *l.mac == *ref.mac && !l.sit && !l.vlan) : l.name == ref.device) {
            if (ref.mac && !ref.device.empty() && l.name != ref.device)
                return Error{"interface " + ref.describe() + ": the MAC belongs to " + l.name};
            return l;
        }
    }
    return Error{"no interface " + ref.describe()};
}

std::string accept_ra_key(const std::string& link) { return "net/ipv6/conf/" + link + "/accept_ra"; }

namespace {

// The 6in4 tunnel's kernel side: the sit device pointed at the broker from the WAN address
// (or from any address in the heartbeat's `sender` mode, behind a NAT), its IPv6 address and
// the IPv6 default route. Only while the WAN holds an address: without one the tunnel cannot
// carry anything, and its device would point at an address the router no longer has.
void add_tunnel(DesiredState& d, const TunnelConfig& t, const std::optional<DhcpLease>& lease, bool default_route) {
    if (t.mode == TunnelMode::none || !lease) return;
    SitSpec s;
    s.name = kTunnelIf;
    s.local = t.mode == TunnelMode::heartbeat && t.sender ? Ipv4Addr{0} : lease->address.addr;
    s.remote = t.remote;
    s.mtu = t.mtu;
    d.sit = s;
    d.links.push_back({s.name, true, s.mtu});
    d.addresses.insert({s.name, IpCidr::v6(t.local_ipv6, t.local_ipv6_len)});
    // With [ipv6] uplink "auto" the tunnel stays up while native IPv6 is in use (falling back
    // is then only this route), but carries the default route only when it is the uplink.
    if (default_route) d.routes.insert({IpCidr::default_route(6), s.name, std::nullopt});
}

// Native IPv6 on the WAN: the kernel takes the WAN's own address (SLAAC) and the default route
// via the ISP router's link-local address from the ISP's RAs (accept_ra 2: also while
// forwarding); dhcpcd asks for the delegated prefix.
void add_native(DesiredState& d, const std::string& wan_if) {
    const std::string k = "net/ipv6/conf/" + wan_if + "/";
    d.sysctls[k + "accept_ra"] = "2";
    d.sysctls[k + "accept_ra_defrtr"] = "1";
    d.sysctls[k + "accept_ra_pinfo"] = "1";
    d.sysctls[k + "autoconf"] = "1";
    // dhcpcd sets the link's addrgenmode to none at its start and leaves it so: after the next
    // link down/up the kernel would make no link-local address, and without one there is no
    // DHCPv6 and no SLAAC. Each convergence puts it back (which also restores the address).
    d.sysctls[k + "addr_gen_mode"] = "0";
}

}  // namespace

Result<DesiredState> desired_state(const Config& c, const std::vector<LinkInfo>& links,
                                   const std::optional<DhcpLease>& dhcp_lease, const Paths& paths,
                                   const Ipv6Facts* v6) {
    // A static WAN address stands in for the lease; udhcpc then does not run.
    const std::optional<DhcpLease> lease = c.wan.ipv4 ? static_wan_lease(c.wan) : dhcp_lease;
    auto wan = resolve_link(links, c.wan.interface);
    if (!wan) return Error{"WAN: " + wan.error().str()};
    std::map<std::string, std::string> lan_ifs;
    for (auto& l : c.lans) {
        auto link = segment_link(l, links);
        if (!link) return Error{"segment '" + l.name + "': " + link.error().str()};
        if (*link == wan->name) return Error{"segment '" + l.name + "' and WAN name the same interface " + *link};
        for (auto& [other, ifname] : lan_ifs)
            if (ifname == *link) return Error{"segments '" + other + "' and '" + l.name + "' are both on " + *link};
        lan_ifs[l.name] = *link;
    }

    const Ipv6Facts f6 = v6 ? *v6 : static_ipv6_facts(c);
    // The configuration as the segments have it now: their IPv6 prefixes are those of the
    // uplink in use.
    Config ec = c;
    ec.tunnel.routed_prefix.reset();
    for (auto& l : ec.lans) {
        l.ipv6_prefixes.clear();
        for (auto& p : f6.lan_prefixes)
            if (auto it = f6.segment.find(p); it != f6.segment.end() && it->second == l.name) l.ipv6_prefixes.push_back(p);
    }

    DesiredState d;
    for (auto& l : ec.lans) add_lan(d, l, lan_ifs[l.name], links);
    add_wan(d, *wan, lease);
    add_tunnel(d, c.tunnel, lease, f6.in_use == Uplink6Use::tunnel);
    if (f6.dhcp6_client) add_native(d, wan->name);
    // The routed prefix while the tunnel carries it: what no segment or route uses is
    // unreachable here, rather than sent back into the tunnel to loop (RFC 7084 WPD-5).
    if (c.tunnel.routed_prefix && d.sit && f6.in_use == Uplink6Use::tunnel) {
        const auto& rp = *c.tunnel.routed_prefix;
        d.routes.insert(Route{IpCidr::v6(rp.addr, rp.len), "", std::nullopt, true});
    }
    // Static routes to networks behind downstream routers on a segment.
    for (auto& r : c.routes) d.routes.insert({r.to, lan_ifs[r.lan], r.via});
    // The firewall is loaded before anything else; forwarding only with it.
    auto fw_in = firewall_inputs(ec, lan_ifs, wan->name);
    fw_in.dhcpv6_client = f6.dhcp6_client;
    // The flowtable: the WAN and the segments' NICs, and the sit device while there is a tunnel
    // (the way back of every connection through it comes in there). The sit device does not
    // exist yet when the ruleset is first loaded: the reconciler loads the flowtable without it,
    // then with it once it is made (flowtable_on). A VLAN segment's frames come in tagged on its
    // trunk: the trunk NIC is the flowtable's device, not the VLAN link, whose connections the
    // kernel would not offload.
    if (c.firewall.flow_offload) {
        std::vector<std::string> nics;
        for (auto& l : c.lans) {
            if (!l.vlan) {
                nics.push_back(lan_ifs[l.name]);
            } else if (auto trunk = resolve_link(links, l.interface)) {
                nics.push_back(trunk->name);
            }
        }
        fw_in.flow_devices = flowtable_nics(wan->name, nics, [&](const std::string& dev) {
            return std::any_of(links.begin(), links.end(), [&](const LinkInfo& l) { return l.name == dev; });
        });
        if (d.sit) fw_in.flow_devices.push_back(kTunnelIf);
    }
    d.ruleset = build_ruleset(fw_in);
    d.ruleset_text = render_nft(d.ruleset);
    d.sysctls["net/ipv4/ip_forward"] = "1";
    d.sysctls["net/ipv6/conf/all/forwarding"] = "1";

    RuntimeFacts f;
    f.hostsdir = paths.run_dir + "/hosts";
    for (auto& l : ec.lans) {
        SegmentFacts& sf = f.lans[l.name];
        sf.ifname = lan_ifs[l.name];
        for (auto& li : links)
            if (li.name == sf.ifname && li.mtu) sf.mtu = li.mtu;
        // With an IPv6 uplink the router is the LAN's IPv6 default router; through the tunnel
        // the RAs carry the tunnel MTU.
        if (f6.in_use == Uplink6Use::tunnel) sf.mtu = std::min(sf.mtu, c.tunnel.mtu);
        for (auto& p : f6.stale)
            if (auto it = f6.segment.find(p); it != f6.segment.end() && it->second == l.name)
                sf.deprecated_prefixes.push_back(p);
    }
    f.ipv6_uplink = f6.in_use != Uplink6Use::none;
    for (auto& [p, lt] : f6.lifetimes) f.prefix_lifetimes[p] = {lt.preferred, lt.valid};
    if (lease)
        for (auto& n : lease->ntp) f.wan_ntp.push_back(n.str());

    // The resolvers from the WAN lease; dnsmasq rereads the file when it changes.
    std::string resolv = "# Generated by netd from the WAN lease: do not edit.\n";
    if (lease)
        for (auto& dns : lease->dns) resolv += "nameserver " + dns.str() + "\n";
    for (auto& dns : f6.dns) resolv += "nameserver " + dns.str() + "\n";
    d.files[wan_resolv_path(paths.run_dir)] = resolv;

    // The remote log first: the daemons' first lines reach the log host live.
    if (c.log.remote) d.services.push_back(log_forward_service(*c.log.remote));
    if (!c.wan.ipv4) d.services.push_back(udhcpc_service(wan->name, paths.udhcpc_hook));
    if (f6.dhcp6_client) d.services.push_back(dhcpcd_service(wan->name, paths.dhcpcd_hook, paths.run_dir));
    d.services.push_back(dnsmasq_service(ec, f, paths.run_dir));
    d.services.push_back(ntpd_service(ec, f));
    // Without a prefix radvd has nothing to announce.
    bool any6 = !f6.stale.empty();
    for (auto& l : ec.lans) any6 = any6 || !l.ipv6_prefixes.empty();
    if (any6) d.services.push_back(radvd_service(ec, f, paths.run_dir));
    // sshd with no ListenAddress would listen everywhere: without a segment to listen on (and
    // not on WAN) it does not run.
    bool ssh_somewhere = c.ssh.allow_wan;
    for (auto& l : c.lans) ssh_somewhere = ssh_somewhere || l.ssh;
    if (c.ssh.enabled && ssh_somewhere) d.services.push_back(sshd_service(ec, f, paths.run_dir));
    return d;
}

}  // namespace netd
