// The tunnel's protocol pieces: the heartbeat for the published worked example, the HE reply
// classification, the retry schedule.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <map>

#include <nlohmann/json.hpp>

#include "test_fakes.h"
#include "tunnel.h"

namespace netd {
namespace {

TEST(Heartbeat, PublishedWorkedExample) {
    // The worked example of the SixXS heartbeat README (AICCU).
    EXPECT_EQ(heartbeat_packet("2001:db8::2", "10.100.13.42", 1063665852, "hartslag"),
              "HEARTBEAT TUNNEL 2001:db8::2 10.100.13.42 1063665852 da46fdc28f568bb62d29661f73758095");
}

TEST(Heartbeat, SenderModeAndNoTrailingNewline) {
    auto p = heartbeat_packet("2001:db8::2", "sender", 1063665852, "hartslag");
    EXPECT_EQ(p.rfind("HEARTBEAT TUNNEL 2001:db8::2 sender 1063665852 ", 0), 0u);
    EXPECT_EQ(p.size(), std::string("HEARTBEAT TUNNEL 2001:db8::2 sender 1063665852 ").size() + 32);
    EXPECT_NE(p.back(), '\n');
}

TEST(HeReply, Classification) {
    EXPECT_EQ(parse_he_reply(200, "good 192.0.2.7"), HeOutcome::good);
    EXPECT_EQ(parse_he_reply(200, "nochg 192.0.2.7\n"), HeOutcome::nochg);
    EXPECT_EQ(parse_he_reply(200, "badauth"), HeOutcome::badauth);
    EXPECT_EQ(parse_he_reply(401, "badauth"), HeOutcome::badauth);
    EXPECT_EQ(parse_he_reply(200, "abuse"), HeOutcome::abuse);
    EXPECT_EQ(parse_he_reply(200, "<html>oops</html>"), HeOutcome::failed);
    EXPECT_EQ(parse_he_reply(500, "good 1.2.3.4"), HeOutcome::failed) << "an error status is never success";
    EXPECT_EQ(parse_he_reply(200, ""), HeOutcome::failed);
    EXPECT_EQ(parse_he_reply(200, "goodness"), HeOutcome::failed);
}

TEST(HeReply, RetryScheduleIsBounded) {
    EXPECT_EQ(update_retry_delay(1).count(), 15);
    EXPECT_EQ(update_retry_delay(2).count(), 30);
    EXPECT_EQ(update_retry_delay(3).count(), 60);
    EXPECT_EQ(update_retry_delay(8).count(), 1800);
    EXPECT_EQ(update_retry_delay(1000).count(), 1800);
    EXPECT_GT(kAbuseDelay.count(), update_retry_delay(1000).count());
}

// Runs the update helper on `request` in a forked child (no threads here: a fork beside
// another thread can deadlock in the sanitizers' allocator); *out reads its output.
pid_t fork_helper(const std::string& request, int* out) {
    int in[2], o[2];
    if (pipe(in) != 0 || pipe(o) != 0) return -1;
    if (write(in[1], request.data(), request.size()) != static_cast<ssize_t>(request.size())) return -1;
    close(in[1]);
    pid_t pid = fork();
    if (pid == 0) {
        alarm(20);  // never outlives a broken test
        dup2(in[0], 0);
        dup2(o[1], 1);
        close(o[0]);
        int rc = he_update_main();
        std::fflush(stdout);  // _exit does not
        _exit(rc);
    }
    close(in[0]);
    close(o[1]);
    *out = o[0];
    return pid;
}

// A TCP server on a loopback port, standing in for the broker.
int listen_loopback(sockaddr_in* a) {
    int srv = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    *a = sockaddr_in{};
    a->sin_family = AF_INET;
    a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(*a);
    if (srv < 0 || bind(srv, reinterpret_cast<sockaddr*>(a), sizeof(*a)) != 0 || listen(srv, 1) != 0 ||
        getsockname(srv, reinterpret_cast<sockaddr*>(a), &len) != 0)
        return -1;
    return srv;
}

// Accepts the helper's connection; -1 if it never came.
int accept_helper(int srv) {
    pollfd p{srv, POLLIN, 0};
    if (poll(&p, 1, 10000) != 1) return -1;
    return accept(srv, nullptr, nullptr);
}

// Ends a connection with a reset, as a broken server would.
void reset(int c) {
    linger l{1, 0};
    setsockopt(c, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
    close(c);
}

std::string read_all(int fd) {
    std::string output;
    char buf[512];
    pollfd r{fd, POLLIN, 0};
    while (poll(&r, 1, 10000) == 1) {
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n <= 0) break;
        output.append(buf, static_cast<size_t>(n));
    }
    close(fd);
    return output;
}

// The update helper against a server that resets the connection during the TLS handshake:
// the TLS library has no reason of its own then (with OpenSSL the error used to read
// "error:00000000:lib(0)::reason(0)"): the socket's errno is named.
TEST(HeUpdateHelper, AConnectionResetIsNamed) {
    sockaddr_in a;
    int srv = listen_loopback(&a);
    ASSERT_GE(srv, 0);
    std::string req = "https://127.0.0.1:" + std::to_string(ntohs(a.sin_port)) + "/nic/update\nu\nk\n1\n\n" +
                      NETD_TESTDATA "/test-ca.pem\n";
    int out = -1;
    pid_t pid = fork_helper(req, &out);
    ASSERT_GT(pid, 0);
    int c = accept_helper(srv);
    ASSERT_GE(c, 0) << "the helper never connected";
    pollfd q{c, POLLIN, 0};
    char buf[512];
    if (poll(&q, 1, 10000) == 1) (void)!read(c, buf, sizeof(buf));  // the ClientHello, then a reset
    reset(c);
    close(srv);
    std::string output = read_all(out);
    int status = 0;
    waitpid(pid, &status, 0);
    EXPECT_EQ(output.rfind("ERROR tls 127.0.0.1: ", 0), 0u) << output;
    EXPECT_EQ(output.find("lib(0)"), std::string::npos) << output;
    EXPECT_NE(output.find("Connection reset by peer"), std::string::npos) << output;
}

// The helper talks to a server on the internet holding nothing of root's: by the time it
// connects it runs as nobody, without groups or capabilities (bounding set included), with
// no_new_privs; a CA file only root may read was loaded before.
TEST(HeUpdateHelper, DropsRootBeforeItConnects) {
    if (geteuid() != 0) GTEST_SKIP() << "needs root (the helper drops root only when it has it)";
    const passwd* nobody = getpwnam("nobody");
    ASSERT_NE(nobody, nullptr);
    char dir[] = "/tmp/he_update_test.XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    std::string ca = std::string(dir) + "/ca.pem";
    {
        std::ifstream src(NETD_TESTDATA "/test-ca.pem");
        std::ofstream dst(ca);
        dst << src.rdbuf();
    }
    ASSERT_EQ(chmod(ca.c_str(), 0600), 0);
    sockaddr_in a;
    int srv = listen_loopback(&a);
    ASSERT_GE(srv, 0);
    int out = -1;
    pid_t pid = fork_helper("https://127.0.0.1:" + std::to_string(ntohs(a.sin_port)) + "/nic/update\nu\nk\n1\n\n" +
                                ca + "\n",
                            &out);
    ASSERT_GT(pid, 0);
    int c = accept_helper(srv);
    // Connected, now waiting in the TLS handshake for our answer: as it will run from here.
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    std::map<std::string, std::string> st;
    for (std::string line; std::getline(in, line);) {
        auto colon = line.find(':');
        if (colon == std::string::npos) continue;
        auto v = line.substr(colon + 1);
        v.erase(0, v.find_first_not_of(" \t"));
        st[line.substr(0, colon)] = v;
    }
    if (c >= 0) reset(c);
    close(srv);
    std::string output = read_all(out);
    waitpid(pid, nullptr, 0);
    unlink(ca.c_str());
    rmdir(dir);
    ASSERT_GE(c, 0) << "the helper never connected: " << output;
    std::string uid = std::to_string(nobody->pw_uid), gid = std::to_string(nobody->pw_gid);
    EXPECT_EQ(st["Uid"], uid + "\t" + uid + "\t" + uid + "\t" + uid);
    EXPECT_EQ(st["Gid"], gid + "\t" + gid + "\t" + gid + "\t" + gid);
    EXPECT_EQ(st["Groups"], "");
    EXPECT_EQ(st["CapPrm"], "0000000000000000");
    EXPECT_EQ(st["CapEff"], "0000000000000000");
    EXPECT_EQ(st["CapBnd"], "0000000000000000");
    EXPECT_EQ(st["CapAmb"], "0000000000000000");
    EXPECT_EQ(st["NoNewPrivs"], "1");
    EXPECT_EQ(output.find("cannot"), std::string::npos) << output;  // loading the CA, dropping root
}

// The update helper's output reaches `netctl status` and the log only as printable text: the
// JSON status refuses bytes that are not UTF-8, and an answer with them made `status --json`
// throw (found by tests/fuzz/fuzz_he_reply).
TEST(HeHandler, HelperOutputIsShownPrintable) {
    testing::FakeScheduler sched;
    testing::FakeUpdates updates;
    testing::FakeDatagrams datagrams;
    TunnelConfig c;
    c.mode = TunnelMode::he;
    auto h = make_tunnel_handler(c, {sched, updates, datagrams, [] { return int64_t{0}; }, nullptr});
    auto wan = Ipv4Addr::parse("192.0.2.7");
    h->wan_changed(wan);
    updates.answer(std::string("\xc8\x01garbage\r\n", 11));
    auto s = h->status();
    EXPECT_EQ(s.last, "update failed: ??garbage?");
    EXPECT_NO_THROW((void)tunnel_status_json(s, c, wan).dump());
}

}  // namespace
}  // namespace netd
