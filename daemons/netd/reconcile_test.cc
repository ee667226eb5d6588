// The reconciler against the recording kernel: the exact operations of each transition, none
// for an unchanged reload, a transition refused in the middle rolled back whole, and the
// end state after A -> B equal to a fresh start on B.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "desired_state.h"
#include "reconcile.h"
#include "test_fakes.h"

namespace netd {
namespace {

using testing::boot_kernel;
using testing::config_of;
using testing::FakeServices;
using testing::kBaseConfig;
using testing::kTunnelHe;

DhcpLease wan_lease(const std::string& ip = "203.0.113.10") {
    DhcpLease l;
    l.address = *Ipv4Cidr::parse(ip + "/24");
    l.routers = {*Ipv4Addr::parse("203.0.113.1")};
    l.dns = {*Ipv4Addr::parse("203.0.113.53")};
    l.lease_seconds = 3600;
    return l;
}

// One router: its kernel, its services, a run directory; converges on configs as given.
struct Router {
    RecordingKernel kernel;
    FakeServices services;
    std::string run = testing::temp_dir();
    std::unique_ptr<Reconciler> rec;
    std::optional<DesiredState> current;

    Router() {
        boot_kernel(kernel);
        rec = std::make_unique<Reconciler>(kernel, services, run + "/owned.json");
    }
    DesiredState want(const std::string& text, std::optional<DhcpLease> lease = std::nullopt) {
        Paths p;
        p.run_dir = run;
        auto d = desired_state(config_of(text), kernel.link_list, lease, p);
        EXPECT_TRUE(d) << (d ? "" : d.error().str());
        return *d;
    }
    // Converges; returns the kernel operations it made.
    std::vector<std::string> go(const std::string& text, std::optional<DhcpLease> lease = std::nullopt) {
        kernel.ops.clear();
        services.ops.clear();
        Applied a;
        auto d = want(text, lease);
        auto st = rec->converge(d, a);
        EXPECT_TRUE(st) << (st ? "" : st.error().str());
        EXPECT_EQ(a.kernel, kernel.ops) << "what the reconciler reports is what it did";
        current = d;
        return kernel.ops;
    }
    // The kernel and services as a comparable text.
    std::string snapshot() {
        std::string o;
        for (auto& l : kernel.link_list)
            o += "link " + l.name + (l.up ? " up" : " down") + " mtu " + std::to_string(l.mtu) +
                 (l.sit ? " sit " + l.sit->local.str() + ">" + l.sit->remote.str() : "") + "\n";
        for (auto& a : kernel.addrs) o += "addr " + a.str() + "\n";
        for (auto& r : kernel.route_set) o += "route " + r.str() + "\n";
        for (auto& [k, v] : kernel.sysctls) o += "sysctl " + k + "=" + v + "\n";
        o += kernel.ruleset_text;
        for (auto& [n, s] : services.running) {
            o += "service " + n;
            for (auto& a : s.argv) o += " " + a;
            o += "\n";
        }
        for (auto& e : std::filesystem::directory_iterator(run))
            if (e.path().filename() != "owned.json") {
                std::ifstream in(e.path());
                o += "file " + e.path().filename().string() + ":\n" + std::string(std::istreambuf_iterator<char>(in), {});
            }
        for (size_t p; (p = o.find(run)) != std::string::npos;) o.replace(p, run.size(), "$RUN");
        return o;
    }
};

TEST(Reconcile, FreshStartFirewallFirstThenLinks) {
    Router r;
    auto ops = r.go(kBaseConfig);
    ASSERT_FALSE(ops.empty());
    EXPECT_EQ(ops.front(), "nft load") << "the firewall before anything else";
    EXPECT_EQ(ops, (std::vector<std::string>{
                       "nft load",
                       "sysctl net/ipv4/ip_forward=1",
                       "sysctl net/ipv6/conf/all/forwarding=1",
                       "sysctl net/ipv6/conf/eth0/accept_ra=0",
                       "sysctl net/ipv6/conf/eth1/accept_ra=0",
                       "sysctl net/ipv6/conf/eth1/dad_transmits=0",
                       "sysctl net/ipv6/conf/eth1/router_solicitation_delay=0",
                       "link eth1 up",
                       "link eth0 up",
                       "addr add eth1 192.168.7.1/24",
                       "addr add eth1 2001:db8:7::1/64",
                   }));
    EXPECT_EQ(r.services.ops,
              (std::vector<std::string>{"start udhcpc", "start dnsmasq", "start ntpd", "start radvd", "start sshd"}));
}

TEST(Reconcile, UnchangedReloadMakesNoOperation) {
    Router r;
    r.go(kBaseConfig, wan_lease());
    r.kernel.ops.clear();
    r.services.ops.clear();
    Applied a;
    auto st = r.rec->converge(r.want(kBaseConfig, wan_lease()), a);
    ASSERT_TRUE(st) << st.error().str();
    EXPECT_EQ(a.count(), 0u) << ::testing::PrintToString(a.kernel) << ::testing::PrintToString(a.services);
    EXPECT_TRUE(r.kernel.ops.empty());
    EXPECT_TRUE(r.services.ops.empty());
}

TEST(Reconcile, PrefixRemovedTakesItsAddress) {
    Router r;
    std::string two = std::string(kBaseConfig);
    two.replace(two.find("[\"2001:db8:7::/64\"]"), 19, "[\"2001:db8:7::/64\", \"2001:db8:8::/64\"]");
    r.go(two);
    EXPECT_EQ(r.go(kBaseConfig), (std::vector<std::string>{"nft load", "addr del eth1 2001:db8:8::1/64"}));
    EXPECT_EQ(r.services.ops, (std::vector<std::string>{"restart dnsmasq", "restart radvd", "restart sshd"}))
        << "dnsmasq answers their reverse zones, radvd announces the prefixes, sshd listens on ::1 of each";
    EXPECT_EQ(r.go(two), (std::vector<std::string>{"nft load", "addr add eth1 2001:db8:8::1/64"}));
}

TEST(Reconcile, LanIpv4ChangedReplacesTheAddress) {
    Router r;
    r.go(kBaseConfig);
    std::string b = kBaseConfig;
    b.replace(b.find("192.168.7.1/24"), 14, "192.168.8.1/24");
    EXPECT_EQ(r.go(b), (std::vector<std::string>{"nft load", "addr del eth1 192.168.7.1/24", "addr add eth1 192.168.8.1/24"}));
}

TEST(Reconcile, TunnelRemovedTakesTheDeviceAddressAndRoute) {
    Router r;
    auto ops = r.go(std::string(kBaseConfig) + kTunnelHe, wan_lease());
    EXPECT_NE(std::find(ops.begin(), ops.end(), "sit sit6in4 local 203.0.113.10 remote 192.0.2.1 ttl 64 mtu 1480"), ops.end());
    ASSERT_TRUE(r.kernel.find("sit6in4"));
    EXPECT_TRUE(r.kernel.route_set.count({IpCidr::default_route(6), "sit6in4", std::nullopt}));
    EXPECT_EQ(r.go(kBaseConfig, wan_lease()), (std::vector<std::string>{"nft load", "link del sit6in4"}))
        << "the firewall loses the tunnel's rules; the device goes with its address and route";
    EXPECT_FALSE(r.kernel.find("sit6in4"));
    EXPECT_TRUE(r.kernel.route_set.size() == 1) << "only the IPv4 default route stays";
}

TEST(Reconcile, TunnelLocalIpv6ChangedReplacesTheOldAddress) {
    Router r;
    r.go(std::string(kBaseConfig) + kTunnelHe, wan_lease());
    std::string b = std::string(kBaseConfig) + kTunnelHe;
    b.replace(b.find("2001:db8:ff::2/64"), 17, "2001:db8:fe::2/64");
    EXPECT_EQ(r.go(b, wan_lease()),
              (std::vector<std::string>{"addr del sit6in4 2001:db8:ff::2/64", "addr add sit6in4 2001:db8:fe::2/64"}));
}

TEST(Reconcile, TunnelMtuAndRemoteChangedInPlace) {
    Router r;
    r.go(std::string(kBaseConfig) + kTunnelHe, wan_lease());
    std::string b = std::string(kBaseConfig) + kTunnelHe + "mtu = 1280\n";
    b.replace(b.find("192.0.2.1"), 9, "192.0.2.9");
    EXPECT_EQ(r.go(b, wan_lease()), (std::vector<std::string>{"nft load", "sit sit6in4 local 203.0.113.10 remote 192.0.2.9 ttl 64 mtu 1280"}))
        << "protocol 41 is accepted from the new peer only; the device changes in place";
}

// The flowtable names the sit device too, but the kernel refuses a flowtable naming a device
// that is not there: the first load leaves it out, the last one (after the device is made) has
// it. A restarted netd, with the device there, loads once; without the tunnel it goes first.
TEST(Reconcile, SitDeviceJoinsTheFlowtableOnceMade) {
    Router r;
    const std::string with_sit = R"(devices = { "eth0", "eth1", "sit6in4" })";
    auto ops = r.go(std::string(kBaseConfig) + kTunnelHe, wan_lease());
    ASSERT_GE(ops.size(), 3u);
    EXPECT_EQ(ops.front(), "nft load");
    EXPECT_EQ(ops.back(), "nft load") << "the whole ruleset once the sit device is there";
    EXPECT_EQ(std::count(ops.begin(), ops.end(), "nft load"), 2);
    EXPECT_LT(std::find(ops.begin(), ops.end(), "nft load") - ops.begin(),
              std::find_if(ops.begin(), ops.end(), [](auto& o) { return o.rfind("sit ", 0) == 0; }) - ops.begin());
    EXPECT_NE(r.kernel.ruleset_text.find(with_sit), std::string::npos) << r.kernel.ruleset_text;
    EXPECT_EQ(r.kernel.ruleset_text, r.current->ruleset_text) << "the kernel holds the desired ruleset";

    // netd restarted: the device is there, one load of the whole ruleset.
    r.rec = std::make_unique<Reconciler>(r.kernel, r.services, r.run + "/owned.json");
    EXPECT_EQ(r.go(std::string(kBaseConfig) + kTunnelHe, wan_lease()), (std::vector<std::string>{"nft load"}));
    EXPECT_NE(r.kernel.ruleset_text.find(with_sit), std::string::npos);

    // No tunnel: the flowtable without the device first, then the device goes; no second load.
    ops = r.go(kBaseConfig, wan_lease());
    EXPECT_EQ(ops.front(), "nft load");
    EXPECT_EQ(std::count(ops.begin(), ops.end(), "nft load"), 1);
    EXPECT_NE(std::find(ops.begin(), ops.end(), "link del sit6in4"), ops.end());
    EXPECT_NE(r.kernel.ruleset_text.find(R"(devices = { "eth0", "eth1" })"), std::string::npos) << r.kernel.ruleset_text;
}

// A NIC unplugged and plugged back (its name and MAC again, a new interface index; the kernel
// dropped its addresses and sysctls with it): the next convergence configures it again and
// loads the ruleset again, so that the flowtable hooks the new device, though the ruleset's
// text is the same. With nothing replugged a convergence does nothing.
TEST(Reconcile, ANicPluggedBackIsConfiguredAgainAndRejoinsTheFlowtable) {
    Router r;
    r.go(kBaseConfig, wan_lease());
    EXPECT_EQ(r.go(kBaseConfig, wan_lease()), std::vector<std::string>{});
    const std::string text = r.kernel.ruleset_text;
    for (const char* nic : {"eth1", "eth0"}) {
        SCOPED_TRACE(nic);
        int before = r.kernel.find(nic)->ifindex;
        std::string mac = r.kernel.find(nic)->mac->str();
        ASSERT_TRUE(r.kernel.del_link(nic));
        r.kernel.add_link(nic, mac);
        ASSERT_NE(r.kernel.find(nic)->ifindex, before);
        auto ops = r.go(kBaseConfig, wan_lease());
        auto has = [&](const std::string& op) {
            EXPECT_NE(std::find(ops.begin(), ops.end(), op), ops.end()) << op << " in " << ::testing::PrintToString(ops);
        };
        ASSERT_FALSE(ops.empty());
        EXPECT_EQ(ops.front(), "nft load") << "the flowtable made anew, first";
        EXPECT_EQ(std::count(ops.begin(), ops.end(), "nft load"), 1);
        has(std::string("link ") + nic + " up");
        if (std::string(nic) == "eth1") {
            has("addr add eth1 192.168.7.1/24");
            has("addr add eth1 2001:db8:7::1/64");
            has("sysctl net/ipv6/conf/eth1/accept_ra=0");
        } else {
            has("addr add eth0 203.0.113.10/24");
            has("route add 0.0.0.0/0 via 203.0.113.1 dev eth0");
        }
        EXPECT_EQ(r.kernel.ruleset_text, text);
        EXPECT_EQ(r.go(kBaseConfig, wan_lease()), std::vector<std::string>{}) << "and then nothing";
    }
}

TEST(Reconcile, WanAddressFollowsTheLease) {
    Router r;
    r.go(kBaseConfig, wan_lease());
    EXPECT_EQ(r.go(kBaseConfig, wan_lease("203.0.113.20")),
              (std::vector<std::string>{"addr del eth0 203.0.113.10/24", "addr add eth0 203.0.113.20/24",
                                        "route add 0.0.0.0/0 via 203.0.113.1 dev eth0"}))
        << "the route stays wanted; the kernel drops it with the old address, so it is added again";
    EXPECT_EQ(r.go(kBaseConfig, std::nullopt),
              (std::vector<std::string>{"route del 0.0.0.0/0 via 203.0.113.1 dev eth0", "addr del eth0 203.0.113.20/24"}));
}

TEST(Reconcile, LanNicChangedReleasesTheOldOne) {
    Router r;
    r.go(kBaseConfig);
    std::string b = kBaseConfig;
    b.replace(b.find("52:54:00:12:34:02"), 17, "52:54:00:12:34:03");
    EXPECT_EQ(r.go(b), (std::vector<std::string>{
                           "nft load",
                           "sysctl net/ipv6/conf/eth2/accept_ra=0",
                           "sysctl net/ipv6/conf/eth2/dad_transmits=0",
                           "sysctl net/ipv6/conf/eth2/router_solicitation_delay=0",
                           "sysctl net/ipv6/conf/eth1/accept_ra=1",
                           "sysctl net/ipv6/conf/eth1/dad_transmits=1",
                           "sysctl net/ipv6/conf/eth1/router_solicitation_delay=1",
                           "link eth2 up",
                           "addr del eth1 192.168.7.1/24",
                           "addr del eth1 2001:db8:7::1/64",
                           "addr add eth2 192.168.7.1/24",
                           "addr add eth2 2001:db8:7::1/64",
                           "link eth1 down",
                       }));
}

TEST(Reconcile, SshOffStopsSshd) {
    Router r;
    r.go(kBaseConfig);
    r.go(std::string(kBaseConfig) + "[ssh]\nenabled = false\n");
    EXPECT_EQ(r.services.ops, (std::vector<std::string>{"stop sshd"}));
    EXPECT_FALSE(r.services.running.count("sshd"));
}

// Three segments: main on eth1, guest on eth2, lab as VLAN 30 on eth2, and static routes.
const char* kSegments = R"(
[[lan]]
name = "main"
mac = "52:54:00:12:34:02"
ipv4 = "192.168.7.1/24"
ipv6_prefixes = ["2001:db8:7::/64"]
[[lan]]
name = "guest"
device = "eth2"
ipv4 = "192.168.8.1/24"
trust = "guest"
[[lan]]
name = "lab"
device = "eth2"
vlan = 30
ipv4 = "192.168.9.1/24"
ipv6_prefixes = ["2001:db8:9::/64"]
[wan]
mac = "52:54:00:12:34:01"
[[route]]
to = "10.99.0.0/24"
via = "192.168.7.2"
[[route]]
to = "2001:db8:99::/48"
via = "2001:db8:9::2"
)";

TEST(Reconcile, SegmentsMakeTheirVlanAndRoutesAndAReloadTakesThemAway) {
    Router r;
    r.go(kBaseConfig, wan_lease());
    auto ops = r.go(kSegments, wan_lease());
    auto has = [&](const std::string& op) {
        EXPECT_NE(std::find(ops.begin(), ops.end(), op), ops.end()) << op << " in " << ::testing::PrintToString(ops);
    };
    has("vlan eth2.30 on eth2 id 30");
    has("link eth2.30 up");
    has("link eth2 up");
    has("addr add eth2 192.168.8.1/24");
    has("addr add eth2.30 192.168.9.1/24");
    has("addr add eth2.30 2001:db8:9::1/64");
    has("route add 10.99.0.0/24 via 192.168.7.2 dev eth1");
    has("route add 2001:db8:99::/48 via 2001:db8:9::2 dev eth2.30");
    ASSERT_TRUE(r.kernel.find("eth2.30"));
    EXPECT_EQ(r.services.running.at("radvd").argv.size() > 0, true);
    // Back to one segment: the VLAN link goes (with its address and route), eth2 goes down
    // again and loses its address, the routes go.
    ops = r.go(kBaseConfig, wan_lease());
    has("link del eth2.30");
    has("addr del eth2 192.168.8.1/24");
    has("link eth2 down");
    has("route del 10.99.0.0/24 via 192.168.7.2 dev eth1");
    EXPECT_FALSE(r.kernel.find("eth2.30"));
    for (auto& rt : r.kernel.route_set) EXPECT_NE(rt.link, "eth2.30");
}

// A VLAN segment's connections are offloaded on its trunk (the flowtable's fast path handles
// the tag): the trunk NIC is in the flowtable, once however many segments ride on it, also when
// no untagged segment is on it; the VLAN link itself is not.
TEST(Reconcile, VlanSegmentsPutTheirTrunkInTheFlowtable) {
    Router r;
    r.go(kSegments, wan_lease());
    EXPECT_NE(r.kernel.ruleset_text.find(R"(devices = { "eth0", "eth1", "eth2" })"), std::string::npos)
        << r.kernel.ruleset_text;
    std::string vlan_only = kSegments;
    vlan_only.erase(vlan_only.find("[[lan]]\nname = \"guest\""),
                    vlan_only.find("[[lan]]\nname = \"lab\"") - vlan_only.find("[[lan]]\nname = \"guest\""));
    ASSERT_EQ(vlan_only.find("guest"), std::string::npos);
    r.go(vlan_only, wan_lease());
    EXPECT_NE(r.kernel.ruleset_text.find(R"(devices = { "eth0", "eth1", "eth2" })"), std::string::npos)
        << "the trunk carries only the VLAN: " << r.kernel.ruleset_text;
    EXPECT_EQ(r.kernel.ruleset_text.find("\"eth2.30\" }"), std::string::npos);
}

// The tunnel's routed prefix: the segments' /64s are on their links, the rest unreachable.
TEST(Reconcile, TheRoutedPrefixIsUnreachableButForTheSegments) {
    Router r;
    std::string cfg = std::string(kBaseConfig) + kTunnelHe + "routed_prefix = \"2001:db8:100::/48\"\n";
    auto ops = r.go(cfg, wan_lease());
    EXPECT_NE(std::find(ops.begin(), ops.end(), "route add unreachable 2001:db8:100::/48"), ops.end())
        << ::testing::PrintToString(ops);
    EXPECT_NE(std::find(ops.begin(), ops.end(), "addr add eth1 2001:db8:100::1/64"), ops.end()) << "a lone segment: id 0";
    ops = r.go(std::string(kBaseConfig) + kTunnelHe, wan_lease());
    EXPECT_NE(std::find(ops.begin(), ops.end(), "route del unreachable 2001:db8:100::/48"), ops.end())
        << ::testing::PrintToString(ops);
}

// Every pair A -> B ends where a fresh start on B does, and B -> A where A does.
TEST(Reconcile, TransitionsEndWhereAFreshStartDoes) {
    std::vector<std::pair<std::string, std::string>> configs = {
        {"base", kBaseConfig},
        {"dns upstream", std::string(kBaseConfig) + "[dns]\nupstream = [\"192.0.2.53\"]\n"},
        {"he", std::string(kBaseConfig) + kTunnelHe},
        {"heartbeat", std::string(kBaseConfig) +
                          "[tunnel]\nmode = \"heartbeat\"\nremote = \"192.0.2.1\"\nlocal_ipv6 = \"2001:db8:ff::2/64\"\n"
                          "password = \"pw\"\nsender = true\n"},
        {"static", std::string(kBaseConfig) +
                       "[tunnel]\nmode = \"static\"\nremote = \"192.0.2.7\"\nlocal_ipv6 = \"2001:db8:ff::2/64\"\nmtu = 1400\n"},
        {"ssh off", std::string(kBaseConfig) + "[ssh]\nenabled = false\n"},
        {"ssh port", std::string(kBaseConfig) + "[ssh]\nport = 2222\nallow_wan = true\n"},
        {"open6", std::string(kBaseConfig) + "[[firewall.open6]]\nhost = \"2001:db8:7::10\"\nport = 443\n"},
        {"blocklist", std::string(kBaseConfig) + "[firewall]\nblocklist = [\"198.51.100.0/24\"]\n"},
        {"segments", kSegments},
        {"routed", std::string(kBaseConfig) + kTunnelHe + "routed_prefix = \"2001:db8:100::/48\"\n"},
    };
    auto fresh = [&](const std::string& text) {
        Router r;
        r.go(text, wan_lease());
        return r.snapshot();
    };
    for (auto& [na, a] : configs)
        for (auto& [nb, b] : configs) {
            if (na == nb) continue;
            Router r;
            r.go(a, wan_lease());
            r.go(b, wan_lease());
            EXPECT_EQ(r.snapshot(), fresh(b)) << na << " -> " << nb;
        }
}

TEST(Reconcile, RefusedInTheMiddleRollsBackWhole) {
    Router r;
    r.go(std::string(kBaseConfig) + kTunnelHe, wan_lease());
    std::string before = r.snapshot();
    // B changes the LAN address and removes the tunnel; the kernel refuses the new address
    // after the firewall was loaded and the old address removed.
    std::string b = kBaseConfig;
    b.replace(b.find("192.168.7.1/24"), 14, "192.168.8.1/24");
    r.kernel.refuse = [](const std::string& op) -> std::optional<std::string> {
        if (op == "addr add eth1 192.168.8.1/24") return "Permission denied";
        return std::nullopt;
    };
    Applied a;
    auto st = r.rec->converge(r.want(b, wan_lease()), a);
    ASSERT_FALSE(st);
    EXPECT_NE(st.error().str().find("Permission denied"), std::string::npos);
    EXPECT_NE(r.snapshot(), before) << "half-way: neither A nor B";
    r.kernel.refuse = nullptr;
    Applied back;
    ASSERT_TRUE(r.rec->converge(*r.current, back));
    EXPECT_EQ(r.snapshot(), before) << "back to A, whole";
}

TEST(Reconcile, ARestartedNetdReleasesWhatThePreviousOneManaged) {
    Router r;
    r.go(kBaseConfig);
    // netd restarts (a new Reconciler on the same run directory) on a file whose LAN NIC changed.
    r.rec = std::make_unique<Reconciler>(r.kernel, r.services, r.run + "/owned.json");
    std::string b = kBaseConfig;
    b.replace(b.find("52:54:00:12:34:02"), 17, "52:54:00:12:34:03");
    auto ops = r.go(b);
    EXPECT_NE(std::find(ops.begin(), ops.end(), "addr del eth1 192.168.7.1/24"), ops.end());
    EXPECT_NE(std::find(ops.begin(), ops.end(), "link eth1 down"), ops.end());
    EXPECT_EQ(r.kernel.sysctls["net/ipv6/conf/eth1/accept_ra"], "1");
}

TEST(Reconcile, AnAddressNetdDidNotAddStays) {
    Router r;
    r.go(kBaseConfig);
    r.kernel.addrs.insert({"eth1", IpCidr::v6(*Ipv6Addr::parse("2001:db8:ff::2"), 64)});  // an admin's, by hand
    std::string b = kBaseConfig;
    b.replace(b.find("192.168.7.1/24"), 14, "192.168.8.1/24");
    EXPECT_EQ(r.go(b), (std::vector<std::string>{"nft load", "addr del eth1 192.168.7.1/24", "addr add eth1 192.168.8.1/24"}));
    EXPECT_TRUE(r.kernel.addrs.count({"eth1", IpCidr::v6(*Ipv6Addr::parse("2001:db8:ff::2"), 64)}));
}

// A transition refused before it touched a link leaves it as it was, up included, and an
// address that was there before netd wanted it survives the rollback.
TEST(Reconcile, ARollbackLeavesWhatNetdNeverTouched) {
    Router r;
    r.go(kBaseConfig);
    r.kernel.find("eth2")->up = true;  // someone else's, up
    IfAddr theirs{"eth2", IpCidr::v4(*Ipv4Cidr::parse("192.168.7.1/24"))};
    r.kernel.addrs.insert(theirs);
    std::string b = kBaseConfig;
    b.replace(b.find("52:54:00:12:34:02"), 17, "52:54:00:12:34:03");
    r.kernel.refuse = [](const std::string& op) -> std::optional<std::string> {
        if (op == "addr add eth2 2001:db8:7::1/64") return "No buffer space available";
        return std::nullopt;
    };
    Applied a;
    ASSERT_FALSE(r.rec->converge(r.want(b), a));
    r.kernel.refuse = nullptr;
    Applied back;
    ASSERT_TRUE(r.rec->converge(*r.current, back));
    EXPECT_TRUE(r.kernel.find("eth2")->up) << "netd never brought it up: it does not take it down";
    EXPECT_TRUE(r.kernel.addrs.count(theirs)) << "not netd's to remove";
    EXPECT_TRUE(r.kernel.addrs.count({"eth1", IpCidr::v4(*Ipv4Cidr::parse("192.168.7.1/24"))}));
}

TEST(Reconcile, ARouteSomeoneElseHoldsIsNotTakenOver) {
    Router r;
    r.go(kBaseConfig);
    Route theirs{IpCidr::default_route(4), "eth0", IpCidr::v4(*Ipv4Addr::parse("203.0.113.254"))};
    r.kernel.foreign_routes.insert(theirs);
    Applied a;
    auto st = r.rec->converge(r.want(kBaseConfig, wan_lease()), a);
    ASSERT_FALSE(st);
    EXPECT_NE(st.error().str().find("File exists"), std::string::npos) << st.error().str();
}

TEST(Reconcile, WanMtuFromTheLeaseIsGivenBackWithIt) {
    Router r;
    auto l = wan_lease();
    l.mtu = 1400;
    r.go(kBaseConfig, l);
    EXPECT_EQ(r.kernel.find("eth0")->mtu, 1400u);
    auto ops = r.go(kBaseConfig, std::nullopt);
    EXPECT_NE(std::find(ops.begin(), ops.end(), "link eth0 mtu 1500"), ops.end());
}

}  // namespace
}  // namespace netd
