// Names of IPv6 hosts: dnsmasq's lease file with hostile names and lines, the hosts file text
// (matching, order, conflicts, bounds) and the periodic job with fake kernel sources.
#include "names6.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>

namespace netd {
namespace {

MacAddr mac(const char* s) { return *MacAddr::parse(s); }
Ipv4Addr ip4(const char* s) { return *Ipv4Addr::parse(s); }
Ipv6Addr ip6(const char* s) { return *Ipv6Addr::parse(s); }
Ipv6Prefix pfx(const char* s) { return *Ipv6Prefix::parse(s); }

const char* kMacA = "52:54:00:12:34:56";
const char* kMacB = "52:54:00:ab:cd:ef";

TEST(Names6Leases, DnsmasqFormat) {
    auto l = parse_dnsmasq_leases(
        "1735689600 52:54:00:12:34:56 192.168.7.10 laptop 01:52:54:00:12:34:56\n"
        "0 52:54:00:ab:cd:ef 192.168.7.11 Phone-2 *\n"          // infinite lease, no client id
        "1735689600 52:54:00:00:00:01 192.168.7.12 * *\n");     // no name: nothing to publish
    ASSERT_EQ(l.size(), 2u);
    EXPECT_EQ(l[0], (Dhcp4Lease{mac(kMacA), ip4("192.168.7.10"), "laptop"}));
    EXPECT_EQ(l[1], (Dhcp4Lease{mac(kMacB), ip4("192.168.7.11"), "phone-2"}));   // lowercased
}

TEST(Names6Leases, EmptyAndBlankLines) {
    EXPECT_TRUE(parse_dnsmasq_leases("").empty());
    EXPECT_TRUE(parse_dnsmasq_leases("\n\n   \n").empty());
    // No final newline.
    EXPECT_EQ(parse_dnsmasq_leases("1 52:54:00:12:34:56 192.168.7.10 laptop *").size(), 1u);
    // CRLF is not dnsmasq's: a CR stays in the last field (the client id, not looked at), and
    // in a name it makes the name invalid.
    EXPECT_EQ(parse_dnsmasq_leases("1 52:54:00:12:34:56 192.168.7.10 laptop *\r\n").size(), 1u);
    EXPECT_TRUE(parse_dnsmasq_leases("1 52:54:00:12:34:56 192.168.7.10 laptop\r *\n").empty());
}

TEST(Names6Leases, HostileNamesRejected) {
    for (std::string name : {std::string("-lead"), std::string("trail-"), std::string("a.b"),
                             std::string("laptop.home.arpa"), std::string("a_b"), std::string("x;rm"),
                             std::string("$(id)"), std::string(".."), std::string("a/b"),
                             std::string("\xc3\xa9t\xc3\xa9"), std::string("na\x01me"), std::string(64, 'a')}) {
        std::string line = "1 52:54:00:12:34:56 192.168.7.10 " + name + " *\n";
        EXPECT_TRUE(parse_dnsmasq_leases(line).empty()) << name;
    }
    std::string longest(63, 'a');
    EXPECT_EQ(parse_dnsmasq_leases("1 52:54:00:12:34:56 192.168.7.10 " + longest + " *\n").size(), 1u);
    EXPECT_EQ(parse_dnsmasq_leases("1 52:54:00:12:34:56 192.168.7.10 9 *\n").size(), 1u);   // a digit is a label
}

TEST(Names6Leases, MalformedLinesSkippedOthersKept) {
    std::string text =
        "x 52:54:00:12:34:56 192.168.7.10 bad-expiry *\n"
        "-1 52:54:00:12:34:56 192.168.7.10 negative *\n"
        "1 52:54:00:12:34 192.168.7.10 short-mac *\n"
        "1 06-52:54:00:12:34:56 192.168.7.10 token-ring *\n"      // non-Ethernet hardware type
        "1 52:54:00:12:34:56 192.168.7.300 bad-ip *\n"
        "1 52:54:00:12:34:56 192.168.7.10 four-fields\n"
        "1 52:54:00:12:34:56 192.168.7.10 six fields * *\n"
        "1 52:54:00:12:34:56 2001:db8::1 v6-in-v4 *\n"
        "1\t52:54:00:12:34:56\t192.168.7.10\ttabs\t*\n"
        "1 52:54:00:12:34:56 192.168.7.10 good *\n";
    text += std::string(1, '\0') + " 52:54:00:12:34:56 192.168.7.10 nul *\n";
    auto l = parse_dnsmasq_leases(text);
    ASSERT_EQ(l.size(), 2u);
    EXPECT_EQ(l[0].name, "tabs");
    EXPECT_EQ(l[1].name, "good");
}

TEST(Names6Leases, LongLinesSkipped) {
    std::string pad(1024 - std::string("1 52:54:00:12:34:56 192.168.7.10 a ").size(), 'c');
    std::string at_limit = "1 52:54:00:12:34:56 192.168.7.10 a " + pad;
    ASSERT_EQ(at_limit.size(), kMaxLeaseLine);
    EXPECT_EQ(parse_dnsmasq_leases(at_limit + "\n").size(), 1u);
    EXPECT_TRUE(parse_dnsmasq_leases(at_limit + "c\n").empty());
    // A huge line does not swallow the next one.
    auto l = parse_dnsmasq_leases(std::string(100000, 'x') + "\n1 52:54:00:12:34:56 192.168.7.10 after *\n");
    ASSERT_EQ(l.size(), 1u);
    EXPECT_EQ(l[0].name, "after");
}

TEST(Names6Leases, Dhcpv6PartSkipped) {
    auto l = parse_dnsmasq_leases(
        "1 52:54:00:12:34:56 192.168.7.10 laptop *\n"
        "duid 00:01:00:01:2c:5e:1a:2b:52:54:00:00:00:01\n"
        "1 1234 2001:db8:7::10 v6host 00:01:00:01\n"
        "1 52:54:00:ab:cd:ef 192.168.7.11 after-duid *\n");
    ASSERT_EQ(l.size(), 1u);
    EXPECT_EQ(l[0].name, "laptop");
}

TEST(Names6Leases, AtMostMaxLeases) {
    std::string text;
    for (size_t i = 0; i < kMaxLeases + 10; ++i) {
        char line[80];
        std::snprintf(line, sizeof(line), "1 02:00:00:00:%02zx:%02zx 10.0.%zu.%zu h%zu *\n", (i >> 8) & 0xff, i & 0xff,
                      (i >> 8) & 0xff, i & 0xff, i);
        text += line;
    }
    auto l = parse_dnsmasq_leases(text);
    ASSERT_EQ(l.size(), kMaxLeases);
    EXPECT_EQ(l.back().name, "h" + std::to_string(kMaxLeases - 1));
}

TEST(Names6, GlobalUnicast) {
    EXPECT_TRUE(is_global_unicast6(ip6("2001:db8::1")));
    EXPECT_TRUE(is_global_unicast6(ip6("3fff::1")));
    EXPECT_TRUE(is_global_unicast6(ip6("fd00::1")));
    EXPECT_TRUE(is_global_unicast6(ip6("fc00::1")));
    EXPECT_FALSE(is_global_unicast6(ip6("fe80::1")));
    EXPECT_FALSE(is_global_unicast6(ip6("ff02::1")));
    EXPECT_FALSE(is_global_unicast6(ip6("::1")));
    EXPECT_FALSE(is_global_unicast6(ip6("::")));
    EXPECT_FALSE(is_global_unicast6(ip6("::ffff:192.0.2.1")));
    EXPECT_FALSE(is_global_unicast6(ip6("4000::1")));
}

const std::vector<NameSegment> kSegments = {
    {"eth1", "home.arpa", {pfx("2001:db8:7::/64"), pfx("fd00:7::/64")}},
    {"eth1.30", "lab.home.arpa.", {pfx("2001:db8:30::/64")}},
};

constexpr const char* kHeader = "# Generated by netd: IPv6 addresses of LAN hosts named by their DHCPv4 leases.\n";

TEST(Names6Hosts, MatchesMacsOnTheirSegments) {
    std::vector<Dhcp4Lease> leases = {{mac(kMacA), ip4("192.168.7.10"), "laptop"},
                                      {mac(kMacB), ip4("192.168.30.11"), "scope"}};
    std::vector<Neighbour6> nb = {
        {"eth1", ip6("2001:db8:7::5054:ff:fe12:3456"), mac(kMacA)},
        {"eth1", ip6("fd00:7::5054:ff:fe12:3456"), mac(kMacA)},
        {"eth1", ip6("2001:db8:7:0:1c2d:3e4f:5a6b:7c8d"), mac(kMacA)},       // a temporary address
        {"eth1.30", ip6("2001:db8:30::5054:ff:feab:cdef"), mac(kMacB)},
        {"eth1", ip6("2001:db8:7::99"), mac("52:54:00:00:00:99")},          // no lease
        {"eth1", ip6("2001:db8:99::5"), mac(kMacA)},                       // not a segment prefix
        {"eth1.30", ip6("2001:db8:7::77"), mac(kMacB)},                    // another segment's prefix
        {"eth2", ip6("2001:db8:7::88"), mac(kMacA)},                       // not a LAN link
        {"eth1", ip6("fe80::5054:ff:fe12:3456"), mac(kMacA)},              // link-local
    };
    EXPECT_EQ(hosts6_text(leases, nb, kSegments),
              std::string(kHeader) +
                  "2001:db8:7:0:1c2d:3e4f:5a6b:7c8d laptop.home.arpa laptop\n"   // address order
                  "2001:db8:7:0:5054:ff:fe12:3456 laptop.home.arpa laptop\n"
                  "fd00:7::5054:ff:fe12:3456 laptop.home.arpa laptop\n"
                  "2001:db8:30:0:5054:ff:feab:cdef scope.lab.home.arpa scope\n");
}

TEST(Names6Hosts, NothingToNameIsJustTheHeader) {
    EXPECT_EQ(hosts6_text({}, {}, kSegments), kHeader);
    EXPECT_EQ(hosts6_text({{mac(kMacA), ip4("192.168.7.10"), "laptop"}}, {}, kSegments), kHeader);
    EXPECT_EQ(hosts6_text({{mac(kMacA), ip4("192.168.7.10"), "laptop"}},
                          {{"eth1", ip6("2001:db8:7::5"), mac(kMacA)}}, {}),
              kHeader);
}

TEST(Names6Hosts, DeterministicWhateverTheOrder) {
    std::vector<Dhcp4Lease> leases = {{mac(kMacA), ip4("192.168.7.10"), "zeta"},
                                      {mac(kMacB), ip4("192.168.7.11"), "alpha"}};
    std::vector<Neighbour6> nb = {{"eth1", ip6("2001:db8:7::20"), mac(kMacA)},
                                  {"eth1", ip6("2001:db8:7::3"), mac(kMacA)},
                                  {"eth1", ip6("2001:db8:7::100"), mac(kMacB)},
                                  {"eth1", ip6("2001:db8:7::3"), mac(kMacA)}};   // twice: once out
    std::string expect = std::string(kHeader) +
                         "2001:db8:7::100 alpha.home.arpa alpha\n"
                         "2001:db8:7::3 zeta.home.arpa zeta\n"
                         "2001:db8:7::20 zeta.home.arpa zeta\n";
    EXPECT_EQ(hosts6_text(leases, nb, kSegments), expect);
    std::reverse(leases.begin(), leases.end());
    std::reverse(nb.begin(), nb.end());
    EXPECT_EQ(hosts6_text(leases, nb, kSegments), expect);
}

TEST(Names6Hosts, SeveralNamesForOneMacTakesTheSmallest) {
    std::vector<Neighbour6> nb = {{"eth1", ip6("2001:db8:7::5"), mac(kMacA)}};
    std::string expect = std::string(kHeader) + "2001:db8:7::5 desk.home.arpa desk\n";
    EXPECT_EQ(hosts6_text({{mac(kMacA), ip4("192.168.7.10"), "laptop"}, {mac(kMacA), ip4("192.168.30.10"), "desk"}},
                          nb, kSegments),
              expect);
    EXPECT_EQ(hosts6_text({{mac(kMacA), ip4("192.168.30.10"), "desk"}, {mac(kMacA), ip4("192.168.7.10"), "laptop"}},
                          nb, kSegments),
              expect);
}

TEST(Names6Hosts, AddressClaimedUnderTwoNamesLeftOut) {
    // A host spoofing another's address (or one that just took over an address): neither name.
    std::vector<Dhcp4Lease> leases = {{mac(kMacA), ip4("192.168.7.10"), "laptop"},
                                      {mac(kMacB), ip4("192.168.7.11"), "intruder"}};
    std::vector<Neighbour6> nb = {{"eth1", ip6("2001:db8:7::5"), mac(kMacA)},
                                  {"eth1.30", ip6("2001:db8:7::5"), mac(kMacB)},
                                  {"eth1", ip6("2001:db8:7::6"), mac(kMacA)}};
    // eth1.30 does not carry 2001:db8:7::/64: that claim does not count.
    EXPECT_EQ(hosts6_text(leases, nb, kSegments), std::string(kHeader) +
                                                      "2001:db8:7::5 laptop.home.arpa laptop\n"
                                                      "2001:db8:7::6 laptop.home.arpa laptop\n");
    std::vector<NameSegment> both = {{"eth1", "home.arpa", {pfx("2001:db8:7::/64")}},
                                     {"eth2", "home.arpa", {pfx("2001:db8:7::/64")}}};
    nb[1].link = "eth2";
    EXPECT_EQ(hosts6_text(leases, nb, both), std::string(kHeader) + "2001:db8:7::6 laptop.home.arpa laptop\n");
}

TEST(Names6Hosts, SameNameTwoMacs) {
    // Wired and wireless of one laptop (dnsmasq moves a name between leases; for a moment both
    // may hold it): each address is named.
    std::vector<Dhcp4Lease> leases = {{mac(kMacA), ip4("192.168.7.10"), "laptop"},
                                      {mac(kMacB), ip4("192.168.7.11"), "laptop"}};
    std::vector<Neighbour6> nb = {{"eth1", ip6("2001:db8:7::5"), mac(kMacA)},
                                  {"eth1", ip6("2001:db8:7::6"), mac(kMacB)}};
    EXPECT_EQ(hosts6_text(leases, nb, kSegments), std::string(kHeader) +
                                                      "2001:db8:7::5 laptop.home.arpa laptop\n"
                                                      "2001:db8:7::6 laptop.home.arpa laptop\n");
}

TEST(Names6Hosts, NoOrBadDomainGivesTheBareName) {
    std::vector<Dhcp4Lease> leases = {{mac(kMacA), ip4("192.168.7.10"), "laptop"}};
    std::vector<Neighbour6> nb = {{"eth1", ip6("2001:db8:7::5"), mac(kMacA)}};
    EXPECT_EQ(hosts6_text(leases, nb, {{"eth1", "", {pfx("2001:db8:7::/64")}}}),
              std::string(kHeader) + "2001:db8:7::5 laptop\n");
    EXPECT_EQ(hosts6_text(leases, nb, {{"eth1", "bad domain\nx", {pfx("2001:db8:7::/64")}}}),
              std::string(kHeader) + "2001:db8:7::5 laptop\n");
    EXPECT_EQ(hosts6_text(leases, nb, {{"eth1", "Home.ARPA.", {pfx("2001:db8:7::/64")}}}),
              std::string(kHeader) + "2001:db8:7::5 laptop.home.arpa laptop\n");
}

TEST(Names6Hosts, AtMostMaxAddrsPerMacLowestFirst) {
    std::vector<Dhcp4Lease> leases = {{mac(kMacA), ip4("192.168.7.10"), "busy"},
                                      {mac(kMacB), ip4("192.168.7.11"), "calm"}};
    std::vector<Neighbour6> nb;
    for (unsigned i = 40; i > 0; --i) nb.push_back({"eth1", Ipv6Prefix(pfx("2001:db8:7::/64")).with_host(i), mac(kMacA)});
    nb.push_back({"eth1", ip6("2001:db8:7::ffff"), mac(kMacB)});
    auto text = hosts6_text(leases, nb, kSegments);
    EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), static_cast<long>(1 + kMaxAddrsPerMac + 1));
    EXPECT_NE(text.find("2001:db8:7::1 busy"), std::string::npos);
    EXPECT_NE(text.find("2001:db8:7::10 busy"), std::string::npos);    // the 16th
    EXPECT_EQ(text.find("2001:db8:7::11 busy"), std::string::npos);    // the 17th
    EXPECT_NE(text.find("2001:db8:7::ffff calm"), std::string::npos);
}

TEST(Names6Hosts, AtMostMaxLines) {
    std::vector<Dhcp4Lease> leases;
    std::vector<Neighbour6> nb;
    for (unsigned i = 0; i < kMaxHosts6Lines / kMaxAddrsPerMac + 10; ++i) {
        MacAddr m{{0x02, 0, 0, 0, static_cast<uint8_t>(i >> 8), static_cast<uint8_t>(i)}};
        leases.push_back({m, Ipv4Addr{0x0a000000u + i}, "h" + std::to_string(i)});
        for (unsigned j = 0; j < kMaxAddrsPerMac; ++j)
            nb.push_back({"eth1", pfx("2001:db8:7::/64").with_host((uint64_t{i} << 16) | (j + 1)), m});
    }
    auto text = hosts6_text(leases, nb, kSegments);
    EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), static_cast<long>(1 + kMaxHosts6Lines));
}

// A temporary directory, removed with everything in it.
class TempDir {
public:
    TempDir() {
        char tmpl[] = "/tmp/names6_test.XXXXXX";
        dir_ = mkdtemp(tmpl);
    }
    ~TempDir() { std::filesystem::remove_all(dir_); }
    const std::string& path() const { return dir_; }
    std::string file(const std::string& name) const { return dir_ + "/" + name; }

private:
    std::string dir_;
};

std::string slurp(const std::string& path) {
    std::ifstream in(path);
    return std::string((std::istreambuf_iterator<char>(in)), {});
}

TEST(Names6, WriteHostsFileDotTemporaryAndChangedFlag) {
    TempDir d;
    auto path = d.file("hosts6");
    auto w = write_hosts_file(path, "a\n");
    ASSERT_TRUE(w) << w.error().str();
    EXPECT_TRUE(*w);
    w = write_hosts_file(path, "a\n");
    ASSERT_TRUE(w);
    EXPECT_FALSE(*w);
    w = write_hosts_file(path, "a\nb\n");
    ASSERT_TRUE(w);
    EXPECT_TRUE(*w);
    w = write_hosts_file(path, "a\n");   // a prefix of the old content is a change too
    ASSERT_TRUE(w);
    EXPECT_TRUE(*w);
    EXPECT_EQ(slurp(path), "a\n");
    struct stat st {};
    ASSERT_EQ(stat(path.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0644u);
    // Nothing but the file is left in the directory (dnsmasq reads every non-dot file there).
    std::vector<std::string> names;
    for (auto& e : std::filesystem::directory_iterator(d.path())) names.push_back(e.path().filename());
    EXPECT_EQ(names, std::vector<std::string>{"hosts6"});
    // The temporary is a dotfile: a leftover one (a crash mid-write) is ignored by dnsmasq and
    // simply overwritten.
    std::ofstream(d.file(".hosts6.tmp")) << "junk";
    w = write_hosts_file(path, "c\n");
    ASSERT_TRUE(w);
    EXPECT_EQ(slurp(path), "c\n");
    EXPECT_FALSE(std::filesystem::exists(d.file(".hosts6.tmp")));
    auto bad = write_hosts_file(d.file("no/such/dir/hosts6"), "x");
    ASSERT_FALSE(bad);
    EXPECT_NE(bad.error().str().find(".hosts6.tmp"), std::string::npos) << bad.error().str();
}

Status no_ping(const std::string&, const Ipv6Addr&) { return Ok{}; }

TEST(Names6, RefreshWritesOnlyOnChange) {
    TempDir d;
    std::vector<Neighbour6> table = {{"eth1", ip6("2001:db8:7::5054:ff:fe12:3456"), mac(kMacA)}};
    int dumps = 0;
    Names6 names(
        [&]() -> Result<std::vector<Neighbour6>> {
            ++dumps;
            return table;
        },
        no_ping);
    auto leases = d.file("dnsmasq.leases"), out = d.file("hosts6");

    // No lease file yet (dnsmasq has not written one): no names, not an error.
    auto r = names.refresh(kSegments, leases, out);
    ASSERT_TRUE(r) << r.error().str();
    EXPECT_TRUE(*r);
    EXPECT_EQ(slurp(out), kHeader);

    std::ofstream(leases) << "1735689600 52:54:00:12:34:56 192.168.7.10 laptop *\n";
    r = names.refresh(kSegments, leases, out);
    ASSERT_TRUE(r) << r.error().str();
    EXPECT_TRUE(*r);
    EXPECT_EQ(slurp(out), std::string(kHeader) + "2001:db8:7:0:5054:ff:fe12:3456 laptop.home.arpa laptop\n");

    r = names.refresh(kSegments, leases, out);
    ASSERT_TRUE(r);
    EXPECT_FALSE(*r);

    table.clear();   // the host left: its entry aged out of the table
    r = names.refresh(kSegments, leases, out);
    ASSERT_TRUE(r);
    EXPECT_TRUE(*r);
    EXPECT_EQ(slurp(out), kHeader);
    EXPECT_EQ(dumps, 4);
}

TEST(Names6, RefreshErrorsLeaveTheFile) {
    TempDir d;
    auto out = d.file("hosts6");
    std::ofstream(out) << "previous\n";
    Names6 failing([]() -> Result<std::vector<Neighbour6>> { return Error{"list neighbours: permission denied"}; },
                   no_ping);
    auto r = failing.refresh(kSegments, d.file("none"), out);
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().str().find("list neighbours"), std::string::npos);
    EXPECT_EQ(slurp(out), "previous\n");

    // A lease "file" that cannot be read (a directory) is an error too, naming it.
    Names6 ok([]() -> Result<std::vector<Neighbour6>> { return std::vector<Neighbour6>{}; }, no_ping);
    r = ok.refresh(kSegments, d.path(), out);
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().str().find(d.path()), std::string::npos) << r.error().str();
    EXPECT_EQ(slurp(out), "previous\n");
}

TEST(Names6, ProbePingsEachSegmentFromItsRouterAddress) {
    std::vector<std::string> pings;
    Names6 names([] { return Result<std::vector<Neighbour6>>(std::vector<Neighbour6>{}); },
                 [&](const std::string& ifname, const Ipv6Addr& src) -> Status {
                     pings.push_back(ifname + " " + src.str());
                     if (ifname == "eth1") return Error{"ping ff02::1 on eth1: send", ENETDOWN};
                     return Ok{};
                 });
    std::vector<NameSegment> segs = kSegments;
    segs.push_back({"eth3", "home.arpa", {}});   // no IPv6 yet: nothing to ping from
    auto st = names.probe(segs);
    EXPECT_EQ(pings, (std::vector<std::string>{"eth1 2001:db8:7::1", "eth1.30 2001:db8:30::1"}));
    ASSERT_FALSE(st);   // the failure is reported, and the other segment still pinged
    EXPECT_NE(st.error().str().find("eth1"), std::string::npos);
}

}  // namespace
}  // namespace netd
