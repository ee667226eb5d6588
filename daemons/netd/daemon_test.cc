// The daemon against the recording kernel, fake services, a hand-run clock and a fake broker:
// the faults found in the step-by-step netd, each one here as it was met.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "commands.h"
#include "daemon.h"
#include "test_fakes.h"

namespace netd {
namespace {

using namespace std::chrono_literals;
using testing::kBaseConfig;
using testing::kTunnelHe;

const char* kHeartbeat = R"(
[tunnel]
mode = "heartbeat"
remote = "192.0.2.1"
local_ipv6 = "2001:db8:ff::2/64"
password = "pw"
interval = 60
)";

std::vector<std::string> bound(const std::string& ip = "198.51.100.10") {
    return {"dhcp-event", "bound", "interface=eth0", "ip=" + ip, "subnet=255.255.255.0",
            "router=198.51.100.1", "dns=198.51.100.53", "lease=3600"};
}
const std::vector<std::string> kDeconfig = {"dhcp-event", "deconfig", "interface=eth0"};

struct Fixture {
    RecordingKernel kernel;
    testing::FakeServices services;
    testing::FakeScheduler sched;
    testing::FakeUpdates updates;
    testing::FakeDatagrams datagrams;
    std::string dir = testing::temp_dir();
    std::unique_ptr<Daemon> d;

    Fixture() { testing::boot_kernel(kernel); }
    void write(const std::string& text) { std::ofstream(dir + "/router.conf") << text; }
    void start(const std::string& text) {
        write(text);
        restart();
    }
    std::function<void(DaemonOptions&)> options;   // a test's extra options
    void restart() {
        DaemonOptions o;
        o.config_path = dir + "/router.conf";
        o.paths.run_dir = dir + "/run";
        o.state_dir = dir + "/state";
        o.data_format_file = dir + "/.layout";
        if (options) options(o);
        d = std::make_unique<Daemon>(kernel, services, sched, updates, datagrams, o);
        d->start();
    }
    ControlReply ctl(const std::vector<std::string>& args) { return d->control(args); }
    nlohmann::json status() { return nlohmann::json::parse(ctl({"status", "--json"}).text); }
    bool has_addr(const std::string& link, const std::string& cidr) {
        for (auto& a : kernel.addrs)
            if (a.link == link && a.addr.str() == cidr) return true;
        return false;
    }
};

// Names of IPv6 hosts: the all-nodes ping on each segment from its ::1, then a hosts file
// for dnsmasq from the DHCPv4 leases and the neighbour table, rewritten as they change.
TEST(Daemon, NamesOfIpv6HostsFollowLeasesAndNeighbours) {
    Fixture f;
    std::vector<std::string> pings;
    std::vector<Neighbour6> table;
    f.options = [&](DaemonOptions& o) {
        o.names6_neighbours = [&]() -> Result<std::vector<Neighbour6>> { return table; };
        o.names6_ping = [&](const std::string& ifname, const Ipv6Addr& src) -> Status {
            pings.push_back(ifname + " " + src.str());
            return Ok{};
        };
        o.dnsmasq_leases = f.dir + "/leases";
    };
    std::ofstream(f.dir + "/leases") << "1700000000 52:54:00:aa:bb:cc 192.168.7.50 laptop 01:52:54:00:aa:bb:cc\n";
    f.start(std::string(kBaseConfig));
    std::ifstream in0(f.dir + "/run/hosts/ipv6-hosts");
    EXPECT_TRUE(in0.good()) << "written at the start already";
    f.sched.advance(std::chrono::seconds(5));
    ASSERT_EQ(pings, (std::vector<std::string>{"eth1 2001:db8:7::1"}));
    table = {{"eth1", *Ipv6Addr::parse("2001:db8:7:0:5054:ff:feaa:bbcc"), *MacAddr::parse("52:54:00:aa:bb:cc")},
             {"eth1", *Ipv6Addr::parse("2001:db8:9::5"), *MacAddr::parse("52:54:00:aa:bb:cc")}};  // not its prefix
    f.sched.advance(std::chrono::seconds(2));
    std::ifstream in(f.dir + "/run/hosts/ipv6-hosts");
    std::string text((std::istreambuf_iterator<char>(in)), {});
    EXPECT_NE(text.find("2001:db8:7:0:5054:ff:feaa:bbcc laptop.lan laptop\n"), std::string::npos) << text;
    EXPECT_EQ(text.find("2001:db8:9::5"), std::string::npos) << text;
    // The host leaves the table: its name goes at the next refresh; pings go on every minute.
    table.clear();
    f.sched.advance(std::chrono::seconds(10));
    std::ifstream in2(f.dir + "/run/hosts/ipv6-hosts");
    std::string text2((std::istreambuf_iterator<char>(in2)), {});
    EXPECT_EQ(text2.find("laptop"), std::string::npos) << text2;
    f.sched.advance(std::chrono::seconds(60));
    EXPECT_EQ(pings.size(), 2u);
}

// A NIC unplugged and plugged back while netd runs: once the kernel's notifications are over,
// netd converges again and the LAN's addresses are back. A notification after which no link
// came or went (a link's state changed, or netd made its own sit device) changes nothing.
TEST(Daemon, ANicPluggedBackIsConfiguredAgain) {
    Fixture f;
    f.start(std::string(kBaseConfig) + kTunnelHe);
    ASSERT_TRUE(f.ctl(bound()).ok);
    ASSERT_TRUE(f.kernel.find("sit6in4"));
    ASSERT_TRUE(f.has_addr("eth1", "192.168.7.1/24"));
    f.kernel.ops.clear();
    f.d->links_changed();
    f.sched.advance(1s);
    EXPECT_TRUE(f.kernel.ops.empty()) << ::testing::PrintToString(f.kernel.ops);

    ASSERT_TRUE(f.kernel.del_link("eth1"));
    f.d->links_changed();
    f.sched.advance(1s);
    EXPECT_NE(f.ctl({"status"}).text.find("eth1"), std::string::npos);
    f.kernel.add_link("eth1", "52:54:00:12:34:02");
    f.kernel.ops.clear();
    f.d->links_changed();
    f.d->links_changed();
    f.sched.advance(100ms);
    EXPECT_TRUE(f.kernel.ops.empty()) << "not before the notifications are over";
    f.sched.advance(1s);
    EXPECT_TRUE(f.has_addr("eth1", "192.168.7.1/24"));
    EXPECT_TRUE(f.has_addr("eth1", "2001:db8:7::1/64"));
    EXPECT_TRUE(f.kernel.find("eth1")->up);
    EXPECT_EQ(std::count(f.kernel.ops.begin(), f.kernel.ops.end(), "nft load"), 1) << "the flowtable made anew";

    // The sit device deleted by hand: made again, with its address and the IPv6 default route.
    ASSERT_TRUE(f.kernel.del_link("sit6in4"));
    f.d->links_changed();
    f.sched.advance(1s);
    ASSERT_TRUE(f.kernel.find("sit6in4"));
    EXPECT_TRUE(f.has_addr("sit6in4", "2001:db8:ff::2/64"));
    bool route = false;
    for (auto& r : f.kernel.route_set) route = route || (r.link == "sit6in4" && r.dst.str() == "::/0");
    EXPECT_TRUE(route);
}

// A NIC made anew while a convergence runs (it comes back bare): its notification, which comes
// after the convergence, is still followed, though the convergence saw the links after it.
TEST(Daemon, ANicMadeAnewDuringAConvergenceIsConfiguredAgain) {
    Fixture f;
    f.start(kBaseConfig);
    bool done = false;
    f.kernel.refuse = [&](const std::string& op) -> std::optional<std::string> {
        if (!done && op.rfind("addr add eth0", 0) == 0) {
            done = true;
            f.kernel.refuse = nullptr;
            EXPECT_TRUE(f.kernel.del_link("eth1"));
            f.kernel.add_link("eth1", "52:54:00:12:34:02");
        }
        return std::nullopt;
    };
    ASSERT_TRUE(f.ctl(bound()).ok);
    ASSERT_TRUE(done);
    EXPECT_FALSE(f.has_addr("eth1", "192.168.7.1/24"));
    f.d->links_changed();
    f.sched.advance(1s);
    EXPECT_TRUE(f.has_addr("eth1", "192.168.7.1/24"));
    EXPECT_TRUE(f.kernel.find("eth1")->up);
}

// A configuration naming a NIC that is not there: nothing runs; once the NIC is plugged in,
// the file is applied.
TEST(Daemon, AConfigurationWaitingForItsNicRunsWhenItComes) {
    Fixture f;
    std::string text = kBaseConfig;
    text.replace(text.find("52:54:00:12:34:02"), 17, "52:54:00:12:34:09");
    f.start(text);
    ASSERT_FALSE(f.d->running_config());
    f.kernel.add_link("eth9", "52:54:00:12:34:09");
    f.d->links_changed();
    f.sched.advance(1s);
    ASSERT_TRUE(f.d->running_config());
    EXPECT_TRUE(f.has_addr("eth9", "192.168.7.1/24"));
}

TEST(Daemon, UnchangedReloadMakesNoOperation) {
    Fixture f;
    f.start(kBaseConfig);
    ASSERT_TRUE(f.ctl(bound()).ok);
    f.kernel.ops.clear();
    f.services.ops.clear();
    auto r = f.ctl({"reload"});
    ASSERT_TRUE(r.ok) << r.text;
    EXPECT_NE(r.text.find("applied: 0 operations"), std::string::npos) << r.text;
    EXPECT_TRUE(f.kernel.ops.empty());
    EXPECT_TRUE(f.services.ops.empty());
}

TEST(Daemon, RemovingTheTunnelRemovesTheDeviceAddressAndRoute) {
    Fixture f;
    f.start(std::string(kBaseConfig) + kTunnelHe);
    ASSERT_TRUE(f.ctl(bound()).ok);
    ASSERT_TRUE(f.kernel.find(kTunnelIf));
    f.write(kBaseConfig);
    ASSERT_TRUE(f.ctl({"reload"}).ok);
    EXPECT_FALSE(f.kernel.find(kTunnelIf));
    EXPECT_FALSE(f.kernel.route_set.count({IpCidr::default_route(6), kTunnelIf, std::nullopt}));
    EXPECT_EQ(f.status()["tunnel"]["mode"], "none");
}

TEST(Daemon, HeRetryAfterDeconfigWaitsForAnAddress) {
    Fixture f;
    f.start(std::string(kBaseConfig) + kTunnelHe);
    ASSERT_TRUE(f.ctl(bound()).ok);
    ASSERT_EQ(f.updates.requests.size(), 1u);
    f.updates.answer("ERROR connect 192.0.2.1: timed out\n");
    EXPECT_EQ(f.status()["tunnel"]["state"], to_string(TunnelState::retrying));
    ASSERT_TRUE(f.ctl(kDeconfig).ok);
    f.sched.advance(1h);   // the retry timer fires with no WAN address
    EXPECT_EQ(f.updates.requests.size(), 1u) << "no update for an address the router no longer has";
    EXPECT_EQ(f.status()["tunnel"]["state"], to_string(TunnelState::waiting_wan));
    ASSERT_TRUE(f.ctl(bound("198.51.100.20")).ok);
    ASSERT_EQ(f.updates.requests.size(), 2u);
    EXPECT_EQ(f.updates.requests[1].myip->str(), "198.51.100.20");
}

TEST(Daemon, HeBadauthResumesOnReloadAndIsNotUpAfterAWanChange) {
    Fixture f;
    f.start(std::string(kBaseConfig) + kTunnelHe);
    ASSERT_TRUE(f.ctl(bound()).ok);
    f.updates.answer("HTTP 401\nbadauth\n");
    EXPECT_EQ(f.status()["tunnel"]["state"], to_string(TunnelState::refused));
    ASSERT_TRUE(f.ctl(bound("198.51.100.20")).ok);
    EXPECT_EQ(f.updates.requests.size(), 1u) << "badauth: not retried by itself";
    EXPECT_NE(f.status()["tunnel"]["state"], to_string(TunnelState::up))
        << "the broker was never told the new address";
    // The credentials were fixed on the broker's side; the admin reloads as CONFIG.md says.
    ASSERT_TRUE(f.ctl({"reload"}).ok);
    ASSERT_EQ(f.updates.requests.size(), 2u) << "an unchanged [tunnel] reload resumes the updates";
    EXPECT_EQ(f.updates.requests[1].myip->str(), "198.51.100.20");
    f.updates.answer("HTTP 200\ngood 198.51.100.20\n");
    EXPECT_EQ(f.status()["tunnel"]["state"], to_string(TunnelState::up));
}

TEST(Daemon, HeBehindNatLeavesMyipOutAndShowsWhatTheBrokerSaw) {
    Fixture f;
    f.start(std::string(kBaseConfig) + kTunnelHe);
    ASSERT_TRUE(f.ctl(bound("192.168.1.50")).ok);
    ASSERT_EQ(f.updates.requests.size(), 1u);
    EXPECT_FALSE(f.updates.requests[0].myip) << "a private address means nothing to the broker";
    f.updates.answer("HTTP 200\ngood 203.0.113.77\n");
    auto t = f.status()["tunnel"];
    EXPECT_EQ(t["state"], to_string(TunnelState::up));
    EXPECT_EQ(t["broker_address"], "203.0.113.77");
    EXPECT_NE(f.ctl({"status"}).text.find("broker sees 203.0.113.77"), std::string::npos);
    EXPECT_TRUE(f.kernel.find(kTunnelIf)->sit->local == *Ipv4Addr::parse("192.168.1.50"))
        << "the sit device's local end stays the WAN address";
}

// A static WAN address: the kernel, the tunnel and dnsmasq follow it as they follow a lease;
// udhcpc does not run and a stray DHCP event is refused.
TEST(Daemon, StaticWanIsAppliedLikeALease) {
    Fixture f;
    std::string c = std::string(kBaseConfig) + kTunnelHe;
    c.replace(c.find("[wan]\nmac = \"52:54:00:12:34:01\"\n"), 31,
              "[wan]\nmac = \"52:54:00:12:34:01\"\nipv4 = \"198.51.100.10/24\"\ngateway = \"198.51.100.1\"\n"
              "dns = [\"198.51.100.53\"]\n");
    f.start(c);
    EXPECT_TRUE(f.has_addr("eth0", "198.51.100.10/24"));
    EXPECT_TRUE(f.kernel.route_set.count({IpCidr::default_route(4), "eth0", IpCidr::v4(*Ipv4Addr::parse("198.51.100.1"))}));
    ASSERT_EQ(f.updates.requests.size(), 1u) << "the broker is told the static address";
    EXPECT_EQ(f.updates.requests[0].myip->str(), "198.51.100.10");
    EXPECT_EQ(f.kernel.find(kTunnelIf)->sit->local, *Ipv4Addr::parse("198.51.100.10"));
    for (auto& s : f.services.ops) EXPECT_EQ(s.find("udhcpc"), std::string::npos) << s;
    auto st = f.status();
    EXPECT_EQ(st["wan"]["state"], "static");
    EXPECT_NE(f.ctl({"status"}).text.find("eth0 static 198.51.100.10/24 router 198.51.100.1 dns 198.51.100.53"),
              std::string::npos) << f.ctl({"status"}).text;
    auto r = f.ctl(bound("198.51.100.99"));
    EXPECT_FALSE(r.ok);
    EXPECT_FALSE(f.has_addr("eth0", "198.51.100.99/24"));
}

// DHCP -> static -> DHCP by reload: the old lease does not come back with DHCP.
TEST(Daemon, ALeaseEndsWhenTheWanBecomesStatic) {
    Fixture f;
    f.start(kBaseConfig);
    ASSERT_TRUE(f.ctl(bound()).ok);
    EXPECT_TRUE(f.has_addr("eth0", "198.51.100.10/24"));
    std::string c = kBaseConfig;
    c.replace(c.find("[wan]\nmac = \"52:54:00:12:34:01\"\n"), 31,
              "[wan]\nmac = \"52:54:00:12:34:01\"\nipv4 = \"203.0.113.40/24\"\ngateway = \"203.0.113.1\"\n");
    f.write(c);
    ASSERT_TRUE(f.ctl({"reload"}).ok);
    EXPECT_TRUE(f.has_addr("eth0", "203.0.113.40/24"));
    EXPECT_FALSE(f.has_addr("eth0", "198.51.100.10/24"));
    f.write(kBaseConfig);
    ASSERT_TRUE(f.ctl({"reload"}).ok);
    EXPECT_FALSE(f.has_addr("eth0", "203.0.113.40/24"));
    EXPECT_FALSE(f.has_addr("eth0", "198.51.100.10/24")) << "no stale lease";
    f.restart();  // nor after a netd restart (the lease record is gone)
    EXPECT_FALSE(f.has_addr("eth0", "198.51.100.10/24"));
}

// Behind a NAT whose router does not forward protocol 41, packets go into the tunnel and none
// come back: status says what is missing, and the warning goes once something comes back.
TEST(Daemon, StatusSaysWhenNoProtocol41ComesBack) {
    Fixture f;
    f.start(std::string(kBaseConfig) + kTunnelHe);
    ASSERT_TRUE(f.ctl(bound("192.168.1.50")).ok);
    auto* sit = f.kernel.find(kTunnelIf);
    ASSERT_TRUE(sit);
    sit->tx_packets = 4;
    EXPECT_EQ(f.status()["tunnel"]["warning"], "") << "too few to tell";
    sit->tx_packets = 12;
    auto t = f.status()["tunnel"];
    EXPECT_EQ(t["packets_out"], 12);
    std::string w = t["warning"];
    EXPECT_NE(w.find("no IPv6-in-IPv4 (IP protocol 41) packet has come back from 192.0.2.1 (12 sent)"),
              std::string::npos) << w;
    EXPECT_NE(w.find("behind a NAT, the upstream router must forward IP protocol 41 to this router's WAN address "
                     "192.168.1.50"), std::string::npos) << w;
    EXPECT_NE(f.ctl({"status"}).text.find("WARNING: no IPv6-in-IPv4"), std::string::npos);
    sit->rx_packets = 1;
    EXPECT_EQ(f.status()["tunnel"]["warning"], "");
}

TEST(Daemon, HeWanChangeCancelsTheUpdateForTheOldAddress) {
    Fixture f;
    f.start(std::string(kBaseConfig) + kTunnelHe);
    ASSERT_TRUE(f.ctl(bound()).ok);
    ASSERT_TRUE(f.ctl(bound("198.51.100.20")).ok);
    EXPECT_EQ(f.updates.cancelled, 1u);
    // The second update of a burst waits its gap (5 s after the first).
    EXPECT_EQ(f.status()["tunnel"]["state"], to_string(TunnelState::held_back));
    f.sched.advance(5s);
    ASSERT_EQ(f.updates.requests.size(), 2u);
    EXPECT_EQ(f.updates.requests[1].myip->str(), "198.51.100.20");
}

// A cancelled update may have reached the broker: when the WAN address goes back to the one
// the broker acknowledged before, it is told again.
TEST(Daemon, HeAfterACancelledUpdateTheBrokerIsToldAgain) {
    Fixture f;
    f.start(std::string(kBaseConfig) + kTunnelHe);
    ASSERT_TRUE(f.ctl(bound()).ok);
    f.updates.answer("HTTP 200\ngood 198.51.100.10\n");
    f.sched.advance(10s);
    ASSERT_TRUE(f.ctl(bound("198.51.100.20")).ok);  // an update for .20 leaves...
    ASSERT_EQ(f.updates.requests.size(), 2u);
    ASSERT_TRUE(f.ctl(bound("198.51.100.10")).ok);  // ...and is cancelled unanswered
    f.sched.advance(60s);
    ASSERT_EQ(f.updates.requests.size(), 3u);
    EXPECT_EQ(f.updates.requests[2].myip->str(), "198.51.100.10");
}

// A flapping WAN (two addresses, ten changes in 30 s) must not look like abuse to the broker:
// a handful of updates, spaced out, the last one for the address the router ends with; a
// change after a quiet spell goes out at once again.
TEST(Daemon, HeFlappingWanDrawsFewUpdatesAndEndsOnTheFinalAddress) {
    Fixture f;
    f.start(std::string(kBaseConfig) + kTunnelHe);
    for (int i = 0; i < 10; ++i) {
        ASSERT_TRUE(f.ctl(bound(i % 2 ? "198.51.100.20" : "198.51.100.10")).ok);
        for (int step = 0; step < 30; ++step) {  // 3 s, answering each update 100 ms after it left
            size_t n = f.updates.requests.size();
            f.sched.advance(100ms);
            if (f.updates.pending && f.updates.requests.size() == n)
                f.updates.answer("HTTP 200\ngood " + f.updates.requests.back().myip->str() + "\n");
        }
    }
    f.sched.advance(120s);
    if (f.updates.pending) f.updates.answer("HTTP 200\ngood " + f.updates.requests.back().myip->str() + "\n");
    size_t n = f.updates.requests.size();
    std::string all;
    for (auto& r : f.updates.requests) all += r.myip->str() + " ";
    EXPECT_LE(n, 5u) << "ten WAN changes in 30 s: " << all;
    EXPECT_EQ(f.updates.requests.back().myip->str(), "198.51.100.20") << "the final address; sent: " << all;
    EXPECT_EQ(f.status()["tunnel"]["state"], to_string(TunnelState::up));
    EXPECT_EQ(f.status()["tunnel"]["sent"], n);
    // Quiet for 5 minutes: the next change is told at once.
    f.sched.advance(300s);
    ASSERT_TRUE(f.ctl(bound("198.51.100.30")).ok);
    EXPECT_EQ(f.updates.requests.size(), n + 1);
}

// ntpd started before the WAN had an address retries only after 32 s: a WAN address while the
// clock is not synchronised starts it over; once synchronised, WAN changes leave it alone.
TEST(Daemon, AWanAddressPromptsNtpdUntilTheClockIsSynchronised) {
    Fixture f;
    f.start(std::string(kBaseConfig) + kHeartbeat);
    f.services.ops.clear();
    ASSERT_TRUE(f.ctl(bound()).ok);
    EXPECT_NE(std::find(f.services.ops.begin(), f.services.ops.end(), "restart ntpd"), f.services.ops.end())
        << ::testing::PrintToString(f.services.ops);
    ASSERT_TRUE(f.ctl({"ntp-event", "stratum", "stratum=2"}).ok);
    f.services.ops.clear();
    ASSERT_TRUE(f.ctl(bound("198.51.100.20")).ok);
    EXPECT_EQ(std::find(f.services.ops.begin(), f.services.ops.end(), "restart ntpd"), f.services.ops.end())
        << ::testing::PrintToString(f.services.ops);
}

TEST(Daemon, HeartbeatsOfAFlappingWanAreSpacedOut) {
    Fixture f;
    f.start(std::string(kBaseConfig) + kHeartbeat);
    ASSERT_TRUE(f.ctl({"ntp-event", "stratum", "stratum=2"}).ok);
    ASSERT_TRUE(f.ctl(bound()).ok);
    size_t base = f.datagrams.sent.size();
    for (int i = 1; i <= 10; ++i) {
        ASSERT_TRUE(f.ctl(bound(i % 2 ? "198.51.100.20" : "198.51.100.10")).ok);
        f.sched.advance(3s);
    }
    f.sched.advance(61s);
    size_t beats = f.datagrams.sent.size() - base;
    // Over 91 s: the regular beats (interval 60 s) and a few spaced out for the changes; one per
    // change would be 10 more.
    EXPECT_LE(beats, 6u);
    ASSERT_FALSE(f.datagrams.sent.empty());
    EXPECT_NE(f.datagrams.sent.back().find(" 198.51.100.10 "), std::string::npos) << f.datagrams.sent.back();
}

// Seen in the booted image: the lease comes before ntpd's first sync, the beats for it are held
// back, and a WAN change soon after the sync must still be told at once (a held-back beat left
// nothing, so it must not space out the next one).
TEST(Daemon, AHeartbeatHeldBackForTheClockDoesNotDelayTheNextWanChange) {
    Fixture f;
    f.start(std::string(kBaseConfig) + kHeartbeat);
    ASSERT_TRUE(f.ctl(bound()).ok);
    f.sched.advance(90s);
    EXPECT_TRUE(f.datagrams.sent.empty()) << "no heartbeat on an unsynchronised clock";
    ASSERT_TRUE(f.ctl({"ntp-event", "stratum", "stratum=2"}).ok);
    ASSERT_EQ(f.datagrams.sent.size(), 1u);
    f.sched.advance(20s);
    ASSERT_TRUE(f.ctl(bound("198.51.100.20")).ok);
    ASSERT_EQ(f.datagrams.sent.size(), 2u) << "the new address at once";
    EXPECT_NE(f.datagrams.sent.back().find(" 198.51.100.20 "), std::string::npos) << f.datagrams.sent.back();
}

TEST(Daemon, HeartbeatsResumeWhenTheSameAddressComesBackAfterAnInterval) {
    Fixture f;
    f.start(std::string(kBaseConfig) + kHeartbeat);
    ASSERT_TRUE(f.ctl({"ntp-event", "stratum", "stratum=2"}).ok);
    ASSERT_TRUE(f.ctl(bound()).ok);
    EXPECT_EQ(f.datagrams.sent.size(), 1u);
    f.sched.advance(60s);
    EXPECT_EQ(f.datagrams.sent.size(), 2u);
    ASSERT_TRUE(f.ctl(kDeconfig).ok);
    f.sched.advance(180s);  // longer than the interval without a lease
    EXPECT_EQ(f.datagrams.sent.size(), 2u);
    EXPECT_EQ(f.status()["tunnel"]["state"], to_string(TunnelState::waiting_wan)) << "not 'up' without an address";
    ASSERT_TRUE(f.ctl(bound()).ok);  // the same address again
    EXPECT_EQ(f.datagrams.sent.size(), 3u) << "a heartbeat at once";
    f.sched.advance(120s);
    EXPECT_EQ(f.datagrams.sent.size(), 5u) << "and every interval after";
    EXPECT_EQ(f.status()["tunnel"]["state"], to_string(TunnelState::up));
}

TEST(Daemon, ALeaseWhoseRouteTheKernelRefusesLeavesNothing) {
    Fixture f;
    f.start(kBaseConfig);
    f.kernel.refuse = [](const std::string& op) -> std::optional<std::string> {
        if (op.rfind("route add 0.0.0.0/0", 0) == 0) return "Network is unreachable";
        return std::nullopt;
    };
    // A /32 lease whose router is outside it.
    auto r = f.ctl({"dhcp-event", "bound", "interface=eth0", "ip=198.51.100.10", "subnet=255.255.255.255",
                    "router=198.51.100.1", "lease=3600"});
    EXPECT_FALSE(r.ok);
    EXPECT_NE(r.text.find("Network is unreachable"), std::string::npos) << r.text;
    EXPECT_FALSE(f.has_addr("eth0", "198.51.100.10/32")) << "the address is rolled back with the route";
    EXPECT_EQ(f.status()["wan"]["state"], "waiting for a lease");
    f.kernel.refuse = nullptr;
    f.kernel.ops.clear();
    ASSERT_TRUE(f.ctl(kDeconfig).ok);
    EXPECT_TRUE(f.kernel.ops.empty()) << "nothing was left to remove";
}

TEST(Daemon, AReloadRefusedHalfWayRollsBackWhole) {
    Fixture f;
    f.start(std::string(kBaseConfig) + kTunnelHe);
    ASSERT_TRUE(f.ctl(bound()).ok);
    auto before_addrs = f.kernel.addrs;
    auto before_routes = f.kernel.route_set;
    auto before_rules = f.kernel.ruleset_text;
    std::string b = kBaseConfig;
    b.replace(b.find("192.168.7.1/24"), 14, "192.168.8.1/24");
    f.write(b + "[firewall]\nblocklist = [\"203.0.113.0/24\"]\n");
    f.kernel.refuse = [](const std::string& op) -> std::optional<std::string> {
        if (op == "addr add eth1 192.168.8.1/24") return "File exists";
        return std::nullopt;
    };
    auto r = f.ctl({"reload"});
    EXPECT_FALSE(r.ok);
    EXPECT_NE(r.text.find("rolled back"), std::string::npos) << r.text;
    EXPECT_EQ(f.kernel.addrs, before_addrs);
    EXPECT_EQ(f.kernel.route_set, before_routes);
    EXPECT_EQ(f.kernel.ruleset_text, before_rules) << "the firewall too";
    EXPECT_TRUE(f.kernel.find(kTunnelIf));
    EXPECT_EQ(f.d->running_config()->lans[0].ipv4.str(), "192.168.7.1/24") << "the running configuration stays";
    EXPECT_NE(f.ctl({"status"}).text.find("REFUSED"), std::string::npos);
}

TEST(Daemon, ARestartedNetdStopsWhatTheFileNoLongerWants) {
    Fixture f;
    f.start(kBaseConfig);
    ASSERT_TRUE(f.services.running.count("sshd"));
    // ssh turned off in the file, then netd is killed: the new one adopts and converges.
    f.write(std::string(kBaseConfig) + "[ssh]\nenabled = false\n");
    f.services.ops.clear();
    f.restart();
    EXPECT_EQ(f.services.ops, (std::vector<std::string>{"stop sshd"}));
    EXPECT_FALSE(f.services.running.count("sshd"));
}

TEST(Daemon, ARestartWithTheLeaseReplayedTouchesNothing) {
    Fixture f;
    f.start(kBaseConfig);
    ASSERT_TRUE(f.ctl(bound()).ok);
    f.kernel.ops.clear();
    f.services.ops.clear();
    f.restart();
    EXPECT_EQ(f.kernel.ops, (std::vector<std::string>{"nft load"}))
        << "only the ruleset, which a new netd cannot know the kernel still holds";
    EXPECT_TRUE(f.services.ops.empty());
}

TEST(Daemon, ARestartOnABrokenFileKeepsWhatThePreviousNetdRan) {
    Fixture f;
    f.start(kBaseConfig);
    f.write("[lan]\nipv4 = \"nonsense\"\n");
    f.kernel.ops.clear();
    f.restart();
    EXPECT_TRUE(f.has_addr("eth1", "192.168.7.1/24"));
    EXPECT_TRUE(f.services.running.count("dnsmasq"));
    EXPECT_FALSE(f.status()["config"]["ok"]);
}

TEST(Daemon, EveryNetctlCommandHasAHandler) {
    for (auto& c : commands()) EXPECT_TRUE(Daemon::handles(c.name)) << c.name;
}

// A reload that fails (the same NIC named for WAN and LAN) keeps the WAN lease: the next good
// reload does not take the WAN address away.
TEST(Daemon, AFailedReloadKeepsTheWanLease) {
    Fixture f;
    f.start(kBaseConfig);
    ASSERT_TRUE(f.ctl(bound()).ok);
    std::string bad = kBaseConfig;
    bad.replace(bad.find("52:54:00:12:34:01"), 17, "52:54:00:12:34:03");  // WAN moved to eth2 ...
    f.write(bad);
    f.kernel.refuse = [](const std::string& op) -> std::optional<std::string> {
        if (op == "link eth2 up") return "Network is down";  // ... which the kernel refuses
        return std::nullopt;
    };
    EXPECT_FALSE(f.ctl({"reload"}).ok);
    f.kernel.refuse = nullptr;
    EXPECT_TRUE(f.has_addr("eth0", "198.51.100.10/24"));
    f.write(kBaseConfig);
    ASSERT_TRUE(f.ctl({"reload"}).ok);
    EXPECT_TRUE(f.has_addr("eth0", "198.51.100.10/24")) << "the lease is still the WAN's";
    EXPECT_TRUE(f.ctl({"dhcp-event", "renew", "interface=eth0", "ip=198.51.100.10", "subnet=255.255.255.0",
                       "router=198.51.100.1", "dns=198.51.100.53", "lease=3600"})
                    .ok)
        << "udhcpc's events on eth0 are still the WAN's";
}

TEST(Daemon, StatusJsonIsJson) {
    Fixture f;
    f.start(kBaseConfig);
    auto j = f.status();
    EXPECT_EQ(j["lan"]["interface"], "eth1");
    EXPECT_EQ(j["services"].size(), 5u);
    EXPECT_TRUE(j["firewall"]["loaded"]);
}

// netctl metrics as series -> value ("netd_x_total{a=\"b\"}" -> 3).
std::map<std::string, double> scrape(Fixture& f) {
    auto r = f.ctl({"metrics"});
    EXPECT_TRUE(r.ok) << r.text;
    std::map<std::string, double> m;
    std::istringstream in(r.text);
    for (std::string l; std::getline(in, l);)
        if (!l.empty() && l[0] != '#') m[l.substr(0, l.rfind(' '))] = std::stod(l.substr(l.rfind(' ') + 1));
    return m;
}

// The counters move on the events they count, the heartbeat tunnel's and the lease's.
TEST(Daemon, MetricsCountLeaseEventsHeartbeatsReloadsAndRestarts) {
    Fixture f;
    f.start(std::string(kBaseConfig) + kHeartbeat);
    auto m0 = scrape(f);
    EXPECT_EQ(m0["netd_reloads_total{result=\"ok\"}"], 0) << "netd's start is not a reload";
    EXPECT_EQ(m0["netd_dhcp_events_total{action=\"bound\",result=\"accepted\"}"], 0);
    EXPECT_NEAR(m0["netd_start_time_seconds"], static_cast<double>(time(nullptr)), 5);
    EXPECT_GE(m0["netd_uptime_seconds"], 0);
    EXPECT_EQ(m0["netd_service_up{service=\"dnsmasq\"}"], 1);
    EXPECT_EQ(m0["netd_tunnel_up"], 0);

    ASSERT_TRUE(f.ctl({"ntp-event", "stratum", "stratum=2"}).ok);
    ASSERT_TRUE(f.ctl(bound()).ok);                       // the first address: a heartbeat
    ASSERT_TRUE(f.ctl(bound("198.51.100.20")).ok);        // another one
    EXPECT_FALSE(f.ctl({"dhcp-event", "bound", "interface=eth9", "ip=198.51.100.30", "subnet=255.255.255.0"}).ok);
    EXPECT_FALSE(f.ctl({"dhcp-event", "bogus", "interface=eth0"}).ok);
    EXPECT_FALSE(f.ctl({"dhcp6-event", "BOUND6", "interface=eth0"}).ok) << "no DHCPv6 client configured";
    f.datagrams.error = "Network is unreachable";
    f.sched.advance(60s);                                  // the regular beat fails
    f.datagrams.error.clear();
    ASSERT_TRUE(f.ctl({"reload"}).ok);
    f.write("[lan]\nipv4 = \"nonsense\"\n");
    EXPECT_FALSE(f.ctl({"reload"}).ok);
    ASSERT_TRUE(f.ctl({"restart", "dnsmasq"}).ok);

    auto m = scrape(f);
    EXPECT_EQ(m["netd_dhcp_events_total{action=\"bound\",result=\"accepted\"}"], 2);
    EXPECT_EQ(m["netd_dhcp_events_total{action=\"bound\",result=\"rejected\"}"], 1);
    EXPECT_EQ(m["netd_dhcp_events_total{action=\"other\",result=\"rejected\"}"], 1);
    EXPECT_EQ(m["netd_dhcp6_events_total{result=\"rejected\"}"], 1);
    EXPECT_EQ(m["netd_wan_address_changes_total"], 2) << "none -> .10 -> .20";
    EXPECT_EQ(m["netd_tunnel_heartbeats_sent_total"], static_cast<double>(f.datagrams.sent.size()));
    EXPECT_GE(m["netd_tunnel_heartbeats_sent_total"], 2);
    EXPECT_EQ(m["netd_tunnel_heartbeats_failed_total"], 1);
    EXPECT_EQ(m["netd_reloads_total{result=\"ok\"}"], 1);
    EXPECT_EQ(m["netd_reloads_total{result=\"failed\"}"], 1);
    EXPECT_EQ(m["netd_service_restarts_total{service=\"dnsmasq\",reason=\"requested\"}"], 1);
    EXPECT_EQ(m["netd_service_restarts_total{service=\"dnsmasq\",reason=\"exit\"}"], 0);
    // The same figures in status --json.
    auto j = f.status()["metrics"];
    EXPECT_EQ(j["netd_wan_address_changes_total"], 2);
    EXPECT_EQ(j["netd_tunnel_heartbeats_failed_total"], 1);
}

TEST(Daemon, MetricsCountHeUpdatesByOutcome) {
    Fixture f;
    f.start(std::string(kBaseConfig) + kTunnelHe);
    ASSERT_TRUE(f.ctl(bound()).ok);
    f.updates.answer("HTTP 401\nbadauth\n");
    ASSERT_TRUE(f.ctl({"reload"}).ok);                     // resumes after badauth
    f.updates.answer("ERROR connect 192.0.2.1: timed out\n");
    f.sched.advance(15s);
    f.updates.answer("HTTP 200\ngood 198.51.100.10\n");
    auto m = scrape(f);
    EXPECT_EQ(m["netd_tunnel_he_updates_sent_total"], 3);
    EXPECT_EQ(m["netd_tunnel_he_updates_failed_total{reason=\"badauth\"}"], 1);
    EXPECT_EQ(m["netd_tunnel_he_updates_failed_total{reason=\"error\"}"], 1);
    EXPECT_EQ(m["netd_tunnel_he_updates_failed_total{reason=\"abuse\"}"], 0);
    EXPECT_EQ(m["netd_tunnel_up"], 1);
}

// What the kernel counts (the sit device's traffic, the firewall's drops) never goes back while
// netd runs, though a ruleset load starts the drop counters over and deleting the tunnel takes
// the device's counters with it.
TEST(Daemon, MetricsKeepTheKernelsCountsAcrossARulesetLoadAndTheTunnelsRemoval) {
    Fixture f;
    f.start(std::string(kBaseConfig) + kTunnelHe);
    ASSERT_TRUE(f.ctl(bound()).ok);
    auto* sit = f.kernel.find(kTunnelIf);
    ASSERT_TRUE(sit);
    sit->rx_packets = 5, sit->tx_packets = 7, sit->rx_bytes = 500, sit->tx_bytes = 700;
    f.kernel.drops["input"] = {4, 240};
    f.kernel.drops["forward"] = {1, 80};
    auto m = scrape(f);
    EXPECT_EQ(m["netd_tunnel_receive_packets_total"], 5);
    EXPECT_EQ(m["netd_tunnel_transmit_bytes_total"], 700);
    EXPECT_EQ(m["netd_firewall_dropped_packets_total{chain=\"input\"}"], 4);
    EXPECT_EQ(m["netd_firewall_dropped_bytes_total{chain=\"forward\"}"], 80);
    // A new ruleset (a blocklist) and no tunnel: the kernel's counters start over or go.
    f.write(std::string(kBaseConfig) + "[firewall]\nblocklist = [\"203.0.113.0/24\"]\n");
    ASSERT_TRUE(f.ctl({"reload"}).ok);
    ASSERT_FALSE(f.kernel.find(kTunnelIf));
    EXPECT_EQ(f.kernel.drops["input"], DropCount{}) << "the load started the kernel's counters over";
    f.kernel.drops["input"] = {2, 120};
    m = scrape(f);
    EXPECT_EQ(m["netd_firewall_dropped_packets_total{chain=\"input\"}"], 6);
    EXPECT_EQ(m["netd_firewall_dropped_bytes_total{chain=\"input\"}"], 360);
    EXPECT_EQ(m["netd_firewall_dropped_packets_total{chain=\"forward\"}"], 1);
    EXPECT_EQ(m["netd_tunnel_receive_packets_total"], 5) << "the deleted device's counts stay";
    EXPECT_EQ(m["netd_tunnel_transmit_bytes_total"], 700);
    EXPECT_FALSE(m.count("netd_tunnel_up")) << "no tunnel configured";
    // The tunnel again: a new device, counting from zero, added to what the old one counted.
    f.write(std::string(kBaseConfig) + kTunnelHe);
    ASSERT_TRUE(f.ctl({"reload"}).ok);
    ASSERT_TRUE(f.kernel.find(kTunnelIf));
    f.kernel.find(kTunnelIf)->rx_packets = 1;
    EXPECT_EQ(scrape(f)["netd_tunnel_receive_packets_total"], 6);
}

}  // namespace
}  // namespace netd
