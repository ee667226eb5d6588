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

private:
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
