// The real Kernel: libnl-3 (route) over one NETLINK_ROUTE socket, /proc/sys, libnftnl.
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
#include <netlink/route/link/vlan.h>
#include <netlink/route/route.h>
#include <unistd.h>

#include <cstring>
#include <map>

#include "kernel.h"

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

int af(uint8_t family) { return family == 4 ? AF_INET : AF_INET6; }
size_t addr_size(uint8_t family) { return family == 4 ? 4 : 16; }

NlAddrPtr to_nl(const IpCidr& c) {
    NlAddrPtr a(nl_addr_build(af(c.family), c.bytes.data(), addr_size(c.family)));
    if (a) nl_addr_set_prefixlen(a.get(), c.len);
    return a;
}

std::optional<IpCidr> from_nl(nl_addr* a) {
    if (!a) return std::nullopt;
    IpCidr c;
    int fam = nl_addr_get_family(a);
    if (fam != AF_INET && fam != AF_INET6) return std::nullopt;
    c.family = fam == AF_INET ? 4 : 6;
    size_t n = std::min<size_t>(nl_addr_get_len(a), addr_size(c.family));
    if (n) std::memcpy(c.bytes.data(), nl_addr_get_binary_addr(a), n);
    c.len = static_cast<uint8_t>(nl_addr_get_prefixlen(a));
    return c;
}

Ipv4Addr from_be(uint32_t be) { return Ipv4Addr{ntohl(be)}; }

class LinuxKernel final : public Kernel {
public:
    explicit LinuxKernel(SockPtr sock) : sock_(std::move(sock)) {}

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
            info.rx_packets = rtnl_link_get_stat(l, RTNL_LINK_RX_PACKETS);
            info.tx_packets = rtnl_link_get_stat(l, RTNL_LINK_TX_PACKETS);
            info.rx_bytes = rtnl_link_get_stat(l, RTNL_LINK_RX_BYTES);
            info.tx_bytes = rtnl_link_get_stat(l, RTNL_LINK_TX_BYTES);
            if (nl_addr* a = rtnl_link_get_addr(l); a && nl_addr_get_len(a) == 6) {
                MacAddr m;
                std::memcpy(m.bytes.data(), nl_addr_get_binary_addr(a), 6);
                info.mac = m;
            }
            if (const char* type = rtnl_link_get_type(l); type && std::strcmp(type, "sit") == 0) {
                SitSpec s;
                s.name = info.name;
                s.local = from_be(rtnl_link_sit_get_local(l));
                s.remote = from_be(rtnl_link_sit_get_remote(l));
                s.ttl = rtnl_link_sit_get_ttl(l);
                s.mtu = info.mtu;
                info.sit = s;
            }
            if (rtnl_link_is_vlan(l)) {
                VlanSpec v;
                v.name = info.name;
                v.id = static_cast<uint16_t>(rtnl_link_vlan_get_id(l));
                v.parent = std::to_string(rtnl_link_get_link(l));   // an ifindex until the names are known
                info.vlan = v;
            }
            out.push_back(std::move(info));
        }
        for (auto& info : out)
            if (info.vlan) {
                int parent = std::atoi(info.vlan->parent.c_str());
                info.vlan->parent.clear();
                for (auto& p : out)
                    if (p.ifindex == parent) info.vlan->parent = p.name;
            }
        return out;
    }

    Result<std::vector<IfAddr>> addresses() override {
        auto names = link_names();
        if (!names) return names.error();
        nl_cache* raw = nullptr;
        if (int err = rtnl_addr_alloc_cache(sock_.get(), &raw); err < 0) return nl_error("list addresses", err);
        CachePtr cache(raw);
        std::vector<IfAddr> out;
        for (nl_object* o = nl_cache_get_first(cache.get()); o; o = nl_cache_get_next(o)) {
            auto* a = reinterpret_cast<rtnl_addr*>(o);
            auto c = from_nl(rtnl_addr_get_local(a));
            auto it = names->find(rtnl_addr_get_ifindex(a));
            if (!c || it == names->end()) continue;
            c->len = static_cast<uint8_t>(rtnl_addr_get_prefixlen(a));
            out.push_back({it->second, *c});
        }
        return out;
    }

    Result<std::vector<Route>> routes() override {
        auto names = link_names();
        if (!names) return names.error();
        nl_cache* raw = nullptr;
        if (int err = rtnl_route_alloc_cache(sock_.get(), AF_UNSPEC, 0, &raw); err < 0) return nl_error("list routes", err);
        CachePtr cache(raw);
        std::vector<Route> out;
        for (nl_object* o = nl_cache_get_first(cache.get()); o; o = nl_cache_get_next(o)) {
            auto* r = reinterpret_cast<rtnl_route*>(o);
            if (rtnl_route_get_protocol(r) != kNetdRouteProto || rtnl_route_get_table(r) != RT_TABLE_MAIN) continue;
            if (rtnl_route_get_type(r) == RTN_UNREACHABLE) {
                if (auto dst = from_nl(rtnl_route_get_dst(r))) out.push_back(Route{*dst, "", std::nullopt, true});
                continue;
            }
            if (rtnl_route_get_nnexthops(r) != 1) continue;
            auto dst = from_nl(rtnl_route_get_dst(r));
            rtnl_nexthop* nh = rtnl_route_nexthop_n(r, 0);
            auto it = names->find(rtnl_route_nh_get_ifindex(nh));
            if (!dst || it == names->end()) continue;
            Route route{*dst, it->second, std::nullopt};
            if (auto gw = from_nl(rtnl_route_nh_get_gateway(nh))) {
                gw->len = gw->family == 4 ? 32 : 128;
                route.gateway = *gw;
            }
            out.push_back(std::move(route));
        }
        return out;
    }

    Status set_up(const std::string& link, bool up) override {
        auto idx = index_of(link);
        if (!idx) return idx.error();
        LinkPtr orig(rtnl_link_alloc()), change(rtnl_link_alloc());
        if (!orig || !change) return Error{"set link: out of memory"};
        rtnl_link_set_ifindex(orig.get(), *idx);
        if (up)
            rtnl_link_set_flags(change.get(), IFF_UP);
        else
            rtnl_link_unset_flags(change.get(), IFF_UP);
        if (int err = rtnl_link_change(sock_.get(), orig.get(), change.get(), 0); err < 0)
            return nl_error("set link " + link + (up ? " up" : " down"), err);
        return Ok{};
    }

    Status set_mtu(const std::string& link, unsigned mtu) override {
        auto idx = index_of(link);
        if (!idx) return idx.error();
        LinkPtr orig(rtnl_link_alloc()), change(rtnl_link_alloc());
        if (!orig || !change) return Error{"set mtu: out of memory"};
        rtnl_link_set_ifindex(orig.get(), *idx);
        rtnl_link_set_mtu(change.get(), mtu);
        if (int err = rtnl_link_change(sock_.get(), orig.get(), change.get(), 0); err < 0)
            return nl_error("set mtu " + std::to_string(mtu) + " on " + link, err);
        return Ok{};
    }

    Status add_address(const IfAddr& a) override {
        auto addr = make_addr(a);
        if (!addr) return addr.error();
        if (a.addr.family == 6) rtnl_addr_set_flags(addr->get(), IFA_F_NODAD);
        if (int err = rtnl_addr_add(sock_.get(), addr->get(), NLM_F_REPLACE); err < 0)
            return nl_error("add address " + a.str(), err);
        return Ok{};
    }

    Status del_address(const IfAddr& a) override {
        auto addr = make_addr(a);
        if (!addr) return addr.error();
        int err = rtnl_addr_delete(sock_.get(), addr->get(), 0);
        if (err < 0 && err != -NLE_NOADDR && err != -NLE_OBJ_NOTFOUND) return nl_error("delete address " + a.str(), err);
        return Ok{};
    }

    Status add_route(const Route& r) override {
        auto route = make_route(r);
        if (!route) return route.error();
        // EXCL: a route someone else holds for the destination is refused, never taken over.
        if (int err = rtnl_route_add(sock_.get(), route->get(), NLM_F_CREATE | NLM_F_EXCL); err < 0)
            return nl_error("add route " + r.str(), err);
        return Ok{};
    }

    Status del_route(const Route& r) override {
        auto route = make_route(r);
        if (!route) return route.error();
        int err = rtnl_route_delete(sock_.get(), route->get(), 0);
        if (err < 0 && err != -NLE_OBJ_NOTFOUND && err != -NLE_NOADDR) return nl_error("delete route " + r.str(), err);
        return Ok{};
    }

    Status put_sit(const SitSpec& s) override {
        LinkPtr l(rtnl_link_sit_alloc());
        if (!l) return Error{"sit: out of memory"};
        rtnl_link_set_name(l.get(), s.name.c_str());
        rtnl_link_sit_set_local(l.get(), s.local.to_in_addr().s_addr);
        rtnl_link_sit_set_remote(l.get(), s.remote.to_in_addr().s_addr);
        rtnl_link_sit_set_ttl(l.get(), s.ttl);
        rtnl_link_sit_set_pmtudisc(l.get(), 1);
        rtnl_link_set_mtu(l.get(), s.mtu);
        // RTM_NEWLINK without NLM_F_EXCL: creates the device, or changes the existing one in
        // place (addresses and routes stay).
        if (int err = rtnl_link_add(sock_.get(), l.get(), NLM_F_CREATE); err < 0)
            return nl_error("sit " + s.name + " local " + s.local.str() + " remote " + s.remote.str(), err);
        return Ok{};
    }

    Status add_vlan(const VlanSpec& v) override {
        const std::string what = "vlan " + v.name + " on " + v.parent + " id " + std::to_string(v.id);
        int parent = if_nametoindex(v.parent.c_str());
        if (parent == 0) return Error::from_errno(what + ": " + v.parent);
        LinkPtr l(rtnl_link_vlan_alloc());
        if (!l) return Error{what + ": out of memory"};
        rtnl_link_set_name(l.get(), v.name.c_str());
        rtnl_link_set_link(l.get(), parent);
        if (int err = rtnl_link_vlan_set_id(l.get(), v.id); err < 0) return nl_error(what, err);
        if (int err = rtnl_link_add(sock_.get(), l.get(), NLM_F_CREATE | NLM_F_EXCL); err < 0) return nl_error(what, err);
        return Ok{};
    }

    Status del_link(const std::string& link) override {
        LinkPtr l(rtnl_link_alloc());
        if (!l) return Error{"delete link: out of memory"};
        rtnl_link_set_name(l.get(), link.c_str());
        if (int err = rtnl_link_delete(sock_.get(), l.get()); err < 0 && err != -NLE_NODEV && err != -NLE_OBJ_NOTFOUND)
            return nl_error("delete link " + link, err);
        return Ok{};
    }

    Result<std::string> read_sysctl(const std::string& key) override {
        std::string path = "/proc/sys/" + key;
        UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
        if (!fd) return Error::from_errno("open " + path);
        char buf[256];
        ssize_t n = read(fd.get(), buf, sizeof(buf));
        if (n < 0) return Error::from_errno("read " + path);
        std::string v(buf, static_cast<size_t>(n));
        while (!v.empty() && (v.back() == '\n' || v.back() == ' ')) v.pop_back();
        return v;
    }

    Status write_sysctl(const std::string& key, const std::string& value) override {
        std::string path = "/proc/sys/" + key;
        UniqueFd fd(open(path.c_str(), O_WRONLY | O_CLOEXEC));
        if (!fd) return Error::from_errno("open " + path);
        if (write(fd.get(), value.data(), value.size()) != static_cast<ssize_t>(value.size()))
            return Error::from_errno("write " + value + " to " + path);
        return Ok{};
    }

    Result<LoadStats> load_ruleset(const nft::Ruleset& r) override { return firewall_.apply(r); }
    Result<std::map<std::string, DropCount>> firewall_drops() override { return firewall_.drop_counts(); }

private:
    Result<std::map<int, std::string>> link_names() {
        auto all = links();
        if (!all) return all.error();
        std::map<int, std::string> m;
        for (auto& l : *all) m[l.ifindex] = l.name;
        return m;
    }

    Result<int> index_of(const std::string& link) {
        unsigned idx = if_nametoindex(link.c_str());
        if (idx == 0) return Error::from_errno("link " + link);
        return static_cast<int>(idx);
    }

    Result<AddrPtr> make_addr(const IfAddr& a) {
        auto idx = index_of(a.link);
        if (!idx) return idx.error();
        AddrPtr addr(rtnl_addr_alloc());
        NlAddrPtr local = to_nl(a.addr);
        if (!addr || !local) return Error{"address: out of memory"};
        rtnl_addr_set_ifindex(addr.get(), *idx);
        rtnl_addr_set_family(addr.get(), af(a.addr.family));
        if (int err = rtnl_addr_set_local(addr.get(), local.get()); err < 0) return nl_error("address " + a.str(), err);
        rtnl_addr_set_prefixlen(addr.get(), a.addr.len);
        return addr;
    }

    Result<RoutePtr> make_route(const Route& r) {
        if (r.unreachable) {
            RoutePtr route(rtnl_route_alloc());
            NlAddrPtr dst = to_nl(r.dst);
            if (!route || !dst) return Error{"route: out of memory"};
            rtnl_route_set_family(route.get(), af(r.dst.family));
            rtnl_route_set_dst(route.get(), dst.get());
            rtnl_route_set_table(route.get(), RT_TABLE_MAIN);
            rtnl_route_set_protocol(route.get(), kNetdRouteProto);
            rtnl_route_set_scope(route.get(), RT_SCOPE_UNIVERSE);
            rtnl_route_set_type(route.get(), RTN_UNREACHABLE);
            if (r.dst.family == 6) rtnl_route_set_priority(route.get(), kNetdRoute6Metric);
            return route;
        }
        auto idx = index_of(r.link);
        if (!idx) return idx.error();
        RoutePtr route(rtnl_route_alloc());
        NlAddrPtr dst = to_nl(r.dst);
        rtnl_nexthop* nh = rtnl_route_nh_alloc();
        if (!route || !dst || !nh) {
            if (nh) rtnl_route_nh_free(nh);
            return Error{"route: out of memory"};
        }
        rtnl_route_set_family(route.get(), af(r.dst.family));
        rtnl_route_set_dst(route.get(), dst.get());
        rtnl_route_set_table(route.get(), RT_TABLE_MAIN);
        rtnl_route_set_protocol(route.get(), kNetdRouteProto);
        rtnl_route_set_scope(route.get(), RT_SCOPE_UNIVERSE);
        rtnl_route_set_type(route.get(), RTN_UNICAST);
        // IPv6: ahead of the kernel's routes from RAs (metric 1024), which the WAN takes with
        // native IPv6 ([ipv6] uplink "auto" keeps them while the tunnel is in use); with the
        // same metric the kernel would refuse netd's route as existing already.
        if (r.dst.family == 6) rtnl_route_set_priority(route.get(), kNetdRoute6Metric);
        rtnl_route_nh_set_ifindex(nh, *idx);
        if (r.gateway) {
            IpCidr g = *r.gateway;
            g.len = g.family == 4 ? 32 : 128;
            NlAddrPtr gw = to_nl(g);
            if (!gw) {
                rtnl_route_nh_free(nh);
                return Error{"route: out of memory"};
            }
            rtnl_route_nh_set_gateway(nh, gw.get());
        }
        rtnl_route_add_nexthop(route.get(), nh);  // the route owns nh now
        return route;
    }

    SockPtr sock_;
    RulesetLoader firewall_;   // its nftables socket and what it loaded last
};

}  // namespace

Result<std::unique_ptr<Kernel>> make_linux_kernel() {
    SockPtr sock(nl_socket_alloc());
    if (!sock) return Error{"nl_socket_alloc failed"};
    if (int err = nl_connect(sock.get(), NETLINK_ROUTE); err < 0) return nl_error("connect NETLINK_ROUTE", err);
    fcntl(nl_socket_get_fd(sock.get()), F_SETFD, FD_CLOEXEC);
    return std::unique_ptr<Kernel>(new LinuxKernel(std::move(sock)));
}

}  // namespace netd
