// Names of IPv6 hosts against the real kernel and the real dnsmasq: a "router" and a "host"
// network namespace joined by a veth. The router pings ff02::1 with ping_all_nodes(), the host
// answers from its SLAAC-style address, and dump_neighbours6() sees that address with the host's
// MAC; then Names6::refresh() writes the hosts file and dnsmasq (hostsdir=) answers AAAA and PTR
// for the name from a DHCPv4 lease, and forgets it when the lease goes.
//
// Needs root (namespaces, a raw socket): skipped otherwise. The namespaces carry the test's pid
// in their names and are deleted at the end of every test.
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <gtest/gtest.h>
#include <string>
#include <thread>

#include "names6.h"

namespace netd {
namespace {

using namespace std::chrono_literals;

const char* kRouterAddr = "2001:db8:7::1";
// 2001:db8:7::5054:ff:fe12:3456, as inet_ntop and dig spell it (RFC 5952: a lone zero group is
// not shortened).
const char* kHostAddr = "2001:db8:7:0:5054:ff:fe12:3456";
const char* kHostMac = "52:54:00:12:34:56";

// A shell command's exit status and standard output (stderr goes to the test's log).
struct Run {
    int status = -1;
    std::string out;
};

Run run(const std::string& cmd) {
    Run r;
    FILE* p = popen(cmd.c_str(), "r");
    if (!p) return r;
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), p)) > 0) r.out.append(buf, n);
    int st = pclose(p);
    r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return r;
}

bool has_program(const char* name) { return run(std::string("command -v ") + name + " >/dev/null 2>&1").status == 0; }

// Runs fn in the named network namespace: in a thread of its own, since setns() changes the
// namespace of the calling thread only and the test's thread must stay where it is.
void in_netns(const std::string& ns, const std::function<void()>& fn) {
    std::string failure;
    std::thread t([&] {
        int fd = open(("/run/netns/" + ns).c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0 || setns(fd, CLONE_NEWNET) < 0) {
            failure = "enter netns " + ns + ": " + std::strerror(errno);
            if (fd >= 0) close(fd);
            return;
        }
        close(fd);
        fn();
    });
    t.join();
    ASSERT_EQ(failure, "");
}

bool wait_until(const std::function<bool()>& cond, std::chrono::milliseconds limit) {
    auto end = std::chrono::steady_clock::now() + limit;
    while (!cond()) {
        if (std::chrono::steady_clock::now() > end) return false;
        std::this_thread::sleep_for(50ms);
    }
    return true;
}

bool contains(const std::vector<Neighbour6>& v, const Neighbour6& n) { return std::find(v.begin(), v.end(), n) != v.end(); }

class Names6Netns : public ::testing::Test {
protected:
    void SetUp() override {
        if (geteuid() != 0) GTEST_SKIP() << "needs root: network namespaces and a raw ICMPv6 socket";
        if (!has_program("ip")) GTEST_SKIP() << "needs iproute2's ip";
        std::string id = std::to_string(getpid());
        rtr_ = "n6r" + id;
        host_ = "n6h" + id;
        ASSERT_EQ(sh("ip netns add " + rtr_), 0);
        made_rtr_ = true;
        ASSERT_EQ(sh("ip netns add " + host_), 0);
        made_host_ = true;
        // The host: a known MAC and the EUI-64 address SLAAC would give it; without DAD so both
        // sides can use their addresses at once.
        ASSERT_EQ(sh("ip -n " + rtr_ + " link add r0 type veth peer name h0 netns " + host_), 0);
        ASSERT_EQ(sh("ip -n " + host_ + " link set h0 address " + kHostMac), 0);
        for (auto& [ns, dev] : {std::pair{rtr_, "r0"}, std::pair{host_, "h0"}}) {
            ASSERT_EQ(sh("ip -n " + ns + " link set lo up"), 0);
            ASSERT_EQ(sh("ip -n " + ns + " link set " + dev + " up"), 0);
        }
        ASSERT_EQ(sh("ip -n " + rtr_ + " addr add " + kRouterAddr + "/64 dev r0 nodad"), 0);
        ASSERT_EQ(sh("ip -n " + host_ + " addr add " + kHostAddr + "/64 dev h0 nodad"), 0);
        // Hosts answer multicast echo requests (Linux's default; set in case this one differs).
        ASSERT_EQ(sh("ip netns exec " + host_ + " sysctl -qw net.ipv6.icmp.echo_ignore_multicast=0"), 0);
        // Both ends up with carrier and the link-local addresses past DAD: the link is usable.
        ASSERT_TRUE(wait_until(
            [&] {
                return run("ip -n " + rtr_ + " -6 addr show dev r0 tentative").out.empty() &&
                       run("ip -n " + host_ + " -6 addr show dev h0 tentative").out.empty() &&
                       run("ip -n " + rtr_ + " link show r0").out.find("LOWER_UP") != std::string::npos;
            },
            10s));
    }

    void TearDown() override {
        if (dnsmasq_ > 0) {
            kill(dnsmasq_, SIGTERM);
            waitpid(dnsmasq_, nullptr, 0);
        }
        // Deleting a namespace deletes the veth pair in it.
        if (made_host_) sh("ip netns del " + host_);
        if (made_rtr_) sh("ip netns del " + rtr_);
        if (!dir_.empty()) std::filesystem::remove_all(dir_);
    }

    int sh(const std::string& cmd) {
        int st = std::system(cmd.c_str());
        if (st != 0) ADD_FAILURE() << "failed (" << st << "): " << cmd;
        return st;
    }

    std::string temp_dir() {
        char tmpl[] = "/tmp/names6_netns.XXXXXX";
        dir_ = mkdtemp(tmpl);
        // dnsmasq reads its hostsdir after dropping root.
        chmod(dir_.c_str(), 0755);
        return dir_;
    }

    // The router's neighbour table after one ping of all nodes: the host's entry is waited for.
    std::vector<Neighbour6> ping_and_dump() {
        std::vector<Neighbour6> before, after;
        std::string ping_error;
        Neighbour6 want{"r0", *Ipv6Addr::parse(kHostAddr), *MacAddr::parse(kHostMac)};
        in_netns(rtr_, [&] {
            if (auto d = dump_neighbours6()) before = *d;
            if (auto st = ping_all_nodes("r0", *Ipv6Addr::parse(kRouterAddr)); !st) ping_error = st.error().str();
            wait_until(
                [&] {
                    auto d = dump_neighbours6();
                    after = d ? *d : std::vector<Neighbour6>{};
                    return contains(after, want);
                },
                5s);
        });
        EXPECT_EQ(ping_error, "");
        // Nothing had made the router talk to the host before the ping.
        EXPECT_FALSE(contains(before, want));
        return after;
    }

    std::string rtr_, host_, dir_;
    bool made_rtr_ = false, made_host_ = false;
    pid_t dnsmasq_ = -1;
};

TEST_F(Names6Netns, PingAllNodesFillsTheNeighbourTable) {
    auto table = ping_and_dump();
    Neighbour6 want{"r0", *Ipv6Addr::parse(kHostAddr), *MacAddr::parse(kHostMac)};
    EXPECT_TRUE(contains(table, want)) << "the host's address is not in the router's neighbour table";
    for (auto& n : table) EXPECT_TRUE(is_global_unicast6(n.addr)) << n.addr.str();
}

TEST_F(Names6Netns, DumpKeepsUsableStatesAndGlobalAddressesOnly) {
    // Entries made by hand in every state the dump must keep or drop.
    std::string nb = "ip -n " + rtr_ + " neigh add ";
    ASSERT_EQ(sh(nb + "2001:db8:7::70 lladdr 02:00:00:00:00:70 dev r0 nud permanent"), 0);
    ASSERT_EQ(sh(nb + "2001:db8:7::71 lladdr 02:00:00:00:00:71 dev r0 nud stale"), 0);
    ASSERT_EQ(sh(nb + "2001:db8:7::72 lladdr 02:00:00:00:00:72 dev r0 nud reachable"), 0);
    ASSERT_EQ(sh(nb + "fd00:7::73 lladdr 02:00:00:00:00:73 dev r0 nud permanent"), 0);
    ASSERT_EQ(sh(nb + "fe80::74 lladdr 02:00:00:00:00:74 dev r0 nud permanent"), 0);     // link-local
    ASSERT_EQ(sh(nb + "2001:db8:7::75 lladdr 02:00:00:00:00:75 dev r0 nud noarp"), 0);
    ASSERT_EQ(sh(nb + "2001:db8:7::76 lladdr 02:00:00:00:00:76 dev r0 nud failed"), 0);
    ASSERT_EQ(sh(nb + "2001:db8:7::77 lladdr 02:00:00:00:00:77 dev r0 nud incomplete"), 0);
    std::vector<Neighbour6> table;
    std::string error;
    in_netns(rtr_, [&] {
        auto d = dump_neighbours6();
        if (d)
            table = *d;
        else
            error = d.error().str();
    });
    ASSERT_EQ(error, "");
    std::vector<std::string> got;
    for (auto& n : table) got.push_back(n.link + " " + n.addr.str() + " " + n.mac.str());
    std::sort(got.begin(), got.end());
    EXPECT_EQ(got, (std::vector<std::string>{"r0 2001:db8:7::70 02:00:00:00:00:70", "r0 2001:db8:7::71 02:00:00:00:00:71",
                                             "r0 2001:db8:7::72 02:00:00:00:00:72", "r0 fd00:7::73 02:00:00:00:00:73"}));
}

TEST_F(Names6Netns, PingFailsWithReasonForAMissingLinkOrAddress) {
    std::string no_link, no_addr;
    in_netns(rtr_, [&] {
        auto a = ping_all_nodes("nosuch0", *Ipv6Addr::parse(kRouterAddr));
        if (!a) no_link = a.error().str();
        auto b = ping_all_nodes("r0", *Ipv6Addr::parse("2001:db8:7::99"));   // not ours
        if (!b) no_addr = b.error().str();
    });
    EXPECT_NE(no_link.find("nosuch0"), std::string::npos) << no_link;
    EXPECT_NE(no_addr.find("bind"), std::string::npos) << no_addr;
}

// What dnsmasq answers, asked inside the router namespace.
std::string dig(const std::string& ns, const std::string& args) {
    auto r = run("ip netns exec " + ns + " dig @127.0.0.1 -p 53 +short +time=1 +tries=2 " + args + " 2>&1");
    return r.out;
}

TEST_F(Names6Netns, DnsmasqAnswersAaaaAndPtrFromTheHostsFile) {
    if (!has_program("dnsmasq") || !has_program("dig")) GTEST_SKIP() << "needs dnsmasq and dig";
    std::string dir = temp_dir();
    std::string hostsdir = dir + "/hosts", leases = dir + "/dnsmasq.leases", log = dir + "/dnsmasq.log";
    ASSERT_EQ(mkdir(hostsdir.c_str(), 0755), 0);
    std::ofstream(leases) << "1735689600 " << kHostMac << " 192.168.7.10 Laptop 01:" << kHostMac << "\n"
                          << "1735689600 52:54:00:00:00:99 192.168.7.11 absent *\n";

    // dnsmasq as netd runs it for names: DNS only, from the hosts directory, in the router
    // namespace (its own port 53 there).
    dnsmasq_ = fork();
    ASSERT_GE(dnsmasq_, 0);
    if (dnsmasq_ == 0) {
        int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(fd, 1);
        dup2(fd, 2);
        execlp("ip", "ip", "netns", "exec", rtr_.c_str(), "dnsmasq", "--keep-in-foreground", "--log-facility=-",
               "--conf-file=/dev/null", "--no-resolv", "--no-hosts", ("--pid-file=" + dir + "/dnsmasq.pid").c_str(),
               "--listen-address=127.0.0.1", "--bind-interfaces", "--port=53", ("--hostsdir=" + hostsdir).c_str(),
               static_cast<char*>(nullptr));
        _exit(127);
    }
    auto listening = [&] { return run("ip netns exec " + rtr_ + " ss -uln").out.find("127.0.0.1:53 ") != std::string::npos; };
    ASSERT_TRUE(wait_until(listening, 10s)) << "dnsmasq did not start";

    std::vector<NameSegment> segs = {{"r0", "home.arpa", {*Ipv6Prefix::parse("2001:db8:7::/64")}}};
    Names6 names(dump_neighbours6, ping_all_nodes);
    std::string out = hostsdir + "/hosts6", error;
    bool changed = false;
    Neighbour6 want{"r0", *Ipv6Addr::parse(kHostAddr), *MacAddr::parse(kHostMac)};
    in_netns(rtr_, [&] {
        if (auto st = names.probe(segs); !st) error = st.error().str();
        wait_until([&] { auto d = dump_neighbours6(); return d && contains(*d, want); }, 5s);
        auto r = names.refresh(segs, leases, out);
        if (r)
            changed = *r;
        else
            error = r.error().str();
    });
    ASSERT_EQ(error, "");
    EXPECT_TRUE(changed);
    std::ifstream in(out);
    std::string text((std::istreambuf_iterator<char>(in)), {});
    EXPECT_NE(text.find(std::string(kHostAddr) + " laptop.home.arpa laptop\n"), std::string::npos) << text;

    std::string aaaa, ptr;
    wait_until([&] { return (aaaa = dig(rtr_, "AAAA laptop.home.arpa")) == std::string(kHostAddr) + "\n"; }, 5s);
    EXPECT_EQ(aaaa, std::string(kHostAddr) + "\n");
    EXPECT_EQ(dig(rtr_, "AAAA laptop"), std::string(kHostAddr) + "\n");
    ptr = dig(rtr_, std::string("-x ") + kHostAddr);
    EXPECT_EQ(ptr, "laptop.home.arpa.\n");
    EXPECT_EQ(dig(rtr_, "AAAA absent.home.arpa"), "");

    // The lease goes: the name goes from the file and from dnsmasq's answers.
    std::ofstream(leases, std::ios::trunc) << "";
    in_netns(rtr_, [&] {
        auto r = names.refresh(segs, leases, out);
        if (r)
            changed = *r;
        else
            error = r.error().str();
    });
    ASSERT_EQ(error, "");
    EXPECT_TRUE(changed);
    wait_until([&] { return (aaaa = dig(rtr_, "AAAA laptop.home.arpa")).empty(); }, 5s);
    EXPECT_EQ(aaaa, "");
    EXPECT_EQ(dig(rtr_, std::string("-x ") + kHostAddr), "");

    // dnsmasq read the file itself and never the temporary (a dotfile).
    std::ifstream lg(log);
    std::string logtext((std::istreambuf_iterator<char>(lg)), {});
    EXPECT_NE(logtext.find("hosts6"), std::string::npos) << logtext;
    EXPECT_EQ(logtext.find(".tmp"), std::string::npos) << logtext;
}

}  // namespace
}  // namespace netd
