// Names for IPv6 hosts: a LAN host that got a name over DHCPv4 (dnsmasq) also resolves by AAAA
// to the IPv6 addresses it autoconfigured (SLAAC, from radvd's /64s), and PTR lookups of those
// addresses return the name.
//
// dnsmasq's own `ra-names` would do this, but only with dnsmasq sending the RAs beside radvd.
// Instead netd matches the MACs of dnsmasq's DHCPv4 leases against the kernel's IPv6 neighbour
// table on the LAN links and writes a hosts file into the directory dnsmasq reads with
// `hostsdir=` (dnsmasq re-reads a changed file through inotify, dropping that file's old records,
// and answers AAAA and PTR from it). So that hosts are in the neighbour table before they talk
// to the router, netd sends an echo request to ff02::1 on each LAN link from the segment's
// global address: hosts answer from a global address, resolving the router's address first,
// which leaves an entry for them.
//
// Everything in the lease file comes from DHCP clients (names) and everything in the neighbour
// table from hosts on the LAN: both are hostile until checked, and the output is bounded.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "net_types.h"
#include "unique_fd.h"

namespace netd {

// One DHCPv4 lease of dnsmasq's lease file that carries a usable name.
struct Dhcp4Lease {
    MacAddr mac;
    Ipv4Addr ip;
    std::string name;   // one DNS label, lowercase
    auto operator<=>(const Dhcp4Lease&) const = default;
};

// Limits on what the clients and the LAN can make netd read and write.
inline constexpr size_t kMaxLeaseLine = 1024;          // longer lines are skipped
inline constexpr size_t kMaxLeases = 4096;             // leases kept from one file
inline constexpr size_t kMaxLeaseFile = 4u << 20;      // bytes read from the lease file
inline constexpr size_t kMaxAddrsPerMac = 16;          // IPv6 addresses named per host
inline constexpr size_t kMaxHosts6Lines = 8192;        // lines of the hosts file

// The DHCPv4 leases of a dnsmasq lease file (`EXPIRY MAC IPV4 HOSTNAME CLIENTID` a line,
// HOSTNAME `*` when none) that carry a name which is one valid DNS label. Malformed lines, lines
// over kMaxLeaseLine bytes, non-Ethernet hardware addresses and the DHCPv6 part (after the
// `duid` line) are skipped; at most kMaxLeases are returned, in file order. The expiry is not
// looked at: dnsmasq removes leases it no longer holds.
std::vector<Dhcp4Lease> parse_dnsmasq_leases(std::string_view text);

// An entry of the kernel's IPv6 neighbour table.
struct Neighbour6 {
    std::string link;
    Ipv6Addr addr;
    MacAddr mac;
    auto operator<=>(const Neighbour6&) const = default;
};

// Global unicast (2000::/3) or unique local (fc00::/7): the addresses worth a name.
bool is_global_unicast6(const Ipv6Addr& a);

// The IPv6 neighbours with a link-layer address that are in use or were recently (states
// REACHABLE, STALE, DELAY, PROBE, PERMANENT; not INCOMPLETE, FAILED or NOARP), with global
// unicast addresses only. Linux (libnl-3 route): names6_linux.cc. In the caller's network
// namespace.
Result<std::vector<Neighbour6>> dump_neighbours6();

// One LAN segment as names see it.
struct NameSegment {
    std::string ifname;                  // its link
    std::string domain;                  // e.g. "home.arpa" (a trailing dot is dropped); may be empty
    std::vector<Ipv6Prefix> prefixes;    // the /64s radvd announces on it
};

// The hosts file for dnsmasq: a header comment, then for every neighbour on a segment's link
// whose address lies in one of that segment's prefixes and whose MAC has a named lease, a line
// `ADDR NAME.DOMAIN NAME` (`ADDR NAME` without a domain). Deterministic: lines sorted by name,
// then address; a MAC with leases under several names takes the smallest; an address claimed
// under two different names is left out (someone is lying, or a host just moved); the first
// kMaxAddrsPerMac addresses of a MAC (in address order) and the first kMaxHosts6Lines lines.
std::string hosts6_text(const std::vector<Dhcp4Lease>& leases, const std::vector<Neighbour6>& neighbours,
                        const std::vector<NameSegment>& segments);

// Sends one ICMPv6 echo request to ff02::1 on the link, from source (an address of this host,
// usable at once: without DAD pending). Does not wait for answers: the kernel's neighbour table
// records the hosts that answer. Needs CAP_NET_RAW. Linux: names6_linux.cc.
Status ping_all_nodes(const std::string& ifname, const Ipv6Addr& source);

// Writes content to path through a temporary file and rename(), so dnsmasq never reads a
// half-written file; returns whether the content changed. Unlike write_file_atomic (whose
// temporary is PATH.tmp) the temporary is a dotfile, `.NAME.tmp`, which dnsmasq's hostsdir
// ignores: it would otherwise load the temporary as one more hosts file on its close and keep
// its records after the rename.
Result<bool> write_hosts_file(const std::string& path, const std::string& content);

// The periodic job: the daemon calls probe(), and a few seconds later refresh().
class Names6 {
public:
    using NeighbourSource = std::function<Result<std::vector<Neighbour6>>()>;
    using Pinger = std::function<Status(const std::string& ifname, const Ipv6Addr& source)>;

    // The daemon passes dump_neighbours6 and ping_all_nodes (netd_names6_linux), tests fakes:
    // this part stays free of libnl and raw sockets.
    Names6(NeighbourSource neighbours, Pinger ping) : neighbours_(std::move(neighbours)), ping_(std::move(ping)) {}

    // Pings all nodes on every segment's link from the router's address in the segment's first
    // prefix (its ::1). Every segment is tried; the first failure is returned.
    Status probe(const std::vector<NameSegment>& segments);

    // Reads the lease file (missing: no leases), dumps the neighbours and writes the hosts file
    // to out_path when its text changed. Returns whether it changed; on an error the file is
    // left as it was.
    Result<bool> refresh(const std::vector<NameSegment>& segments, const std::string& leases_path,
                         const std::string& out_path);

private:
    NeighbourSource neighbours_;
    Pinger ping_;
};

}  // namespace netd
