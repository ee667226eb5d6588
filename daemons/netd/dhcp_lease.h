// Lease events from BusyBox udhcpc, as its hook script hands them to netd: every value comes
// from the ISP's DHCP server and is hostile until checked (BusyBox had CVE-2011-2716 for shell
// metacharacters in the host name, CVE-2018-20679 and CVE-2019-5747 for option reads). An
// event is accepted whole or rejected whole, with the reason.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "net_types.h"
#include "unique_fd.h"

namespace netd {

enum class DhcpAction { deconfig, bound, renew, nak, leasefail };
const char* to_string(DhcpAction a);

struct DhcpLease {
    Ipv4Cidr address;                 // ip + subnet/mask
    std::vector<Ipv4Addr> routers;
    std::vector<Ipv4Addr> dns;
    std::vector<Ipv4Addr> ntp;
    std::string domain;               // may be empty
    std::vector<std::string> search;
    std::string hostname;             // may be empty
    uint32_t lease_seconds = 0;
    std::optional<unsigned> mtu;
    std::optional<Ipv4Addr> server_id;
    bool operator==(const DhcpLease&) const = default;
};

struct DhcpEvent {
    DhcpAction action = DhcpAction::deconfig;
    std::string interface;
    std::optional<DhcpLease> lease;   // for bound and renew
    std::string message;              // for nak: the server's text, made printable
};

// args: the action, then KEY=VALUE pairs (the hook script's environment, as udhcpc names it:
// interface, ip, subnet, mask, router, dns, domain, search, hostname, lease, mtu, broadcast,
// ntpsrv, serverid, message; others are ignored).
Result<DhcpEvent> parse_dhcp_event(const std::vector<std::string>& args);

// Limits, also documented in CONFIG.md when the WAN lands.
inline constexpr size_t kMaxDhcpList = 8;       // routers, DNS and NTP servers each
inline constexpr size_t kMaxDhcpValue = 1024;   // bytes of any one value
inline constexpr unsigned kMinDhcpMtu = 576, kMaxDhcpMtu = 9000;
inline constexpr uint32_t kMinDhcpLease = 60;

}  // namespace netd
