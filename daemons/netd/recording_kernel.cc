#include "recording_kernel.h"

namespace netd {

void RecordingKernel::add_link(const std::string& name, const std::string& mac, unsigned mtu) {
    LinkInfo l;
    l.ifindex = ++last_ifindex;
    l.name = name;
    l.mac = MacAddr::parse(mac);
    l.mtu = mtu;
    link_list.push_back(l);
    // The per-link IPv6 values netd may set, with the kernel's defaults.
    for (auto [k, v] : {std::pair{"accept_ra", "1"}, {"accept_ra_defrtr", "1"}, {"accept_ra_pinfo", "1"}, {"autoconf", "1"}, {"addr_gen_mode", "0"},
                          {"dad_transmits", "1"}, {"router_solicitation_delay", "1"}})
        sysctls["net/ipv6/conf/" + name + "/" + k] = v;
}

LinkInfo* RecordingKernel::find(const std::string& name) {
    for (auto& l : link_list)
        if (l.name == name) return &l;
    return nullptr;
}

Status RecordingKernel::op(const std::string& line) {
    if (refuse)
        if (auto why = refuse(line)) return Error{line + ": " + *why};
    ops.push_back(line);
    return Ok{};
}

Status RecordingKernel::set_up(const std::string& link, bool up) {
    LinkInfo* l = find(link);
    if (!l) return Error{"link " + link + ": no such device"};
    if (auto st = op("link " + link + (up ? " up" : " down")); !st) return st;
    l->up = up;
    return Ok{};
}

Status RecordingKernel::set_mtu(const std::string& link, unsigned mtu) {
    LinkInfo* l = find(link);
    if (!l) return Error{"link " + link + ": no such device"};
    if (auto st = op("link " + link + " mtu " + std::to_string(mtu)); !st) return st;
    l->mtu = mtu;
    if (l->sit) l->sit->mtu = mtu;
    return Ok{};
}

Status RecordingKernel::add_address(const IfAddr& a) {
    if (!find(a.link)) return Error{"link " + a.link + ": no such device"};
    if (auto st = op("addr add " + a.str()); !st) return st;
    addrs.insert(a);
    return Ok{};
}

Status RecordingKernel::del_address(const IfAddr& a) {
    if (auto st = op("addr del " + a.str()); !st) return st;
    addrs.erase(a);
    // As the kernel does: an IPv4 route whose gateway was reached through that subnet goes too.
    if (a.addr.family == 4) {
        Ipv4Cidr net{*Ipv4Addr::parse(a.addr.addr_str()), a.addr.len};
        for (auto it = route_set.begin(); it != route_set.end();) {
            bool gone = it->link == a.link && it->gateway && it->gateway->family == 4 &&
                        net.contains(*Ipv4Addr::parse(it->gateway->addr_str()));
            it = gone ? route_set.erase(it) : std::next(it);
        }
    }
    return Ok{};
}

Status RecordingKernel::add_route(const Route& r) {
    if (!r.unreachable && !find(r.link)) return Error{"link " + r.link + ": no such device"};
    for (auto* set : {&route_set, &foreign_routes})
        for (auto& have : *set)
            if (have.dst == r.dst) return Error{"route add " + r.str() + ": File exists"};
    if (auto st = op("route add " + r.str()); !st) return st;
    route_set.insert(r);
    return Ok{};
}

Status RecordingKernel::del_route(const Route& r) {
    if (auto st = op("route del " + r.str()); !st) return st;
    route_set.erase(r);
    return Ok{};
}

Status RecordingKernel::put_sit(const SitSpec& s) {
    if (auto st = op("sit " + s.name + " local " + s.local.str() + " remote " + s.remote.str() + " ttl " +
                     std::to_string(s.ttl) + " mtu " + std::to_string(s.mtu));
        !st)
        return st;
    LinkInfo* l = find(s.name);
    if (!l) {
        add_link(s.name, "", s.mtu);
        l = find(s.name);
        l->mac.reset();
    }
    l->sit = s;
    l->mtu = s.mtu;
    return Ok{};
}

Status RecordingKernel::add_vlan(const VlanSpec& v) {
    if (auto st = op("vlan " + v.name + " on " + v.parent + " id " + std::to_string(v.id)); !st) return st;
    const LinkInfo* parent = find(v.parent);
    if (!parent) return Error{"vlan " + v.name + ": no link " + v.parent};
    if (find(v.name)) return Error{"vlan " + v.name + ": File exists"};
    auto mac = parent->mac;
    add_link(v.name, "", parent->mtu);
    LinkInfo* l = find(v.name);
    l->mac = mac;
    l->up = false;
    l->vlan = v;
    return Ok{};
}

Status RecordingKernel::del_link(const std::string& link) {
    if (auto st = op("link del " + link); !st) return st;
    for (auto it = link_list.begin(); it != link_list.end(); ++it)
        if (it->name == link) {
            link_list.erase(it);
            break;
        }
    for (auto it = addrs.begin(); it != addrs.end();) it = it->link == link ? addrs.erase(it) : std::next(it);
    for (auto it = route_set.begin(); it != route_set.end();)
        it = it->link == link ? route_set.erase(it) : std::next(it);
    for (auto it = sysctls.begin(); it != sysctls.end();)
        it = it->first.find("/" + link + "/") != std::string::npos ? sysctls.erase(it) : std::next(it);
    return Ok{};
}

Result<std::string> RecordingKernel::read_sysctl(const std::string& key) {
    auto it = sysctls.find(key);
    if (it == sysctls.end()) return Error{"open /proc/sys/" + key, ENOENT};
    return it->second;
}

Status RecordingKernel::write_sysctl(const std::string& key, const std::string& value) {
    if (auto st = op("sysctl " + key + "=" + value); !st) return st;
    sysctls[key] = value;
    return Ok{};
}

Result<LoadStats> RecordingKernel::load_ruleset(const nft::Ruleset& r) {
    if (auto st = op("nft load"); !st) return st.error();
    ruleset_text = render_nft(r);
    drops = zero_drop_counts(r);
    return LoadStats{1, ruleset_text.size()};
}

}  // namespace netd
