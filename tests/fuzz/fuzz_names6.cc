// libFuzzer target: dnsmasq's lease file as DHCP clients fill it (the host names are theirs),
// into the hosts file for IPv6 names. Every name taken is one DNS label, every line of the
// hosts file is "ADDR NAME.DOMAIN NAME" for a host of the segment's prefix, and the output is
// bounded.
#include <cctype>
#include <cstdint>
#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

#include "names6.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string text(reinterpret_cast<const char*>(data), size);
    auto leases = netd::parse_dnsmasq_leases(text);
    if (leases.size() > netd::kMaxLeases) std::abort();
    for (auto& l : leases) {
        if (l.name.empty() || l.name.size() > 63 || l.name.front() == '-' || l.name.back() == '-') std::abort();
        for (char c : l.name)
            if (!(std::islower(static_cast<unsigned char>(c)) || std::isdigit(static_cast<unsigned char>(c)) || c == '-'))
                std::abort();
    }
    // Each lease's host has an EUI-64-like address in the segment's /64 and one outside it.
    netd::Ipv6Prefix p = *netd::Ipv6Prefix::parse("2001:db8:7::/64");
    std::vector<netd::Neighbour6> table;
    for (auto& l : leases) {
        netd::Ipv6Addr a = p.addr;
        for (int i = 0; i < 6; ++i) a.bytes[10 + i] = l.mac.bytes[i];
        table.push_back({"eth1", a, l.mac});
        netd::Ipv6Addr out = a;
        out.bytes[3] ^= 1;
        table.push_back({"eth1", out, l.mac});
    }
    std::string hosts = netd::hosts6_text(leases, table, {{"eth1", "home.arpa", {p}}});
    std::istringstream in(hosts);
    std::string line;
    size_t lines = 0;
    while (std::getline(in, line)) {
        if (line.empty() || line[0] == '#') continue;
        ++lines;
        std::istringstream w(line);
        std::string addr, fqdn, name, extra;
        w >> addr >> fqdn >> name;
        if (w >> extra) std::abort();
        auto a = netd::Ipv6Addr::parse(addr);
        if (!a || !p.contains(*a)) std::abort();
        if (fqdn != name + ".home.arpa") std::abort();
    }
    if (lines > netd::kMaxHosts6Lines) std::abort();
    return 0;
}
