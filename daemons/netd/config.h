// netd's configuration: one TOML file on the data disk (/data/etc/router.conf).
// Parsing and validation only; nothing here touches the system. Every error names
// file:line:col. The reference of every key is daemons/netd/CONFIG.md.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "net_types.h"
#include "unique_fd.h"

namespace netd {

// Which network interface: by MAC address (stable under Xen, whatever order the vifs
// appear in) or by kernel name.
struct InterfaceRef {
    std::string device;          // e.g. "eth1"; empty when chosen by MAC
    std::optional<MacAddr> mac;

    std::string describe() const;
    bool operator==(const InterfaceRef&) const = default;
};

struct StaticLease {
    MacAddr mac;
    Ipv4Addr ip;
    std::string name;  // may be empty
    bool operator==(const StaticLease&) const = default;
};

struct DhcpConfig {
    bool enabled = true;
    Ipv4Addr range_start;
    Ipv4Addr range_end;
    uint32_t lease_seconds = 43200;
    std::vector<StaticLease> hosts;
    bool operator==(const DhcpConfig&) const = default;
};

// What a LAN segment's hosts may reach (CONFIG.md "Segments and trust"): a full segment
// reaches the internet, the router's services and the other full segments; a guest segment
// only the internet and the router's DHCP, DNS and NTP.
enum class Trust { full, guest };
const char* to_string(Trust t);

// One LAN segment: [lan] (the only one) or each [[lan]].
struct LanConfig {
    std::string name = "lan";           // in status, logs and the firewall's set names
    InterfaceRef interface;             // the NIC; with vlan, the trunk the VLAN rides on
    uint16_t vlan = 0;                  // 0: untagged; 1..4094: netd makes the 802.1Q link
    Ipv4Cidr ipv4;                      // the router's own address on the segment
    std::vector<Ipv6Prefix> ipv6_prefixes;  // /64s given explicitly; router is ::1 in each
    std::string domain = "lan";
    DhcpConfig dhcp;
    // Which /64 of a routed or delegated prefix the segment takes (OpenWrt's ip6hint): of
    // [tunnel] routed_prefix while the tunnel is the uplink, of the DHCPv6-delegated prefix
    // with native IPv6. None: no /64 from them (a lone segment takes number 0).
    std::optional<uint32_t> subnet_id;
    Trust trust = Trust::full;
    bool ssh = true;                    // sshd listens here (never on a guest segment)
    bool operator==(const LanConfig&) const = default;
};

// The link name netd gives a segment's VLAN: "<trunk>.<id>" (at most 15 characters).
std::string vlan_link_name(const std::string& trunk, uint16_t vlan);

// A static route to a network behind a downstream router on a segment ([[route]]).
struct StaticRoute {
    IpCidr to;                  // IPv4 or IPv6 network
    IpCidr via;                 // the downstream router, on the segment (host length)
    std::string lan;            // the segment it is on (name)
    bool operator==(const StaticRoute&) const = default;
};

struct WanConfig {
    InterfaceRef interface;
    // A static address instead of DHCP (colocated hosts, many tunnel users): then gateway and
    // dns are what a lease would carry, and udhcpc does not run.
    std::optional<Ipv4Cidr> ipv4;
    std::optional<Ipv4Addr> gateway;
    std::vector<Ipv4Addr> dns;
    bool operator==(const WanConfig&) const = default;
};

struct DnsConfig {
    std::vector<std::string> upstream;  // IPv4 or IPv6 addresses, validated
    uint32_t cache_size = 1000;
    bool operator==(const DnsConfig&) const = default;
};

struct NtpConfig {
    std::vector<std::string> servers;  // host names or addresses, validated
    bool serve_lan = true;
    bool operator==(const NtpConfig&) const = default;
};

struct SshConfig {
    bool enabled = true;
    uint16_t port = 22;
    bool allow_wan = false;
    bool operator==(const SshConfig&) const = default;
};

enum class Proto { tcp, udp };
const char* to_string(Proto p);

// An opening from outside (WAN, tunnel) to one IPv6 host on the LAN.
struct Open6 {
    Ipv6Addr host;
    Proto proto = Proto::tcp;
    uint16_t port = 0;
    bool operator==(const Open6&) const = default;
};

// An IPv4 port forward (DNAT) from the WAN address to a LAN host.
struct Forward4 {
    Proto proto = Proto::tcp;
    uint16_t port = 0;      // on the WAN address
    Ipv4Addr to;            // LAN host
    uint16_t to_port = 0;   // on the LAN host
    bool operator==(const Forward4&) const = default;
};

struct FirewallConfig {
    std::vector<Open6> open6;
    std::vector<Forward4> forward4;
    std::vector<Ipv4Cidr> blocklist4;    // no forwarding to or from these, no input from them
    std::vector<Ipv6Prefix> blocklist6;
    bool flow_offload = true;            // established forwarded flows take the flowtable's fast path
    bool operator==(const FirewallConfig&) const = default;
};

// The 6in4 tunnel: see CONFIG.md [tunnel]. netd names its sit device:
inline constexpr const char* kTunnelIf = "sit6in4";
enum class TunnelMode { none, he, heartbeat, static_ };
const char* to_string(TunnelMode m);

struct TunnelConfig {
    TunnelMode mode = TunnelMode::none;
    Ipv4Addr remote;               // the broker's (PoP's) IPv4 endpoint
    Ipv6Addr local_ipv6;           // the tunnel's own IPv6 address, on the sit device
    uint8_t local_ipv6_len = 64;
    std::optional<Ipv6Addr> remote_ipv6;  // the broker's side; the default route goes via it
    unsigned mtu = 1480;
    // he
    std::string tunnel_id;
    std::string username;
    std::string update_key;
    std::string update_url = "https://ipv4.tunnelbroker.net/nic/update";
    std::string ca_file = "/etc/ssl/certs/ca-certificates.crt";
    // heartbeat
    std::string password;
    unsigned interval = 60;
    bool sender = false;           // "sender" instead of the local IPv4 (behind NAT)
    // heartbeat with SixXS TIC (tic.h): the parameters above come from the broker; with
    // tunnel_id. Empty tic_server: not used.
    std::string tic_server, tic_username, tic_password;
    // The broker's routed prefix (HE's "Routed /48"): segments take /64s of it by subnet_id.
    std::optional<Ipv6Prefix> routed_prefix;
    bool operator==(const TunnelConfig&) const = default;
};

// Where the LAN's IPv6 comes from: see CONFIG.md [ipv6].
enum class Uplink6 {
    unset,    // no [ipv6]: the tunnel when there is one, else none (as before [ipv6] existed)
    tunnel,   // the 6in4 tunnel only
    native,   // the ISP's IPv6: DHCPv6 prefix delegation on the WAN, the ISP's RAs
    auto_,    // native when a prefix is delegated, the tunnel otherwise
};
const char* to_string(Uplink6 u);

struct Ipv6Config {
    Uplink6 uplink = Uplink6::unset;
    unsigned native_wait = 30;   // auto: seconds to wait for a delegation before the tunnel
    bool operator==(const Ipv6Config&) const = default;
};

// [log] remote: the log host every line of the router's log also goes to (log_forward.h).
// An address, never a name: the log must not depend on DNS, least of all when DNS is what broke.
struct LogRemote {
    Proto proto = Proto::udp;
    IpCidr address;          // a host address (/32 or /128)
    uint16_t port = 514;
    std::string url() const;  // "udp://192.0.2.1:514", "tcp://[2001:db8::1]:514"
    bool operator==(const LogRemote&) const = default;
};
// "udp://ADDRESS[:PORT]" or "tcp://ADDRESS[:PORT]", an IPv6 address in brackets, port 514 by
// default. The error says what is wrong, without the file position.
Result<LogRemote> parse_log_remote(std::string_view text);

struct LogConfig {
    std::optional<LogRemote> remote;
    bool operator==(const LogConfig&) const = default;
};

struct Config {
    std::string path;  // where it was read from, for messages
    std::vector<LanConfig> lans{1};   // at least one; names unique
    WanConfig wan;
    DnsConfig dns;
    NtpConfig ntp;
    SshConfig ssh;
    FirewallConfig firewall;
    TunnelConfig tunnel;
    Ipv6Config ipv6;
    std::vector<StaticRoute> routes;
    LogConfig log;

    // The segment's subnet id in a routed or delegated prefix (see LanConfig::subnet_id).
    std::optional<uint32_t> subnet_id(const LanConfig& l) const {
        return l.subnet_id ? l.subnet_id : lans.size() == 1 ? std::optional<uint32_t>{0} : std::nullopt;
    }
    // The segment's /64s while the tunnel is the uplink: its own, then its routed one.
    std::vector<Ipv6Prefix> tunnel_prefixes(const LanConfig& l) const;
    const LanConfig* lan_named(const std::string& name) const;
};

struct ConfigError {
    std::string file;
    int line = 0;    // 1-based; 0 when the error has no position (e.g. unreadable file)
    int column = 0;
    std::string message;

    std::string str() const;  // "file:line:col: message"
};

struct ConfigResult {
    std::optional<Config> config;      // set when errors is empty
    std::vector<ConfigError> errors;
};

// A segment's /64 in a routed or delegated prefix: the subnet id fills the bits between the
// prefix's length and 64. An error when the id does not fit ("a /62 has 4 /64s").
Result<Ipv6Prefix> lan_subnet(const Ipv6Prefix& prefix, uint64_t subnet_id);

ConfigResult parse_config_text(std::string_view text, const std::string& path);
ConfigResult load_config(const std::string& path);

}  // namespace netd
