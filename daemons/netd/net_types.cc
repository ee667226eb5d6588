#include "net_types.h"

#include <arpa/inet.h>
#include <net/if.h>

#include <charconv>
#include <cstdio>
#include <cstring>

namespace netd {
namespace {

// inet_pton needs a NUL-terminated string; the views we get may not be.
bool pton(int family, std::string_view text, void* out) {
    char buf[INET6_ADDRSTRLEN + 1];
    if (text.empty() || text.size() >= sizeof(buf)) return false;
    // inet_pton would stop at an embedded NUL and accept what comes before it.
    if (text.find('\0') != std::string_view::npos) return false;
    std::memcpy(buf, text.data(), text.size());
    buf[text.size()] = '\0';
    return inet_pton(family, buf, out) == 1;
}

std::optional<uint8_t> parse_len(std::string_view text, int max) {
    if (text.empty() || text.size() > 3) return std::nullopt;
    if (text.size() > 1 && text[0] == '0') return std::nullopt;
    int v = 0;
    auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc{} || p != text.data() + text.size() || v < 0 || v > max) return std::nullopt;
    return static_cast<uint8_t>(v);
}

bool is_label(std::string_view l) {
    if (l.empty() || l.size() > 63) return false;
    if (l.front() == '-' || l.back() == '-') return false;
    for (char c : l) {
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
        if (!ok) return false;
    }
    return true;
}

}  // namespace

std::optional<Ipv4Addr> Ipv4Addr::parse(std::string_view text) {
    in_addr a{};
    if (!pton(AF_INET, text, &a)) return std::nullopt;
    return Ipv4Addr{ntohl(a.s_addr)};
}

std::string Ipv4Addr::str() const {
    char buf[INET_ADDRSTRLEN];
    in_addr a = to_in_addr();
    inet_ntop(AF_INET, &a, buf, sizeof(buf));
    return buf;
}

in_addr Ipv4Addr::to_in_addr() const { return in_addr{htonl(host_order)}; }

std::optional<Ipv6Addr> Ipv6Addr::parse(std::string_view text) {
    Ipv6Addr r;
    if (!pton(AF_INET6, text, r.bytes.data())) return std::nullopt;
    return r;
}

std::string Ipv6Addr::str() const {
    char buf[INET6_ADDRSTRLEN];
    inet_ntop(AF_INET6, bytes.data(), buf, sizeof(buf));
    return buf;
}

in6_addr Ipv6Addr::to_in6_addr() const {
    in6_addr a{};
    std::memcpy(&a, bytes.data(), 16);
    return a;
}

std::optional<Ipv4Cidr> Ipv4Cidr::parse(std::string_view text) {
    auto slash = text.find('/');
    if (slash == std::string_view::npos) return std::nullopt;
    auto addr = Ipv4Addr::parse(text.substr(0, slash));
    auto len = parse_len(text.substr(slash + 1), 32);
    if (!addr || !len) return std::nullopt;
    return Ipv4Cidr{*addr, *len};
}

std::string Ipv4Cidr::str() const { return addr.str() + "/" + std::to_string(len); }

std::optional<Ipv6Prefix> Ipv6Prefix::parse(std::string_view text) {
    auto slash = text.find('/');
    if (slash == std::string_view::npos) return std::nullopt;
    auto addr = Ipv6Addr::parse(text.substr(0, slash));
    auto len = parse_len(text.substr(slash + 1), 128);
    if (!addr || !len) return std::nullopt;
    for (int bit = *len; bit < 128; ++bit)
        if (addr->bytes[bit / 8] & (0x80 >> (bit % 8))) return std::nullopt;
    return Ipv6Prefix{*addr, *len};
}

std::string Ipv6Prefix::str() const { return addr.str() + "/" + std::to_string(len); }

Ipv6Addr Ipv6Prefix::with_host(uint64_t iid) const {
    Ipv6Addr a = addr;
    for (int i = 0; i < 8; ++i) a.bytes[15 - i] = static_cast<uint8_t>(iid >> (8 * i));
    return a;
}

std::optional<MacAddr> MacAddr::parse(std::string_view text) {
    if (text.size() != 17) return std::nullopt;
    MacAddr m;
    for (int i = 0; i < 6; ++i) {
        if (i > 0 && text[i * 3 - 1] != ':') return std::nullopt;
        auto part = text.substr(i * 3, 2);
        unsigned v = 0;
        auto [p, ec] = std::from_chars(part.data(), part.data() + 2, v, 16);
        if (ec != std::errc{} || p != part.data() + 2) return std::nullopt;
        m.bytes[i] = static_cast<uint8_t>(v);
    }
    return m;
}

std::string MacAddr::str() const {
    char buf[18];
    std::snprintf(buf, sizeof(buf), "%02x:%02x:%02x:%02x:%02x:%02x", bytes[0], bytes[1], bytes[2],
                  bytes[3], bytes[4], bytes[5]);
    return buf;
}

bool is_valid_hostname(std::string_view name) { return is_label(name); }

bool is_valid_domain_name(std::string_view name) {
    if (name.empty() || name.size() > 253) return false;
    if (name.back() == '.') name.remove_suffix(1);
    while (true) {
        auto dot = name.find('.');
        if (!is_label(name.substr(0, dot))) return false;
        if (dot == std::string_view::npos) return true;
        name.remove_prefix(dot + 1);
    }
}

bool is_valid_interface_name(std::string_view name) {
    if (name.empty() || name.size() >= IFNAMSIZ || name == "." || name == "..") return false;
    for (char c : name) {
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '_' || c == '.';
        if (!ok) return false;
    }
    return true;
}

IpCidr IpCidr::v4(const Ipv4Cidr& c) { return v4(c.addr, c.len); }

IpCidr IpCidr::v4(Ipv4Addr a, uint8_t len) {
    IpCidr r;
    r.family = 4;
    in_addr ia = a.to_in_addr();
    std::memcpy(r.bytes.data(), &ia, 4);
    r.len = len;
    return r;
}

IpCidr IpCidr::v6(const Ipv6Addr& a, uint8_t len) {
    IpCidr r;
    r.family = 6;
    r.bytes = a.bytes;
    r.len = len;
    return r;
}

std::string IpCidr::addr_str() const {
    char buf[INET6_ADDRSTRLEN];
    inet_ntop(family == 4 ? AF_INET : AF_INET6, bytes.data(), buf, sizeof(buf));
    return buf;
}

std::string IpCidr::str() const { return addr_str() + "/" + std::to_string(len); }

bool is_unicast_host(Ipv4Addr a) {
    uint32_t v = a.host_order;
    uint8_t first = v >> 24;
    if (first == 0 || first == 127 || first >= 224) return false;  // this net, loopback, multicast+
    if ((v & 0xffff0000u) == 0xa9fe0000u) return false;           // 169.254/16
    return true;
}

bool is_lan_host(const Ipv4Cidr& lan, Ipv4Addr a) {
    if (!lan.contains(a) || a == lan.addr) return false;
    if (lan.len >= 31) return true;  // RFC 3021: no network or broadcast address
    uint32_t net = lan.network().host_order, bcast = net | ~lan.netmask();
    return a.host_order != net && a.host_order != bcast && is_unicast_host(a);
}

bool is_public_ipv4(Ipv4Addr a) {
    if (!is_unicast_host(a)) return false;
    struct Block {
        uint32_t net;
        uint8_t len;
    };
    static constexpr Block kNotPublic[] = {
        {0x0a000000, 8},   {0xac100000, 12}, {0xc0a80000, 16},  // RFC 1918
        {0x64400000, 10},                                      // RFC 6598 shared (CGNAT)
        {0xc0000000, 24},                                      // RFC 6890 (DS-Lite's 192.0.0.2)
        {0xc6120000, 15},                                      // RFC 2544 benchmarking
    };
    // The documentation ranges (RFC 5737) count as public: they stand for public addresses in
    // examples and tests.
    for (auto& b : kNotPublic)
        if (Ipv4Cidr{{b.net}, b.len}.contains(a)) return false;
    return true;
}

}  // namespace netd
