// When to restart a crashed child: exponential backoff, reset after a stable run, and a
// crash-loop limit after which the child is marked failed and only retried much later (or on
// reload), never in a restart storm. Pure logic: the supervisor feeds it times.
#pragma once

#include <chrono>
#include <deque>

namespace netd {

struct RestartPolicy {
    using duration = std::chrono::steady_clock::duration;
    duration initial_delay = std::chrono::seconds(1);
    duration max_delay = std::chrono::seconds(60);
    duration stable_after = std::chrono::seconds(60);  // a run this long resets the backoff
    int crash_limit = 5;                               // crashes inside crash_window ...
    duration crash_window = std::chrono::seconds(120);
    duration failed_retry = std::chrono::minutes(10);  // ... mean failed, retried after this
};

class RestartTracker {
public:
    using time_point = std::chrono::steady_clock::time_point;
    using duration = RestartPolicy::duration;

    struct Decision {
        bool failed = false;  // crash loop: give up until failed_retry or a reload
        duration delay{};     // restart after this long
    };

    explicit RestartTracker(RestartPolicy p = {}) : policy_(p), next_delay_(p.initial_delay) {}

    // The child exited unexpectedly at `now` after running for `ran_for`.
    Decision on_exit(time_point now, duration ran_for);
    // An operator restart or a reload: forget the crash history.
    void reset();

    int crashes_in_window() const { return static_cast<int>(crashes_.size()); }
    const RestartPolicy& policy() const { return policy_; }

private:
    RestartPolicy policy_;
    duration next_delay_;
    std::deque<time_point> crashes_;
};

}  // namespace netd
