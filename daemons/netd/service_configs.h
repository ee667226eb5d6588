// The configuration files and command lines netd generates for the daemons it supervises
// (dnsmasq, radvd, BusyBox ntpd, sshd), as pure functions of the config and of what netd
// learned at run time. Golden tests pin their exact text.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "atomic_file.h"
#include "config.h"
#include "supervisor.h"

namespace netd {

// What the generated files depend on besides the config file.
// What a segment's generated blocks depend on besides its config.
struct SegmentFacts {
    std::string ifname;                  // its link, resolved from mac/device (and vlan)
    unsigned mtu = 1500;                 // announced in RAs: the tunnel MTU once there is one
    // Prefixes no longer in use: announced with zero lifetimes (RFC 9096), so hosts stop using
    // them at once.
    std::vector<Ipv6Prefix> deprecated_prefixes;
};

// What the generated files depend on besides the config file.
struct RuntimeFacts {
    std::map<std::string, SegmentFacts> lans;   // by segment name
    std::vector<std::string> wan_ntp;    // NTP servers from the WAN lease (added to [ntp] servers)
    bool ipv6_uplink = false;            // announce the router as IPv6 default router
    // Delegated prefixes (native IPv6): announced with these lifetimes (preferred, valid);
    // the others with radvd's defaults.
    std::map<Ipv6Prefix, std::pair<uint32_t, uint32_t>> prefix_lifetimes;
    // The directory of hosts files dnsmasq reads (names of IPv6 hosts, names6.h); empty: none.
    std::string hostsdir;

    // The segment's facts (defaults for one not resolved).
    SegmentFacts lan(const std::string& name) const {
        auto it = lans.find(name);
        return it != lans.end() ? it->second : SegmentFacts{};
    }
};

struct GeneratedService {
    ServiceSpec spec;
    std::string config_path;  // empty when the service takes everything on its command line
    std::string config_text;
};

// Where the generated files go (a tmpfs: regenerated at every start).
inline constexpr const char* kRunDir = "/run/netd";

// The resolvers from the WAN lease, in resolv.conf syntax, for dnsmasq's resolv-file.
inline std::string wan_resolv_path(const std::string& run_dir = kRunDir) { return run_dir + "/resolv.wan"; }

// BusyBox udhcpc in the foreground on the WAN link; its hook hands every event to netd.
GeneratedService udhcpc_service(const std::string& wan_ifname, const std::string& hook);
// dhcpcd on the WAN link for DHCPv6 prefix delegation only; its hook hands every event to netd.
GeneratedService dhcpcd_service(const std::string& wan_ifname, const std::string& hook,
                                const std::string& run_dir = kRunDir);
GeneratedService dnsmasq_service(const Config& c, const RuntimeFacts& f, const std::string& run_dir = kRunDir);
GeneratedService radvd_service(const Config& c, const RuntimeFacts& f, const std::string& run_dir = kRunDir);
GeneratedService ntpd_service(const Config& c, const RuntimeFacts& f);
GeneratedService sshd_service(const Config& c, const RuntimeFacts& f, const std::string& run_dir = kRunDir);
// The remote log's forwarder ([log] remote, log_forward.h): netd itself, started first so that
// it hears the other daemons start. It drops root itself once its socket is bound.
GeneratedService log_forward_service(const LogRemote& remote, const std::string& netd = "/usr/sbin/netd");


}  // namespace netd
