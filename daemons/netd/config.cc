#include "config.h"

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <algorithm>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
// toml++ 3.3.0 asserts that a table header starts with a key character; on input such as "[#"
// that is false, and the parser's own error path then reports it properly. Its internal
// asserts would abort netd in debug builds instead (found by tests/fuzz/fuzz_config).
#define TOML_ASSERT(expr) static_assert(true)
#include <toml++/toml.h>

namespace netd {
namespace {

// Walks the TOML tree, converting and validating values; collects every error rather than
// stopping at the first, so one --check run shows them all.
class Reader {
public:
    Reader(std::string path, std::vector<ConfigError>& errors) : path_(std::move(path)), errors_(errors) {}

    void error(const toml::node* where, std::string msg) {
        ConfigError e{path_, 0, 0, std::move(msg)};
        if (where) {
            e.line = static_cast<int>(where->source().begin.line);
            e.column = static_cast<int>(where->source().begin.column);
        }
        errors_.push_back(std::move(e));
    }

    // Reports keys that the schema does not know (typos must not be silently ignored).
    void only_keys(const toml::table& t, const std::string& name, std::set<std::string> allowed) {
        for (auto&& [k, v] : t) {
            if (!allowed.count(std::string(k.str())))
                error(&v, "unknown key '" + std::string(k.str()) + "' in " + name);
        }
    }

    const toml::table* table(const toml::table& parent, const char* key, const std::string& name,
                             bool required) {
        const toml::node* n = parent.get(key);
        if (!n) {
            if (required) error(&parent, "missing required table [" + name + "]");
            return nullptr;
        }
        if (!n->is_table()) {
            error(n, name + ": expected a table");
            return nullptr;
        }
        return n->as_table();
    }

    std::optional<std::string> string(const toml::table& t, const char* key, const std::string& name,
                                      bool required) {
        const toml::node* n = t.get(key);
        if (!n) {
            if (required) error(&t, "missing required key " + name);
            return std::nullopt;
        }
        if (!n->is_string()) {
            error(n, name + ": expected a string");
            return std::nullopt;
        }
        return printable(n, name, n->as_string()->get());
    }

    // TOML escapes (\u0000, \n, \u00e9) produce bytes the raw-text check never saw; a value
    // that reaches a generated file must not carry a line end or a NUL (a directive injected
    // into dnsmasq.conf runs as root). Every string value goes through here.
    std::optional<std::string> printable(const toml::node* n, const std::string& name, const std::string& v) {
        for (unsigned char ch : v) {
            if (ch < 0x20 || ch >= 0x7f) {
                char hex[8];
                std::snprintf(hex, sizeof(hex), "0x%02x", ch);
                error(n, name + ": the string holds " + (ch >= 0x80 ? "the non-ASCII byte " : "the control character ") +
                             hex + " (after unescaping); values are printable ASCII");
                return std::nullopt;
            }
        }
        return v;
    }

    std::optional<bool> boolean(const toml::table& t, const char* key, const std::string& name) {
        const toml::node* n = t.get(key);
        if (!n) return std::nullopt;
        if (!n->is_boolean()) {
            error(n, name + ": expected true or false");
            return std::nullopt;
        }
        return n->as_boolean()->get();
    }

    std::optional<int64_t> integer(const toml::table& t, const char* key, const std::string& name,
                                   int64_t min, int64_t max) {
        const toml::node* n = t.get(key);
        if (!n) return std::nullopt;
        if (!n->is_integer()) {
            error(n, name + ": expected an integer");
            return std::nullopt;
        }
        int64_t v = n->as_integer()->get();
        if (v < min || v > max) {
            error(n, name + ": " + std::to_string(v) + " is out of range " + std::to_string(min) + ".." +
                         std::to_string(max));
            return std::nullopt;
        }
        return v;
    }

    // An array of strings; each element is handed to check() with its node for errors.
    template <typename Check>
    void strings(const toml::table& t, const char* key, const std::string& name, Check check) {
        const toml::node* n = t.get(key);
        if (!n) return;
        if (!n->is_array()) {
            error(n, name + ": expected an array of strings");
            return;
        }
        for (auto&& el : *n->as_array()) {
            if (!el.is_string())
                error(&el, name + ": expected a string");
            else if (auto v = printable(&el, name, el.as_string()->get()))
                check(*v, &el);
        }
    }

    const toml::node* node(const toml::table& t, const char* key) { return t.get(key); }

    InterfaceRef interface(const toml::table& t, const std::string& name) {
        InterfaceRef ref;
        auto dev = string(t, "device", name + ".device", false);
        auto mac = string(t, "mac", name + ".mac", false);
        if (dev) {
            if (is_valid_interface_name(*dev))
                ref.device = *dev;
            else
                error(node(t, "device"), name + ".device: '" + *dev + "' is not a valid interface name");
        }
        if (mac) {
            ref.mac = MacAddr::parse(*mac);
            if (!ref.mac) error(node(t, "mac"), name + ".mac: '" + *mac + "' is not a MAC address (xx:xx:xx:xx:xx:xx)");
        }
        if (!dev && !mac) error(&t, "[" + name + "] needs 'device' or 'mac' to name its interface");
        return ref;
    }

private:
    std::string path_;
    std::vector<ConfigError>& errors_;
};

// dnsmasq reads dhcp-host=MAC,IP,NAME field by field: "ignore" denies the host DHCP,
// "infinite" and "12h", "45m", "3600" are lease times. Such a "name" would change the meaning.
bool is_dnsmasq_host_keyword(const std::string& s) {
    std::string l;
    for (char ch : s) l += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    if (l == "ignore" || l == "infinite") return true;
    size_t digits = 0;
    while (digits < l.size() && std::isdigit(static_cast<unsigned char>(l[digits]))) ++digits;
    if (digits == 0) return false;
    return digits == l.size() || (digits + 1 == l.size() && std::strchr("smhdw", l.back()));
}

void read_dhcp(Reader& r, const toml::table& t, LanConfig& lan) {
    r.only_keys(t, "[lan.dhcp]", {"enabled", "range", "lease_time", "host"});
    auto& d = lan.dhcp;
    if (auto v = r.boolean(t, "enabled", "lan.dhcp.enabled")) d.enabled = *v;
    if (auto v = r.integer(t, "lease_time", "lan.dhcp.lease_time", 120, 31536000)) d.lease_seconds = static_cast<uint32_t>(*v);
    std::vector<std::pair<Ipv4Addr, const toml::node*>> range;
    r.strings(t, "range", "lan.dhcp.range", [&](const std::string& s, const toml::node* n) {
        auto a = Ipv4Addr::parse(s);
        if (!a)
            r.error(n, "lan.dhcp.range: '" + s + "' is not an IPv4 address");
        else if (!lan.ipv4.contains(*a))
            r.error(n, "lan.dhcp.range: " + s + " is outside the LAN subnet " + lan.ipv4.network().str() + "/" +
                           std::to_string(lan.ipv4.len));
        else if (lan.ipv4.len <= 30 && (*a == lan.ipv4.network() ||
                                        a->host_order == (lan.ipv4.network().host_order | ~lan.ipv4.netmask())))
            r.error(n, "lan.dhcp.range: " + s + " is the LAN's network or broadcast address: no host can have it");
        else
            range.emplace_back(*a, n);
    });
    if (const toml::node* rn = r.node(t, "range"); rn && rn->is_array()) {
        if (rn->as_array()->size() != 2)
            r.error(rn, "lan.dhcp.range: expected [\"first\", \"last\"]");
        else if (range.size() == 2) {
            if (range[0].first > range[1].first) r.error(rn, "lan.dhcp.range: first address is after the last");
            if (lan.ipv4.addr >= range[0].first && lan.ipv4.addr <= range[1].first)
                r.error(rn, "lan.dhcp.range: contains the router's own address " + lan.ipv4.addr.str());
            d.range_start = range[0].first;
            d.range_end = range[1].first;
        }
    } else if (d.enabled && lan.ipv4.len > 0 && lan.ipv4.len <= 30) {
        // Default pool: the upper half of the subnet, minus the broadcast address and the
        // router's own (which may be its last host: 192.168.1.254/24).
        uint32_t net = lan.ipv4.network().host_order, size = ~lan.ipv4.netmask() + 1, router = lan.ipv4.addr.host_order;
        uint32_t start = net + size / 2, end = net + size - 2;
        if (router == end)
            end = router - 1;
        else if (router >= start && router < end)
            start = router + 1;
        if (start > end) start = net + 1;  // a /30 with the router on top: the one other host
        d.range_start = {start};
        d.range_end = {end};
    }

    const toml::node* hosts = r.node(t, "host");
    if (!hosts) return;
    if (!hosts->is_array_of_tables()) {
        r.error(hosts, "lan.dhcp.host: expected [[lan.dhcp.host]] tables");
        return;
    }
    std::map<MacAddr, int> seen_mac;
    std::map<Ipv4Addr, int> seen_ip;
    for (auto&& el : *hosts->as_array()) {
        const toml::table& h = *el.as_table();
        r.only_keys(h, "[[lan.dhcp.host]]", {"mac", "ip", "name"});
        auto mac = r.string(h, "mac", "lan.dhcp.host.mac", true);
        auto ip = r.string(h, "ip", "lan.dhcp.host.ip", true);
        auto name = r.string(h, "name", "lan.dhcp.host.name", false);
        StaticLease l;
        bool ok = mac && ip;
        if (mac) {
            auto m = MacAddr::parse(*mac);
            if (!m) {
                r.error(r.node(h, "mac"), "lan.dhcp.host.mac: '" + *mac + "' is not a MAC address");
                ok = false;
            } else if (seen_mac[*m]++) {
                r.error(r.node(h, "mac"), "lan.dhcp.host.mac: " + *mac + " is listed twice");
                ok = false;
            } else {
                l.mac = *m;
            }
        }
        if (ip) {
            auto a = Ipv4Addr::parse(*ip);
            if (!a || !is_lan_host(lan.ipv4, *a)) {
                r.error(r.node(h, "ip"), "lan.dhcp.host.ip: '" + *ip + "' is not a free address in the LAN subnet");
                ok = false;
            } else if (seen_ip[*a]++) {
                r.error(r.node(h, "ip"), "lan.dhcp.host.ip: " + *ip + " is given to two hosts");
                ok = false;
            } else {
                l.ip = *a;
            }
        }
        if (name) {
            if (!is_valid_hostname(*name)) {
                r.error(r.node(h, "name"), "lan.dhcp.host.name: '" + *name + "' is not a valid host name");
                ok = false;
            } else if (is_dnsmasq_host_keyword(*name)) {
                r.error(r.node(h, "name"), "lan.dhcp.host.name: '" + *name +
                                               "' would be read by dnsmasq as a keyword or a lease time, not a name");
                ok = false;
            } else {
                l.name = *name;
            }
        }
        if (ok) d.hosts.push_back(l);
    }
}

// [wan]: the link, and optionally a static address with its gateway and resolvers.
void read_wan(Reader& r, const toml::table& t, Config& c) {
    r.only_keys(t, "[wan]", {"device", "mac", "ipv4", "gateway", "dns"});
    c.wan.interface = r.interface(t, "wan");
    auto& w = c.wan;
    if (auto v = r.string(t, "ipv4", "wan.ipv4", false)) {
        auto cidr = Ipv4Cidr::parse(*v);
        bool edge = cidr && cidr->len <= 30 &&
                    (cidr->addr == cidr->network() ||
                     cidr->addr.host_order == (cidr->network().host_order | ~cidr->netmask()));
        if (!cidr || cidr->len < 8 || cidr->len > 31 || !is_unicast_host(cidr->addr))
            r.error(r.node(t, "ipv4"), "wan.ipv4: '" + *v + "' is not a unicast address with a prefix length 8..31 "
                                       "(e.g. 203.0.113.10/24)");
        else if (edge)
            r.error(r.node(t, "ipv4"), "wan.ipv4: " + *v + " is the network or broadcast address");
        else
            w.ipv4 = *cidr;
    }
    if (auto v = r.string(t, "gateway", "wan.gateway", false)) {
        auto a = Ipv4Addr::parse(*v);
        if (!r.node(t, "ipv4"))
            r.error(r.node(t, "gateway"), "wan.gateway: only with a static wan.ipv4 (DHCP brings the router)");
        else if (!a || !is_unicast_host(*a))
            r.error(r.node(t, "gateway"), "wan.gateway: '" + *v + "' is not a unicast IPv4 address");
        else if (w.ipv4 && (*a == w.ipv4->addr || !w.ipv4->contains(*a)))
            r.error(r.node(t, "gateway"), "wan.gateway: " + *v + " is not another host of " + w.ipv4->network().str() +
                                              "/" + std::to_string(w.ipv4->len));
        else
            w.gateway = *a;
    } else if (w.ipv4) {
        r.error(r.node(t, "ipv4"), "wan.ipv4: a static address needs wan.gateway");
    }
    r.strings(t, "dns", "wan.dns", [&](const std::string& s, const toml::node* n) {
        auto a = Ipv4Addr::parse(s);
        if (!r.node(t, "ipv4"))
            r.error(n, "wan.dns: only with a static wan.ipv4 (DHCP brings the resolvers)");
        else if (!a || !is_unicast_host(*a))
            r.error(n, "wan.dns: '" + s + "' is not a unicast IPv4 address");
        else if (w.dns.size() == 8)
            r.error(n, "wan.dns: at most 8");
        else
            w.dns.push_back(*a);
    });
}

// One segment: [lan] or one [[lan]] (`where` names it in messages: "lan", "lan[2]").
void read_lan(Reader& r, const toml::table& t, LanConfig& lan, const std::string& where, bool many) {
    r.only_keys(t, "[" + where + "]", {"name", "device", "mac", "vlan", "ipv4", "ipv6_prefixes", "domain", "dhcp",
                                     "subnet_id", "trust", "ssh"});
    if (auto v = r.string(t, "name", where + ".name", false)) {
        bool ok = !v->empty() && v->size() <= 12 && std::islower(static_cast<unsigned char>((*v)[0]));
        for (char ch : *v) ok = ok && (std::islower(static_cast<unsigned char>(ch)) || std::isdigit(static_cast<unsigned char>(ch)));
        if (ok)
            lan.name = *v;
        else
            r.error(r.node(t, "name"), where + ".name: '" + *v + "' is not 1..12 lowercase letters and digits, "
                                       "starting with a letter");
    } else if (many) {
        lan.name = where;   // "lan1", "lan2", ... (set by the caller)
    }
    lan.interface = r.interface(t, where);
    if (auto v = r.integer(t, "vlan", where + ".vlan", 1, 4094)) {
        lan.vlan = static_cast<uint16_t>(*v);
        if (!lan.interface.device.empty() && vlan_link_name(lan.interface.device, lan.vlan).size() > 15)
            r.error(r.node(t, "vlan"), where + ".vlan: the VLAN's link name " + vlan_link_name(lan.interface.device, lan.vlan) +
                                       " would be longer than 15 characters");
    }
    if (auto v = r.string(t, "ipv4", where + ".ipv4", true)) {
        auto cidr = Ipv4Cidr::parse(*v);
        if (!cidr || cidr->len < 8 || cidr->len > 30)
            r.error(r.node(t, "ipv4"), where + ".ipv4: '" + *v + "' is not an address with a prefix length 8..30 (e.g. 192.168.1.1/24)");
        else if (cidr->addr == cidr->network() || cidr->addr.host_order == (cidr->network().host_order | ~cidr->netmask()))
            r.error(r.node(t, "ipv4"), where + ".ipv4: " + *v + " is the network or broadcast address");
        else
            lan.ipv4 = *cidr;
    }
    r.strings(t, "ipv6_prefixes", where + ".ipv6_prefixes", [&](const std::string& s, const toml::node* n) {
        auto p = Ipv6Prefix::parse(s);
        if (!p)
            r.error(n, where + ".ipv6_prefixes: '" + s + "' is not an IPv6 prefix with no host bits (e.g. 2001:db8:1::/64)");
        else if (p->len != 64)
            r.error(n, where + ".ipv6_prefixes: " + s + ": SLAAC needs a /64");
        else if (p->addr.is_link_local() || p->addr.is_multicast())
            r.error(n, where + ".ipv6_prefixes: " + s + " is link-local or multicast");
        else
            lan.ipv6_prefixes.push_back(*p);
    });
    if (auto v = r.integer(t, "subnet_id", where + ".subnet_id", 0, 0xffffffff)) lan.subnet_id = static_cast<uint32_t>(*v);
    if (auto v = r.string(t, "domain", where + ".domain", false)) {
        if (is_valid_domain_name(*v))
            lan.domain = *v;
        else
            r.error(r.node(t, "domain"), where + ".domain: '" + *v + "' is not a valid domain name");
    }
    if (auto v = r.string(t, "trust", where + ".trust", false)) {
        if (*v == "full")
            lan.trust = Trust::full;
        else if (*v == "guest")
            lan.trust = Trust::guest;
        else
            r.error(r.node(t, "trust"), where + ".trust: '" + *v + "' is not full or guest");
    }
    if (auto v = r.boolean(t, "ssh", where + ".ssh")) {
        lan.ssh = *v;
        if (*v && lan.trust == Trust::guest)
            r.error(r.node(t, "ssh"), where + ".ssh: a guest segment never reaches the router's SSH");
    }
    if (lan.trust == Trust::guest) lan.ssh = false;
    if (auto* d = r.table(t, "dhcp", where + ".dhcp", false)) read_dhcp(r, *d, lan);
    else if (lan.ipv4.len > 0) {
        toml::table empty;
        read_dhcp(r, empty, lan);
    }
}

bool overlaps4(const Ipv4Cidr& a, const Ipv4Cidr& b) {
    return a.len <= b.len ? a.contains(b.network()) : b.contains(a.network());
}
bool overlaps6(const Ipv6Prefix& a, const Ipv6Prefix& b) {
    return a.len <= b.len ? a.contains(b.addr) : b.contains(a.addr);
}

// [lan] or [[lan]]: the segments, then what they must not share.
void read_lans(Reader& r, const toml::table& root, Config& c) {
    const toml::node* n = root.get("lan");
    c.lans.clear();
    if (!n) {
        r.error(&root, "missing required table [lan] (or [[lan]] segments)");
        return;
    }
    std::vector<const toml::table*> tables;
    if (n->is_table())
        tables.push_back(n->as_table());
    else if (n->is_array_of_tables() && !n->as_array()->empty() && n->as_array()->size() <= 16)
        for (auto&& el : *n->as_array()) tables.push_back(el.as_table());
    else {
        r.error(n, "lan: expected a [lan] table or 1..16 [[lan]] tables");
        return;
    }
    const bool many = n->is_array_of_tables();
    c.lans.clear();
    for (size_t i = 0; i < tables.size(); ++i) {
        LanConfig l;
        std::string where = many ? "lan" + std::to_string(i + 1) : "lan";
        read_lan(r, *tables[i], l, where, many);
        c.lans.push_back(std::move(l));
    }
}

// Across segments (after [tunnel], for the routed prefix): names, links, subnets and ids
// unique; the routed prefix big enough for the ids asked.
void check_lans(Reader& r, const toml::table& root, Config& c) {
    const toml::node* n = root.get("lan");
    auto at = [&](size_t i, const char* key) -> const toml::node* {
        const toml::table* t = n->is_table() ? n->as_table() : (*n->as_array())[i].as_table();
        const toml::node* k = key ? t->get(key) : nullptr;
        return k ? k : t;
    };
    std::map<MacAddr, std::string> host_macs;
    std::set<uint32_t> ids;
    for (size_t i = 0; i < c.lans.size(); ++i) {
        const auto& a = c.lans[i];
        const std::string seg = "segment '" + a.name + "'";
        for (size_t j = 0; j < i; ++j) {
            const auto& b = c.lans[j];
            const std::string other = "segment '" + b.name + "'";
            if (a.name == b.name) r.error(at(i, "name"), seg + ": the name is used twice");
            bool same_if = (!a.interface.device.empty() && a.interface.device == b.interface.device) ||
                           (a.interface.mac && b.interface.mac && *a.interface.mac == *b.interface.mac);
            if (same_if && a.vlan == b.vlan)
                r.error(at(i, a.interface.mac ? "mac" : "device"),
                        seg + ": " + other + " is on the same interface" + (a.vlan ? " and VLAN" : "") +
                            (a.vlan ? "" : " (a second segment on one NIC needs its own vlan)"));
            if (a.ipv4.len && b.ipv4.len && overlaps4(a.ipv4, b.ipv4))
                r.error(at(i, "ipv4"), seg + ": " + a.ipv4.str() + " overlaps " + other + " (" + b.ipv4.str() + ")");
            for (auto& p : c.tunnel_prefixes(a))
                for (auto& q : c.tunnel_prefixes(b))
                    if (p == q) r.error(at(i, "ipv6_prefixes"), seg + ": " + p.str() + " is also on " + other);
        }
        if (auto id = c.subnet_id(a)) {
            if (!ids.insert(*id).second)
                r.error(at(i, "subnet_id"), seg + ": subnet_id " + std::to_string(*id) + " is taken by another segment");
            if (c.tunnel.routed_prefix)
                if (auto p = lan_subnet(*c.tunnel.routed_prefix, *id); !p)
                    r.error(at(i, "subnet_id"), seg + ": tunnel.routed_prefix " + p.error().str());
        }
        for (auto& h : a.dhcp.hosts) {
            auto [it, fresh] = host_macs.emplace(h.mac, a.name);
            if (!fresh && it->second != a.name)
                r.error(at(i, "dhcp"), seg + ": dhcp host " + h.mac.str() + " is also listed in segment '" + it->second + "'");
        }
    }
}

// [[route]]: static routes to networks behind downstream routers on a segment.
void read_routes(Reader& r, const toml::node& n, Config& c) {
    if (!n.is_array_of_tables() || n.as_array()->size() > 64) {
        r.error(&n, "route: expected at most 64 [[route]] tables");
        return;
    }
    for (auto&& el : *n.as_array()) {
        const toml::table& t = *el.as_table();
        r.only_keys(t, "[[route]]", {"to", "via", "lan"});
        auto to = r.string(t, "to", "route.to", true);
        auto via = r.string(t, "via", "route.via", true);
        auto lan = r.string(t, "lan", "route.lan", false);
        if (!to || !via) continue;
        StaticRoute sr;
        const LanConfig* seg = nullptr;
        if (lan) {
            seg = c.lan_named(*lan);
            if (!seg) {
                r.error(r.node(t, "lan"), "route.lan: no segment named '" + *lan + "'");
                continue;
            }
        }
        if (auto p4 = Ipv4Cidr::parse(*to)) {
            auto v4 = Ipv4Addr::parse(*via);
            if (p4->addr != p4->network() || p4->len == 0) {
                r.error(r.node(t, "to"), "route.to: " + *to + " has host bits set or is the default route");
                continue;
            }
            if (!v4) {
                r.error(r.node(t, "via"), "route.via: '" + *via + "' is not an IPv4 address (route.to is IPv4)");
                continue;
            }
            for (auto& l : c.lans)
                if ((!seg || seg == &l) && is_lan_host(l.ipv4, *v4)) seg = &l;
            if (!seg || !is_lan_host(seg->ipv4, *v4)) {
                r.error(r.node(t, "via"), "route.via: " + *via + " is not another host on a segment's IPv4 subnet");
                continue;
            }
            bool bad = false;
            for (auto& l : c.lans)
                if (overlaps4(*p4, Ipv4Cidr{l.ipv4.network(), l.ipv4.len})) {
                    r.error(r.node(t, "to"), "route.to: " + *to + " overlaps segment '" + l.name + "' (" + l.ipv4.str() + ")");
                    bad = true;
                }
            if (bad) continue;
            sr.to = IpCidr::v4(p4->addr, p4->len);
            sr.via = IpCidr::v4(*v4);
        } else if (auto p6 = Ipv6Prefix::parse(*to)) {
            auto v6 = Ipv6Addr::parse(*via);
            if (p6->len == 0 || p6->addr.is_link_local() || p6->addr.is_multicast()) {
                r.error(r.node(t, "to"), "route.to: " + *to + " is the default route, link-local or multicast");
                continue;
            }
            if (!v6 || v6->is_multicast()) {
                r.error(r.node(t, "via"), "route.via: '" + *via + "' is not an IPv6 address (route.to is IPv6)");
                continue;
            }
            if (v6->is_link_local()) {
                if (!seg) {
                    r.error(r.node(t, "via"), "route.via: a link-local " + *via + " needs route.lan (which segment)");
                    continue;
                }
            } else {
                for (auto& l : c.lans)
                    for (auto& p : c.tunnel_prefixes(l))
                        if ((!seg || seg == &l) && p.contains(*v6)) seg = &l;
                bool on = false;
                if (seg)
                    for (auto& p : c.tunnel_prefixes(*seg)) on = on || (p.contains(*v6) && *v6 != p.with_host(1));
                if (!on) {
                    r.error(r.node(t, "via"), "route.via: " + *via + " is not another host in a segment's IPv6 prefixes");
                    continue;
                }
            }
            bool bad = false;
            for (auto& l : c.lans)
                for (auto& p : c.tunnel_prefixes(l))
                    if (overlaps6(*p6, p)) {
                        r.error(r.node(t, "to"), "route.to: " + *to + " overlaps segment '" + l.name + "' (" + p.str() + ")");
                        bad = true;
                    }
            if (bad) continue;
            sr.to = IpCidr::v6(p6->addr, p6->len);
            sr.via = IpCidr::v6(*v6);
        } else {
            r.error(r.node(t, "to"), "route.to: '" + *to + "' is not an IPv4 or IPv6 network (e.g. 10.20.0.0/16)");
            continue;
        }
        sr.lan = seg->name;
        bool dup = false;
        for (auto& x : c.routes) dup = dup || x.to == sr.to;
        if (dup) {
            r.error(r.node(t, "to"), "route.to: " + *to + " is routed twice");
            continue;
        }
        c.routes.push_back(sr);
    }
}

// [ipv6]: where the LAN's IPv6 comes from. Checked against [tunnel] once both are read.
void read_ipv6(Reader& r, const toml::table& t, Config& c, bool have_tunnel) {
    r.only_keys(t, "[ipv6]", {"uplink", "native_wait"});
    if (auto v = r.string(t, "uplink", "ipv6.uplink", true)) {
        if (*v == "tunnel")
            c.ipv6.uplink = Uplink6::tunnel;
        else if (*v == "native")
            c.ipv6.uplink = Uplink6::native;
        else if (*v == "auto")
            c.ipv6.uplink = Uplink6::auto_;
        else
            r.error(r.node(t, "uplink"), "ipv6.uplink: '" + *v + "' is not auto, native or tunnel");
        if (!have_tunnel && (c.ipv6.uplink == Uplink6::tunnel || c.ipv6.uplink == Uplink6::auto_))
            r.error(r.node(t, "uplink"), "ipv6.uplink: \"" + *v + "\" needs a [tunnel]");
        if (have_tunnel && c.ipv6.uplink == Uplink6::native)
            r.error(r.node(t, "uplink"), "ipv6.uplink: \"native\" never uses the [tunnel]: remove it, or use \"auto\"");
    }
    if (auto v = r.integer(t, "native_wait", "ipv6.native_wait", 5, 600)) {
        c.ipv6.native_wait = static_cast<unsigned>(*v);
        if (c.ipv6.uplink != Uplink6::auto_)
            r.error(r.node(t, "native_wait"), "ipv6.native_wait: only for uplink = \"auto\"");
    }
}

// [log]: the remote log host (log_forward.h). The local log needs no configuration.
void read_log(Reader& r, const toml::table& t, Config& c) {
    r.only_keys(t, "[log]", {"remote"});
    if (auto v = r.string(t, "remote", "log.remote", false)) {
        if (auto remote = parse_log_remote(*v))
            c.log.remote = *remote;
        else
            r.error(r.node(t, "remote"), "log.remote: " + remote.error().str());
    }
}

void read_dns(Reader& r, const toml::table& t, Config& c) {
    r.only_keys(t, "[dns]", {"upstream", "cache_size"});
    r.strings(t, "upstream", "dns.upstream", [&](const std::string& s, const toml::node* n) {
        // Kept as re-rendered from the parsed address, never as the text given.
        if (auto a4 = Ipv4Addr::parse(s))
            c.dns.upstream.push_back(a4->str());
        else if (auto a6 = Ipv6Addr::parse(s))
            c.dns.upstream.push_back(a6->str());
        else
            r.error(n, "dns.upstream: '" + s + "' is not an IPv4 or IPv6 address");
    });
    if (auto v = r.integer(t, "cache_size", "dns.cache_size", 0, 10000)) c.dns.cache_size = static_cast<uint32_t>(*v);
}

void read_ntp(Reader& r, const toml::table& t, Config& c) {
    r.only_keys(t, "[ntp]", {"servers", "serve_lan"});
    r.strings(t, "servers", "ntp.servers", [&](const std::string& s, const toml::node* n) {
        if (auto a4 = Ipv4Addr::parse(s))
            c.ntp.servers.push_back(a4->str());
        else if (auto a6 = Ipv6Addr::parse(s))
            c.ntp.servers.push_back(a6->str());
        else if (is_valid_domain_name(s))
            c.ntp.servers.push_back(s);
        else
            r.error(n, "ntp.servers: '" + s + "' is not a host name or address");
    });
    if (auto v = r.boolean(t, "serve_lan", "ntp.serve_lan")) c.ntp.serve_lan = *v;
}

void read_ssh(Reader& r, const toml::table& t, Config& c) {
    r.only_keys(t, "[ssh]", {"enabled", "port", "allow_wan"});
    if (auto v = r.boolean(t, "enabled", "ssh.enabled")) c.ssh.enabled = *v;
    if (auto v = r.integer(t, "port", "ssh.port", 1, 65535)) {
        c.ssh.port = static_cast<uint16_t>(*v);
        // sshd starts after dnsmasq: on dnsmasq's port it could never bind and would end up
        // "failed". (dnsmasq's DHCP and ntpd are UDP: no clash with sshd's TCP.)
        if (c.ssh.port == 53)
            r.error(r.node(t, "port"), "ssh.port: 53 is the DNS port dnsmasq listens on (TCP too); choose another");
    }
    if (auto v = r.boolean(t, "allow_wan", "ssh.allow_wan")) c.ssh.allow_wan = *v;
}

std::optional<Proto> parse_proto(const std::string& s) {
    if (s == "tcp") return Proto::tcp;
    if (s == "udp") return Proto::udp;
    return std::nullopt;
}

// [firewall]: openings from outside and a blocklist. Checked against [lan] (hosts must be on
// it) and [ssh] (a forward must not shadow the router's own SSH).
void read_firewall(Reader& r, const toml::table& t, Config& c) {
    r.only_keys(t, "[firewall]", {"open6", "forward4", "blocklist", "flow_offload"});
    auto& fw = c.firewall;
    if (auto v = r.boolean(t, "flow_offload", "firewall.flow_offload")) fw.flow_offload = *v;
    // The blocklist is checked before anything else, the LAN included: an entry that covers what
    // the LAN itself needs would lock the LAN out of DHCP, DNS, SSH or neighbour discovery.
    auto check4 = [&](const Ipv4Cidr& p, const std::string& s, const toml::node* n) {
        for (auto& l : c.lans) {
            auto lan = l.ipv4.network();
            if (p.len <= l.ipv4.len && p.contains(lan))
                return r.error(n, "firewall.blocklist: " + s + " covers the LAN subnet " + lan.str() + "/" +
                                      std::to_string(l.ipv4.len) + " (the LAN would lose DHCP, DNS and SSH)");
        }
        if (p.contains(Ipv4Addr{0}))
            r.error(n, "firewall.blocklist: " + s + " covers 0.0.0.0, the source of DHCP requests");
        else
            fw.blocklist4.push_back(p);
    };
    auto check6 = [&](const Ipv6Prefix& p, const std::string& s, const toml::node* n) {
        for (auto& l : c.lans)
            for (auto& lan : c.tunnel_prefixes(l))
                if (p.len <= lan.len && p.contains(lan.addr))
                    return r.error(n, "firewall.blocklist: " + s + " covers the LAN prefix " + lan.str());
        Ipv6Prefix link_local{*Ipv6Addr::parse("fe80::"), 10};
        if (p.contains(link_local.addr) || link_local.contains(p.addr))
            return r.error(n, "firewall.blocklist: " + s +
                                  " overlaps fe80::/10: link-local addresses carry neighbour discovery");
        if (p.contains(Ipv6Addr{}))
            return r.error(n, "firewall.blocklist: " + s +
                                  " covers ::, the source of duplicate address detection");
        fw.blocklist6.push_back(p);
    };
    r.strings(t, "blocklist", "firewall.blocklist", [&](const std::string& s, const toml::node* n) {
        if (auto p4 = Ipv4Cidr::parse(s)) {
            if (p4->addr != p4->network())
                r.error(n, "firewall.blocklist: " + s + " has host bits set past its length");
            else
                check4(*p4, s, n);
        } else if (auto p6 = Ipv6Prefix::parse(s)) {
            check6(*p6, s, n);
        } else if (auto a4 = Ipv4Addr::parse(s)) {
            check4({*a4, 32}, s, n);
        } else if (auto a6 = Ipv6Addr::parse(s)) {
            check6({*a6, 128}, s, n);
        } else {
            r.error(n, "firewall.blocklist: '" + s + "' is not an IPv4 or IPv6 address or prefix");
        }
    });
    auto tables = [&](const char* key, const std::string& name, auto&& each) {
        const toml::node* n = r.node(t, key);
        if (!n) return;
        if (!n->is_array_of_tables()) {
            r.error(n, name + ": expected [[" + name + "]] tables");
            return;
        }
        for (auto&& el : *n->as_array()) each(*el.as_table());
    };
    auto proto_port = [&](const toml::table& h, const std::string& name, Proto& proto, uint16_t& port) {
        bool ok = true;
        if (auto p = r.string(h, "proto", name + ".proto", false)) {
            if (auto pp = parse_proto(*p))
                proto = *pp;
            else {
                r.error(r.node(h, "proto"), name + ".proto: '" + *p + "' is not tcp or udp");
                ok = false;
            }
        }
        if (auto v = r.integer(h, "port", name + ".port", 1, 65535))
            port = static_cast<uint16_t>(*v);
        else
            ok = false;
        return ok;
    };
    tables("open6", "firewall.open6", [&](const toml::table& h) {
        r.only_keys(h, "[[firewall.open6]]", {"host", "proto", "port"});
        Open6 o;
        bool ok = proto_port(h, "firewall.open6", o.proto, o.port);
        if (!r.node(h, "port")) {
            r.error(&h, "firewall.open6: 'port' is required");
            ok = false;
        }
        auto host = r.string(h, "host", "firewall.open6.host", true);
        if (!host) return;
        auto a = Ipv6Addr::parse(*host);
        bool on_lan = false;
        for (auto& l : c.lans)
            for (auto& p : c.tunnel_prefixes(l))
                // LAN prefixes are /64s: the host is on one when its first 8 bytes match.
                if (a && std::equal(p.addr.bytes.begin(), p.addr.bytes.begin() + 8, a->bytes.begin())) on_lan = true;
        if (!a || !on_lan) {
            r.error(r.node(h, "host"), "firewall.open6.host: '" + *host +
                                           "' is not an address in a segment's ipv6_prefixes or routed /64");
            return;
        }
        o.host = *a;
        for (auto& x : fw.open6)
            if (x == o) {
                r.error(&h, "firewall.open6: " + *host + " " + to_string(o.proto) + "/" + std::to_string(o.port) +
                                " is listed twice");
                return;
            }
        if (ok) fw.open6.push_back(o);
    });
    tables("forward4", "firewall.forward4", [&](const toml::table& h) {
        r.only_keys(h, "[[firewall.forward4]]", {"proto", "port", "to", "to_port"});
        Forward4 f;
        bool ok = proto_port(h, "firewall.forward4", f.proto, f.port);
        if (!r.node(h, "port")) {
            r.error(&h, "firewall.forward4: 'port' is required");
            ok = false;
        }
        f.to_port = f.port;
        if (auto v = r.integer(h, "to_port", "firewall.forward4.to_port", 1, 65535)) f.to_port = static_cast<uint16_t>(*v);
        auto to = r.string(h, "to", "firewall.forward4.to", true);
        if (!to) return;
        auto a = Ipv4Addr::parse(*to);
        bool on_lan = false;
        for (auto& l : c.lans) on_lan = on_lan || (a && is_lan_host(l.ipv4, *a));
        if (!on_lan) {
            r.error(r.node(h, "to"), "firewall.forward4.to: '" + *to + "' is not a host address in a LAN subnet");
            return;
        }
        f.to = *a;
        for (auto& x : fw.forward4)
            if (x.proto == f.proto && x.port == f.port) {
                r.error(&h, std::string("firewall.forward4: ") + to_string(f.proto) + " port " + std::to_string(f.port) +
                                " is forwarded twice");
                return;
            }
        if (c.ssh.enabled && c.ssh.allow_wan && f.proto == Proto::tcp && f.port == c.ssh.port) {
            r.error(&h, "firewall.forward4: tcp port " + std::to_string(f.port) +
                            " is the router's own SSH port, open on WAN ([ssh] allow_wan)");
            return;
        }
        if (ok) fw.forward4.push_back(f);
    });
}

// A [tunnel] credential or id: it goes into an HTTP query or a TIC line, so printable, no
// spaces, no ':' '"' '\\'.
void tunnel_token(Reader& r, const toml::table& t, const char* key, std::string& out, bool required, size_t max) {
    auto v = r.string(t, key, std::string("tunnel.") + key, required);
    if (!v) return;
    bool ok = !v->empty() && v->size() <= max;
    for (char ch : *v) ok = ok && ch > ' ' && ch < 0x7f && ch != ':' && ch != '"' && ch != '\\';
    if (!ok)
        r.error(r.node(t, key), std::string("tunnel.") + key + ": expected 1.." + std::to_string(max) +
                                    " printable characters without spaces, ':', '\"' or '\\'");
    else
        out = *v;
}

// ---- [tunnel] with SixXS TIC (tic.h) ----
// heartbeat: tic_server, tic_username, tic_password and tunnel_id instead of the parameters
// TIC gives (remote, local_ipv6, remote_ipv6, password, interval, mtu). Returns whether the
// table uses TIC; reports what is missing, malformed or given twice.
bool read_tunnel_tic(Reader& r, const toml::table& t, TunnelConfig& tu) {
    static const char* const tic_keys[] = {"tic_server", "tic_username", "tic_password"};
    bool any = false;
    for (const char* k : tic_keys) any = any || r.node(t, k);
    if (!any) return false;
    if (tu.mode != TunnelMode::heartbeat) {
        for (const char* k : tic_keys)
            if (r.node(t, k)) r.error(r.node(t, k), std::string("tunnel.") + k + ": only for mode = \"heartbeat\"");
        return false;
    }
    if (auto v = r.string(t, "tic_server", "tunnel.tic_server", true)) {
        // "host" or "host:port": an IPv4 address or a host name (not one ending in a number).
        std::string host = *v;
        bool ok = true;
        if (auto colon = v->rfind(':'); colon != std::string::npos) {
            host = v->substr(0, colon);
            std::string port = v->substr(colon + 1);
            ok = !port.empty() && port.size() <= 5 && port.find_first_not_of("0123456789") == std::string::npos &&
                 std::stoul(port) >= 1 && std::stoul(port) <= 65535;
        }
        auto a = Ipv4Addr::parse(host);
        std::string last = host.substr(host.rfind('.') == std::string::npos ? 0 : host.rfind('.') + 1);
        if (a)
            ok = ok && is_unicast_host(*a);
        else
            ok = ok && is_valid_domain_name(host) && !last.empty() &&
                 last.find_first_not_of("0123456789") != std::string::npos;
        if (!ok)
            r.error(r.node(t, "tic_server"), "tunnel.tic_server: '" + *v +
                                                 "' is not \"host\" or \"host:port\" (an IPv4 address or a host name)");
        else
            tu.tic_server = *v;
    }
    auto token = [&](const char* key, std::string& out, size_t max) { tunnel_token(r, t, key, out, true, max); };
    token("tic_username", tu.tic_username, 64);
    token("tic_password", tu.tic_password, 128);
    for (const char* k : {"remote", "local_ipv6", "remote_ipv6", "password", "interval", "mtu"})
        if (r.node(t, k))
            r.error(r.node(t, k), std::string("tunnel.") + k + ": not with tic_server: TIC gives the tunnel's " +
                                      "parameters (remove either)");
    return true;
}
// ---- end of [tunnel] with TIC ----

// [tunnel]: one 6in4 tunnel. Credentials are checked for syntax only (they go into an HTTP
// header and a hash, never into a shell or a file).
void read_tunnel(Reader& r, const toml::table& t, Config& c) {
    r.only_keys(t, "[tunnel]", {"mode", "remote", "local_ipv6", "remote_ipv6", "mtu", "tunnel_id", "username",
                                "update_key", "update_url", "ca_file", "password", "interval", "sender",
                                "tic_server", "tic_username", "tic_password", "routed_prefix"});
    auto& tu = c.tunnel;
    auto mode = r.string(t, "mode", "tunnel.mode", true);
    if (!mode) return;
    if (*mode == "he")
        tu.mode = TunnelMode::he;
    else if (*mode == "heartbeat")
        tu.mode = TunnelMode::heartbeat;
    else if (*mode == "static")
        tu.mode = TunnelMode::static_;
    else {
        r.error(r.node(t, "mode"), "tunnel.mode: '" + *mode + "' is not he, heartbeat or static");
        return;
    }
    const bool tic = read_tunnel_tic(r, t, tu);   // then remote and local_ipv6 come from TIC
    if (auto v = r.string(t, "remote", "tunnel.remote", !tic)) {
        auto a = Ipv4Addr::parse(*v);
        if (!a || !is_unicast_host(*a))
            r.error(r.node(t, "remote"), "tunnel.remote: '" + *v + "' is not a unicast IPv4 address");
        else
            tu.remote = *a;
    }
    if (auto v = r.string(t, "local_ipv6", "tunnel.local_ipv6", !tic)) {
        auto slash = v->find('/');
        auto a = Ipv6Addr::parse(v->substr(0, slash));
        int len = 64;
        bool ok = a && !a->is_link_local() && !a->is_multicast();
        if (ok && slash != std::string::npos) {
            try {
                size_t used = 0;
                len = std::stoi(v->substr(slash + 1), &used);
                ok = used == v->size() - slash - 1 && len >= 1 && len <= 128;
            } catch (...) {
                ok = false;
            }
        }
        if (!ok)
            r.error(r.node(t, "local_ipv6"), "tunnel.local_ipv6: '" + *v + "' is not a global IPv6 address[/len]");
        else {
            tu.local_ipv6 = *a;
            tu.local_ipv6_len = static_cast<uint8_t>(len);
        }
    }
    if (auto v = r.string(t, "remote_ipv6", "tunnel.remote_ipv6", false)) {
        auto a = Ipv6Addr::parse(*v);
        if (!a || a->is_multicast())
            r.error(r.node(t, "remote_ipv6"), "tunnel.remote_ipv6: '" + *v + "' is not an IPv6 address");
        else
            tu.remote_ipv6 = *a;
    }
    if (auto v = r.integer(t, "mtu", "tunnel.mtu", 1280, 1480)) tu.mtu = static_cast<unsigned>(*v);
    if (auto v = r.string(t, "routed_prefix", "tunnel.routed_prefix", false)) {
        auto p = Ipv6Prefix::parse(*v);
        if (!p || p->len < 32 || p->len > 64 || (p->addr.bytes[0] & 0xe0) != 0x20)
            r.error(r.node(t, "routed_prefix"), "tunnel.routed_prefix: '" + *v +
                                                    "' is not a global IPv6 prefix /32../64 without host bits "
                                                    "(e.g. 2001:db8:100::/48)");
        else
            tu.routed_prefix = *p;
    }
    auto token = [&](const char* key, std::string& out, bool required, size_t max) {
        tunnel_token(r, t, key, out, required, max);
    };
    bool he = tu.mode == TunnelMode::he, hb = tu.mode == TunnelMode::heartbeat;
    token("tunnel_id", tu.tunnel_id, he || tic, 64);
    token("username", tu.username, he, 128);
    token("update_key", tu.update_key, he, 128);
    token("password", tu.password, hb && !tic, 128);
    if (auto v = r.string(t, "update_url", "tunnel.update_url", false)) {
        bool ok = v->rfind("https://", 0) == 0 && v->size() > 8 && v->size() < 512;
        for (char ch : *v) ok = ok && ch > ' ' && ch < 0x7f && ch != '?' && ch != '#' && ch != '"';
        if (!ok)
            r.error(r.node(t, "update_url"), "tunnel.update_url: '" + *v + "' is not an https:// URL without a query");
        else
            tu.update_url = *v;
    }
    if (auto v = r.string(t, "ca_file", "tunnel.ca_file", false)) {
        if (v->empty() || (*v)[0] != '/')
            r.error(r.node(t, "ca_file"), "tunnel.ca_file: expected an absolute path");
        else
            tu.ca_file = *v;
    }
    if (auto v = r.integer(t, "interval", "tunnel.interval", 10, 3600)) tu.interval = static_cast<unsigned>(*v);
    if (auto v = r.boolean(t, "sender", "tunnel.sender")) tu.sender = *v;
    if (!he)
        for (const char* k : {"tunnel_id", "username", "update_key", "update_url", "ca_file"})
            if (r.node(t, k) && !(tic && std::string(k) == "tunnel_id"))
                r.error(r.node(t, k), std::string("tunnel.") + k + ": only for mode = \"he\"" +
                                          (hb && std::string(k) == "tunnel_id" ? " (or heartbeat with tic_server)" : ""));
    if (!hb)
        for (const char* k : {"password", "interval", "sender"})
            if (r.node(t, k)) r.error(r.node(t, k), std::string("tunnel.") + k + ": only for mode = \"heartbeat\"");
}

}  // namespace

const char* to_string(TunnelMode m) {
    switch (m) {
        case TunnelMode::none: return "none";
        case TunnelMode::he: return "he";
        case TunnelMode::heartbeat: return "heartbeat";
        case TunnelMode::static_: return "static";
    }
    return "?";
}

const char* to_string(Uplink6 u) {
    switch (u) {
        case Uplink6::unset: return "unset";
        case Uplink6::tunnel: return "tunnel";
        case Uplink6::native: return "native";
        case Uplink6::auto_: return "auto";
    }
    return "?";
}

const char* to_string(Proto p) { return p == Proto::tcp ? "tcp" : "udp"; }

Result<Ipv6Prefix> lan_subnet(const Ipv6Prefix& delegated, uint64_t subnet_id) {
    if (delegated.len > 64) return Error{delegated.str() + " is longer than /64"};
    unsigned bits = 64 - delegated.len;
    if (bits < 64 && (subnet_id >> bits) != 0)
        return Error{delegated.str() + " has " + std::to_string(uint64_t{1} << bits) +
                     " /64s: no subnet id " + std::to_string(subnet_id)};
    Ipv6Prefix p = delegated;
    p.len = 64;
    for (int i = 0; i < 8; ++i) p.addr.bytes[7 - i] |= static_cast<uint8_t>(subnet_id >> (8 * i));
    return p;
}

const char* to_string(Trust t) { return t == Trust::full ? "full" : "guest"; }

std::string vlan_link_name(const std::string& trunk, uint16_t vlan) { return trunk + "." + std::to_string(vlan); }

std::vector<Ipv6Prefix> Config::tunnel_prefixes(const LanConfig& l) const {
    std::vector<Ipv6Prefix> out = l.ipv6_prefixes;
    if (tunnel.routed_prefix)
        if (auto id = subnet_id(l))
            if (auto p = lan_subnet(*tunnel.routed_prefix, *id); p && std::find(out.begin(), out.end(), *p) == out.end())
                out.push_back(*p);
    return out;
}

const LanConfig* Config::lan_named(const std::string& name) const {
    for (auto& l : lans)
        if (l.name == name) return &l;
    return nullptr;
}

std::string InterfaceRef::describe() const {
    if (mac && !device.empty()) return device + " (" + mac->str() + ")";
    if (mac) return "mac " + mac->str();
    return device;
}

std::string ConfigError::str() const {
    std::ostringstream o;
    o << file;
    if (line > 0) o << ':' << line << ':' << column;
    o << ": " << message;
    return o.str();
}

ConfigResult parse_config_text(std::string_view text, const std::string& path) {
    ConfigResult res;
    // TOML allows no control characters but tab and line ends: say so with the position.
    // The router's configuration is ASCII (addresses, host and domain names): other bytes are
    // refused too, which also keeps them from toml++ 3.3.0's Unicode tables, which reach
    // __builtin_unreachable for some characters (found by tests/fuzz/fuzz_config).
    int line = 1, col = 1;
    for (unsigned char c : text) {
        if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c >= 0x7f) {
            char hex[8];
            std::snprintf(hex, sizeof(hex), "0x%02x", c);
            res.errors.push_back({path, line, col,
                                  std::string(c >= 0x80 ? "non-ASCII byte " : "control character ") + hex +
                                      " is not allowed (the configuration is plain ASCII)"});
            return res;
        }
        if (c == '\n') {
            ++line;
            col = 1;
        } else {
            ++col;
        }
    }
    toml::table root;
    try {
        root = toml::parse(text, path);
    } catch (const toml::parse_error& e) {
        res.errors.push_back({path, static_cast<int>(e.source().begin.line),
                              static_cast<int>(e.source().begin.column), std::string(e.description())});
        return res;
    }
    Reader r(path, res.errors);
    Config c;
    c.path = path;
    r.only_keys(root, "the top level", {"lan", "wan", "dns", "ntp", "ssh", "firewall", "tunnel", "ipv6", "route", "log"});
    read_lans(r, root, c);
    if (auto* t = r.table(root, "wan", "wan", true)) read_wan(r, *t, c);
    if (auto* t = r.table(root, "dns", "dns", false)) read_dns(r, *t, c);
    if (auto* t = r.table(root, "ntp", "ntp", false)) read_ntp(r, *t, c);
    if (auto* t = r.table(root, "ssh", "ssh", false)) read_ssh(r, *t, c);
    if (auto* t = r.table(root, "tunnel", "tunnel", false)) read_tunnel(r, *t, c);
    // After the segments and [tunnel] (the routed prefix): what segments must not share.
    if (!c.lans.empty()) check_lans(r, root, c);
    if (auto* n = root.get("route")) read_routes(r, *n, c);
    // After the segments and [ssh]: openings are checked against both.
    if (auto* t = r.table(root, "firewall", "firewall", false)) read_firewall(r, *t, c);
    if (auto* t = r.table(root, "ipv6", "ipv6", false)) read_ipv6(r, *t, c, root.get("tunnel") != nullptr);
    if (auto* t = r.table(root, "log", "log", false)) read_log(r, *t, c);

    if (res.errors.empty()) {
        const auto& b = c.wan.interface;
        for (auto& l : c.lans) {
            const auto& a = l.interface;
            if ((!a.device.empty() && a.device == b.device) || (a.mac && b.mac && *a.mac == *b.mac)) {
                res.errors.push_back({path, static_cast<int>(root.get("wan")->source().begin.line),
                                      static_cast<int>(root.get("wan")->source().begin.column),
                                      "[wan] names the same interface as segment '" + l.name + "'"});
                break;
            }
        }
    }
    if (res.errors.empty()) res.config = std::move(c);
    return res;
}

ConfigResult load_config(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        ConfigResult res;
        res.errors.push_back({path, 0, 0, "cannot open: " + std::string(std::strerror(errno))});
        return res;
    }
    std::stringstream ss;
    ss << in.rdbuf();
    return parse_config_text(ss.str(), path);
}

}  // namespace netd
