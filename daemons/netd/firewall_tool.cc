// netd-firewall-tool: the firewall module on its own, for tests and benchmarks.
//   netd-firewall-tool render CONFIG LAN_IF WAN_IF [TUNNEL_PEER]   print the nft text
//       (as netd: the flowtable lists those of the links that exist in this network namespace)
//       LAN_IF: the first segment's link, or SEGMENT=LINK,SEGMENT=LINK,... for several
//   netd-firewall-tool load CONFIG LAN_IF WAN_IF [TUNNEL_PEER] [REPEAT]
//       load it REPEAT times (default 1), the whole ruleset each time, and print the time of each
//       load in microseconds
//   netd-firewall-tool apply LAN_IF WAN_IF [TUNNEL_PEER|-]
//       read CONFIG paths from stdin, one a line, and apply each in turn as netd does (just
//       the difference when the kernel still holds what the last one loaded; a line
//       "replace CONFIG" loads the whole ruleset); print "incremental|replace US MESSAGES BYTES"
//       for each, or "error TEXT"
//   netd-firewall-tool counters
//       print what the loaded ruleset dropped, as netd reads it back: "CHAIN PACKETS BYTES"
#include <net/if.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <optional>
#include <string>

#include "config.h"
#include "firewall.h"

namespace {

// The firewall's inputs for CONFIG, as netd makes them, with the links given on the command line.
std::optional<netd::FirewallInputs> inputs(const std::string& path, const std::string& spec, const std::string& wan,
                                           const char* peer) {
    auto res = netd::load_config(path);
    for (auto& e : res.errors) std::fprintf(stderr, "%s\n", e.str().c_str());
    if (!res.config) return std::nullopt;
    // The segments with their prefixes as while the tunnel is the uplink (routed /64s too).
    netd::Config c = *res.config;
    for (auto& l : c.lans) l.ipv6_prefixes = res.config->tunnel_prefixes(l);
    std::map<std::string, std::string> lan_ifs;
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
    auto in = netd::firewall_inputs(c, lan_ifs, wan);
    // As desired_state: dhcpcd runs on the WAN with native IPv6.
    in.dhcpv6_client = res.config->ipv6.uplink == netd::Uplink6::native || res.config->ipv6.uplink == netd::Uplink6::auto_;
    if (peer && std::string(peer) != "-") {
        in.tunnel_peer = netd::Ipv4Addr::parse(peer);
        in.tunnel_if = "sit6in4";
        if (!in.tunnel_peer) {
            std::fprintf(stderr, "bad tunnel peer %s\n", peer);
            return std::nullopt;
        }
    }
    // As desired_state: the flowtable on the WAN and the segments' NICs (a VLAN segment's trunk:
    // the link its VLAN link is on) and the tunnel's sit device, those that exist here.
    if (in.fw.flow_offload) {
        std::vector<std::string> nics;
        for (auto& l : c.lans) {
            std::string nic = lan_ifs[l.name];
            std::error_code ec;
            if (l.vlan)
                for (auto& e : std::filesystem::directory_iterator("/sys/class/net/" + nic, ec))
                    if (auto n = e.path().filename().string(); n.rfind("lower_", 0) == 0) nic = n.substr(6);
            nics.push_back(nic);
        }
        auto exists = [](const std::string& d) { return if_nametoindex(d.c_str()) != 0; };
        in.flow_devices = netd::flowtable_nics(wan, nics, exists);
        if (!in.tunnel_if.empty() && exists(in.tunnel_if)) in.flow_devices.push_back(in.tunnel_if);
    }
    return in;
}

int apply(const std::string& lan, const std::string& wan, const char* peer) {
    netd::RulesetLoader loader;
    std::string line;
    while (std::getline(std::cin, line)) {
        bool replace = line.rfind("replace ", 0) == 0;
        std::string path = replace ? line.substr(8) : line;
        auto t0 = std::chrono::steady_clock::now();
        auto in = inputs(path, lan, wan, peer);
        if (!in) {
            std::printf("error config %s\n", path.c_str());
            std::fflush(stdout);
            continue;
        }
        auto rs = netd::build_ruleset(*in);
        auto st = replace ? loader.replace(rs) : loader.apply(rs);
        auto us = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0).count();
        if (!st)
            std::printf("error %s\n", st.error().str().c_str());
        else
            std::printf("%s %lld %zu %zu\n", st->incremental ? "incremental" : "replace", static_cast<long long>(us),
                        st->messages, st->bytes);
        std::fflush(stdout);
    }
    return 0;
}

}  // namespace

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
    if (argc >= 4 && std::string(argv[1]) == "apply") return apply(argv[2], argv[3], argc > 4 ? argv[4] : nullptr);
    if (argc < 5) {
        std::fprintf(stderr, "usage: %s render|load CONFIG LAN_IF WAN_IF [TUNNEL_PEER|-] [REPEAT]\n       %s apply LAN_IF WAN_IF [TUNNEL_PEER|-] < CONFIGS\n       %s counters\n",
                     argv[0], argv[0], argv[0]);
        return 2;
    }
    std::string mode = argv[1];
    auto inp = inputs(argv[2], argv[3], argv[4], argc > 5 ? argv[5] : nullptr);
    if (!inp) return 1;
    auto& in = *inp;
    if (mode == "render") {
        std::fputs(netd::render_nft(netd::build_ruleset(in)).c_str(), stdout);
        return 0;
    }
    if (mode != "load") return 2;
    int repeat = argc > 6 ? std::atoi(argv[6]) : 1;
    // As netd: one loader (its socket stays open), the whole ruleset each time.
    netd::RulesetLoader loader;
    for (int i = 0; i < repeat; ++i) {
        auto t0 = std::chrono::steady_clock::now();
        // Building the model is part of the work netd does on every load.
        auto rs = netd::build_ruleset(in);
        auto st = loader.replace(rs);
        auto us = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0).count();
        if (!st) {
            std::fprintf(stderr, "%s\n", st.error().str().c_str());
            return 1;
        }
        std::printf("%lld %zu %zu\n", static_cast<long long>(us), st->messages, st->bytes);
    }
    return 0;
}
