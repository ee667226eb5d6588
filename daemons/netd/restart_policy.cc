#include "restart_policy.h"

#include <algorithm>

namespace netd {

RestartTracker::Decision RestartTracker::on_exit(time_point now, duration ran_for) {
    if (ran_for >= policy_.stable_after) {
        next_delay_ = policy_.initial_delay;
        crashes_.clear();
    }
    crashes_.push_back(now);
    while (!crashes_.empty() && now - crashes_.front() > policy_.crash_window) crashes_.pop_front();
    if (static_cast<int>(crashes_.size()) >= policy_.crash_limit) {
        crashes_.clear();
        next_delay_ = policy_.initial_delay;
        return {true, policy_.failed_retry};
    }
    Decision d{false, next_delay_};
    next_delay_ = std::min(next_delay_ * 2, policy_.max_delay);
    return d;
}

void RestartTracker::reset() {
    crashes_.clear();
    next_delay_ = policy_.initial_delay;
}

}  // namespace netd
