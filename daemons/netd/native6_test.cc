// Native IPv6: dhcpcd's events checked whole (hostile values rejected with the reason), the
// LAN's /64 by subnet id, the choice of uplink (auto: wait, native, fall back), renumbering
// (the old prefix announced with zero lifetimes), and what the desired state makes of it.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "daemon.h"
#include "desired_state.h"
#include "native6.h"
#include "test_fakes.h"

namespace netd {
namespace {

using testing::config_of;
using Clock = Native6::Clock;

std::vector<std::string> bound(const std::string& prefix, const std::string& len, const std::string& pl = "3600",
                               const std::string& vl = "7200", const std::string& reason = "BOUND6") {
    return {reason,
            "interface=eth0",
            "new_dhcp6_ia_pd1_prefix1=" + prefix,
            "new_dhcp6_ia_pd1_prefix1_length=" + len,
            "new_dhcp6_ia_pd1_prefix1_pltime=" + pl,
            "new_dhcp6_ia_pd1_prefix1_vltime=" + vl,
            "new_dhcp6_name_servers=2001:db8:ff::53"};
}

std::string error_of(const std::vector<std::string>& args) {
    auto ev = parse_dhcp6_event(args);
    return ev ? std::string("accepted") : ev.error().str();
}

TEST(Dhcp6Event, AcceptsADelegation) {
    auto ev = parse_dhcp6_event(bound("2001:db8:200::", "56"));
    ASSERT_TRUE(ev) << ev.error().str();
    EXPECT_EQ(ev->kind, Dhcp6Kind::lease);
    EXPECT_EQ(ev->interface, "eth0");
    ASSERT_EQ(ev->prefixes.size(), 1u);
    EXPECT_EQ(ev->prefixes[0].prefix.str(), "2001:db8:200::/56");
    EXPECT_EQ(ev->prefixes[0].preferred, 3600u);
    EXPECT_EQ(ev->prefixes[0].valid, 7200u);
    ASSERT_EQ(ev->dns.size(), 1u);
    EXPECT_EQ(ev->dns[0].str(), "2001:db8:ff::53");
}

TEST(Dhcp6Event, RejectsHostileValuesWhole) {
    EXPECT_NE(error_of(bound("2001:db8:200::", "128")).find("must be /32 to /64"), std::string::npos);
    EXPECT_NE(error_of(bound("::", "0")).find("must be /32 to /64"), std::string::npos);
    EXPECT_NE(error_of(bound("2001:db8:200::", "65")).find("must be /32 to /64"), std::string::npos);
    EXPECT_NE(error_of(bound("2001:db8:200::", "999")).find("not 0..128"), std::string::npos);
    EXPECT_NE(error_of(bound("2001:db8:200::1", "56")).find("without host bits"), std::string::npos);
    EXPECT_NE(error_of(bound("fd00:1::", "48")).find("not global unicast"), std::string::npos);
    EXPECT_NE(error_of(bound("ff02::", "48")).find("not global unicast"), std::string::npos);
    EXPECT_NE(error_of(bound("2001:db8:200::", "56", "9000", "7200")).find("above the valid lifetime"),
              std::string::npos);
    EXPECT_NE(error_of(bound("2001:db8:200::", "56", "-1")).find("pltime"), std::string::npos);
    EXPECT_NE(error_of(bound("2001:db8:200::", "56", "3600", "4294967296")).find("vltime"), std::string::npos);
    EXPECT_NE(error_of(bound("2001:db8:200::;reboot", "56")).find("not an IPv6 prefix"), std::string::npos);
    auto a = bound("2001:db8:200::", "56");
    a.push_back("new_dhcp6_name_servers=" + std::string(5000, 'a'));
    EXPECT_NE(error_of(a).find("5000 bytes"), std::string::npos);
    a = bound("2001:db8:200::", "56");
    a.erase(a.begin() + 4);   // no pltime
    EXPECT_NE(error_of(a).find("all needed"), std::string::npos);
    a = bound("2001:db8:200::", "56");
    a.push_back("new_dhcp6_ia_pd1_prefix2=2001:db8:200:10::");
    a.push_back("new_dhcp6_ia_pd1_prefix2_length=60");
    a.push_back("new_dhcp6_ia_pd1_prefix2_pltime=10");
    a.push_back("new_dhcp6_ia_pd1_prefix2_vltime=10");
    EXPECT_NE(error_of(a).find("overlaps"), std::string::npos);
    a = bound("2001:db8:200::", "56");
    for (int i = 2; i <= 9; ++i) a.push_back("new_dhcp6_ia_pd1_prefix" + std::to_string(i) + "=2001:db8:" + std::to_string(i) + "::");
    EXPECT_NE(error_of(a).find("more than 8"), std::string::npos);
    a = bound("2001:db8:200::", "56");
    a.back() = "new_dhcp6_name_servers=ff02::1";
    EXPECT_NE(error_of(a).find("not a unicast"), std::string::npos);
    EXPECT_NE(error_of({"BOUND6; rm -rf /", "interface=eth0"}).find("not one of dhcpcd's"), std::string::npos);
    EXPECT_NE(error_of({"BOUND6", "interface=eth0;x"}).find("not an interface name"), std::string::npos);
    EXPECT_NE(error_of({"BOUND6"}).find("no interface"), std::string::npos);
}

TEST(Dhcp6Event, ZeroValidLifetimeIsAPrefixTakenBack) {
    auto ev = parse_dhcp6_event(bound("2001:db8:200::", "56", "0", "0", "RENEW6"));
    ASSERT_TRUE(ev) << ev.error().str();
    EXPECT_EQ(ev->kind, Dhcp6Kind::lease);
    EXPECT_TRUE(ev->prefixes.empty());
}

TEST(Dhcp6Event, KindsOfReasons) {
    EXPECT_EQ(parse_dhcp6_event({"EXPIRE6", "interface=eth0"})->kind, Dhcp6Kind::lost);
    EXPECT_EQ(parse_dhcp6_event({"RELEASE6", "interface=eth0"})->kind, Dhcp6Kind::lost);
    EXPECT_EQ(parse_dhcp6_event({"ROUTERADVERT", "interface=eth0"})->kind, Dhcp6Kind::other);
    // A lost event's stale values are not even looked at.
    auto ev = parse_dhcp6_event(bound("2001:db8:200::", "128", "1", "1", "STOP6"));
    ASSERT_TRUE(ev);
    EXPECT_TRUE(ev->prefixes.empty());
}

TEST(LanSubnet, TakesTheSubnetIdBetweenTheDelegationAndSixtyFour) {
    EXPECT_EQ(lan_subnet(*Ipv6Prefix::parse("2001:db8:200::/56"), 0)->str(), "2001:db8:200::/64");
    EXPECT_EQ(lan_subnet(*Ipv6Prefix::parse("2001:db8:200::/56"), 1)->str(), "2001:db8:200:1::/64");
    EXPECT_EQ(lan_subnet(*Ipv6Prefix::parse("2001:db8:200::/48"), 0x2a)->str(), "2001:db8:200:2a::/64");
    EXPECT_EQ(lan_subnet(*Ipv6Prefix::parse("2001:db8:200:5::/64"), 0)->str(), "2001:db8:200:5::/64");
    auto e = lan_subnet(*Ipv6Prefix::parse("2001:db8:200::/62"), 4);
    ASSERT_FALSE(e);
    EXPECT_NE(e.error().str().find("has 4 /64s"), std::string::npos);
    EXPECT_FALSE(lan_subnet(*Ipv6Prefix::parse("2001:db8:200:5::/64"), 1));
}

const std::string kAuto = std::string(testing::kBaseConfig) + testing::kTunnelHe + "[ipv6]\nuplink = \"auto\"\nnative_wait = 10\n";
const std::string kNative = R"(
[lan]
mac = "52:54:00:12:34:02"
ipv4 = "192.168.7.1/24"
subnet_id = 1
[wan]
mac = "52:54:00:12:34:01"
[ipv6]
uplink = "native"
)";

Native6::Delegation delegation(const std::string& p, Clock::time_point at, uint32_t pl = 3600, uint32_t vl = 7200) {
    return {{{*Ipv6Prefix::parse(p), pl, vl}}, {}, at, "BOUND6"};
}

TEST(Native6, AutoWaitsThenTunnelThenNativeThenBack) {
    Config c = config_of(kAuto);
    Native6 n;
    auto t0 = Clock::now();
    n.configure(c, "eth0", t0);
    auto f = n.facts(c, t0);
    EXPECT_EQ(f.in_use, Uplink6Use::none);
    EXPECT_TRUE(f.dhcp6_client);
    EXPECT_TRUE(f.lan_prefixes.empty());
    ASSERT_TRUE(f.next_change);
    EXPECT_EQ(*f.next_change, t0 + std::chrono::seconds(10));
    n.applied(f, t0);

    auto t1 = t0 + std::chrono::seconds(10);
    f = n.facts(c, t1);
    EXPECT_EQ(f.in_use, Uplink6Use::tunnel);
    EXPECT_NE(f.why.find("within 10 s"), std::string::npos);
    ASSERT_EQ(f.lan_prefixes.size(), 1u);
    EXPECT_EQ(f.lan_prefixes[0].str(), "2001:db8:7::/64");   // the tunnel's, from [lan]
    n.applied(f, t1);

    // A delegation: native, the LAN's /64 (subnet id 0) with the lifetimes capped (RFC 9096),
    // the tunnel's prefix deprecated.
    auto t2 = t1 + std::chrono::seconds(5);
    auto d = delegation("2001:db8:200::/56", t2);
    f = n.facts(c, d, t2);
    EXPECT_EQ(f.in_use, Uplink6Use::native);
    ASSERT_EQ(f.lan_prefixes.size(), 1u);
    EXPECT_EQ(f.lan_prefixes[0].str(), "2001:db8:200::/64");
    EXPECT_EQ(f.lifetimes.at(f.lan_prefixes[0]), (PrefixLifetimes{2700, 5400}));
    ASSERT_EQ(f.stale.size(), 1u);
    EXPECT_EQ(f.stale[0].str(), "2001:db8:7::/64");
    n.applied(f, t2);
    n.commit(d, "BOUND6", t2);

    // It goes away: the tunnel at once (no second wait), the delegated /64 deprecated.
    auto t3 = t2 + std::chrono::seconds(60);
    f = n.facts(c, std::nullopt, t3);
    EXPECT_EQ(f.in_use, Uplink6Use::tunnel);
    EXPECT_NE(f.why.find("went away"), std::string::npos);
    ASSERT_EQ(f.stale.size(), 1u);
    EXPECT_EQ(f.stale[0].str(), "2001:db8:200::/64");   // the tunnel's prefix is back in use
    n.applied(f, t3);
    n.commit(std::nullopt, "EXPIRE6", t3);
    EXPECT_EQ(n.facts(c, t3).in_use, Uplink6Use::tunnel);
}

TEST(Native6, RenumberingDeprecatesTheOldPrefixForAWhile) {
    Config c = config_of(kNative);
    Native6 n;
    auto t0 = Clock::now();
    n.configure(c, "eth0", t0);
    EXPECT_EQ(n.facts(c, t0).in_use, Uplink6Use::none);
    auto a = delegation("2001:db8:200::/56", t0, 600, 1200);
    auto f = n.facts(c, a, t0);
    ASSERT_EQ(f.lan_prefixes.size(), 1u);
    EXPECT_EQ(f.lan_prefixes[0].str(), "2001:db8:200:1::/64");   // subnet_id = 1
    EXPECT_EQ(f.lifetimes.at(f.lan_prefixes[0]), (PrefixLifetimes{600, 1200}));
    n.applied(f, t0);
    n.commit(a, "BOUND6", t0);

    auto t1 = t0 + std::chrono::seconds(30);
    auto b = delegation("2001:db8:300::/56", t1, 600, 3600);
    f = n.facts(c, b, t1);
    EXPECT_EQ(f.lan_prefixes[0].str(), "2001:db8:300:1::/64");
    ASSERT_EQ(f.stale.size(), 1u);
    EXPECT_EQ(f.stale[0].str(), "2001:db8:200:1::/64");
    ASSERT_TRUE(f.next_change);
    EXPECT_EQ(*f.next_change, t1 + std::chrono::seconds(1200));   // the old one's valid lifetime
    n.applied(f, t1);
    n.commit(b, "RENEW6", t1);
    // Still deprecated a while later; gone once its time is up.
    EXPECT_EQ(n.facts(c, t1 + std::chrono::seconds(600)).stale.size(), 1u);
    EXPECT_TRUE(n.facts(c, t1 + std::chrono::seconds(1201)).stale.empty());
}

TEST(Native6, ADelegationTooSmallForTheSubnetIdIsNotUsed) {
    Config c = config_of(kNative);
    c.lans[0].subnet_id = 9;
    Native6 n;
    auto t0 = Clock::now();
    n.configure(c, "eth0", t0);
    auto f = n.facts(c, delegation("2001:db8:200::/62", t0), t0);
    EXPECT_EQ(f.in_use, Uplink6Use::none);
    EXPECT_TRUE(f.lan_prefixes.empty());
    EXPECT_NE(f.problem.find("no subnet id 9"), std::string::npos);
}

TEST(Native6, ADelegationNotRenewedInTimeRunsOut) {
    Config c = config_of(kNative);
    Native6 n;
    auto t0 = Clock::now();
    n.configure(c, "eth0", t0);
    auto d = delegation("2001:db8:200::/56", t0, 100, 200);
    n.applied(n.facts(c, d, t0), t0);
    n.commit(d, "BOUND6", t0);
    EXPECT_EQ(n.facts(c, t0 + std::chrono::seconds(199)).in_use, Uplink6Use::native);
    EXPECT_EQ(n.facts(c, t0 + std::chrono::seconds(200)).in_use, Uplink6Use::none);
}

TEST(Native6, WithoutIpv6SectionTheTunnelAsBefore) {
    Config c = config_of(std::string(testing::kBaseConfig) + testing::kTunnelHe);
    Native6 n;
    auto f = n.facts(c, Clock::now());
    EXPECT_EQ(f.in_use, Uplink6Use::tunnel);
    EXPECT_FALSE(f.dhcp6_client);
    EXPECT_EQ(f.lan_prefixes, c.lans[0].ipv6_prefixes);
}

TEST(Native6, DesiredStateFollowsTheUplinkInUse) {
    RecordingKernel k;
    testing::boot_kernel(k);
    Config c = config_of(kAuto);
    Native6 n;
    auto t0 = Clock::now();
    n.configure(c, "eth0", t0);
    DhcpLease lease;
    lease.address = *Ipv4Cidr::parse("203.0.113.10/24");
    lease.routers = {*Ipv4Addr::parse("203.0.113.1")};
    lease.lease_seconds = 3600;
    Paths paths;
    paths.run_dir = testing::temp_dir();

    // Native in use: dhcpcd runs, the WAN takes RAs, the tunnel stays up without the default
    // route, the LAN has the delegated /64, radvd deprecates the tunnel's prefix.
    n.applied(n.facts(c, t0 + std::chrono::seconds(11)), t0 + std::chrono::seconds(11));
    auto f = n.facts(c, delegation("2001:db8:200::/56", t0 + std::chrono::seconds(12)), t0 + std::chrono::seconds(12));
    auto d = desired_state(c, k.link_list, lease, paths, &f);
    ASSERT_TRUE(d) << d.error().str();
    EXPECT_EQ(d->sysctls.at("net/ipv6/conf/eth0/accept_ra"), "2");
    EXPECT_EQ(d->sysctls.at("net/ipv6/conf/eth0/autoconf"), "1");
    EXPECT_TRUE(d->sit);
    for (auto& r : d->routes) EXPECT_FALSE(r.dst.family == 6 && r.dst.len == 0) << r.str();
    EXPECT_TRUE(d->addresses.count({"eth1", IpCidr::v6(*Ipv6Addr::parse("2001:db8:200::1"), 64)}));
    EXPECT_FALSE(d->addresses.count({"eth1", IpCidr::v6(*Ipv6Addr::parse("2001:db8:7::1"), 64)}));
    bool dhcpcd = false, radvd = false;
    for (auto& s : d->services) {
        if (s.spec.name == "dhcpcd") {
            dhcpcd = true;
            EXPECT_NE(s.config_text.find("ia_pd 1"), std::string::npos);
            EXPECT_NE(s.config_text.find("allowinterfaces eth0"), std::string::npos);
        }
        if (s.spec.name == "radvd") {
            radvd = true;
            EXPECT_NE(s.config_text.find("prefix 2001:db8:200::/64 {\n        AdvOnLink on;\n        AdvAutonomous on;\n"
                                         "        AdvPreferredLifetime 2700;\n        AdvValidLifetime 5400;"),
                      std::string::npos)
                << s.config_text;
            EXPECT_NE(s.config_text.find("prefix 2001:db8:7::/64 {\n        AdvOnLink on;\n        AdvAutonomous on;\n"
                                         "        AdvPreferredLifetime 0;\n        AdvValidLifetime 0;"),
                      std::string::npos)
                << s.config_text;
            EXPECT_NE(s.config_text.find("AdvDefaultLifetime 1800"), std::string::npos);
            EXPECT_NE(s.config_text.find("AdvLinkMTU 1500"), std::string::npos);   // no tunnel MTU
        }
    }
    EXPECT_TRUE(dhcpcd);
    EXPECT_TRUE(radvd);
    EXPECT_NE(d->ruleset_text.find("ip6 saddr fe80::/10 udp sport 547 udp dport 546 accept"), std::string::npos);
    EXPECT_NE(d->ruleset_text.find("2001:db8:200::/64"), std::string::npos);   // the LAN set follows

    // The tunnel in use: its default route, its prefix, the tunnel MTU in the RAs.
    Native6 m;
    m.configure(c, "eth0", t0);
    f = m.facts(c, t0 + std::chrono::seconds(11));
    d = desired_state(c, k.link_list, lease, paths, &f);
    ASSERT_TRUE(d);
    EXPECT_TRUE(d->routes.count({IpCidr::default_route(6), kTunnelIf, std::nullopt}));
}


// The daemon with dhcpcd's events: applied, rejected whole, replayed by a restarted netd.
struct Router {
    RecordingKernel kernel;
    testing::FakeServices services;
    testing::FakeScheduler sched;
    testing::FakeUpdates updates;
    testing::FakeDatagrams datagrams;
    std::string dir = testing::temp_dir();
    std::unique_ptr<Daemon> d;

    explicit Router(const std::string& text) {
        testing::boot_kernel(kernel);
        std::ofstream(dir + "/router.conf") << text;
        restart();
    }
    void restart() {
        DaemonOptions o;
        o.config_path = dir + "/router.conf";
        o.paths.run_dir = dir + "/run";
        o.state_dir = dir + "/state";
        d = std::make_unique<Daemon>(kernel, services, sched, updates, datagrams, o);
        d->start();
    }
    ControlReply event(std::vector<std::string> args) {
        args.insert(args.begin(), "dhcp6-event");
        return d->control(args);
    }
    bool has_addr(const std::string& cidr) {
        for (auto& a : kernel.addrs)
            if (a.link == "eth1" && a.addr.str() == cidr) return true;
        return false;
    }
    nlohmann::json v6() { return nlohmann::json::parse(d->control({"status", "--json"}).text)["ipv6"]; }
};

TEST(Native6Daemon, ADelegationReachesTheLanAndGoesAway) {
    Router r(kNative);
    ASSERT_EQ(r.v6()["in_use"], "none") << r.d->control({"status"}).text;
    auto rep = r.event(bound("2001:db8:200::", "56"));
    ASSERT_TRUE(rep.ok) << rep.text;
    EXPECT_TRUE(r.has_addr("2001:db8:200:1::1/64"));
    EXPECT_EQ(r.v6()["in_use"], "native");
    // A renewal with the same values changes nothing.
    r.kernel.ops.clear();
    ASSERT_TRUE(r.event(bound("2001:db8:200::", "56", "3600", "7200", "RENEW6")).ok);
    EXPECT_TRUE(r.kernel.ops.empty());
    // Gone: the address goes, the /64 is announced deprecated.
    ASSERT_TRUE(r.event({"EXPIRE6", "interface=eth0"}).ok);
    EXPECT_FALSE(r.has_addr("2001:db8:200:1::1/64"));
    EXPECT_EQ(r.v6()["in_use"], "none");
    EXPECT_EQ(r.v6()["deprecated"][0]["prefix"], "2001:db8:200:1::/64");
}

TEST(Native6Daemon, AHostileEventChangesNothing) {
    Router r(kNative);
    ASSERT_TRUE(r.event(bound("2001:db8:200::", "56")).ok);
    r.kernel.ops.clear();
    r.services.ops.clear();
    auto rep = r.event(bound("2001:db8:300::", "128"));
    EXPECT_FALSE(rep.ok);
    EXPECT_NE(rep.text.find("rejected"), std::string::npos) << rep.text;
    EXPECT_TRUE(r.kernel.ops.empty());
    EXPECT_TRUE(r.services.ops.empty());
    EXPECT_EQ(r.v6()["rejected"], 1);
    EXPECT_EQ(r.v6()["delegated"][0]["prefix"], "2001:db8:200::/56");
    // Not for a router without a DHCPv6 client either.
    Router plain(std::string(testing::kBaseConfig));
    EXPECT_FALSE(plain.event(bound("2001:db8:200::", "56")).ok);
}

TEST(Native6Daemon, ARestartedNetdKeepsTheDelegationDhcpcdHolds) {
    Router r(kNative);
    ASSERT_TRUE(r.event(bound("2001:db8:200::", "56")).ok);
    r.kernel.ops.clear();
    r.services.ops.clear();
    r.restart();
    EXPECT_EQ(r.kernel.ops, (std::vector<std::string>{"nft load"}));
    EXPECT_TRUE(r.services.ops.empty());
    EXPECT_TRUE(r.has_addr("2001:db8:200:1::1/64"));
    EXPECT_EQ(r.v6()["in_use"], "native");
}

}  // namespace
}  // namespace netd
