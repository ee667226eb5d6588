// The WAN module against a fake netlink that records every change: a bound lease is applied,
// a renew with the same values touches nothing, a new address replaces the old one (and is
// reported so the tunnel can follow), deconfig removes exactly what bound applied.
#include <gtest/gtest.h>

#include "wan.h"

namespace netd {
namespace {

class RecordingNetlink final : public Netlink {
public:
    std::vector<std::string> calls;
    std::vector<LinkInfo> link_list;
    Result<std::vector<LinkInfo>> links() override { return link_list; }
    Status set_up(int i) override { return rec("up " + std::to_string(i)); }
    Status add_address(int i, const Ipv4Cidr& a) override { return rec("add " + std::to_string(i) + " " + a.str()); }
    Status add_address(int i, const Ipv6Addr& a, uint8_t l) override {
        return rec("add " + std::to_string(i) + " " + a.str() + "/" + std::to_string(l));
    }
    Status del_address(int i, const Ipv4Cidr& a) override { return rec("del " + std::to_string(i) + " " + a.str()); }
    Status replace_default_route(int i, const Ipv4Addr& g) override {
        return rec("route " + std::to_string(i) + " via " + g.str());
    }
    Status del_default_route(int i) override { return rec("noroute " + std::to_string(i)); }
    Status set_mtu(int i, unsigned m) override { return rec("mtu " + std::to_string(i) + " " + std::to_string(m)); }
    Result<int> ensure_sit(const std::string& n, Ipv4Addr l, Ipv4Addr r, unsigned m) override {
        rec("sit " + n + " " + l.str() + " " + r.str() + " " + std::to_string(m));
        return 9;
    }
    Status replace_default_route6(int i) override { return rec("route6 " + std::to_string(i)); }

private:
    Status rec(std::string s) {
        calls.push_back(std::move(s));
        return Ok{};
    }
};

DhcpEvent event(const std::vector<std::string>& args) {
    auto ev = parse_dhcp_event(args);
    EXPECT_TRUE(ev) << (ev ? "" : ev.error().str());
    return *ev;
}

const std::vector<std::string> kBound = {"bound",          "interface=eth0", "ip=203.0.113.10", "subnet=255.255.255.0",
                                         "router=203.0.113.1", "dns=203.0.113.53", "lease=3600", "mtu=1500"};

TEST(Wan, BoundAppliesAddressRouteMtu) {
    RecordingNetlink nl;
    Wan w(nl);
    w.set_link(2, "eth0");
    auto ch = w.handle(event(kBound));
    ASSERT_TRUE(ch);
    EXPECT_TRUE(ch->address);
    EXPECT_TRUE(ch->dns);
    EXPECT_EQ(nl.calls, (std::vector<std::string>{"add 2 203.0.113.10/24", "mtu 2 1500", "route 2 via 203.0.113.1"}));
    EXPECT_EQ(w.phase(), Wan::Phase::bound);
}

TEST(Wan, RenewWithSameValuesTouchesNothing) {
    RecordingNetlink nl;
    Wan w(nl);
    w.set_link(2, "eth0");
    ASSERT_TRUE(w.handle(event(kBound)));
    nl.calls.clear();
    auto renew = kBound;
    renew[0] = "renew";
    auto ch = w.handle(event(renew));
    ASSERT_TRUE(ch);
    EXPECT_FALSE(ch->any());
    EXPECT_TRUE(nl.calls.empty());
}

TEST(Wan, NewAddressReplacesOldAndIsReported) {
    RecordingNetlink nl;
    Wan w(nl);
    w.set_link(2, "eth0");
    ASSERT_TRUE(w.handle(event(kBound)));
    nl.calls.clear();
    auto moved = kBound;
    moved[2] = "ip=203.0.113.77";
    auto ch = w.handle(event(moved));
    ASSERT_TRUE(ch);
    EXPECT_TRUE(ch->address);
    EXPECT_FALSE(ch->dns);
    EXPECT_EQ(nl.calls, (std::vector<std::string>{"del 2 203.0.113.10/24", "add 2 203.0.113.77/24", "route 2 via 203.0.113.1"}));
}

TEST(Wan, DeconfigRemovesWhatBoundApplied) {
    RecordingNetlink nl;
    Wan w(nl);
    w.set_link(2, "eth0");
    ASSERT_TRUE(w.handle(event({"deconfig", "interface=eth0"})));
    EXPECT_TRUE(nl.calls.empty()) << "nothing applied yet: nothing to remove";
    ASSERT_TRUE(w.handle(event(kBound)));
    nl.calls.clear();
    auto ch = w.handle(event({"deconfig", "interface=eth0"}));
    ASSERT_TRUE(ch);
    EXPECT_TRUE(ch->address);
    EXPECT_EQ(nl.calls, (std::vector<std::string>{"noroute 2", "del 2 203.0.113.10/24"}));
    EXPECT_FALSE(w.lease());
    EXPECT_EQ(w.phase(), Wan::Phase::waiting);
}

TEST(Wan, LeasefailAndNakKeepAnExistingLease) {
    RecordingNetlink nl;
    Wan w(nl);
    w.set_link(2, "eth0");
    ASSERT_TRUE(w.handle(event({"leasefail", "interface=eth0"})));
    EXPECT_EQ(w.phase(), Wan::Phase::no_answer);
    ASSERT_TRUE(w.handle(event(kBound)));
    ASSERT_TRUE(w.handle(event({"nak", "interface=eth0", "message=go away"})));
    EXPECT_TRUE(w.lease());
    EXPECT_EQ(w.phase(), Wan::Phase::bound);
    EXPECT_NE(w.status_line().find("203.0.113.10/24"), std::string::npos);
}

// Under Xen the vifs may appear in any order: the config's MACs decide which is WAN and LAN.
TEST(ResolveLink, ByMacWhateverTheOrder) {
    RecordingNetlink nl;
    auto wan_mac = *MacAddr::parse("52:54:00:12:34:01"), lan_mac = *MacAddr::parse("52:54:00:12:34:02");
    nl.link_list = {{1, "lo", std::nullopt, true, 65536}, {2, "eth0", lan_mac, false, 1500},
                    {3, "eth1", wan_mac, false, 1500}};
    auto wan = resolve_link(nl, InterfaceRef{"", wan_mac});
    auto lan = resolve_link(nl, InterfaceRef{"", lan_mac});
    ASSERT_TRUE(wan);
    ASSERT_TRUE(lan);
    EXPECT_EQ(wan->name, "eth1");
    EXPECT_EQ(lan->name, "eth0");
    EXPECT_FALSE(resolve_link(nl, InterfaceRef{"", *MacAddr::parse("52:54:00:00:00:09")}));
    EXPECT_FALSE(resolve_link(nl, InterfaceRef{"eth0", wan_mac})) << "a device name that contradicts the MAC is an error";
}

}  // namespace
}  // namespace netd
