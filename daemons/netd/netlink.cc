#include "netlink.h"

#include <fcntl.h>
#include <linux/if_addr.h>
#include <net/if.h>
#include <netlink/addr.h>
#include <netlink/cache.h>
#include <netlink/errno.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/link/sit.h>
#include <netlink/route/route.h>
#include <unistd.h>

#include <cstring>

#include "config.h"

namespace netd {
namespace {

// Every libnl object is owned by a unique_ptr with its release function, from the first line.
struct SockDeleter { void operator()(nl_sock* s) const { nl_socket_free(s); } };
struct CacheDeleter { void operator()(nl_cache* c) const { nl_cache_free(c); } };
struct LinkDeleter { void operator()(rtnl_link* l) const { rtnl_link_put(l); } };
struct AddrDeleter { void operator()(rtnl_addr* a) const { rtnl_addr_put(a); } };
struct NlAddrDeleter { void operator()(nl_addr* a) const { nl_addr_put(a); } };
struct RouteDeleter { void operator()(rtnl_route* r) const { rtnl_route_put(r); } };
using RoutePtr = std::unique_ptr<rtnl_route, RouteDeleter>;
using SockPtr = std::unique_ptr<nl_sock, SockDeleter>;
using CachePtr = std::unique_ptr<nl_cache, CacheDeleter>;
using LinkPtr = std::unique_ptr<rtnl_link, LinkDeleter>;
using AddrPtr = std::unique_ptr<rtnl_addr, AddrDeleter>;
using NlAddrPtr = std::unique_ptr<nl_addr, NlAddrDeleter>;

Error nl_error(std::string what, int err) { return Error{what + ": " + nl_geterror(err)}; }

class LibnlNetlink final : public Netlink {
public:
    explicit LibnlNetlink(SockPtr sock) : sock_(std::move(sock)) {}

    Result<std::vector<LinkInfo>> links() override {
        nl_cache* raw = nullptr;
        if (int err = rtnl_link_alloc_cache(sock_.get(), AF_UNSPEC, &raw); err < 0) return nl_error("list links", err);
        CachePtr cache(raw);
        std::vector<LinkInfo> out;
        for (nl_object* o = nl_cache_get_first(cache.get()); o; o = nl_cache_get_next(o)) {
            auto* l = reinterpret_cast<rtnl_link*>(o);
            LinkInfo info;
            info.ifindex = rtnl_link_get_ifindex(l);
            info.name = rtnl_link_get_name(l) ? rtnl_link_get_name(l) : "";
            info.up = rtnl_link_get_flags(l) & IFF_UP;
            info.mtu = rtnl_link_get_mtu(l);
            if (nl_addr* a = rtnl_link_get_addr(l); a && nl_addr_get_len(a) == 6) {
                MacAddr m;
                std::memcpy(m.bytes.data(), nl_addr_get_binary_addr(a), 6);
                info.mac = m;
            }
            out.push_back(std::move(info));
        }
        return out;
    }

    Status set_up(int ifindex) override {
        LinkPtr orig(rtnl_link_alloc()), change(rtnl_link_alloc());
        if (!orig || !change) return Error{"set link up: out of memory"};
        rtnl_link_set_ifindex(orig.get(), ifindex);
        rtnl_link_set_flags(change.get(), IFF_UP);
        if (int err = rtnl_link_change(sock_.get(), orig.get(), change.get(), 0); err < 0)
            return nl_error("set link " + std::to_string(ifindex) + " up", err);
        return Ok{};
    }

    Status add_address(int ifindex, const Ipv4Cidr& cidr) override {
        in_addr a = cidr.addr.to_in_addr();
        return add(ifindex, AF_INET, &a, 4, cidr.len, 0, cidr.str());
    }

    Status add_address(int ifindex, const Ipv6Addr& addr, uint8_t len) override {
        in6_addr a = addr.to_in6_addr();
        return add(ifindex, AF_INET6, &a, 16, len, IFA_F_NODAD, addr.str() + "/" + std::to_string(len));
    }

    Status del_address(int ifindex, const Ipv4Cidr& cidr) override {
        in_addr a = cidr.addr.to_in_addr();
        AddrPtr addr(rtnl_addr_alloc());
        NlAddrPtr local(nl_addr_build(AF_INET, &a, 4));
        if (!addr || !local) return Error{"delete address: out of memory"};
        nl_addr_set_prefixlen(local.get(), cidr.len);
        rtnl_addr_set_ifindex(addr.get(), ifindex);
        rtnl_addr_set_family(addr.get(), AF_INET);
        rtnl_addr_set_local(addr.get(), local.get());
        rtnl_addr_set_prefixlen(addr.get(), cidr.len);
        int err = rtnl_addr_delete(sock_.get(), addr.get(), 0);
        if (err < 0 && err != -NLE_NOADDR && err != -NLE_OBJ_NOTFOUND)
            return nl_error("delete address " + cidr.str(), err);
        return Ok{};
    }

    Status replace_default_route(int ifindex, const Ipv4Addr& gateway) override {
        auto r = default_route(AF_INET);
        if (!r) return r.error();
        in_addr g = gateway.to_in_addr();
        NlAddrPtr gw(nl_addr_build(AF_INET, &g, 4));
        rtnl_nexthop* nh = rtnl_route_nh_alloc();
        if (!gw || !nh) return Error{"default route: out of memory"};
        rtnl_route_nh_set_ifindex(nh, ifindex);
        rtnl_route_nh_set_gateway(nh, gw.get());
        rtnl_route_add_nexthop(r->get(), nh);  // the route owns nh now
        if (int err = rtnl_route_add(sock_.get(), r->get(), NLM_F_REPLACE); err < 0)
            return nl_error("default route via " + gateway.str(), err);
        return Ok{};
    }

    Status del_default_route(int ifindex) override {
        auto r = default_route(AF_INET);
        if (!r) return r.error();
        rtnl_nexthop* nh = rtnl_route_nh_alloc();
        if (!nh) return Error{"default route: out of memory"};
        rtnl_route_nh_set_ifindex(nh, ifindex);
        rtnl_route_add_nexthop(r->get(), nh);
        int err = rtnl_route_delete(sock_.get(), r->get(), 0);
        if (err < 0 && err != -NLE_OBJ_NOTFOUND && err != -NLE_NOADDR)
            return nl_error("delete default route", err);
        return Ok{};
    }

    Status set_mtu(int ifindex, unsigned mtu) override {
        LinkPtr orig(rtnl_link_alloc()), change(rtnl_link_alloc());
        if (!orig || !change) return Error{"set mtu: out of memory"};
        rtnl_link_set_ifindex(orig.get(), ifindex);
        rtnl_link_set_mtu(change.get(), mtu);
        if (int err = rtnl_link_change(sock_.get(), orig.get(), change.get(), 0); err < 0)
            return nl_error("set mtu " + std::to_string(mtu), err);
        return Ok{};
    }

    Result<int> ensure_sit(const std::string& name, Ipv4Addr local, Ipv4Addr remote, unsigned mtu) override {
        LinkPtr l(rtnl_link_sit_alloc());
        if (!l) return Error{"sit: out of memory"};
        rtnl_link_set_name(l.get(), name.c_str());
        rtnl_link_sit_set_local(l.get(), local.to_in_addr().s_addr);
        rtnl_link_sit_set_remote(l.get(), remote.to_in_addr().s_addr);
        rtnl_link_sit_set_ttl(l.get(), 64);
        rtnl_link_sit_set_pmtudisc(l.get(), 1);
        rtnl_link_set_mtu(l.get(), mtu);
        // RTM_NEWLINK without NLM_F_EXCL: creates the device, or changes an existing one in place
        // (addresses and routes stay).
        if (int err = rtnl_link_add(sock_.get(), l.get(), NLM_F_CREATE); err < 0)
            return nl_error("sit " + name + " local " + local.str() + " remote " + remote.str(), err);
        auto all = links();
        if (!all) return all.error();
        for (auto& li : *all)
            if (li.name == name) return li.ifindex;
        return Error{"sit " + name + ": created but not found"};
    }

    Status replace_default_route6(int ifindex) override {
        auto r = default_route(AF_INET6, RTPROT_STATIC);
        if (!r) return r.error();
        rtnl_nexthop* nh = rtnl_route_nh_alloc();
        if (!nh) return Error{"default route: out of memory"};
        rtnl_route_nh_set_ifindex(nh, ifindex);
        rtnl_route_add_nexthop(r->get(), nh);
        if (int err = rtnl_route_add(sock_.get(), r->get(), NLM_F_REPLACE); err < 0)
            return nl_error("IPv6 default route", err);
        return Ok{};
    }

private:
    // A default route of the family in the main table, without next hop yet.
    Result<RoutePtr> default_route(int family, uint8_t protocol = RTPROT_DHCP) {
        RoutePtr r(rtnl_route_alloc());
        in6_addr any{};
        NlAddrPtr dst(nl_addr_build(family, &any, family == AF_INET6 ? 16 : 4));
        if (!r || !dst) return Error{"default route: out of memory"};
        nl_addr_set_prefixlen(dst.get(), 0);
        rtnl_route_set_family(r.get(), family);
        rtnl_route_set_dst(r.get(), dst.get());
        rtnl_route_set_table(r.get(), RT_TABLE_MAIN);
        rtnl_route_set_protocol(r.get(), protocol);
        rtnl_route_set_scope(r.get(), RT_SCOPE_UNIVERSE);
        rtnl_route_set_type(r.get(), RTN_UNICAST);
        return r;
    }

    Status add(int ifindex, int family, const void* bytes, size_t size, uint8_t len, unsigned flags,
               const std::string& text) {
        AddrPtr addr(rtnl_addr_alloc());
        NlAddrPtr local(nl_addr_build(family, bytes, size));
        if (!addr || !local) return Error{"add address: out of memory"};
        nl_addr_set_prefixlen(local.get(), len);
        rtnl_addr_set_ifindex(addr.get(), ifindex);
        rtnl_addr_set_family(addr.get(), family);
        if (int err = rtnl_addr_set_local(addr.get(), local.get()); err < 0) return nl_error("address " + text, err);
        rtnl_addr_set_prefixlen(addr.get(), len);
        if (flags) rtnl_addr_set_flags(addr.get(), flags);
        if (int err = rtnl_addr_add(sock_.get(), addr.get(), NLM_F_REPLACE); err < 0)
            return nl_error("add address " + text, err);
        return Ok{};
    }

    SockPtr sock_;
};

}  // namespace

Result<std::unique_ptr<Netlink>> make_libnl_netlink() {
    SockPtr sock(nl_socket_alloc());
    if (!sock) return Error{"nl_socket_alloc failed"};
    if (int err = nl_connect(sock.get(), NETLINK_ROUTE); err < 0) return nl_error("connect NETLINK_ROUTE", err);
    fcntl(nl_socket_get_fd(sock.get()), F_SETFD, FD_CLOEXEC);
    return std::unique_ptr<Netlink>(new LibnlNetlink(std::move(sock)));
}

Result<LinkInfo> resolve_link(Netlink& nl, const InterfaceRef& ref) {
    auto links = nl.links();
    if (!links) return links.error();
    for (auto& l : *links) {
        if (ref.mac ? (l.mac && *l.mac == *ref.mac) : l.name == ref.device) {
            if (ref.mac && !ref.device.empty() && l.name != ref.device)
                return Error{"interface " + ref.describe() + ": the MAC belongs to " + l.name};
            return l;
        }
    }
    return Error{"no interface " + ref.describe()};
}

Status write_sysctl(const std::string& key, const std::string& value) {
    std::string path = "/proc/sys/" + key;
    UniqueFd fd(open(path.c_str(), O_WRONLY | O_CLOEXEC));
    if (!fd) return Error::from_errno("open " + path);
    if (write(fd.get(), value.data(), value.size()) != static_cast<ssize_t>(value.size()))
        return Error::from_errno("write " + path);
    return Ok{};
}

}  // namespace netd
