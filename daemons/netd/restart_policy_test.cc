#include "restart_policy.h"

#include <gtest/gtest.h>

namespace netd {
namespace {

using namespace std::chrono_literals;
using tp = RestartTracker::time_point;

TEST(RestartPolicy, DelaysDoubleUpToTheMaximum) {
    RestartPolicy p;
    p.crash_limit = 100;  // no crash loop in this test
    p.crash_window = 1s;
    RestartTracker t(p);
    tp now{};
    std::vector<long> delays;
    for (int i = 0; i < 9; ++i) {
        now += 200s;  // far apart: never a crash loop
        delays.push_back(std::chrono::duration_cast<std::chrono::seconds>(t.on_exit(now, 2s).delay).count());
    }
    EXPECT_EQ(delays, (std::vector<long>{1, 2, 4, 8, 16, 32, 60, 60, 60}));
}

TEST(RestartPolicy, StableRunResetsTheBackoff) {
    RestartTracker t;
    tp now{};
    EXPECT_EQ(t.on_exit(now += 1s, 1s).delay, 1s);
    EXPECT_EQ(t.on_exit(now += 2s, 1s).delay, 2s);
    EXPECT_EQ(t.on_exit(now += 3s, 1s).delay, 4s);
    // It then ran for longer than stable_after: the next crash starts from the beginning.
    EXPECT_EQ(t.on_exit(now += 90s, 61s).delay, 1s);
    EXPECT_EQ(t.crashes_in_window(), 1);
}

TEST(RestartPolicy, CrashLoopMeansFailedThenLongRetry) {
    RestartTracker t;  // 5 crashes within 120 s
    tp now{};
    for (int i = 0; i < 4; ++i) EXPECT_FALSE(t.on_exit(now += 1s, 0s).failed) << i;
    auto d = t.on_exit(now += 1s, 0s);
    EXPECT_TRUE(d.failed);
    EXPECT_EQ(d.delay, std::chrono::minutes(10));
    // After the long retry the history starts again.
    EXPECT_FALSE(t.on_exit(now += 11min, 0s).failed);
}

TEST(RestartPolicy, OldCrashesLeaveTheWindow) {
    RestartTracker t;
    tp now{};
    for (int i = 0; i < 4; ++i) t.on_exit(now += 1s, 0s);
    now += 200s;  // the four crashes are now outside the 120 s window
    auto d = t.on_exit(now, 0s);
    EXPECT_FALSE(d.failed);
    EXPECT_EQ(t.crashes_in_window(), 1);
}

TEST(RestartPolicy, RestartsPerMinuteStayBounded) {
    // A child that dies at once, restarted as the policy says, for ten minutes of simulated time.
    RestartTracker t;
    tp now{};
    tp end = now + 10min;
    int starts = 0;
    while (now < end) {
        ++starts;
        auto d = t.on_exit(now, 0s);
        now += d.delay;
    }
    // 5 quick starts (1+2+4+8 s of backoff), then one attempt per 10-minute retry.
    EXPECT_LE(starts, 6);
}

TEST(RestartPolicy, ResetForgetsHistory) {
    RestartTracker t;
    tp now{};
    for (int i = 0; i < 4; ++i) t.on_exit(now += 1s, 0s);
    t.reset();
    EXPECT_EQ(t.crashes_in_window(), 0);
    EXPECT_EQ(t.on_exit(now += 1s, 0s).delay, 1s);
}

}  // namespace
}  // namespace netd
