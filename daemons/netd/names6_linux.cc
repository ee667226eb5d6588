// The Linux parts of names6.h: the IPv6 neighbour table (libnl-3 route) and the all-nodes ping
// (a raw ICMPv6 socket).
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/neighbour.h>
#include <net/if.h>
#include <netinet/icmp6.h>
#include <netlink/addr.h>
#include <netlink/cache.h>
#include <netlink/errno.h>
#include <netlink/netlink.h>
#include <netlink/route/link.h>
#include <netlink/route/neighbour.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <map>
#include <memory>

#include "names6.h"

namespace netd {
namespace {

struct SockDeleter { void operator()(nl_sock* s) const { nl_socket_free(s); } };
struct CacheDeleter { void operator()(nl_cache* c) const { nl_cache_free(c); } };
using SockPtr = std::unique_ptr<nl_sock, SockDeleter>;
using CachePtr = std::unique_ptr<nl_cache, CacheDeleter>;

Error nl_error(std::string what, int err) { return Error{what + ": " + nl_geterror(err)}; }

// States of entries for hosts that are there or were recently; INCOMPLETE and FAILED are
// addresses someone asked for that nobody answered, NOARP has no link-layer address.
constexpr int kUsableStates = NUD_REACHABLE | NUD_STALE | NUD_DELAY | NUD_PROBE | NUD_PERMANENT;

}  // namespace

Result<std::vector<Neighbour6>> dump_neighbours6() {
    SockPtr sock(nl_socket_alloc());
    if (!sock) return Error{"neighbours: out of memory"};
    if (int err = nl_connect(sock.get(), NETLINK_ROUTE); err < 0) return nl_error("neighbours: netlink", err);

    nl_cache* raw = nullptr;
    if (int err = rtnl_link_alloc_cache(sock.get(), AF_UNSPEC, &raw); err < 0) return nl_error("neighbours: list links", err);
    CachePtr links(raw);
    std::map<int, std::string> names;
    for (nl_object* o = nl_cache_get_first(links.get()); o; o = nl_cache_get_next(o)) {
        auto* l = reinterpret_cast<rtnl_link*>(o);
        if (const char* n = rtnl_link_get_name(l)) names[rtnl_link_get_ifindex(l)] = n;
    }

    raw = nullptr;
    if (int err = rtnl_neigh_alloc_cache(sock.get(), &raw); err < 0) return nl_error("neighbours: list", err);
    CachePtr cache(raw);
    std::vector<Neighbour6> out;
    for (nl_object* o = nl_cache_get_first(cache.get()); o; o = nl_cache_get_next(o)) {
        auto* n = reinterpret_cast<rtnl_neigh*>(o);
        if (rtnl_neigh_get_family(n) != AF_INET6 || !(rtnl_neigh_get_state(n) & kUsableStates)) continue;
        nl_addr* dst = rtnl_neigh_get_dst(n);
        nl_addr* ll = rtnl_neigh_get_lladdr(n);
        auto name = names.find(rtnl_neigh_get_ifindex(n));
        if (!dst || !ll || name == names.end()) continue;
        if (nl_addr_get_family(dst) != AF_INET6 || nl_addr_get_len(dst) != 16 || nl_addr_get_len(ll) != 6) continue;
        Neighbour6 nb;
        nb.link = name->second;
        std::memcpy(nb.addr.bytes.data(), nl_addr_get_binary_addr(dst), 16);
        std::memcpy(nb.mac.bytes.data(), nl_addr_get_binary_addr(ll), 6);
        if (!is_global_unicast6(nb.addr)) continue;
        out.push_back(std::move(nb));
    }
    return out;
}

Status ping_all_nodes(const std::string& ifname, const Ipv6Addr& source) {
    const std::string what = "ping ff02::1 on " + ifname + " from " + source.str();
    unsigned ifindex = if_nametoindex(ifname.c_str());
    if (ifindex == 0) return Error::from_errno(what + ": " + ifname);
    // Non-blocking: one small datagram, and netd's loop never waits for the link.
    UniqueFd fd(socket(AF_INET6, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_ICMPV6));
    if (!fd) return Error::from_errno(what + ": socket");
    // The link by name too, so that the source address is looked up on it and nothing leaves
    // by another link whatever the routes say.
    if (setsockopt(fd.get(), SOL_SOCKET, SO_BINDTODEVICE, ifname.c_str(), static_cast<socklen_t>(ifname.size())) < 0)
        return Error::from_errno(what + ": bind to device");
    // Nothing is read from the socket: nothing is queued on it either while it is open.
    icmp6_filter filter;
    ICMP6_FILTER_SETBLOCKALL(&filter);
    if (setsockopt(fd.get(), IPPROTO_ICMPV6, ICMP6_FILTER, &filter, sizeof(filter)) < 0)
        return Error::from_errno(what + ": filter");
    int idx = static_cast<int>(ifindex), hops = 1, loop = 0;
    if (setsockopt(fd.get(), IPPROTO_IPV6, IPV6_MULTICAST_IF, &idx, sizeof(idx)) < 0)
        return Error::from_errno(what + ": multicast interface");
    // Link-scope destination: one hop (the default, set so it does not depend on sysctls), and
    // no copy for ourselves.
    if (setsockopt(fd.get(), IPPROTO_IPV6, IPV6_MULTICAST_HOPS, &hops, sizeof(hops)) < 0)
        return Error::from_errno(what + ": multicast hops");
    if (setsockopt(fd.get(), IPPROTO_IPV6, IPV6_MULTICAST_LOOP, &loop, sizeof(loop)) < 0)
        return Error::from_errno(what + ": multicast loop");
    // The global source: hosts answer to it from their global address, resolving ours first,
    // and so appear in the neighbour table with the address worth naming (from a link-local
    // source they would answer from their link-local address).
    sockaddr_in6 src{};
    src.sin6_family = AF_INET6;
    src.sin6_addr = source.to_in6_addr();
    if (bind(fd.get(), reinterpret_cast<sockaddr*>(&src), sizeof(src)) < 0) return Error::from_errno(what + ": bind");

    // The kernel fills in the checksum of ICMPv6 on raw sockets.
    icmp6_hdr echo{};
    echo.icmp6_type = ICMP6_ECHO_REQUEST;
    echo.icmp6_code = 0;
    echo.icmp6_id = htons(static_cast<uint16_t>(getpid()));
    echo.icmp6_seq = htons(1);
    sockaddr_in6 dst{};
    dst.sin6_family = AF_INET6;
    dst.sin6_addr = Ipv6Addr::parse("ff02::1")->to_in6_addr();
    dst.sin6_scope_id = ifindex;
    ssize_t n;
    do n = sendto(fd.get(), &echo, sizeof(echo), 0, reinterpret_cast<sockaddr*>(&dst), sizeof(dst));
    while (n < 0 && errno == EINTR);
    if (n < 0) return Error::from_errno(what + ": send");
    return Ok{};
}

}  // namespace netd
