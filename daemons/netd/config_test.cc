#include "config.h"

#include <gtest/gtest.h>

namespace netd {
namespace {

const char* kMinimal = R"(
[lan]
device = "eth1"
ipv4 = "192.168.1.1/24"
[wan]
device = "eth0"
)";

std::string errors_of(const ConfigResult& r) {
    std::string s;
    for (auto& e : r.errors) s += e.str() + "\n";
    return s;
}

TEST(Config, GoodFileParses) {
    auto r = load_config(NETD_TESTDATA "/good.conf");
    ASSERT_TRUE(r.config) << errors_of(r);
    const Config& c = *r.config;
    EXPECT_EQ(c.lans[0].interface.mac->str(), "52:54:00:12:34:02");
    EXPECT_EQ(c.lans[0].ipv4.str(), "192.168.7.1/24");
    ASSERT_EQ(c.lans[0].ipv6_prefixes.size(), 1u);
    EXPECT_EQ(c.lans[0].ipv6_prefixes[0].str(), "2001:db8:7::/64");
    EXPECT_EQ(c.lans[0].domain, "home.arpa");
    EXPECT_EQ(c.lans[0].dhcp.range_start.str(), "192.168.7.100");
    EXPECT_EQ(c.lans[0].dhcp.range_end.str(), "192.168.7.199");
    EXPECT_EQ(c.lans[0].dhcp.lease_seconds, 3600u);
    ASSERT_EQ(c.lans[0].dhcp.hosts.size(), 1u);
    EXPECT_EQ(c.lans[0].dhcp.hosts[0].name, "printer");
    EXPECT_EQ(c.dns.upstream, (std::vector<std::string>{"192.0.2.53", "2001:db8::53"}));
    EXPECT_EQ(c.ntp.servers.size(), 2u);
    EXPECT_FALSE(c.ssh.allow_wan);
}

TEST(Config, DefaultsForAMinimalFile) {
    auto r = parse_config_text(kMinimal, "min.conf");
    ASSERT_TRUE(r.config) << errors_of(r);
    EXPECT_EQ(r.config->lans[0].domain, "lan");
    EXPECT_TRUE(r.config->lans[0].dhcp.enabled);
    EXPECT_EQ(r.config->lans[0].dhcp.range_start.str(), "192.168.1.128");
    EXPECT_EQ(r.config->lans[0].dhcp.range_end.str(), "192.168.1.254");
    EXPECT_TRUE(r.config->ssh.enabled);
    EXPECT_EQ(r.config->ssh.port, 22);
}

TEST(Config, ErrorsNameLineAndColumn) {
    auto r = load_config(NETD_TESTDATA "/bad_values.conf");
    ASSERT_FALSE(r.config);
    ASSERT_EQ(r.errors.size(), 3u) << errors_of(r);
    EXPECT_EQ(r.errors[0].line, 3);
    EXPECT_EQ(r.errors[0].column, 8);
    EXPECT_NE(r.errors[0].message.find("192.168.7.1/33"), std::string::npos);
    EXPECT_EQ(r.errors[1].line, 4);
    EXPECT_EQ(r.errors[2].str(), std::string(NETD_TESTDATA) + "/bad_values.conf:8:10: unknown key 'colour' in [wan]");
}

TEST(Config, SyntaxErrorHasPosition) {
    auto r = parse_config_text("[lan]\ndevice = eth1\n", "x.conf");
    ASSERT_FALSE(r.config);
    ASSERT_EQ(r.errors.size(), 1u);
    EXPECT_EQ(r.errors[0].line, 2);
    EXPECT_EQ(r.errors[0].str().rfind("x.conf:2:", 0), 0u) << r.errors[0].str();
}

TEST(Config, ControlCharactersAreRejectedWithPosition) {
    auto r = parse_config_text("[lan]\n[\x01", "c.conf");
    ASSERT_FALSE(r.config);
    ASSERT_EQ(r.errors.size(), 1u);
    EXPECT_EQ(r.errors[0].str(), "c.conf:2:2: control character 0x01 is not allowed (the configuration is plain ASCII)");
    // Non-ASCII bytes reach undefined behaviour in toml++ 3.3.0's Unicode tables: refused first.
    r = parse_config_text("# caf\xc3\xa9\n", "u.conf");
    ASSERT_FALSE(r.config);
    EXPECT_EQ(r.errors[0].str(), "u.conf:1:6: non-ASCII byte 0xc3 is not allowed (the configuration is plain ASCII)");
}

// TOML escapes make bytes the raw-text check never sees: a NUL and a newline would carry a
// directive into dnsmasq.conf (dhcp-script runs as root). Refused with file:line:col.
TEST(Config, EscapedControlCharactersAreRefusedAfterUnescaping) {
    const std::string lan = "[lan]\nmac = \"52:54:00:12:34:02\"\nipv4 = \"192.168.7.1/24\"\n[wan]\nmac = \"52:54:00:12:34:01\"\n";
    auto r = parse_config_text(lan + "[dns]\nupstream = [\"1.1.1.1\\u0000\\ndhcp-script=/tmp/x\"]\n", "i.conf");
    ASSERT_FALSE(r.config);
    ASSERT_EQ(r.errors.size(), 1u);
    EXPECT_EQ(r.errors[0].str(),
              "i.conf:7:13: dns.upstream: the string holds the control character 0x00 (after unescaping); values are "
              "printable ASCII");
    r = parse_config_text(lan + "[ntp]\nservers = [\"pool.ntp.org\\nserver=evil\"]\n", "n.conf");
    ASSERT_FALSE(r.config);
    EXPECT_EQ(r.errors[0].str().rfind("n.conf:7:12: ntp.servers: the string holds the control character 0x0a", 0), 0u)
        << r.errors[0].str();
    r = parse_config_text(lan + "[tunnel]\nmode = \"he\\u00e9\"\n", "u.conf");
    ASSERT_FALSE(r.config);
    EXPECT_NE(r.errors[0].str().find("non-ASCII byte 0xc3"), std::string::npos) << r.errors[0].str();
    EXPECT_FALSE(Ipv4Addr::parse(std::string("1.1.1.1\0x", 9))) << "inet_pton must not stop at a NUL";
}

TEST(Config, AddressesReachGeneratedFilesReRendered) {
    auto r = parse_config_text("[lan]\nmac = \"52:54:00:12:34:02\"\nipv4 = \"192.168.7.1/24\"\n[wan]\nmac = "
                               "\"52:54:00:12:34:01\"\n[dns]\nupstream = [\"2001:DB8:0::53\"]\n",
                               "a.conf");
    ASSERT_TRUE(r.config);
    EXPECT_EQ(r.config->dns.upstream, std::vector<std::string>{"2001:db8::53"});
}

// dnsmasq reads dhcp-host=MAC,IP,NAME by field: these "names" are a keyword or a lease time.
TEST(Config, DhcpHostNamesDnsmasqWouldMisread) {
    for (const char* name : {"ignore", "IGNORE", "infinite", "12h", "45m", "3600", "2w"}) {
        auto r = parse_config_text(std::string("[lan]\nmac = \"52:54:00:12:34:02\"\nipv4 = \"192.168.7.1/24\"\n"
                                               "[[lan.dhcp.host]]\nmac = \"52:54:00:aa:bb:cc\"\nip = \"192.168.7.50\"\n"
                                               "name = \"") + name + "\"\n[wan]\nmac = \"52:54:00:12:34:01\"\n",
                                   "h.conf");
        ASSERT_FALSE(r.config) << name;
        EXPECT_EQ(r.errors[0].str(), std::string("h.conf:7:8: lan.dhcp.host.name: '") + name +
                                         "' would be read by dnsmasq as a keyword or a lease time, not a name");
    }
    auto ok = parse_config_text("[lan]\nmac = \"52:54:00:12:34:02\"\nipv4 = \"192.168.7.1/24\"\n[[lan.dhcp.host]]\n"
                                "mac = \"52:54:00:aa:bb:cc\"\nip = \"192.168.7.50\"\nname = \"h12\"\n[wan]\nmac = "
                                "\"52:54:00:12:34:01\"\n",
                                "h.conf");
    EXPECT_TRUE(ok.config);
}

TEST(Config, CheckRefusesWhatWouldFailAtRunTime) {
    auto r = parse_config_text(R"([lan]
device = "eth1"
ipv4 = "192.168.7.1/24"
ipv6_prefixes = ["2001:db8:7::/64"]
[wan]
device = "eth0"
[ssh]
port = 53
[firewall]
blocklist = ["0.0.0.0/0", "192.168.0.0/16", "0.0.0.0/8", "2001:db8::/32",
             "fe80::1", "fe00::/7", "::/0", "::/8", "192.168.7.99", "2001:db8:7::99", "2001:db8:8::/48"]
)",
                               "t.conf");
    ASSERT_FALSE(r.config);
    std::string all;
    for (auto& e : r.errors) all += e.str() + "\n";
    EXPECT_NE(all.find("t.conf:8:8: ssh.port: 53 is the DNS port dnsmasq listens on"), std::string::npos) << all;
    EXPECT_NE(all.find("t.conf:10:14: firewall.blocklist: 0.0.0.0/0 covers the LAN subnet 192.168.7.0/24"),
              std::string::npos) << all;
    EXPECT_NE(all.find("t.conf:10:27: firewall.blocklist: 192.168.0.0/16 covers the LAN subnet"), std::string::npos)
        << all;
    EXPECT_NE(all.find("t.conf:10:45: firewall.blocklist: 0.0.0.0/8 covers 0.0.0.0, the source of DHCP requests"),
              std::string::npos) << all;
    EXPECT_NE(all.find("t.conf:10:58: firewall.blocklist: 2001:db8::/32 covers the LAN prefix 2001:db8:7::/64"),
              std::string::npos) << all;
    EXPECT_NE(all.find("t.conf:11:14: firewall.blocklist: fe80::1 overlaps fe80::/10"), std::string::npos) << all;
    EXPECT_NE(all.find("t.conf:11:25: firewall.blocklist: fe00::/7 overlaps fe80::/10"), std::string::npos) << all;
    EXPECT_NE(all.find("t.conf:11:37: firewall.blocklist: ::/0 covers the LAN prefix"), std::string::npos) << all;
    EXPECT_NE(all.find("t.conf:11:45: firewall.blocklist: ::/8 covers ::, the source of duplicate address detection"),
              std::string::npos) << all;
    // One LAN host, or a prefix beside the LAN's, may be blocked.
    EXPECT_EQ(r.errors.size(), 9u) << all;
}

TEST(Config, DhcpRangeEndsAreHosts) {
    auto r = parse_config_text(R"([lan]
device = "eth1"
ipv4 = "192.168.7.1/24"
[lan.dhcp]
range = ["192.168.7.0", "192.168.7.255"]
[wan]
device = "eth0"
)",
                               "t.conf");
    std::string all;
    for (auto& e : r.errors) all += e.str() + "\n";
    EXPECT_NE(all.find("t.conf:5:10: lan.dhcp.range: 192.168.7.0 is the LAN's network or broadcast address"),
              std::string::npos) << all;
    EXPECT_NE(all.find("t.conf:5:25: lan.dhcp.range: 192.168.7.255 is the LAN's network or broadcast address"),
              std::string::npos) << all;
}

TEST(Config, StaticWanIsChecked) {
    auto ok = parse_config_text(R"([lan]
device = "eth1"
ipv4 = "192.168.7.1/24"
[wan]
device = "eth0"
ipv4 = "203.0.113.10/24"
gateway = "203.0.113.1"
dns = ["203.0.113.53"]
)",
                                "t.conf");
    ASSERT_TRUE(ok.config);
    EXPECT_EQ(ok.config->wan.ipv4->str(), "203.0.113.10/24");
    EXPECT_EQ(ok.config->wan.gateway->str(), "203.0.113.1");
    auto bad = parse_config_text(R"([lan]
device = "eth1"
ipv4 = "192.168.7.1/24"
[wan]
device = "eth0"
ipv4 = "203.0.113.0/24"
gateway = "198.51.100.1"
dns = ["224.0.0.1"]
)",
                                 "t.conf");
    std::string all;
    for (auto& e : bad.errors) all += e.str() + "\n";
    EXPECT_NE(all.find("t.conf:6:8: wan.ipv4: 203.0.113.0/24 is the network or broadcast address"), std::string::npos)
        << all;
    EXPECT_NE(all.find("t.conf:8:8: wan.dns: '224.0.0.1' is not a unicast IPv4 address"), std::string::npos) << all;
    auto nogw = parse_config_text("[lan]\ndevice = \"eth1\"\nipv4 = \"192.168.7.1/24\"\n[wan]\ndevice = \"eth0\"\n"
                                  "ipv4 = \"203.0.113.10/24\"\n[wan.x]\n",
                                  "t.conf");
    all.clear();
    for (auto& e : nogw.errors) all += e.str() + "\n";
    EXPECT_NE(all.find("wan.ipv4: a static address needs wan.gateway"), std::string::npos) << all;
    auto outside = parse_config_text("[lan]\ndevice = \"eth1\"\nipv4 = \"192.168.7.1/24\"\n[wan]\ndevice = \"eth0\"\n"
                                     "ipv4 = \"203.0.113.10/24\"\ngateway = \"198.51.100.1\"\n",
                                     "t.conf");
    all.clear();
    for (auto& e : outside.errors) all += e.str() + "\n";
    EXPECT_NE(all.find("t.conf:7:11: wan.gateway: 198.51.100.1 is not another host of 203.0.113.0/24"),
              std::string::npos) << all;
    auto dhcp_dns = parse_config_text("[lan]\ndevice = \"eth1\"\nipv4 = \"192.168.7.1/24\"\n[wan]\ndevice = \"eth0\"\n"
                                      "dns = [\"203.0.113.53\"]\n",
                                      "t.conf");
    all.clear();
    for (auto& e : dhcp_dns.errors) all += e.str() + "\n";
    EXPECT_NE(all.find("wan.dns: only with a static wan.ipv4"), std::string::npos) << all;
}

TEST(Config, BadTableHeaderIsAnErrorNotACrash) {
    // "[#" tripped an assert inside toml++ 3.3.0 (found by tests/fuzz/fuzz_config).
    auto r = parse_config_text("[lan]\n[#\n", "h.conf");
    ASSERT_FALSE(r.config);
    ASSERT_EQ(r.errors.size(), 1u);
    EXPECT_EQ(r.errors[0].str().rfind("h.conf:2:2: ", 0), 0u) << r.errors[0].str();
}

TEST(Config, RejectsInconsistentValues) {
    struct Case { const char* text; const char* expect; };
    const Case cases[] = {
        {"[lan]\ndevice='eth1'\nipv4='192.168.1.0/24'\n[wan]\ndevice='eth0'\n", "network or broadcast"},
        {"[lan]\ndevice='eth1'\nipv4='192.168.1.1/24'\n[lan.dhcp]\nrange=['192.168.1.50','192.168.1.10']\n[wan]\ndevice='eth0'\n", "after the last"},
        {"[lan]\ndevice='eth1'\nipv4='192.168.1.1/24'\n[lan.dhcp]\nrange=['10.0.0.1','192.168.1.10']\n[wan]\ndevice='eth0'\n", "outside the LAN subnet"},
        {"[lan]\ndevice='eth1'\nipv4='192.168.1.1/24'\n[wan]\ndevice='eth1'\n", "same interface"},
        {"[lan]\ndevice='eth1'\nipv4='192.168.1.1/24'\nipv6_prefixes=['2001:db8::/48']\n[wan]\ndevice='eth0'\n", "SLAAC needs a /64"},
        {"[lan]\ndevice='eth1'\nipv4='192.168.1.1/24'\n[wan]\n", "needs 'device' or 'mac'"},
        {"[lan]\ndevice='eth1'\nipv4='192.168.1.1/24'\n", "missing required table [wan]"},
        {"[lan]\ndevice='eth1'\nipv4='192.168.1.1/24'\n[wan]\ndevice='eth0'\n[ssh]\nport=70000\n", "out of range"},
        {"[lan]\ndevice='eth1'\nipv4='192.168.1.1/24'\ndomain='a;b'\n[wan]\ndevice='eth0'\n", "not a valid domain"},
        {"[lan]\ndevice='eth1'\nipv4='192.168.1.1/24'\n[wan]\ndevice='eth0'\n[dns]\nupstream=['dns.example']\n", "not an IPv4 or IPv6"},
        {"[lan]\ndevice='eth1'\nipv4='192.168.1.1/24'\n[[lan.dhcp.host]]\nmac='52:54:00:00:00:01'\nip='192.168.1.5'\n[[lan.dhcp.host]]\nmac='52:54:00:00:00:02'\nip='192.168.1.5'\n[wan]\ndevice='eth0'\n", "given to two hosts"},
    };
    for (const auto& c : cases) {
        auto r = parse_config_text(c.text, "t.conf");
        EXPECT_FALSE(r.config) << c.text;
        EXPECT_NE(errors_of(r).find(c.expect), std::string::npos) << errors_of(r);
    }
}


TEST(Config, Ipv6Uplink) {
    const std::string tunnel = "[tunnel]\nmode = \"static\"\nremote = \"192.0.2.1\"\nlocal_ipv6 = \"2001:db8:ff::2/64\"\n";
    std::string with_id = kMinimal;
    with_id.insert(with_id.find("[wan]"), "subnet_id = 3\n");
    auto r = parse_config_text(with_id + tunnel + "[ipv6]\nuplink = \"auto\"\nnative_wait = 20\n", "t.conf");
    ASSERT_TRUE(r.config) << errors_of(r);
    EXPECT_EQ(r.config->ipv6.uplink, Uplink6::auto_);
    EXPECT_EQ(r.config->ipv6.native_wait, 20u);
    r = parse_config_text(std::string(kMinimal) + "[ipv6]\nuplink = \"native\"\n", "t.conf");
    ASSERT_TRUE(r.config) << errors_of(r);
    EXPECT_EQ(r.config->ipv6.uplink, Uplink6::native);
    EXPECT_EQ(parse_config_text(kMinimal, "t.conf").config->ipv6.uplink, Uplink6::unset);

    struct Case {
        std::string text, expect;
    };
    for (const Case& c : std::vector<Case>{
             {"[ipv6]\nuplink = \"auto\"\n", "t.conf:8:10: ipv6.uplink: \"auto\" needs a [tunnel]"},
             {"[ipv6]\nuplink = \"tunnel\"\n", "needs a [tunnel]"},
             {tunnel + "[ipv6]\nuplink = \"native\"\n", "never uses the [tunnel]"},
             {"[ipv6]\nuplink = \"dhcp\"\n", "is not auto, native or tunnel"},
             {"[ipv6]\nuplink = \"native\"\nnative_wait = 20\n", "only for uplink = \"auto\""},
             {tunnel + "[ipv6]\nuplink = \"auto\"\nnative_wait = 1\n", "native_wait"},
             {"[ipv6]\nuplink = \"native\"\nprefix = 1\n", "prefix"},
         }) {
        auto res = parse_config_text(std::string(kMinimal) + c.text, "t.conf");
        EXPECT_FALSE(res.config) << c.text;
        EXPECT_NE(errors_of(res).find(c.expect), std::string::npos) << errors_of(res);
    }
    auto bad = parse_config_text(std::string(kMinimal).replace(std::string(kMinimal).find("[wan]"), 0, "subnet_id = -1\n"), "t.conf");
    EXPECT_NE(errors_of(bad).find("lan.subnet_id"), std::string::npos) << errors_of(bad);
}

}  // namespace

TEST(ConfigSegments, ThreeSegmentsFromARoutedPrefix) {
    auto r = load_config(NETD_TESTDATA "/segments.conf");
    ASSERT_TRUE(r.config) << errors_of(r);
    const Config& c = *r.config;
    ASSERT_EQ(c.lans.size(), 3u);
    EXPECT_EQ(c.lans[0].name, "main");
    EXPECT_EQ(c.lans[1].trust, Trust::guest);
    EXPECT_FALSE(c.lans[1].ssh) << "a guest segment never reaches SSH";
    EXPECT_EQ(c.lans[2].vlan, 30);
    EXPECT_FALSE(c.lans[2].ssh);
    auto p = c.tunnel_prefixes(c.lans[2]);
    ASSERT_EQ(p.size(), 2u);
    EXPECT_EQ(p[0].str(), "fd00:30::/64");
    EXPECT_EQ(p[1].str(), "2001:db8:100:3::/64");
    EXPECT_EQ(c.tunnel_prefixes(c.lans[0]).front().str(), "2001:db8:100:1::/64");
    ASSERT_EQ(c.routes.size(), 2u);
    EXPECT_EQ(c.routes[0].lan, "main");
    EXPECT_EQ(c.routes[1].via.str(), "2001:db8:100:1::2/128");
    EXPECT_EQ(c.lans[1].dhcp.range_start.str(), "192.168.2.128");
}

TEST(ConfigSegments, ALoneLanTakesSubnetZero) {
    auto r = parse_config_text(std::string(kMinimal) + "[tunnel]\nmode = \"static\"\nremote = \"198.18.0.1\"\n"
                                                       "local_ipv6 = \"2001:db8:ff::2\"\nrouted_prefix = \"2001:db8:100::/48\"\n",
                               "one.conf");
    ASSERT_TRUE(r.config) << errors_of(r);
    EXPECT_EQ(r.config->tunnel_prefixes(r.config->lans[0]).at(0).str(), "2001:db8:100::/64");
}

// Each mistake names file:line:col and what is wrong.
TEST(ConfigSegments, MistakesAreNamedWithTheirPlace) {
    struct Case {
        const char* what;
        std::string text;
        const char* message;
    };
    const std::string wan = "[wan]\ndevice = \"eth0\"\n";
    const std::string routed = "[tunnel]\nmode = \"static\"\nremote = \"198.18.0.1\"\nlocal_ipv6 = \"2001:db8:ff::2\"\n"
                               "routed_prefix = \"2001:db8:100::/62\"\n";
    auto seg = [](const std::string& name, const std::string& extra) {
        return "[[lan]]\nname = \"" + name + "\"\n" + extra;
    };
    std::vector<Case> cases = {
        {"subnet id past the routed prefix",
         seg("a", "device = \"eth1\"\nipv4 = \"192.168.1.1/24\"\nsubnet_id = 4\n") + wan + routed,
         "segments.conf:5:13: segment 'a': tunnel.routed_prefix 2001:db8:100::/62 has 4 /64s: no subnet id 4"},
        {"subnet id twice",
         seg("a", "device = \"eth1\"\nipv4 = \"192.168.1.1/24\"\nsubnet_id = 1\n") +
             seg("b", "device = \"eth2\"\nipv4 = \"192.168.2.1/24\"\nsubnet_id = 1\n") + wan + routed,
         "segments.conf:10:13: segment 'b': subnet_id 1 is taken by another segment"},
        {"overlapping IPv4 subnets",
         seg("a", "device = \"eth1\"\nipv4 = \"192.168.0.1/16\"\n") + seg("b", "device = \"eth2\"\nipv4 = \"192.168.2.1/24\"\n") + wan,
         "segments.conf:8:8: segment 'b': 192.168.2.1/24 overlaps segment 'a' (192.168.0.1/16)"},
        {"VLAN id out of range",
         seg("a", "device = \"eth1\"\nvlan = 4095\nipv4 = \"192.168.1.1/24\"\n") + wan,
         "segments.conf:4:8: lan1.vlan: 4095 is out of range 1..4094"},
        {"two segments on one NIC untagged",
         seg("a", "mac = \"52:54:00:00:00:02\"\nipv4 = \"192.168.1.1/24\"\n") +
             seg("b", "mac = \"52:54:00:00:00:02\"\nipv4 = \"192.168.2.1/24\"\n") + wan,
         "segments.conf:7:7: segment 'b': segment 'a' is on the same interface (a second segment on one NIC needs its own vlan)"},
        {"a static lease's MAC in two segments",
         seg("a", "device = \"eth1\"\nipv4 = \"192.168.1.1/24\"\n[[lan.dhcp.host]]\nmac = \"52:54:00:00:00:09\"\nip = \"192.168.1.9\"\n") +
             seg("b", "device = \"eth2\"\nipv4 = \"192.168.2.1/24\"\n[[lan.dhcp.host]]\nmac = \"52:54:00:00:00:09\"\nip = \"192.168.2.9\"\n") + wan,
         "segment 'b': dhcp host 52:54:00:00:00:09 is also listed in segment 'a'"},
        {"same name twice",
         seg("a", "device = \"eth1\"\nipv4 = \"192.168.1.1/24\"\n") + seg("a", "device = \"eth2\"\nipv4 = \"192.168.2.1/24\"\n") + wan,
         "segments.conf:6:8: segment 'a': the name is used twice"},
        {"guest with ssh",
         seg("g", "device = \"eth1\"\nipv4 = \"192.168.1.1/24\"\ntrust = \"guest\"\nssh = true\n") + wan,
         "segments.conf:6:7: lan1.ssh: a guest segment never reaches the router's SSH"},
        {"bad trust",
         seg("g", "device = \"eth1\"\nipv4 = \"192.168.1.1/24\"\ntrust = \"some\"\n") + wan,
         "segments.conf:5:9: lan1.trust: 'some' is not full or guest"},
        {"a route via a host on no segment",
         seg("a", "device = \"eth1\"\nipv4 = \"192.168.1.1/24\"\n") + wan + "[[route]]\nto = \"10.9.0.0/16\"\nvia = \"192.168.7.2\"\n",
         "segments.conf:9:7: route.via: 192.168.7.2 is not another host on a segment's IPv4 subnet"},
        {"a route over a segment's own subnet",
         seg("a", "device = \"eth1\"\nipv4 = \"192.168.1.1/24\"\n") + wan + "[[route]]\nto = \"192.168.0.0/16\"\nvia = \"192.168.1.2\"\n",
         "segments.conf:8:6: route.to: 192.168.0.0/16 overlaps segment 'a' (192.168.1.1/24)"},
        {"a routed prefix too short",
         seg("a", "device = \"eth1\"\nipv4 = \"192.168.1.1/24\"\n") + wan +
             "[tunnel]\nmode = \"static\"\nremote = \"198.18.0.1\"\nlocal_ipv6 = \"2001:db8:ff::2\"\nrouted_prefix = \"2001::/16\"\n",
         "segments.conf:11:17: tunnel.routed_prefix: '2001::/16' is not a global IPv6 prefix /32../64"},
    };
    for (auto& k : cases) {
        auto r = parse_config_text(k.text, "segments.conf");
        EXPECT_FALSE(r.config) << k.what;
        EXPECT_NE(errors_of(r).find(k.message), std::string::npos) << k.what << ":\n" << errors_of(r) << k.text;
    }
}

}  // namespace netd
