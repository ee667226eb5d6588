// Property test of the generated daemon files. Random but valid configs, built from typed
// values (seeded, deterministic), are written as TOML with the freedoms the syntax allows
// (upper-case hex, uncompressed IPv6, defaults left out); netd's parser must accept each and
// read back exactly those values; dnsmasq.conf, radvd.conf and sshd_config, read the way their
// daemons read them (generated_reader.h), must hold exactly the directives the values imply.
//   NETD_PROPERTY_SEED=N      another base seed (a failure names the seed of its case)
//   NETD_GENERATED_SAMPLES=D  also writes 30 file sets into D/NN/ for the real daemons
//                             (tests/image/test_generated_configs.sh)
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>
#include <tuple>

#include "generated_reader.h"

namespace netd {
namespace {

constexpr uint64_t kDefaultSeed = 20240611;
constexpr int kCases = 500;
constexpr int kSamples = 30;

class Gen {
public:
    explicit Gen(uint64_t seed) : rng_(seed) {}
    uint64_t num(uint64_t lo, uint64_t hi) { return std::uniform_int_distribution<uint64_t>(lo, hi)(rng_); }
    bool chance(double p) { return std::bernoulli_distribution(p)(rng_); }
    template <typename T>
    const T& pick(const std::vector<T>& v) { return v[num(0, v.size() - 1)]; }

    // Upper or lower case, as TOML text may spell hex digits and names.
    std::string anycase(std::string s) {
        if (chance(0.3))
            for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
        return s;
    }

    // An RFC 1123 label; `keywordish` mixes in words that mean something to a daemon's parser.
    std::string label(bool keywordish) {
        if (keywordish && chance(0.15)) return pick<std::string>({"on", "off", "prefix", "interface", "123", "infinity", "lan"});
        static const std::string kFirst = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
        static const std::string kRest = "abcdefghijklmnopqrstuvwxyz0123456789-";
        std::string l(1, kFirst[num(0, kFirst.size() - 1)]);
        for (size_t n = num(0, 14); l.size() <= n;) l += kRest[num(0, kRest.size() - 1)];
        if (l.back() == '-') l.back() = 'x';
        return l;
    }

    MacAddr mac() {
        MacAddr m;
        for (auto& b : m.bytes) b = static_cast<uint8_t>(num(0, 255));
        return m;
    }

    // A global (2000::/3) or unique local (fd00::/8) /64.
    Ipv6Prefix prefix64() {
        Ipv6Prefix p;
        p.len = 64;
        for (int i = 0; i < 8; ++i) p.addr.bytes[i] = static_cast<uint8_t>(num(0, 255));
        p.addr.bytes[0] = chance(0.7) ? static_cast<uint8_t>(0x20 | (p.addr.bytes[0] & 0x1f)) : 0xfd;
        return p;
    }

    // IPv6 text as a person may write it: the canonical form, or all eight groups spelt out.
    std::string v6text(const Ipv6Addr& a) {
        if (chance(0.5)) return anycase(a.str());
        std::string s;
        for (int i = 0; i < 16; i += 2) {
            char g[8];
            std::snprintf(g, sizeof(g), "%s%x", i ? ":" : "", a.bytes[i] << 8 | a.bytes[i + 1]);
            s += g;
        }
        return anycase(s);
    }

    Ipv4Addr unicast4() {
        uint32_t first;
        do first = static_cast<uint32_t>(num(1, 223));
        while (first == 127 || first == 169);
        return {first << 24 | static_cast<uint32_t>(num(0, 0xffffff))};
    }

private:
    std::mt19937_64 rng_;
};

std::string q(const std::string& s) { return "\"" + s + "\""; }

struct Sample {
    std::string toml;
    Config want;  // what the text means
    RuntimeFacts facts;
};

// The LAN's default DHCP pool (CONFIG.md): the upper half of the subnet without the
// broadcast address and without the router's own address.
std::pair<Ipv4Addr, Ipv4Addr> default_pool(const Ipv4Cidr& lan) {
    uint32_t net = lan.network().host_order, size = ~lan.netmask() + 1, r = lan.addr.host_order;
    uint32_t start = net + size / 2, end = net + size - 2;
    if (r == end)
        end = r - 1;
    else if (r >= start && r < end)
        start = r + 1;
    if (start > end) start = net + 1;  // a /30 with the router on top: the one other host
    return {{start}, {end}};
}

Sample random_sample(Gen& g) {
    Sample s;
    Config& c = s.want;
    std::ostringstream t;

    // [lan]: by device or by MAC. Names radvd reads as keywords ("on", "123") are left out:
    // netd accepts them as device names, radvd cannot (reported, see generated_reader.cc).
    t << "[lan]\n";
    if (g.chance(0.5)) {
        c.lans[0].interface.device = g.pick<std::string>({"eth", "lan", "br", "enp0s", "vlan"}) + std::to_string(g.num(0, 99)) +
                                 (g.chance(0.2) ? "." + std::to_string(g.num(1, 4094)) : "");
        t << "device = " << q(c.lans[0].interface.device) << "\n";
    } else {
        c.lans[0].interface.mac = g.mac();
        t << "mac = " << q(g.anycase(c.lans[0].interface.mac->str())) << "\n";
    }
    uint8_t len = static_cast<uint8_t>(g.chance(0.2) ? g.num(8, 30) : g.num(16, 30));
    Ipv4Cidr lan{g.unicast4(), len};
    uint32_t net = lan.network().host_order, size = ~lan.netmask() + 1;
    auto host = [&] { return Ipv4Addr{net + static_cast<uint32_t>(g.num(1, size - 2))}; };
    lan.addr = host();
    c.lans[0].ipv4 = lan;
    t << "ipv4 = " << q(lan.str()) << "\n";
    if (size_t n = g.num(0, 3)) {
        t << "ipv6_prefixes = [";
        for (size_t i = 0; i < n; ++i) {
            c.lans[0].ipv6_prefixes.push_back(g.prefix64());
            t << (i ? ", " : "") << q(g.v6text(c.lans[0].ipv6_prefixes.back().addr) + "/64");
        }
        t << "]\n";
    }
    if (g.chance(0.8)) {
        c.lans[0].domain.clear();
        for (size_t i = 0, n = g.num(1, 3); i < n; ++i) c.lans[0].domain += (i ? "." : "") + g.label(true);
        if (g.chance(0.1)) c.lans[0].domain += ".";
        t << "domain = " << q(c.lans[0].domain) << "\n";
    }

    // [lan.dhcp]
    auto& d = c.lans[0].dhcp;
    std::ostringstream dt;
    d.enabled = g.chance(0.85);
    if (!d.enabled || g.chance(0.1)) dt << "enabled = " << (d.enabled ? "true" : "false") << "\n";
    if (g.chance(0.5)) {
        // Both ends on the same side of the router.
        Ipv4Addr a = host(), b = host();
        if (a > b) std::swap(a, b);
        if (lan.addr >= a && lan.addr <= b) {
            if (lan.addr < b)
                a = {lan.addr.host_order + 1};
            else if (lan.addr > a)
                b = {lan.addr.host_order - 1};
            else
                a = b = {lan.addr.host_order == net + 1 ? net + 2 : net + 1};
        }
        d.range_start = a;
        d.range_end = b;
        dt << "range = [" << q(a.str()) << ", " << q(b.str()) << "]\n";
    } else if (d.enabled) {
        std::tie(d.range_start, d.range_end) = default_pool(lan);
    }
    if (g.chance(0.5)) {
        d.lease_seconds = static_cast<uint32_t>(g.chance(0.5) ? g.num(120, 86400) : g.num(120, 31536000));
        dt << "lease_time = " << d.lease_seconds << "\n";
    }
    for (size_t i = 0, n = std::min<uint64_t>(g.num(0, 6), size - 3); i < n; ++i) {
        StaticLease h{g.mac(), host(), g.chance(0.7) ? g.label(false) : ""};
        bool dup = h.ip == lan.addr;
        for (auto& o : d.hosts) dup = dup || o.ip == h.ip || o.mac == h.mac;
        if (dup) continue;
        d.hosts.push_back(h);
        dt << "\n[[lan.dhcp.host]]\nmac = " << q(g.anycase(h.mac.str())) << "\nip = " << q(h.ip.str()) << "\n";
        if (!h.name.empty()) dt << "name = " << q(h.name) << "\n";
    }
    if (!dt.str().empty()) t << "\n[lan.dhcp]\n" << dt.str();

    // [wan]: never the LAN's interface.
    t << "\n[wan]\n";
    if (g.chance(0.5)) {
        c.wan.interface.device = "wan" + std::to_string(g.num(0, 9));
        t << "device = " << q(c.wan.interface.device) << "\n";
    } else {
        do c.wan.interface.mac = g.mac();
        while (c.wan.interface.mac == c.lans[0].interface.mac);
        t << "mac = " << q(c.wan.interface.mac->str()) << "\n";
    }

    // [dns], [ntp], [ssh]
    std::ostringstream dns;
    if (size_t n = g.num(0, 4)) {
        dns << "upstream = [";
        for (size_t i = 0; i < n; ++i) {
            if (g.chance(0.5)) {
                c.dns.upstream.push_back(g.unicast4().str());
                dns << (i ? ", " : "") << q(c.dns.upstream.back());
            } else {
                Ipv6Addr a = g.prefix64().with_host(g.num(1, 0xffff));
                c.dns.upstream.push_back(a.str());
                dns << (i ? ", " : "") << q(g.v6text(a));
            }
        }
        dns << "]\n";
    }
    if (g.chance(0.4)) {
        c.dns.cache_size = static_cast<uint32_t>(g.num(0, 10000));
        dns << "cache_size = " << c.dns.cache_size << "\n";
    }
    if (!dns.str().empty()) t << "\n[dns]\n" << dns.str();
    std::ostringstream ntp;
    if (size_t n = g.num(0, 3)) {
        ntp << "servers = [";
        for (size_t i = 0; i < n; ++i) {
            c.ntp.servers.push_back(g.chance(0.5) ? g.unicast4().str() : g.label(false) + ".example.net");
            ntp << (i ? ", " : "") << q(c.ntp.servers.back());
        }
        ntp << "]\n";
    }
    if (g.chance(0.5)) {
        c.ntp.serve_lan = g.chance(0.5);
        ntp << "serve_lan = " << (c.ntp.serve_lan ? "true" : "false") << "\n";
    }
    if (!ntp.str().empty()) t << "\n[ntp]\n" << ntp.str();
    if (g.chance(0.7)) {
        c.ssh.enabled = g.chance(0.8);
        do c.ssh.port = static_cast<uint16_t>(g.chance(0.5) ? 22 : g.num(1, 65535));
        while (c.ssh.port == 53);  // dnsmasq's: refused
        c.ssh.allow_wan = g.chance(0.3);
        t << "\n[ssh]\nenabled = " << (c.ssh.enabled ? "true" : "false") << "\nport = " << c.ssh.port
          << "\nallow_wan = " << (c.ssh.allow_wan ? "true" : "false") << "\n";
    }

    // [tunnel]: its MTU and whether there is an IPv6 uplink reach the RAs.
    auto& tu = c.tunnel;
    tu.mode = g.pick<TunnelMode>({TunnelMode::none, TunnelMode::he, TunnelMode::heartbeat, TunnelMode::static_});
    if (tu.mode != TunnelMode::none) {
        tu.remote = g.unicast4();
        tu.local_ipv6 = g.prefix64().with_host(2);
        tu.mtu = static_cast<unsigned>(g.num(1280, 1480));
        t << "\n[tunnel]\nmode = " << q(to_string(tu.mode)) << "\nremote = " << q(tu.remote.str())
          << "\nlocal_ipv6 = " << q(g.v6text(tu.local_ipv6)) << "\nmtu = " << tu.mtu << "\n";
        if (tu.mode == TunnelMode::he) {
            tu.tunnel_id = std::to_string(g.num(1, 999999));
            tu.username = g.label(false);
            tu.update_key = g.label(false) + "!" + g.label(false);
            t << "tunnel_id = " << q(tu.tunnel_id) << "\nusername = " << q(tu.username)
              << "\nupdate_key = " << q(tu.update_key) << "\n";
        } else if (tu.mode == TunnelMode::heartbeat) {
            tu.password = g.label(false);
            tu.sender = g.chance(0.5);
            t << "password = " << q(tu.password) << "\nsender = " << (tu.sender ? "true" : "false") << "\n";
        }
    }

    s.facts.lans["lan"].ifname = c.lans[0].interface.device.empty() ? "eth1" : c.lans[0].interface.device;
    s.facts.ipv6_uplink = tu.mode != TunnelMode::none && g.chance(0.8);
    s.facts.lans["lan"].mtu = tu.mode != TunnelMode::none ? tu.mtu : 1500;
    s.toml = t.str();
    return s;
}

uint64_t base_seed() {
    const char* e = std::getenv("NETD_PROPERTY_SEED");
    return e ? std::strtoull(e, nullptr, 10) : kDefaultSeed;
}

struct Files {
    std::string dnsmasq, radvd, sshd;
};
Files generate(const Config& c, const RuntimeFacts& f) {
    return {dnsmasq_service(c, f).config_text, radvd_service(c, f).config_text, sshd_service(c, f).config_text};
}

void expect_reads_as(const char* name, const std::string& text, Result<Directives> got, const Directives& want) {
    ASSERT_TRUE(got) << name << " unreadable: " << got.error().str() << "\n" << text;
    EXPECT_EQ(directives_diff(want, *got), "") << name << ":\n" << text;
}

TEST(ServiceConfigsProperty, GeneratedFilesHoldExactlyWhatTheConfigImplies) {
    uint64_t base = base_seed();
    for (int i = 0; i < kCases && !HasFailure(); ++i) {
        uint64_t seed = base + static_cast<uint64_t>(i);
        SCOPED_TRACE("case " + std::to_string(i) + ": rerun with NETD_PROPERTY_SEED=" + std::to_string(seed));
        Gen g(seed);
        Sample s = random_sample(g);
        auto r = parse_config_text(s.toml, "random.conf");
        ASSERT_TRUE(r.config) << r.errors.front().str() << "\n" << s.toml;
        const Config& c = *r.config;
        EXPECT_EQ(c.lans, s.want.lans) << s.toml;
        EXPECT_EQ(c.wan, s.want.wan) << s.toml;
        EXPECT_EQ(c.dns, s.want.dns) << s.toml;
        EXPECT_EQ(c.ntp, s.want.ntp) << s.toml;
        EXPECT_EQ(c.ssh, s.want.ssh) << s.toml;
        EXPECT_EQ(c.tunnel, s.want.tunnel) << s.toml;

        auto want = expected_directives(s.want, s.facts);
        Files files = generate(c, s.facts);
        expect_reads_as("dnsmasq.conf", files.dnsmasq, read_dnsmasq_conf(files.dnsmasq), want.dnsmasq);
        expect_reads_as("radvd.conf", files.radvd, read_radvd_conf(files.radvd), want.radvd);
        expect_reads_as("sshd_config", files.sshd, read_sshd_config(files.sshd), want.sshd);
    }
}

// The reader itself: it must refuse what a daemon would read another way, or the property
// above would prove nothing.
TEST(GeneratedReader, RefusesWhatADaemonReadsOtherwise) {
    using namespace std::string_view_literals;
    EXPECT_FALSE(read_dnsmasq_conf("domain=lan\ndhcp-host=x\n\0server=1.2.3.4\n"sv));
    EXPECT_FALSE(read_dnsmasq_conf("domain=lan #comment\n"));
    EXPECT_FALSE(read_dnsmasq_conf("domain=\"lan\"\n"));
    EXPECT_FALSE(read_dnsmasq_conf("domain=lan"));  // truncated
    EXPECT_FALSE(read_radvd_conf("interface eth1 {\n    DNSSL on {\n    };\n};\n"));
    EXPECT_FALSE(read_radvd_conf("interface 123 {\n};\n"));
    EXPECT_FALSE(read_radvd_conf("interface eth1 {\n    AdvLinkMTU 1500\n};\n"));
    EXPECT_FALSE(read_radvd_conf("interface \"eth1\" {\n};\n"));
    EXPECT_FALSE(read_sshd_config("Port 22 #x\n"));
    EXPECT_FALSE(read_sshd_config("Port=22\n"));
    auto ok = read_dnsmasq_conf("# comment\ndhcp-host=52:54:00:aa:bb:cc,192.168.7.10,printer\nbind-dynamic\n");
    ASSERT_TRUE(ok);
    EXPECT_EQ(*ok, (Directives{{"bind-dynamic", {}}, {"dhcp-host", {"52:54:00:aa:bb:cc", "192.168.7.10", "printer"}}}));
}

// radvd's lexer takes a bare "on", "prefix" or "123" for a keyword or a number and refuses
// the whole file (radvd then does not start); the suffix goes out fully qualified.
TEST(ServiceConfigsProperty, DnsslSuffixIsAlwaysAName) {
    for (const char* domain : {"on", "123", "prefix", "home.arpa", "home.arpa."}) {
        Config c;
        c.lans[0].domain = domain;
        c.lans[0].ipv6_prefixes = {*Ipv6Prefix::parse("2001:db8:7::/64")};
        RuntimeFacts f;
        f.lans["lan"].ifname = "eth1";
        auto text = radvd_service(c, f).config_text;
        auto got = read_radvd_conf(text);
        ASSERT_TRUE(got) << got.error().str() << "\n" << text;
        std::string want = std::string(domain).back() == '.' ? domain : std::string(domain) + ".";
        EXPECT_NE(text.find("    DNSSL " + want + " {\n"), std::string::npos) << text;
    }
}

// The pool the config implies is LAN host addresses in order, without the router's own; a
// router on the subnet's last host (192.168.1.254/24) used to get ".255 - .254" (dnsmasq swaps
// the ends and hands out the router's address and the broadcast address).
TEST(ServiceConfigsProperty, DefaultDhcpPoolIsLanHostsWithoutTheRouter) {
    for (const char* addr : {"192.168.1.254/24", "192.168.1.1/24", "192.168.1.200/24", "10.0.0.2/30", "10.0.0.1/30",
                             "10.0.0.6/29", "10.0.0.5/29"}) {
        auto r = parse_config_text(std::string("[lan]\ndevice = \"eth1\"\nipv4 = \"") + addr + "\"\n[wan]\ndevice = \"eth0\"\n",
                                   "pool.conf");
        ASSERT_TRUE(r.config) << addr;
        const auto& lan = r.config->lans[0];
        SCOPED_TRACE(std::string(addr) + ": " + lan.dhcp.range_start.str() + " - " + lan.dhcp.range_end.str());
        EXPECT_LE(lan.dhcp.range_start, lan.dhcp.range_end);
        EXPECT_TRUE(is_lan_host(lan.ipv4, lan.dhcp.range_start));
        EXPECT_TRUE(is_lan_host(lan.ipv4, lan.dhcp.range_end));
        EXPECT_FALSE(lan.ipv4.addr >= lan.dhcp.range_start && lan.ipv4.addr <= lan.dhcp.range_end);
    }
}

// With NETD_GENERATED_SAMPLES set: file sets for the real daemons, one directory per case
// (router.conf and the three files it makes).
TEST(ServiceConfigsProperty, WritesSamplesForTheRealDaemons) {
    const char* dir = std::getenv("NETD_GENERATED_SAMPLES");
    if (!dir) GTEST_SKIP() << "NETD_GENERATED_SAMPLES not set";
    mkdir(dir, 0755);
    uint64_t base = base_seed();
    for (int i = 0; i < kSamples; ++i) {
        Gen g(base + static_cast<uint64_t>(i));
        Sample s = random_sample(g);
        auto r = parse_config_text(s.toml, "random.conf");
        ASSERT_TRUE(r.config) << s.toml;
        s.facts.hostsdir = "/run/netd/hosts";   // as netd runs dnsmasq
        Files files = generate(*r.config, s.facts);
        char name[16];
        std::snprintf(name, sizeof(name), "/%02d", i);
        std::string d = dir + std::string(name);
        ASSERT_TRUE(mkdir(d.c_str(), 0755) == 0 || errno == EEXIST) << d;
        std::vector<std::pair<const char*, std::string>> set = {
            {"router.conf", s.toml}, {"dnsmasq.conf", files.dnsmasq}, {"sshd_config", files.sshd}};
        // netd runs radvd only with a prefix to announce.
        if (!r.config->lans[0].ipv6_prefixes.empty()) set.push_back({"radvd.conf", files.radvd});
        for (auto& [file, text] : set) {
            std::ofstream out(d + "/" + file);
            out << text;
            ASSERT_TRUE(out.good()) << d << "/" << file;
        }
    }
}

}  // namespace
}  // namespace netd
