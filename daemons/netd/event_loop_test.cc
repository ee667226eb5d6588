// The event loop: fd handlers, timers, and no stale events after a descriptor is reused.
#include "event_loop.h"

#include <gtest/gtest.h>

#include <thread>
#include <sys/epoll.h>
#include <unistd.h>

namespace netd {
namespace {

using namespace std::chrono_literals;

TEST(EventLoop, TimersFireInOrderAndCancel) {
    auto loop = std::move(*EventLoop::create());
    std::vector<int> fired;
    loop->add_timer(30ms, [&] { fired.push_back(3); loop->stop(); });
    loop->add_timer(10ms, [&] { fired.push_back(1); });
    auto c = loop->add_timer(20ms, [&] { fired.push_back(2); });
    loop->cancel_timer(c);
    ASSERT_TRUE(loop->run());
    EXPECT_EQ(fired, (std::vector<int>{1, 3}));
}

// Two timers due in the same round: the first releases the second's handle, which must not run.
TEST(EventLoop, ATimerReleasedByAnEarlierOneInTheSameRoundDoesNotFire) {
    auto loop = std::move(*EventLoop::create());
    bool second_ran = false;
    Registration second;
    auto first = loop->after(5ms, [&] { second.reset(); });
    second = loop->after(6ms, [&] { second_ran = true; });
    auto stop = loop->after(30ms, [&] { loop->stop(); });
    std::this_thread::sleep_for(15ms);  // both are due when the loop first looks
    ASSERT_TRUE(loop->run());
    EXPECT_FALSE(second_ran);
}

TEST(EventLoop, ReusedDescriptorGetsNoStaleEvent) {
    auto loop = std::move(*EventLoop::create());
    int a[2], b[2];
    ASSERT_EQ(pipe(a), 0);
    ASSERT_EQ(pipe(b), 0);
    // Both read ends become readable in the same batch.
    ASSERT_EQ(write(a[1], "x", 1), 1);
    ASSERT_EQ(write(b[1], "x", 1), 1);
    int first = -1, calls_on_new = 0;
    auto on_ready = [&](int self, int other) {
        return [&, self, other](uint32_t) {
            if (first != -1) return;
            first = self;
            // The first handler closes the other pipe and reuses its descriptor number for a
            // fresh, empty pipe: its pending event must not reach the new handler.
            loop->unwatch(other);
            close(other);
            int p[2];
            ASSERT_EQ(pipe(p), 0);
            if (p[0] != other) {
                dup2(p[0], other);
                close(p[0]);
            }
            loop->watch(other, EPOLLIN, [&](uint32_t) { ++calls_on_new; });
            loop->add_timer(20ms, [&] { loop->stop(); });
        };
    };
    ASSERT_TRUE(loop->watch(a[0], EPOLLIN, on_ready(a[0], b[0])));
    ASSERT_TRUE(loop->watch(b[0], EPOLLIN, on_ready(b[0], a[0])));
    ASSERT_TRUE(loop->run());
    EXPECT_EQ(calls_on_new, 0);
}

}  // namespace
}  // namespace netd
