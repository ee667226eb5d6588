// netd-firewall-tool: the firewall module on its own, for tests and benchmarks.
//   netd-firewall-tool render CONFIG LAN_IF WAN_IF [TUNNEL_PEER]   print the nft text
//       LAN_IF: the first segment's link, or SEGMENT=LINK,SEGMENT=LINK,... for several
//   netd-firewall-tool load CONFIG LAN_IF WAN_IF [TUNNEL_PEER] [REPEAT]
//       load it REPEAT times (default 1) and print the time of each load in microseconds
//   netd-firewall-tool counters
//       print what the loaded ruleset dropped, as netd reads it back: "CHAIN PACKETS BYTES"
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>

#include "config.h"
#include "firewall.h"

int main(int argc, char** argv) {
    if (argc == 2 && std::string(argv[1]) == "counters") {
        auto d = netd::read_drop_counts();
        if (!d) {
            std::fprintf(stderr, "%s\n", d.error().str().c_str());
            return 1;
        }
        for (auto& [chain, n] : *d)
            std::printf("%s %llu %llu\n", chain.c_str(), static_cast<unsigned long long>(n.packets),
                        static_cast<unsigned long long>(n.bytes));
        return 0;
    }
    if (argc < 5) {
        std::fprintf(stderr, "usage: %s render|load CONFIG LAN_IF WAN_IF [TUNNEL_PEER|-] [REPEAT]\n       %s counters\n",
                     argv[0], argv[0]);
        return 2;
    }
    std::string mode = argv[1];
    auto res = netd::load_config(argv[2]);
    for (auto& e : res.errors) std::fprintf(stderr, "%s\n", e.str().c_str());
    if (!res.config) return 1;
    // The segments with their prefixes as while the tunnel is the uplink (routed /64s too).
    netd::Config c = *res.config;
    for (auto& l : c.lans) l.ipv6_prefixes = res.config->tunnel_prefixes(l);
    std::map<std::string, std::string> lan_ifs;
    std::string spec = argv[3];
    if (spec.find('=') == std::string::npos) {
        lan_ifs[c.lans.front().name] = spec;
    } else {
        for (size_t start = 0; start <= spec.size();) {
            size_t comma = spec.find(',', start);
            if (comma == std::string::npos) comma = spec.size();
            std::string item = spec.substr(start, comma - start);
            size_t eq = item.find('=');
            if (eq != std::string::npos) lan_ifs[item.substr(0, eq)] = item.substr(eq + 1);
            start = comma + 1;
        }
    }
    auto in = netd::firewall_inputs(c, lan_ifs, argv[4]);
    // As desired_state: dhcpcd runs on the WAN with native IPv6.
    in.dhcpv6_client = res.config->ipv6.uplink == netd::Uplink6::native || res.config->ipv6.uplink == netd::Uplink6::auto_;
    if (argc > 5 && std::string(argv[5]) != "-") {
        in.tunnel_peer = netd::Ipv4Addr::parse(argv[5]);
        in.tunnel_if = "sit6in4";
        if (!in.tunnel_peer) {
            std::fprintf(stderr, "bad tunnel peer %s\n", argv[5]);
            return 2;
        }
    }
    if (mode == "render") {
        std::fputs(netd::render_nft(netd::build_ruleset(in)).c_str(), stdout);
        return 0;
    }
    if (mode != "load") return 2;
    int repeat = argc > 6 ? std::atoi(argv[6]) : 1;
    for (int i = 0; i < repeat; ++i) {
        auto t0 = std::chrono::steady_clock::now();
        // Building the model is part of the work netd does on every load.
        auto rs = netd::build_ruleset(in);
        auto st = netd::load_ruleset(rs);
        auto us = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0).count();
        if (!st) {
            std::fprintf(stderr, "%s\n", st.error().str().c_str());
            return 1;
        }
        std::printf("%lld %zu %zu\n", static_cast<long long>(us), st->messages, st->bytes);
    }
    return 0;
}
