#include "event_loop.h"

#include <sys/epoll.h>
#include <sys/timerfd.h>

#include <memory>
#include <vector>

namespace netd {

Result<std::unique_ptr<EventLoop>> EventLoop::create() {
    UniqueFd ep(epoll_create1(EPOLL_CLOEXEC));
    if (!ep) return Error::from_errno("epoll_create1");
    UniqueFd tfd(timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK));
    if (!tfd) return Error::from_errno("timerfd_create");
    std::unique_ptr<EventLoop> loop(new EventLoop(std::move(ep), std::move(tfd)));
    int t = loop->timerfd_.get();
    EventLoop* self = loop.get();
    auto st = loop->watch(t, EPOLLIN, [self, t](uint32_t) {
        uint64_t expirations;
        while (::read(t, &expirations, sizeof(expirations)) > 0) {
        }
        self->fire_timers();
    });
    if (!st) return st.error();
    return loop;
}

EventLoop::EventLoop(UniqueFd epoll, UniqueFd timer) : epoll_(std::move(epoll)), timerfd_(std::move(timer)) {}

Status EventLoop::watch(int fd, uint32_t events, FdHandler handler) {
    epoll_event ev{};
    ev.events = events;
    ev.data.u64 = next_token_;
    if (epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) < 0) return Error::from_errno("epoll_ctl add");
    auto h = std::make_shared<FdHandler>(std::move(handler));
    watches_[fd] = Watch{next_token_, h};
    by_token_[next_token_] = h;
    ++next_token_;
    return Ok{};
}

void EventLoop::unwatch(int fd) {
    auto it = watches_.find(fd);
    if (it == watches_.end()) return;
    by_token_.erase(it->second.token);
    watches_.erase(it);
    epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr);
}

Result<Registration> EventLoop::watch_fd(int fd, uint32_t events, FdHandler handler) {
    if (auto st = watch(fd, events, std::move(handler)); !st) return st.error();
    uint64_t token = watches_[fd].token;
    // Released by token: should the fd have been unwatched and reused meanwhile, the newer
    // watch is not touched.
    return Registration([this, fd, token] {
        auto it = watches_.find(fd);
        if (it != watches_.end() && it->second.token == token) unwatch(fd);
    });
}

Registration EventLoop::after(std::chrono::milliseconds delay, std::function<void()> fn) {
    TimerId id = add_timer(delay, std::move(fn));
    return Registration([this, id] { cancel_timer(id); });
}

EventLoop::TimerId EventLoop::add_timer(Clock::duration after, TimerHandler handler) {
    TimerId id = next_timer_++;
    auto deadline = Clock::now() + after;
    timers_.emplace(deadline, std::make_pair(id, std::move(handler)));
    timer_deadline_[id] = deadline;
    arm_timer();
    return id;
}

void EventLoop::cancel_timer(TimerId id) {
    auto it = timer_deadline_.find(id);
    if (it == timer_deadline_.end()) return;
    auto [lo, hi] = timers_.equal_range(it->second);
    for (auto t = lo; t != hi; ++t) {
        if (t->second.first == id) {
            timers_.erase(t);
            break;
        }
    }
    timer_deadline_.erase(it);
    arm_timer();
}

void EventLoop::arm_timer() {
    itimerspec spec{};
    if (!timers_.empty()) {
        auto left = timers_.begin()->first - Clock::now();
        auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(left).count();
        if (ns < 1) ns = 1;  // zero would disarm
        spec.it_value.tv_sec = ns / 1000000000;
        spec.it_value.tv_nsec = ns % 1000000000;
    }
    timerfd_settime(timerfd_.get(), 0, &spec, nullptr);
}

void EventLoop::fire_timers() {
    auto now = Clock::now();
    // One at a time, taken off before it runs: a handler that cancels a timer due in the same
    // round (releasing its handle) is heard, and one that adds timers is fine too.
    while (!timers_.empty() && timers_.begin()->first <= now) {
        auto [id, handler] = std::move(timers_.begin()->second);
        timer_deadline_.erase(id);
        timers_.erase(timers_.begin());
        handler();
    }
    arm_timer();
}

Status EventLoop::run() {
    running_ = true;
    epoll_event events[16];
    while (running_) {
        int n = epoll_wait(epoll_.get(), events, 16, -1);
        if (n < 0) {
            if (errno == EINTR) continue;
            return Error::from_errno("epoll_wait");
        }
        for (int i = 0; i < n && running_; ++i) {
            auto it = by_token_.find(events[i].data.u64);
            if (it == by_token_.end()) continue;  // unwatched by an earlier handler in this batch
            auto handler = it->second.lock();     // keeps it alive if it unwatches itself
            if (handler) (*handler)(events[i].events);
        }
    }
    return Ok{};
}

}  // namespace netd
