// The desired state: everything netd wants the kernel and the supervisor to hold, as a plain
// value computed by a pure function of the inputs (the config, the kernel's links to resolve
// [lan] and [wan] by MAC, the WAN lease). The reconciler (reconcile.h) makes it so.
// Nothing here touches the system, so a reload, a restart and a fresh boot on the same
// inputs compute the same value, and tests compare values.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "config.h"
#include "dhcp_lease.h"
#include "firewall.h"
#include "kernel.h"
#include "native6.h"
#include "service_configs.h"

namespace netd {

struct DesiredLink {
    std::string name;
    bool up = true;
    std::optional<unsigned> mtu;   // none: as the link came (netd restores what it changed)
    auto operator<=>(const DesiredLink&) const = default;
};

struct DesiredState {
    std::string wan_if;                   // resolved name (status, firewall)
    std::map<std::string, std::string> lan_ifs;   // segment name -> resolved link name
    std::vector<DesiredLink> links;       // every link netd manages, sit device included
    std::optional<SitSpec> sit;
    std::vector<VlanSpec> vlans;          // the segments' 802.1Q links
    std::set<IfAddr> addresses;           // on the managed links (IPv6 link-local excluded)
    std::set<Route> routes;               // with kNetdRouteProto
    std::map<std::string, std::string> sysctls;
    nft::Ruleset ruleset;
    std::string ruleset_text;             // render_nft(ruleset): what is compared
    std::vector<GeneratedService> services;
    std::map<std::string, std::string> files;   // other generated files: path -> content

    const DesiredLink* link(const std::string& name) const;
};

struct Paths {
    std::string run_dir = kRunDir;
    std::string udhcpc_hook = "/etc/udhcpc/netd-hook";
    std::string dhcpcd_hook = "/etc/netd/dhcpcd-hook";
};

// Finds the link an InterfaceRef names (by MAC when given, else by name).
Result<LinkInfo> resolve_link(const std::vector<LinkInfo>& links, const InterfaceRef& ref);

// Fails only when [lan] or [wan] names no link (or both the same one). v6: where the LAN's
// IPv6 comes from now (native6.h); none: static_ipv6_facts(c), the tunnel if there is one.
Result<DesiredState> desired_state(const Config& c, const std::vector<LinkInfo>& links,
                                   const std::optional<DhcpLease>& lease, const Paths& paths,
                                   const Ipv6Facts* v6 = nullptr);

// The sysctl keys netd sets (for the reconciler's restore of what it no longer wants).
std::string accept_ra_key(const std::string& link);

}  // namespace netd
