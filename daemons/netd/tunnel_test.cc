// The tunnel's protocol pieces: the heartbeat for the published worked example, the HE reply
// classification, the retry schedule.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>


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

// The update helper against a server that resets the connection during the TLS handshake:
// OpenSSL's queue is empty then, and the error used to read "error:00000000:lib(0)::reason(0)".
// No threads here: the helper runs in a forked child (a fork beside another thread can
// deadlock in the sanitizers' allocator); the test plays the server, every wait bounded.
TEST(HeUpdateHelper, AConnectionResetIsNamed) {
    int srv = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(srv, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(a);
    ASSERT_EQ(bind(srv, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
    ASSERT_EQ(listen(srv, 1), 0);
    ASSERT_EQ(getsockname(srv, reinterpret_cast<sockaddr*>(&a), &len), 0);
    int in[2], out[2];
    ASSERT_EQ(pipe(in), 0);
    ASSERT_EQ(pipe(out), 0);
    std::string req = "https://127.0.0.1:" + std::to_string(ntohs(a.sin_port)) + "/nic/update\nu\nk\n1\n\n" +
                      NETD_TESTDATA "/test-ca.pem\n";
    ASSERT_EQ(write(in[1], req.data(), req.size()), static_cast<ssize_t>(req.size()));
    close(in[1]);
    pid_t pid = fork();
    if (pid == 0) {
        alarm(20);  // never outlives a broken test
        dup2(in[0], 0);
        dup2(out[1], 1);
        close(out[0]);
        int rc = he_update_main();
        std::fflush(stdout);  // _exit does not
        _exit(rc);
    }
    close(in[0]);
    close(out[1]);
    pollfd p{srv, POLLIN, 0};
    ASSERT_EQ(poll(&p, 1, 10000), 1) << "the helper never connected";
    int c = accept(srv, nullptr, nullptr);
    ASSERT_GE(c, 0);
    pollfd q{c, POLLIN, 0};
    char buf[512];
    if (poll(&q, 1, 10000) == 1) (void)!read(c, buf, sizeof(buf));  // the ClientHello, then a reset
    linger l{1, 0};
    setsockopt(c, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
    close(c);
    close(srv);
    std::string output;
    pollfd r{out[0], POLLIN, 0};
    while (poll(&r, 1, 10000) == 1) {
        ssize_t n = read(out[0], buf, sizeof(buf));
        if (n <= 0) break;
        output.append(buf, static_cast<size_t>(n));
    }
    close(out[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    EXPECT_EQ(output.rfind("ERROR tls 127.0.0.1: ", 0), 0u) << output;
    EXPECT_EQ(output.find("lib(0)"), std::string::npos) << output;
    EXPECT_NE(output.find("Connection reset by peer"), std::string::npos) << output;
}

}  // namespace
}  // namespace netd
