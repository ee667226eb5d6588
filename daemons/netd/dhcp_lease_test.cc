// Lease events as the udhcpc hook hands them over: a good lease, and hostile values that
// must each reject the whole event with a reason.
#include "dhcp_lease.h"

#include <gtest/gtest.h>

namespace netd {
namespace {

std::vector<std::string> good_bound() {
    return {"bound", "interface=eth0", "ip=198.51.100.20", "subnet=255.255.255.0", "mask=24",
            "router=198.51.100.1", "dns=198.51.100.53 192.0.2.53", "domain=isp.example", "search=isp.example example.net",
            "hostname=customer-20", "lease=3600", "mtu=1500", "serverid=198.51.100.1", "broadcast=198.51.100.255",
            "ntpsrv=198.51.100.123", "opt53=05"};
}

std::vector<std::string> with(std::vector<std::string> args, const std::string& kv) {
    auto key = kv.substr(0, kv.find('=') + 1);
    for (auto& a : args)
        if (a.rfind(key, 0) == 0) {
            a = kv;
            return args;
        }
    args.push_back(kv);
    return args;
}

TEST(DhcpLease, GoodBound) {
    auto ev = parse_dhcp_event(good_bound());
    ASSERT_TRUE(ev) << ev.error().str();
    EXPECT_EQ(ev->action, DhcpAction::bound);
    EXPECT_EQ(ev->interface, "eth0");
    ASSERT_TRUE(ev->lease);
    const auto& l = *ev->lease;
    EXPECT_EQ(l.address.str(), "198.51.100.20/24");
    ASSERT_EQ(l.routers.size(), 1u);
    EXPECT_EQ(l.routers[0].str(), "198.51.100.1");
    EXPECT_EQ(l.dns.size(), 2u);
    EXPECT_EQ(l.domain, "isp.example");
    EXPECT_EQ(l.search, (std::vector<std::string>{"isp.example", "example.net"}));
    EXPECT_EQ(l.hostname, "customer-20");
    EXPECT_EQ(l.lease_seconds, 3600u);
    EXPECT_EQ(l.mtu, 1500u);
    EXPECT_EQ(l.ntp.size(), 1u);
}

TEST(DhcpLease, OtherActionsNeedNoLease) {
    for (const char* a : {"deconfig", "leasefail"}) {
        auto ev = parse_dhcp_event({a, "interface=eth0"});
        ASSERT_TRUE(ev) << a;
        EXPECT_FALSE(ev->lease);
    }
    auto nak = parse_dhcp_event({"nak", "interface=eth0", "message=wrong \x7f network"});
    ASSERT_FALSE(nak);  // a control character anywhere rejects the event
    nak = parse_dhcp_event({"nak", "interface=eth0", "message=wrong network"});
    ASSERT_TRUE(nak);
    EXPECT_EQ(nak->message, "wrong network");
}

TEST(DhcpLease, HostileValuesRejectTheWholeEvent) {
    struct Case { std::string kv; std::string reason; };
    const Case cases[] = {
        {"hostname=$(touch /tmp/pwned)", "hostname"},
        {"hostname=a;reboot", "hostname"},
        {"hostname=`id`", "hostname"},
        {"domain=x.example; rm -rf /", "domain"},
        {"domain=$(id).example", "domain"},
        {"search=ok.example bad|domain", "search"},
        {"mask=33", "mask"},
        {"subnet=255.0.255.0", "subnet"},
        {"subnet=255.255.255.0 ", "subnet"},
        {"ip=198.51.100.256", "ip"},
        {"ip=127.0.0.1", "ip"},
        {"ip=224.0.0.1", "ip"},
        {"ip=198.51.100.255", "broadcast address"},
        {"ip=", "ip"},
        {"router=198.51.100.1;reboot", "router"},
        {"router=198.51.100.20", "our own address"},
        {"dns=1.1.1.1 2.2.2.2 3.3.3.3 4.4.4.4 5.5.5.5 6.6.6.6 7.7.7.7 8.8.8.8 9.9.9.9", "at most 8"},
        {"dns=0.0.0.0", "dns"},
        {"ntpsrv=255.255.255.255", "ntpsrv"},
        {"lease=-1", "lease"},
        {"lease=10", "lease"},
        {"lease=99999999999", "lease"},
        {"mtu=68", "mtu"},
        {"mtu=65536", "mtu"},
        {"mtu=1500x", "mtu"},
        {"broadcast=198.51.100.127", "broadcast"},
        {"interface=eth0/../../x", "interface"},
        {"hostname=" + std::string(2000, 'a'), "bytes"},
        {"domain=line\nbreak.example", "control character"},
    };
    for (const auto& c : cases) {
        auto ev = parse_dhcp_event(with(good_bound(), c.kv));
        ASSERT_FALSE(ev) << "accepted: " << c.kv;
        EXPECT_NE(ev.error().str().find(c.reason), std::string::npos) << c.kv << " -> " << ev.error().str();
    }
}

TEST(DhcpLease, MalformedEvents) {
    EXPECT_FALSE(parse_dhcp_event({}));
    EXPECT_FALSE(parse_dhcp_event({"renewal", "interface=eth0"}));
    EXPECT_FALSE(parse_dhcp_event({"bound", "interface=eth0", "noequals"}));
    EXPECT_FALSE(parse_dhcp_event({"bound", "interface=eth0", "=x"}));
    auto twice = good_bound();
    twice.push_back("ip=198.51.100.21");
    EXPECT_FALSE(parse_dhcp_event(twice));
    auto no_lease = good_bound();
    std::erase_if(no_lease, [](const std::string& a) { return a.rfind("lease=", 0) == 0; });
    EXPECT_FALSE(parse_dhcp_event(no_lease));
    auto disagree = with(good_bound(), "mask=25");
    EXPECT_NE(parse_dhcp_event(disagree).error().str().find("disagree"), std::string::npos);
}

TEST(DhcpLease, EmptyOptionalTextIsFine) {
    auto ev = parse_dhcp_event(with(with(good_bound(), "hostname="), "domain="));
    ASSERT_TRUE(ev) << ev.error().str();
    EXPECT_EQ(ev->lease->hostname, "");
}

}  // namespace
}  // namespace netd
