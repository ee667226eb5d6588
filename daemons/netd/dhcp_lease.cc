#include "dhcp_lease.h"

#include <charconv>
#include <map>
#include <sstream>

namespace netd {
namespace {

std::vector<std::string> words(const std::string& s) {
    std::vector<std::string> out;
    std::istringstream in(s);
    for (std::string w; in >> w;) out.push_back(w);
    return out;
}

std::optional<uint64_t> number(const std::string& s) {
    if (s.empty() || s.size() > 10) return std::nullopt;
    uint64_t v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc{} || p != s.data() + s.size()) return std::nullopt;
    return v;
}

// Parses a dotted netmask ("255.255.255.0") into a prefix length; rejects non-contiguous masks.
std::optional<uint8_t> mask_len(const std::string& s) {
    auto a = Ipv4Addr::parse(s);
    if (!a) return std::nullopt;
    uint32_t m = a->host_order;
    uint8_t len = 0;
    while (len < 32 && (m & (0x80000000u >> len))) ++len;
    if (len < 32 && (m << len) != 0) return std::nullopt;
    return len;
}

Status address_list(const std::string& key, const std::string& value, std::vector<Ipv4Addr>& out) {
    auto ws = words(value);
    if (ws.size() > kMaxDhcpList)
        return Error{key + ": " + std::to_string(ws.size()) + " entries, at most " + std::to_string(kMaxDhcpList)};
    for (auto& w : ws) {
        auto a = Ipv4Addr::parse(w);
        if (!a || !is_unicast_host(*a)) return Error{key + ": '" + w + "' is not a unicast IPv4 address"};
        out.push_back(*a);
    }
    return Ok{};
}

// For log lines: printable ASCII only, bounded.
std::string printable(const std::string& s, size_t max = 200) {
    std::string o;
    for (unsigned char c : s.substr(0, max)) o += (c >= 0x20 && c < 0x7f) ? static_cast<char>(c) : '?';
    return o;
}

}  // namespace

const char* to_string(DhcpAction a) {
    switch (a) {
        case DhcpAction::deconfig: return "deconfig";
        case DhcpAction::bound: return "bound";
        case DhcpAction::renew: return "renew";
        case DhcpAction::nak: return "nak";
        case DhcpAction::leasefail: return "leasefail";
    }
    return "?";
}

Result<DhcpEvent> parse_dhcp_event(const std::vector<std::string>& args) {
    if (args.empty()) return Error{"no action"};
    DhcpEvent ev;
    static const std::map<std::string, DhcpAction> actions = {{"deconfig", DhcpAction::deconfig},
                                                              {"bound", DhcpAction::bound},
                                                              {"renew", DhcpAction::renew},
                                                              {"nak", DhcpAction::nak},
                                                              {"leasefail", DhcpAction::leasefail}};
    auto act = actions.find(args[0]);
    if (act == actions.end()) return Error{"unknown action '" + printable(args[0], 40) + "'"};
    ev.action = act->second;

    std::map<std::string, std::string> env;
    for (size_t i = 1; i < args.size(); ++i) {
        auto eq = args[i].find('=');
        if (eq == std::string::npos || eq == 0) return Error{"malformed argument '" + printable(args[i], 40) + "'"};
        std::string key = args[i].substr(0, eq), value = args[i].substr(eq + 1);
        if (value.size() > kMaxDhcpValue) return Error{key + ": value of " + std::to_string(value.size()) + " bytes"};
        for (unsigned char c : value)
            if (c < 0x20 || c == 0x7f) return Error{key + ": control character in value"};
        if (!env.emplace(key, value).second) return Error{key + ": given twice"};
    }
    auto get = [&](const char* k) -> const std::string* {
        auto it = env.find(k);
        return it == env.end() ? nullptr : &it->second;
    };

    const std::string* iface = get("interface");
    if (!iface || !is_valid_interface_name(*iface)) return Error{"interface: missing or invalid"};
    ev.interface = *iface;
    if (ev.action == DhcpAction::nak) {
        if (auto* m = get("message")) ev.message = printable(*m);
        return ev;
    }
    if (ev.action != DhcpAction::bound && ev.action != DhcpAction::renew) return ev;

    DhcpLease l;
    const std::string* ip = get("ip");
    if (!ip) return Error{"ip: missing"};
    auto addr = Ipv4Addr::parse(*ip);
    if (!addr || !is_unicast_host(*addr)) return Error{"ip: '" + printable(*ip, 40) + "' is not a unicast IPv4 address"};
    std::optional<uint8_t> len;
    if (auto* m = get("mask")) {
        auto n = number(*m);
        if (!n || *n < 1 || *n > 32) return Error{"mask: '" + printable(*m, 40) + "' is not a prefix length 1..32"};
        len = static_cast<uint8_t>(*n);
    }
    if (auto* s = get("subnet")) {
        auto sl = mask_len(*s);
        if (!sl || *sl == 0) return Error{"subnet: '" + printable(*s, 40) + "' is not a netmask"};
        if (len && *len != *sl) return Error{"subnet " + *s + " and mask " + std::to_string(*len) + " disagree"};
        len = sl;
    }
    if (!len) return Error{"subnet: missing"};
    l.address = {*addr, *len};
    if (*len < 31) {
        uint32_t host = addr->host_order & ~l.address.netmask();
        if (host == 0 || host == ~l.address.netmask())
            return Error{"ip: " + *ip + " is the network or broadcast address of its subnet"};
    }
    if (auto* r = get("router")) {
        if (auto st = address_list("router", *r, l.routers); !st) return st.error();
        for (auto& g : l.routers)
            if (g == *addr) return Error{"router: " + g.str() + " is our own address"};
    }
    if (auto* d = get("dns"))
        if (auto st = address_list("dns", *d, l.dns); !st) return st.error();
    if (auto* n = get("ntpsrv"))
        if (auto st = address_list("ntpsrv", *n, l.ntp); !st) return st.error();
    if (auto* d = get("domain"); d && !d->empty()) {
        if (!is_valid_domain_name(*d)) return Error{"domain: '" + printable(*d, 60) + "' is not a domain name"};
        l.domain = *d;
    }
    if (auto* s = get("search")) {
        auto ws = words(*s);
        if (ws.size() > 6) return Error{"search: more than 6 domains"};
        for (auto& w : ws) {
            if (!is_valid_domain_name(w)) return Error{"search: '" + printable(w, 60) + "' is not a domain name"};
            l.search.push_back(w);
        }
    }
    if (auto* h = get("hostname"); h && !h->empty()) {
        if (!is_valid_hostname(*h)) return Error{"hostname: '" + printable(*h, 60) + "' is not a host name"};
        l.hostname = *h;
    }
    const std::string* lease = get("lease");
    if (!lease) return Error{"lease: missing"};
    auto secs = number(*lease);
    if (!secs || *secs < kMinDhcpLease || *secs > 0x7fffffff)
        return Error{"lease: '" + printable(*lease, 40) + "' is not a lease time of " + std::to_string(kMinDhcpLease) +
                     " s or more"};
    l.lease_seconds = static_cast<uint32_t>(*secs);
    if (auto* m = get("mtu")) {
        auto v = number(*m);
        if (!v || *v < kMinDhcpMtu || *v > kMaxDhcpMtu)
            return Error{"mtu: '" + printable(*m, 40) + "' is outside " + std::to_string(kMinDhcpMtu) + ".." +
                         std::to_string(kMaxDhcpMtu)};
        l.mtu = static_cast<unsigned>(*v);
    }
    if (auto* s = get("serverid")) {
        auto a = Ipv4Addr::parse(*s);
        if (!a) return Error{"serverid: '" + printable(*s, 40) + "' is not an IPv4 address"};
        l.server_id = *a;
    }
    if (auto* b = get("broadcast")) {
        auto a = Ipv4Addr::parse(*b);
        uint32_t expect = l.address.network().host_order | ~l.address.netmask();
        if (!a || (*len < 31 && a->host_order != expect))
            return Error{"broadcast: '" + printable(*b, 40) + "' does not match the subnet"};
    }
    ev.lease = std::move(l);
    return ev;
}

}  // namespace netd
