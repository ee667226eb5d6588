// The firewall model: golden nft text for several configs (NETD_UPDATE_GOLDEN=1 rewrites them;
// review the diff), interval merging, and the expressions of rules that matter most. That the
// expressions load into the same kernel state as the text is checked against the real kernel by
// tests/netns/firewall_equivalence.sh.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "config.h"
#include "firewall.h"

namespace netd {
namespace {

const std::string kDir = NETD_TESTDATA "/firewall/";

std::string read(const std::string& p) {
    std::ifstream in(p);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

Config load(const std::string& name) {
    auto r = load_config(kDir + name);
    for (auto& e : r.errors) ADD_FAILURE() << e.str();
    return *r.config;
}

void expect_golden(const std::string& name, const std::string& text) {
    if (std::getenv("NETD_UPDATE_GOLDEN")) std::ofstream(kDir + name) << text;
    EXPECT_EQ(text, read(kDir + name)) << "golden file " << name << " differs";
}

TEST(Firewall, GoldenMinimal) {
    expect_golden("minimal.nft", render_nft(build_ruleset(firewall_inputs(load("minimal.conf"), "eth1", "eth0"))));
}

TEST(Firewall, GoldenFullWithTunnel) {
    auto in = firewall_inputs(load("full.conf"), "eth1", "eth0");
    in.tunnel_if = "sit6in4";
    in.tunnel_peer = Ipv4Addr::parse("192.0.2.1");
    expect_golden("full-tunnel.nft", render_nft(build_ruleset(in)));
}

TEST(Firewall, GoldenExampleImageConfig) {
    auto r = load_config(NETD_TESTDATA "/../../../image/example/router.conf");
    ASSERT_TRUE(r.config);
    expect_golden("example.nft", render_nft(build_ruleset(firewall_inputs(*r.config, "eth1", "eth0"))));
}

TEST(Firewall, DefaultPoliciesDropAndNoWanSshWithoutAllowWan) {
    auto rs = build_ruleset(firewall_inputs(load("minimal.conf"), "eth1", "eth0"));
    auto text = render_nft(rs);
    EXPECT_NE(text.find("hook input priority filter; policy drop;"), std::string::npos);
    EXPECT_NE(text.find("hook forward priority filter; policy drop;"), std::string::npos);
    EXPECT_EQ(text.find("tcp dport 22"), std::string::npos);
    EXPECT_EQ(text.find("ip protocol 41"), std::string::npos) << "no tunnel peer: no protocol 41";
    EXPECT_EQ(text.find("dnat"), std::string::npos);
}

TEST(Firewall, RuleExpressionsMatchNftForSshOnWan) {
    auto c = load("full.conf");
    auto rs = build_ruleset(firewall_inputs(c, "eth1", "eth0"));
    const nft::Rule* ssh = nullptr;
    for (auto& r : rs.tables[0].chains[0].rules)
        if (r.text.rfind("iifname \"eth0\" tcp dport 2222", 0) == 0) ssh = &r;
    ASSERT_NE(ssh, nullptr);
    // nft --debug=netlink for the same text: meta iifname, cmp, meta l4proto, cmp, payload
    // th+2 2b, cmp, ct state, bitwise, cmp, limit, accept.
    using K = nft::Expr::Kind;
    std::vector<K> kinds;
    for (auto& e : ssh->exprs) kinds.push_back(e.kind);
    EXPECT_EQ(kinds, (std::vector<K>{K::meta, K::cmp, K::meta, K::cmp, K::payload, K::cmp, K::ct, K::bitwise, K::cmp,
                                     K::limit, K::verdict}));
    EXPECT_EQ(ssh->exprs[5].data, (std::vector<uint8_t>{0x08, 0xae}));  // 2222, network order
    EXPECT_EQ(ssh->exprs[1].data.size(), 16u);                           // IFNAMSIZ, zero-padded
}

TEST(Firewall, MergesOverlappingAndAdjacentPrefixes) {
    using V = std::vector<uint8_t>;
    auto ivs = nft::merge_prefixes({{V{10, 0, 1, 0}, 24}, {V{10, 0, 0, 0}, 24}, {V{10, 0, 0, 128}, 25},
                                    {V{192, 168, 0, 1}, 32}, {V{10, 0, 3, 0}, 24}});
    ASSERT_EQ(ivs.size(), 3u);
    EXPECT_EQ(ivs[0].start, (V{10, 0, 0, 0}));
    EXPECT_EQ(*ivs[0].end, (V{10, 0, 2, 0}));  // 10.0.0.0/24 + 10.0.1.0/24 are adjacent
    EXPECT_EQ(ivs[1].start, (V{10, 0, 3, 0}));
    EXPECT_EQ(*ivs[2].end, (V{192, 168, 0, 2}));
}

TEST(Firewall, IntervalReachingTheTopHasNoEnd) {
    using V = std::vector<uint8_t>;
    auto ivs = nft::merge_prefixes({{V{255, 255, 255, 0}, 24}, {V{0, 0, 0, 0}, 0}});
    ASSERT_EQ(ivs.size(), 1u);
    EXPECT_FALSE(ivs[0].end.has_value());
}

TEST(FirewallConfig, OpeningsAreChecked) {
    auto bad = parse_config_text(R"([lan]
device = "eth1"
ipv4 = "192.168.1.1/24"
ipv6_prefixes = ["2001:db8:1::/64"]
[wan]
device = "eth0"
[ssh]
allow_wan = true
[firewall]
blocklist = ["10.0.0.1/8", "nonsense"]
[[firewall.open6]]
host = "2001:db8:2::5"
port = 80
[[firewall.forward4]]
port = 22
to = "192.168.1.9"
[[firewall.forward4]]
port = 8080
to = "10.1.1.1"
proto = "sctp"
)",
                                 "t.conf");
    ASSERT_FALSE(bad.config);
    std::string all;
    for (auto& e : bad.errors) all += e.str() + "\n";
    EXPECT_NE(all.find("t.conf:10:14: firewall.blocklist: 10.0.0.1/8 has host bits"), std::string::npos) << all;
    EXPECT_NE(all.find("t.conf:10:28: firewall.blocklist: 'nonsense'"), std::string::npos) << all;
    EXPECT_NE(all.find("t.conf:12:8: firewall.open6.host"), std::string::npos) << all;
    EXPECT_NE(all.find("the router's own SSH port"), std::string::npos) << all;
    EXPECT_NE(all.find("firewall.forward4.proto: 'sctp'"), std::string::npos) << all;
}

}  // namespace
}  // namespace netd
