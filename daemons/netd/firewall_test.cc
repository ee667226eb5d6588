// The firewall model: golden nft text for several configs (NETD_UPDATE_GOLDEN=1 rewrites them;
// review the diff), interval merging, and the expressions of rules that matter most. That the
// expressions load into the same kernel state as the text is checked against the real kernel by
// tests/netns/firewall_equivalence.sh.
#include <gtest/gtest.h>

#include <algorithm>
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
    expect_golden("minimal.nft", render_nft(build_ruleset(firewall_inputs(load("minimal.conf"), {{"lan", "eth1"}}, "eth0"))));
}

TEST(Firewall, GoldenFullWithTunnel) {
    auto in = firewall_inputs(load("full.conf"), {{"lan", "eth1"}}, "eth0");
    in.tunnel_if = "sit6in4";
    in.tunnel_peer = Ipv4Addr::parse("192.0.2.1");
    expect_golden("full-tunnel.nft", render_nft(build_ruleset(in)));
}

TEST(Firewall, GoldenExampleImageConfig) {
    auto r = load_config(NETD_TESTDATA "/../../../image/example/router.conf");
    ASSERT_TRUE(r.config);
    expect_golden("example.nft", render_nft(build_ruleset(firewall_inputs(*r.config, {{"lan", "eth1"}}, "eth0"))));
}

// Three segments (testdata/segments.conf): per-segment source sets, a guest segment
// that reaches only the outside and the router's DHCP, DNS and NTP, full segments that reach
// each other, and the guest's open6 host reachable from the full segments.
TEST(Firewall, GoldenSegments) {
    Config c = load("../segments.conf");
    for (auto& l : c.lans) l.ipv6_prefixes = c.tunnel_prefixes(l);
    auto in = firewall_inputs(c, {{"main", "eth1"}, {"guest", "eth2"}, {"lab", "eth2.30"}}, "eth0");
    auto text = render_nft(build_ruleset(in));
    expect_golden("segments.nft", text);
    auto has = [&](const std::string& rule) {
        EXPECT_NE(text.find(rule), std::string::npos) << "missing: " << rule;
    };
    has("iifname \"eth2\" ip saddr != @lan_local4_guest counter drop");
    has("iifname \"eth2.30\" ip6 saddr != @lan_local6_lab counter drop");
    has("iifname \"eth2\" udp dport 53 accept");
    has("iifname \"eth2.30\" tcp dport 22 counter drop");
    has("iifname \"eth2\" counter drop");
    has("iifname \"eth1\" oifname \"eth2.30\" accept");
    has("iifname \"eth1\" oifname \"eth2\" ip6 daddr 2001:db8:100:2::10 tcp dport 8080 accept");
    has("iifname \"eth1\" oifname \"eth2\" counter drop");
    has("iifname \"eth0\" oifname \"eth2\" ct status dnat accept");
    // main's hosts to the networks behind its downstream router, before conntrack (the
    // answers do not pass the router).
    has("iifname \"eth1\" oifname \"eth1\" ip daddr @routed4_main accept");
    EXPECT_LT(text.find("ip6 daddr @routed6_main accept"), text.find("ct state established,related accept\n\t\tct state invalid counter drop\n\t\tiifname \"eth1\" oifname \"eth0\""));
    EXPECT_EQ(text.find("iifname \"eth2\" oifname \"eth1\" accept"), std::string::npos) << "guest -> main";
    EXPECT_EQ(text.find("iifname \"eth2\" accept"), std::string::npos) << "guest -> router, everything";
}

TEST(Firewall, DefaultPoliciesDropAndNoWanSshWithoutAllowWan) {
    auto rs = build_ruleset(firewall_inputs(load("minimal.conf"), {{"lan", "eth1"}}, "eth0"));
    auto text = render_nft(rs);
    EXPECT_NE(text.find("hook input priority filter; policy drop;"), std::string::npos);
    EXPECT_NE(text.find("hook forward priority filter; policy drop;"), std::string::npos);
    EXPECT_EQ(text.find("tcp dport 22"), std::string::npos);
    EXPECT_EQ(text.find("ip protocol 41"), std::string::npos) << "no tunnel peer: no protocol 41";
    EXPECT_EQ(text.find("dnat"), std::string::npos);
}

const nft::Rule* find_rule(const nft::Ruleset& rs, const std::string& chain, const std::string& text) {
    for (auto& c : rs.tables[0].chains)
        if (c.name == chain)
            for (auto& r : c.rules)
                if (r.text == text) return &r;
    ADD_FAILURE() << "no rule '" << text << "' in chain " << chain;
    return nullptr;
}

std::vector<nft::Expr::Kind> kinds(const nft::Rule& r) {
    std::vector<nft::Expr::Kind> k;
    for (auto& e : r.exprs) k.push_back(e.kind);
    return k;
}

using K = nft::Expr::Kind;

TEST(Firewall, SshFromOutsideIsLimitedPerSource) {
    auto rs = build_ruleset(firewall_inputs(load("full.conf"), {{"lan", "eth1"}}, "eth0"));
    // nft --debug=netlink for the same text: iifname, l4proto tcp, dport, ct state new, nfproto
    // ipv6, ip6 saddr, & /64 mask, dynset update with a "limit rate over" of its own, counter, drop.
    auto* ssh = find_rule(rs, "input",
                          "iifname \"eth0\" tcp dport 2222 ct state new update @ssh6 { ip6 saddr & "
                          "ffff:ffff:ffff:ffff:: limit rate over 10/minute burst 5 packets } counter drop");
    ASSERT_NE(ssh, nullptr);
    EXPECT_EQ(kinds(*ssh), (std::vector<K>{K::meta, K::cmp, K::meta, K::cmp, K::payload, K::cmp, K::ct, K::bitwise,
                                           K::cmp, K::meta, K::cmp, K::payload, K::bitwise, K::dynset, K::counter,
                                           K::verdict}));
    EXPECT_EQ(ssh->exprs[5].data, (std::vector<uint8_t>{0x08, 0xae}));  // 2222, network order
    EXPECT_EQ(ssh->exprs[1].data.size(), 16u);                           // IFNAMSIZ, zero-padded
    auto& dyn = ssh->exprs[13];
    EXPECT_EQ(dyn.set, "ssh6");
    EXPECT_TRUE(dyn.invert);
    EXPECT_EQ(dyn.rate, 10u);
    EXPECT_EQ(dyn.unit, 60u);
    // The /64 of the source is the key: every host of one network shares one bucket.
    EXPECT_EQ(ssh->exprs[12].mask, (std::vector<uint8_t>{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0,
                                                         0, 0, 0, 0}));
    // No rule accepts SSH from outside with one bucket shared by every source any more.
    for (auto& c : rs.tables[0].chains)
        for (auto& r : c.rules)
            if (r.text.find("icmpv6 type { destination-unreachable") == std::string::npos) {
                for (auto& e : r.exprs) EXPECT_NE(e.kind, K::limit) << r.text;
            }
}

TEST(Firewall, SourceValidationBeforeConntrack) {
    auto in = firewall_inputs(load("full.conf"), {{"lan", "eth1"}}, "eth0");
    in.tunnel_if = "sit6in4";
    auto rs = build_ruleset(in);
    for (const char* chain : {"input", "forward"}) {
        std::vector<std::string> texts;
        for (auto& c : rs.tables[0].chains)
            if (c.name == chain)
                for (auto& r : c.rules) texts.push_back(r.text);
        auto at = [&](const std::string& t) {
            auto it = std::find(texts.begin(), texts.end(), t);
            EXPECT_NE(it, texts.end()) << chain << ": no rule " << t;
            return it - texts.begin();
        };
        auto established = at("ct state established,related accept");
        bool input = std::string(chain) == "input";
        EXPECT_LT(at("rt type 0 counter drop"), established);
        // A ping flood keeps one identifier: after the first reply it is "established".
        EXPECT_LT(at("iifname \"eth0\" icmp type echo-request update @echo4 { ip saddr limit rate over 10/second burst "
                     "20 packets } counter drop"),
                  established);
        EXPECT_LT(at(std::string("iifname \"eth1\" ip6 saddr != @") + (input ? "lan_local6" : "lan6") + " counter drop"),
                  established);
        EXPECT_LT(at(std::string("iifname \"eth1\" ip saddr != @") + (input ? "lan_local4" : "lan4") + " counter drop"),
                  established);
        EXPECT_LT(at("iifname \"eth0\" ip6 saddr @lan6 counter drop"), established);
        EXPECT_LT(at("iifname \"sit6in4\" ip6 saddr @lan6 counter drop"), established);
        EXPECT_LT(at("iifname \"eth0\" ip saddr @lan4 counter drop"), established);
        if (input) {
            EXPECT_LT(at("iifname \"sit6in4\" fib saddr . iif oif missing counter drop"), established);
        } else {
            EXPECT_LT(at("oifname \"sit6in4\" ip6 saddr @scoped6 counter drop"), established);
            EXPECT_LT(at("iifname \"sit6in4\" ip6 daddr @scoped6 counter drop"), established);
        }
    }
    auto& sets = rs.tables[0].sets;
    auto set = [&](const std::string& n) {
        for (auto& s : sets)
            if (s.name == n) return s.elements;
        ADD_FAILURE() << "no set " << n;
        return std::vector<std::string>{};
    };
    EXPECT_EQ(set("lan6"), (std::vector<std::string>{"2001:db8:7::/64"}));
    EXPECT_EQ(set("lan_local6"), (std::vector<std::string>{"::", "2001:db8:7::/64", "fe80::/10"}));
    EXPECT_EQ(set("lan4"), (std::vector<std::string>{"192.168.7.0/24"}));
    EXPECT_EQ(set("lan_local4"), (std::vector<std::string>{"0.0.0.0", "192.168.7.0/24"}));
    EXPECT_EQ(set("scoped6"), (std::vector<std::string>{"fc00::/7", "fec0::/10"}));
}

TEST(Firewall, RoutingHeaderZeroAndReversePathExpressions) {
    auto in = firewall_inputs(load("full.conf"), {{"lan", "eth1"}}, "eth0");
    auto rs = build_ruleset(in);
    auto* rh0 = find_rule(rs, "forward", "rt type 0 counter drop");
    ASSERT_NE(rh0, nullptr);
    // nft: meta nfproto ipv6, exthdr load ipv6 1b @ 43 + 2, cmp eq 0, counter, drop.
    EXPECT_EQ(kinds(*rh0), (std::vector<K>{K::meta, K::cmp, K::exthdr6, K::cmp, K::counter, K::verdict}));
    EXPECT_EQ(rh0->exprs[2].key, 43u);
    EXPECT_EQ(rh0->exprs[2].offset, 2u);
    auto* rpf = find_rule(rs, "input", "iifname \"eth0\" fib saddr . iif oif missing counter drop");
    ASSERT_NE(rpf, nullptr);
    EXPECT_EQ(kinds(*rpf), (std::vector<K>{K::meta, K::cmp, K::fib_rpf, K::cmp, K::counter, K::verdict}));
}

TEST(Firewall, NoLanPrefixesMeansNoGlobalIpv6FromTheLan) {
    auto c = load("full.conf");
    c.lans[0].ipv6_prefixes.clear();
    auto rs = build_ruleset(firewall_inputs(c, {{"lan", "eth1"}}, "eth0"));
    for (auto& s : rs.tables[0].sets) {
        if (s.name == "lan6") {
            EXPECT_TRUE(s.elements.empty());
        }
    }
    EXPECT_NE(find_rule(rs, "forward", "iifname \"eth1\" ip6 saddr != @lan6 counter drop"), nullptr);
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

// netctl metrics reports drops per chain from the rules' counters: every drop rule of the filter
// table counts, and the policy is never reached (a last `counter drop`), so the sum is every
// packet the chain dropped.
TEST(Firewall, EveryDropIsCounted) {
    auto in = firewall_inputs(load("full.conf"), {{"lan", "eth1"}}, "eth0");
    in.tunnel_if = "sit6in4";
    in.tunnel_peer = Ipv4Addr::parse("192.0.2.1");
    auto rs = build_ruleset(in);
    for (auto& t : rs.tables)
        for (auto& c : t.chains) {
            for (auto& r : c.rules)
                if (r.text.size() >= 4 && r.text.compare(r.text.size() - 4, 4, "drop") == 0) {
                    EXPECT_NE(r.text.find("counter drop"), std::string::npos) << c.name << ": " << r.text;
                    EXPECT_TRUE(std::any_of(r.exprs.begin(), r.exprs.end(),
                                            [](auto& e) { return e.kind == nft::Expr::Kind::counter; }))
                        << r.text;
                }
            if (c.policy_drop) {
                ASSERT_FALSE(c.rules.empty());
                EXPECT_EQ(c.rules.back().text, "counter drop") << c.name;
            }
        }
    auto zero = zero_drop_counts(rs);
    EXPECT_EQ(zero, (std::map<std::string, DropCount>{{"input", {}}, {"forward", {}}}));
}

// The flowtable: on the given links, its `flow add` right before the forward chain accepts
// established flows (after every check before conntrack), none in input; off with
// flow_offload = false, and none without links.
TEST(Firewall, FlowtableOffloadsOnlyWhatTheForwardChainAccepts) {
    auto in = firewall_inputs(load("full.conf"), {{"lan", "eth1"}}, "eth0");
    in.flow_devices = {"eth0", "eth1"};
    auto rs = build_ruleset(in);
    ASSERT_TRUE(rs.tables[0].flowtable);
    EXPECT_EQ(rs.tables[0].flowtable->devices, (std::vector<std::string>{"eth0", "eth1"}));
    for (auto& c : rs.tables[0].chains) {
        std::vector<std::string> texts;
        for (auto& r : c.rules) texts.push_back(r.text);
        auto flow = std::find(texts.begin(), texts.end(), "meta l4proto { tcp, udp } flow add @ft");
        if (c.name != "forward") {
            EXPECT_EQ(flow, texts.end()) << c.name;
            continue;
        }
        ASSERT_NE(flow, texts.end());
        ASSERT_NE(flow + 1, texts.end());
        EXPECT_EQ(*(flow + 1), "ct state established,related accept");
        EXPECT_LT(std::find(texts.begin(), texts.end(), "ip saddr @blocklist4 counter drop"), flow);
        EXPECT_LT(std::find(texts.begin(), texts.end(), "ip6 daddr @blocklist6 counter drop"), flow);
    }
    EXPECT_NE(render_nft(rs).find("flowtable ft {\n\t\thook ingress priority filter\n\t\tdevices = { \"eth0\", \"eth1\" }"),
              std::string::npos);
    in.flow_devices.clear();
    EXPECT_FALSE(build_ruleset(in).tables[0].flowtable);

    auto off = parse_config_text("[lan]\ndevice = \"eth1\"\nipv4 = \"192.168.1.1/24\"\n[wan]\ndevice = \"eth0\"\n"
                                 "[firewall]\nflow_offload = false\n", "test.conf");
    ASSERT_TRUE(off.config);
    EXPECT_FALSE(off.config->firewall.flow_offload);
    auto in2 = firewall_inputs(*off.config, {{"lan", "eth1"}}, "eth0");
    in2.flow_devices = {"eth0", "eth1"};
    auto rs2 = build_ruleset(in2);
    EXPECT_FALSE(rs2.tables[0].flowtable);
    EXPECT_EQ(render_nft(rs2).find("flow add"), std::string::npos);
    EXPECT_TRUE(load("full.conf").firewall.flow_offload);
}

// flowtable_on: the flowtable on the devices present only; none present, no flowtable nor the
// rule that fills it (what the kernel takes before the sit device is made).
TEST(Firewall, FlowtableOnThePresentDevicesOnly) {
    auto in = firewall_inputs(load("full.conf"), {{"lan", "eth1"}}, "eth0");
    in.flow_devices = {"eth0", "eth1", "sit6in4"};
    auto rs = build_ruleset(in);
    auto now = flowtable_on(rs, {"eth0", "eth1", "lo"});
    ASSERT_TRUE(now.tables[0].flowtable);
    EXPECT_EQ(now.tables[0].flowtable->devices, (std::vector<std::string>{"eth0", "eth1"}));
    EXPECT_NE(render_nft(now).find("flow add @ft"), std::string::npos);
    EXPECT_EQ(render_nft(flowtable_on(rs, {"eth0", "eth1", "sit6in4"})), render_nft(rs));
    auto none = flowtable_on(rs, {"lo"});
    EXPECT_FALSE(none.tables[0].flowtable);
    EXPECT_EQ(render_nft(none).find("flow add"), std::string::npos);
    EXPECT_EQ(render_nft(none), render_nft(without_flowtable(rs)));
}

}  // namespace
}  // namespace netd
