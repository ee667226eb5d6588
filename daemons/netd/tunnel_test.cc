// The tunnel's protocol pieces: the heartbeat for the published worked example, the HE reply
// classification, the retry schedule.
#include <gtest/gtest.h>

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

}  // namespace
}  // namespace netd
