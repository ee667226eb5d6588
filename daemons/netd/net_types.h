// Value types for addresses, prefixes and MACs, parsed strictly from text.
// Everything that comes from a config file or the network goes through these parsers.
#pragma once

#include <netinet/in.h>

#include <array>
#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace netd {

struct Ipv4Addr {
    uint32_t host_order = 0;

    static std::optional<Ipv4Addr> parse(std::string_view text);
    std::string str() const;
    in_addr to_in_addr() const;
    auto operator<=>(const Ipv4Addr&) const = default;
};

struct Ipv6Addr {
    std::array<uint8_t, 16> bytes{};

    static std::optional<Ipv6Addr> parse(std::string_view text);
    std::string str() const;
    in6_addr to_in6_addr() const;
    bool is_link_local() const { return bytes[0] == 0xfe && (bytes[1] & 0xc0) == 0x80; }
    bool is_multicast() const { return bytes[0] == 0xff; }
    auto operator<=>(const Ipv6Addr&) const = default;
};

// An address with a prefix length, e.g. the router's "192.168.1.1/24".
struct Ipv4Cidr {
    Ipv4Addr addr;
    uint8_t len = 0;

    static std::optional<Ipv4Cidr> parse(std::string_view text);
    std::string str() const;
    uint32_t netmask() const { return len == 0 ? 0 : ~uint32_t{0} << (32 - len); }
    Ipv4Addr network() const { return {addr.host_order & netmask()}; }
    bool contains(Ipv4Addr a) const { return (a.host_order & netmask()) == network().host_order; }
    auto operator<=>(const Ipv4Cidr&) const = default;
};

// An IPv6 prefix; parse() rejects host bits set past the length ("2001:db8::1/64").
struct Ipv6Prefix {
    Ipv6Addr addr;
    uint8_t len = 0;

    static std::optional<Ipv6Prefix> parse(std::string_view text);
    std::string str() const;
    // The address with the given interface identifier in the low 64 bits (len must be <= 64).
    Ipv6Addr with_host(uint64_t iid) const;
    // Whether the first len bits of a are those of addr.
    bool contains(const Ipv6Addr& a) const {
        for (unsigned bit = 0; bit < len && bit < 128; ++bit) {
            uint8_t m = static_cast<uint8_t>(0x80 >> (bit % 8));
            if ((a.bytes[bit / 8] & m) != (addr.bytes[bit / 8] & m)) return false;
        }
        return true;
    }
    auto operator<=>(const Ipv6Prefix&) const = default;
};

// Either family, for kernel state: an address with its prefix length ("192.168.7.1/24",
// "2001:db8:7::1/64"), or a whole prefix ("0.0.0.0/0").
struct IpCidr {
    uint8_t family = 4;                 // 4 or 6
    std::array<uint8_t, 16> bytes{};    // IPv4 in the first 4, network order
    uint8_t len = 0;

    static IpCidr v4(const Ipv4Cidr& c);
    static IpCidr v4(Ipv4Addr a, uint8_t len = 32);
    static IpCidr v6(const Ipv6Addr& a, uint8_t len = 128);
    static IpCidr default_route(uint8_t family) { return IpCidr{family, {}, 0}; }
    std::string str() const;          // "addr/len"
    std::string addr_str() const;     // without the length
    auto operator<=>(const IpCidr&) const = default;
};

struct MacAddr {
    std::array<uint8_t, 6> bytes{};

    static std::optional<MacAddr> parse(std::string_view text);  // "52:54:00:12:34:56"
    std::string str() const;
    auto operator<=>(const MacAddr&) const = default;
};

// Syntax checks for names that end up in generated config files and shell environments.
bool is_valid_hostname(std::string_view name);     // one RFC 1123 label
bool is_valid_domain_name(std::string_view name);  // dot-separated RFC 1123 labels
bool is_valid_interface_name(std::string_view name);

// The one rule for "an IPv4 address a host may use as its own or talk to": not 0.0.0.0/8,
// loopback, link-local (169.254/16), multicast, reserved or broadcast. Used for the config
// (tunnel remote) and for DHCP leases alike.
bool is_unicast_host(Ipv4Addr a);
// A host on the LAN subnet other than the router: not the router's own address, not the
// network or broadcast address. Used for static DHCP leases and port forwards alike.
bool is_lan_host(const Ipv4Cidr& lan, Ipv4Addr a);
// Whether the address can be someone's address on the internet: not private (RFC 1918),
// shared (RFC 6598, CGNAT), 192.0.0.0/24, benchmarking, link-local, loopback, multicast.
// Behind a NAT the WAN address is not: a tunnel broker must take the request's source.
bool is_public_ipv4(Ipv4Addr a);

}  // namespace netd
