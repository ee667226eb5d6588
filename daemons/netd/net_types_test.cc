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

}  // namespace
}  // namespace netd
