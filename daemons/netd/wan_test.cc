// The WAN module: lease events give the next lease state (pure), and the lease gives the WAN's
// part of the desired state. Applying it is the reconciler's (reconcile_test.cc).
#include <gtest/gtest.h>

#include "desired_state.h"
#include "test_fakes.h"
#include "wan.h"

namespace netd {
namespace {

DhcpEvent event(const std::vector<std::string>& args) {
    auto ev = parse_dhcp_event(args);
    EXPECT_TRUE(ev) << (ev ? "" : ev.error().str());
    return *ev;
}

const std::vector<std::string> kBound = {"bound",          "interface=eth0", "ip=203.0.113.10", "subnet=255.255.255.0",
                                         "router=203.0.113.1", "dns=203.0.113.53", "lease=3600", "mtu=1492"};
const auto kNow = std::chrono::steady_clock::now();

TEST(Wan, BoundGivesAddressRouteMtuInTheDesiredState) {
    Wan w;
    w.set_link("eth0");
    w.commit(w.next(event(kBound), kNow));
    ASSERT_TRUE(w.lease());
    EXPECT_EQ(w.state().phase, Wan::Phase::bound);
    DesiredState d;
    LinkInfo eth0{2, "eth0", std::nullopt, false, 1500, std::nullopt, std::nullopt};
    add_wan(d, eth0, w.lease());
    EXPECT_EQ(d.addresses.size(), 1u);
    EXPECT_EQ(d.addresses.begin()->str(), "eth0 203.0.113.10/24");
    ASSERT_EQ(d.routes.size(), 1u);
    EXPECT_EQ(d.routes.begin()->str(), "0.0.0.0/0 via 203.0.113.1 dev eth0");
    EXPECT_EQ(d.link("eth0")->mtu, 1492u);
    EXPECT_EQ(d.sysctls.at("net/ipv6/conf/eth0/accept_ra"), "0");
}

TEST(Wan, NextIsPureUntilCommitted) {
    Wan w;
    w.set_link("eth0");
    auto n = w.next(event(kBound), kNow);
    EXPECT_TRUE(n.lease);
    EXPECT_FALSE(w.lease()) << "a lease the kernel may still refuse is not the WAN's yet";
}

TEST(Wan, DeconfigLeavesNoLease) {
    Wan w;
    w.set_link("eth0");
    w.commit(w.next(event(kBound), kNow));
    w.commit(w.next(event({"deconfig", "interface=eth0"}), kNow));
    EXPECT_FALSE(w.lease());
    EXPECT_EQ(w.state().phase, Wan::Phase::waiting);
    DesiredState d;
    add_wan(d, LinkInfo{2, "eth0", std::nullopt, false, 1500, std::nullopt, std::nullopt}, w.lease());
    EXPECT_TRUE(d.addresses.empty());
    EXPECT_TRUE(d.routes.empty());
    EXPECT_FALSE(d.link("eth0")->mtu) << "without a lease the MTU goes back to what the link had";
}

TEST(Wan, LeasefailAndNakKeepAnExistingLease) {
    Wan w;
    w.set_link("eth0");
    w.commit(w.next(event({"leasefail", "interface=eth0"}), kNow));
    EXPECT_EQ(w.state().phase, Wan::Phase::no_answer);
    w.commit(w.next(event(kBound), kNow));
    w.commit(w.next(event({"nak", "interface=eth0", "message=go away"}), kNow));
    EXPECT_TRUE(w.lease());
    EXPECT_EQ(w.state().phase, Wan::Phase::bound);
    EXPECT_NE(w.status_line().find("203.0.113.10/24"), std::string::npos);
}

TEST(Wan, AnotherLinkForgetsTheLease) {
    Wan w;
    w.set_link("eth0");
    w.commit(w.next(event(kBound), kNow));
    w.set_link("eth0");
    EXPECT_TRUE(w.lease());
    w.set_link("eth3");
    EXPECT_FALSE(w.lease());
}

// Under Xen the vifs may appear in any order: the config's MACs decide which is WAN and LAN.
TEST(ResolveLink, ByMacWhateverTheOrder) {
    auto wan_mac = *MacAddr::parse("52:54:00:12:34:01"), lan_mac = *MacAddr::parse("52:54:00:12:34:02");
    std::vector<LinkInfo> links = {{1, "lo", std::nullopt, true, 65536, std::nullopt, std::nullopt},
                                   {2, "eth0", lan_mac, false, 1500, std::nullopt, std::nullopt},
                                   {3, "eth1", wan_mac, false, 1500, std::nullopt, std::nullopt}};
    auto wan = resolve_link(links, InterfaceRef{"", wan_mac});
    auto lan = resolve_link(links, InterfaceRef{"", lan_mac});
    ASSERT_TRUE(wan);
    ASSERT_TRUE(lan);
    EXPECT_EQ(wan->name, "eth1");
    EXPECT_EQ(lan->name, "eth0");
    EXPECT_FALSE(resolve_link(links, InterfaceRef{"", *MacAddr::parse("52:54:00:00:00:09")}));
    EXPECT_FALSE(resolve_link(links, InterfaceRef{"eth0", wan_mac})) << "a device name that contradicts the MAC is an error";
}

}  // namespace
}  // namespace netd
