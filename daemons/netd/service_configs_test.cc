// Golden tests of the generated daemon configs: the exact text for testdata/good.conf.
// NETD_UPDATE_GOLDEN=1 rewrites the golden files (then review the diff).
#include "service_configs.h"

#include <gtest/gtest.h>
#include <linux/capability.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>

namespace netd {
namespace {

const std::string kGolden = NETD_TESTDATA "/golden/";

std::string read(const std::string& path) {
    std::ifstream in(path);
    return std::string((std::istreambuf_iterator<char>(in)), {});
}

void expect_golden(const std::string& name, const std::string& text) {
    if (std::getenv("NETD_UPDATE_GOLDEN")) std::ofstream(kGolden + name) << text;
    EXPECT_EQ(text, read(kGolden + name)) << "golden file " << name << " differs";
}

class ServiceConfigs : public ::testing::Test {
protected:
    void SetUp() override {
        auto r = load_config(NETD_TESTDATA "/good.conf");
        ASSERT_TRUE(r.config);
        cfg = *r.config;
        facts.lans["lan"].ifname = "eth1";
        facts.wan_ntp = {"198.51.100.123"};
        facts.lans["lan"].mtu = 1480;
        facts.ipv6_uplink = true;
    }
    Config cfg;
    RuntimeFacts facts;
};

// Three segments (testdata/segments.conf) from a routed /48: a tagged DHCP range and options
// per segment with its own domain, stateless DHCPv6 and a reverse zone per /64, one radvd block
// per segment with its own RDNSS and DNSSL, sshd only where allowed. The golden files are also
// checked by the image's real daemons (tests/image/test_generated_configs.sh).
TEST(ServiceConfigsSegments, Golden) {
    auto r = load_config(NETD_TESTDATA "/segments.conf");
    ASSERT_TRUE(r.config);
    Config c = *r.config;
    for (auto& l : c.lans) l.ipv6_prefixes = r.config->tunnel_prefixes(l);
    RuntimeFacts f;
    f.lans["main"] = {"eth1", 1480, {}};
    f.lans["guest"] = {"eth2", 1480, {}};
    f.lans["lab"] = {"eth2.30", 1480, {*Ipv6Prefix::parse("2001:db8:200:3::/64")}};
    f.ipv6_uplink = true;
    f.hostsdir = "/run/netd/hosts";
    auto dnsmasq = dnsmasq_service(c, f, "/run/netd").config_text;
    auto radvd = radvd_service(c, f, "/run/netd").config_text;
    auto sshd = sshd_service(c, f, "/run/netd").config_text;
    expect_golden("segments-dnsmasq.conf", dnsmasq);
    expect_golden("segments-radvd.conf", radvd);
    expect_golden("segments-sshd_config", sshd);
    EXPECT_NE(dnsmasq.find("dhcp-range=set:guest,192.168.2.128,192.168.2.254,255.255.255.0,3600\n"), std::string::npos);
    EXPECT_NE(dnsmasq.find("dhcp-option=tag:guest,option:router,192.168.2.1\n"), std::string::npos);
    EXPECT_NE(dnsmasq.find("domain=guest.home.arpa,192.168.2.0/24\n"), std::string::npos);
    EXPECT_NE(dnsmasq.find("dhcp-range=set:lab,::,constructor:eth2.30,static\n"), std::string::npos);
    EXPECT_NE(radvd.find("interface eth2.30 {"), std::string::npos);
    EXPECT_NE(radvd.find("RDNSS 2001:db8:100:2::1"), std::string::npos);
    EXPECT_EQ(sshd.find("192.168.2.1"), std::string::npos) << "not on the guest segment";
    EXPECT_EQ(sshd.find("192.168.3.1"), std::string::npos) << "not on lab (ssh = false)";
    EXPECT_NE(sshd.find("ListenAddress 192.168.1.1\n"), std::string::npos);
}

TEST_F(ServiceConfigs, Dnsmasq) {
    auto g = dnsmasq_service(cfg, facts, "/run/netd");
    expect_golden("dnsmasq.conf", g.config_text);
    EXPECT_EQ(g.spec.argv, (std::vector<std::string>{"/usr/sbin/dnsmasq", "-k", "-C", "/run/netd/dnsmasq.conf", "--pid-file="}));
}

TEST_F(ServiceConfigs, Radvd) {
    auto g = radvd_service(cfg, facts, "/run/netd");
    expect_golden("radvd.conf", g.config_text);
    EXPECT_EQ(g.spec.argv[0], "/usr/sbin/radvd");
}

TEST_F(ServiceConfigs, RadvdWithoutUplinkIsNoDefaultRouter) {
    facts.ipv6_uplink = false;
    auto g = radvd_service(cfg, facts, "/run/netd");
    EXPECT_NE(g.config_text.find("AdvDefaultLifetime 0;"), std::string::npos);
}

TEST_F(ServiceConfigs, Sshd) {
    auto g = sshd_service(cfg, facts, "/run/netd");
    expect_golden("sshd_config", g.config_text);
    cfg.ssh.allow_wan = true;
    cfg.ssh.port = 2222;
    auto w = sshd_service(cfg, facts, "/run/netd");
    EXPECT_NE(w.config_text.find("Port 2222\nListenAddress 0.0.0.0\nListenAddress ::\n"), std::string::npos);
}

TEST_F(ServiceConfigs, Ntpd) {
    auto g = ntpd_service(cfg, facts);
    EXPECT_EQ(g.spec.argv, (std::vector<std::string>{"/usr/sbin/ntpd", "-n", "-S", "/etc/netd/ntpd-hook", "-l", "-p", "ntp.example.net", "-p",
                                                     "192.0.2.123", "-p", "198.51.100.123"}));
    cfg.ntp.serve_lan = false;
    EXPECT_EQ(ntpd_service(cfg, facts).spec.argv[4], "-p");
}

// The two BusyBox daemons cannot drop root themselves: netd starts them with only the
// capabilities they use (ntpd: set the clock, port 123; udhcpc: packet and raw sockets, port
// 68). dnsmasq, radvd and sshd change user themselves and are started unrestricted.
TEST_F(ServiceConfigs, OnlyTheCapabilitiesTheyUse) {
    EXPECT_EQ(ntpd_service(cfg, facts).spec.capabilities, (1ull << CAP_SYS_TIME) | (1ull << CAP_NET_BIND_SERVICE));
    EXPECT_EQ(udhcpc_service("eth0", "/etc/udhcpc/netd-hook").spec.capabilities,
              (1ull << CAP_NET_RAW) | (1ull << CAP_NET_BIND_SERVICE));
    EXPECT_EQ(dnsmasq_service(cfg, facts).spec.capabilities, std::nullopt);
    EXPECT_EQ(radvd_service(cfg, facts).spec.capabilities, std::nullopt);
    EXPECT_EQ(sshd_service(cfg, facts).spec.capabilities, std::nullopt);
}

// Reload restarts a daemon only when its own generated inputs change: a DNS change touches
// dnsmasq's and nothing else, a prefix change radvd's and sshd's (it listens on ::1).
TEST_F(ServiceConfigs, ChangesReachOnlyTheDaemonsTheyConcern) {
    auto all = [&](const Config& c) {
        return std::vector<std::string>{dnsmasq_service(c, facts).config_text, radvd_service(c, facts).config_text,
                                        sshd_service(c, facts).config_text,
                                        ntpd_service(c, facts).spec.argv.back()};
    };
    auto base = all(cfg);
    Config dns = cfg;
    dns.dns.upstream = {"192.0.2.99"};
    auto d = all(dns);
    EXPECT_NE(d[0], base[0]);
    EXPECT_EQ(d[1], base[1]);
    EXPECT_EQ(d[2], base[2]);
    EXPECT_EQ(d[3], base[3]);
    Config pfx = cfg;
    pfx.lans[0].ipv6_prefixes = {*Ipv6Prefix::parse("2001:db8:8::/64")};
    auto p = all(pfx);
    EXPECT_NE(p[0], base[0]) << "dnsmasq answers the prefixes' reverse zones";
    EXPECT_NE(p[1], base[1]);
    EXPECT_NE(p[2], base[2]);
    EXPECT_EQ(p[3], base[3]);
}

TEST(WriteFileAtomic, WritesOnlyWhenChanged) {
    char tmpl[] = "/tmp/atomic_test.XXXXXX";
    std::string dir = mkdtemp(tmpl);
    std::string path = dir + "/f.conf";
    auto r = write_file_atomic(path, "a\n");
    ASSERT_TRUE(r);
    EXPECT_TRUE(*r);
    r = write_file_atomic(path, "a\n");
    ASSERT_TRUE(r);
    EXPECT_FALSE(*r);
    r = write_file_atomic(path, "b\n");
    ASSERT_TRUE(r);
    EXPECT_TRUE(*r);
    EXPECT_EQ(read(path), "b\n");
    EXPECT_NE(access((dir + "/.f.conf.tmp").c_str(), F_OK), 0);
    unlink(path.c_str());
    rmdir(dir.c_str());
}

}  // namespace
}  // namespace netd
