#include "net_types.h"

#include <gtest/gtest.h>

namespace netd {
namespace {

TEST(Ipv4, ParsesAndFormats) {
    auto a = Ipv4Addr::parse("192.0.2.1");
    ASSERT_TRUE(a);
    EXPECT_EQ(a->host_order, 0xc0000201u);
    EXPECT_EQ(a->str(), "192.0.2.1");
    EXPECT_FALSE(Ipv4Addr::parse(""));
    EXPECT_FALSE(Ipv4Addr::parse("192.0.2"));
    EXPECT_FALSE(Ipv4Addr::parse("192.0.2.256"));
    EXPECT_FALSE(Ipv4Addr::parse("192.0.2.1 "));
    EXPECT_FALSE(Ipv4Addr::parse("192.0.2.1;reboot"));
}

TEST(Ipv4Cidr, RejectsBadLengths) {
    auto c = Ipv4Cidr::parse("192.168.1.1/24");
    ASSERT_TRUE(c);
    EXPECT_EQ(c->network().str(), "192.168.1.0");
    EXPECT_TRUE(c->contains(*Ipv4Addr::parse("192.168.1.200")));
    EXPECT_FALSE(c->contains(*Ipv4Addr::parse("192.168.2.1")));
    EXPECT_FALSE(Ipv4Cidr::parse("192.168.1.1/33"));
    EXPECT_FALSE(Ipv4Cidr::parse("192.168.1.1/"));
    EXPECT_FALSE(Ipv4Cidr::parse("192.168.1.1/024"));
    EXPECT_FALSE(Ipv4Cidr::parse("192.168.1.1/-1"));
    EXPECT_FALSE(Ipv4Cidr::parse("192.168.1.1"));
    EXPECT_EQ(Ipv4Cidr::parse("10.0.0.1/0")->netmask(), 0u);
}

TEST(Ipv6Prefix, RejectsHostBits) {
    auto p = Ipv6Prefix::parse("2001:db8:1::/64");
    ASSERT_TRUE(p);
    EXPECT_EQ(p->str(), "2001:db8:1::/64");
    EXPECT_EQ(p->with_host(1).str(), "2001:db8:1::1");
    EXPECT_FALSE(Ipv6Prefix::parse("2001:db8:1::1/64"));
    EXPECT_FALSE(Ipv6Prefix::parse("2001:db8:1::/129"));
    EXPECT_TRUE(Ipv6Prefix::parse("::/0"));
    EXPECT_TRUE(Ipv6Addr::parse("fe80::1")->is_link_local());
}

TEST(Mac, ParsesStrictly) {
    auto m = MacAddr::parse("52:54:00:AB:cd:0f");
    ASSERT_TRUE(m);
    EXPECT_EQ(m->str(), "52:54:00:ab:cd:0f");
    EXPECT_FALSE(MacAddr::parse("52:54:00:ab:cd"));
    EXPECT_FALSE(MacAddr::parse("52-54-00-ab-cd-0f"));
    EXPECT_FALSE(MacAddr::parse("52:54:00:ab:cd:0g"));
}

TEST(Names, HostAndDomainSyntax) {
    EXPECT_TRUE(is_valid_hostname("printer-2"));
    EXPECT_FALSE(is_valid_hostname("-printer"));
    EXPECT_FALSE(is_valid_hostname("a;reboot"));
    EXPECT_FALSE(is_valid_hostname("$(id)"));
    EXPECT_FALSE(is_valid_hostname(std::string(64, 'a')));
    EXPECT_TRUE(is_valid_domain_name("home.arpa"));
    EXPECT_TRUE(is_valid_domain_name("example.net."));
    EXPECT_FALSE(is_valid_domain_name("a..b"));
    EXPECT_FALSE(is_valid_domain_name("a b.c"));
    EXPECT_TRUE(is_valid_interface_name("eth0"));
    EXPECT_FALSE(is_valid_interface_name("eth0/../x"));
    EXPECT_FALSE(is_valid_interface_name("averyveryverylongname"));
}

// One rule each, used by the config and the lease parser alike.
TEST(Rules, UnicastHostLanHostPublic) {
    auto a = [](const char* s) { return *Ipv4Addr::parse(s); };
    EXPECT_TRUE(is_unicast_host(a("192.0.2.1")));
    for (auto* bad : {"0.0.0.0", "0.1.2.3", "127.0.0.1", "169.254.1.1", "224.0.0.1", "240.0.0.1", "255.255.255.255"})
        EXPECT_FALSE(is_unicast_host(a(bad))) << bad;
    auto lan = *Ipv4Cidr::parse("192.168.7.1/24");
    EXPECT_TRUE(is_lan_host(lan, a("192.168.7.10")));
    EXPECT_FALSE(is_lan_host(lan, a("192.168.7.1"))) << "the router itself";
    EXPECT_FALSE(is_lan_host(lan, a("192.168.7.0"))) << "the network address";
    EXPECT_FALSE(is_lan_host(lan, a("192.168.7.255"))) << "the broadcast address";
    EXPECT_FALSE(is_lan_host(lan, a("192.168.8.10")));
    EXPECT_TRUE(is_public_ipv4(a("198.51.100.10")));
    EXPECT_TRUE(is_public_ipv4(a("8.8.8.8")));
    for (auto* nat : {"10.1.2.3", "172.16.0.1", "172.31.255.1", "192.168.1.50", "100.64.0.1", "100.127.255.1", "192.0.0.2"})
        EXPECT_FALSE(is_public_ipv4(a(nat))) << nat;
    EXPECT_TRUE(is_public_ipv4(a("172.32.0.1")));
}

}  // namespace
}  // namespace netd
