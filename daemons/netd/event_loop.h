// netd's one event loop: epoll over file descriptors (signalfd, pidfds, sockets) and one
// timerfd that serves every timer. Single-threaded; handlers run to completion.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <unordered_map>
#include <utility>

#include "unique_fd.h"

namespace netd {

// A registration (timer or fd watch) that is released when its handle goes: owners hold
// handles as members, so nothing can fire into an object that is gone. Move-only.
class Registration {
public:
    Registration() = default;
    explicit Registration(std::function<void()> release) : release_(std::move(release)) {}
    Registration(Registration&& o) noexcept : release_(std::exchange(o.release_, nullptr)) {}
    Registration& operator=(Registration&& o) noexcept {
        if (this != &o) {
            reset();
            release_ = std::exchange(o.release_, nullptr);
        }
        return *this;
    }
    Registration(const Registration&) = delete;
    Registration& operator=(const Registration&) = delete;
    ~Registration() { reset(); }
    void reset() {
        if (auto r = std::exchange(release_, nullptr)) r();
    }
    explicit operator bool() const { return static_cast<bool>(release_); }

private:
    std::function<void()> release_;
};

// Timers as the tunnel handlers see them, so tests can run time by hand.
class Scheduler {
public:
    virtual ~Scheduler() = default;
    // fn runs once after the delay unless the returned handle is released first.
    [[nodiscard]] virtual Registration after(std::chrono::milliseconds delay, std::function<void()> fn) = 0;
};

class EventLoop final : public Scheduler {
public:
    using Clock = std::chrono::steady_clock;
    using FdHandler = std::function<void(uint32_t events)>;
    using TimerHandler = std::function<void()>;
    using TimerId = uint64_t;

    static Result<std::unique_ptr<EventLoop>> create();

    // The primitives beneath the handles below (modules hold handles, so nothing fires into
    // an object that is gone). Watch fd (not owned) for events (EPOLLIN, ...). The handler
    // may remove any fd, itself included.
    Status watch(int fd, uint32_t events, FdHandler handler);
    void unwatch(int fd);
    // The same, released with the handle.
    [[nodiscard]] Result<Registration> watch_fd(int fd, uint32_t events, FdHandler handler);
    [[nodiscard]] Registration after(std::chrono::milliseconds delay, std::function<void()> fn) override;

    TimerId add_timer(Clock::duration after, TimerHandler handler);
    void cancel_timer(TimerId id);  // unknown or expired ids are ignored

    // Runs until stop(); returns an error only when epoll itself fails.
    Status run();
    void stop() { running_ = false; }
    Clock::time_point now() const { return Clock::now(); }

private:
    EventLoop(UniqueFd epoll, UniqueFd timer);
    void arm_timer();
    void fire_timers();

    UniqueFd epoll_;
    UniqueFd timerfd_;
    bool running_ = false;
    // Events carry a token, not the fd: a descriptor closed and reused by another watch within
    // one epoll batch must not receive the stale event of its previous owner.
    struct Watch {
        uint64_t token;
        std::shared_ptr<FdHandler> handler;
    };
    std::unordered_map<int, Watch> watches_;                   // by fd
    std::unordered_map<uint64_t, std::weak_ptr<FdHandler>> by_token_;
    uint64_t next_token_ = 1;
    std::multimap<Clock::time_point, std::pair<TimerId, TimerHandler>> timers_;
    std::unordered_map<TimerId, Clock::time_point> timer_deadline_;
    TimerId next_timer_ = 1;
};

}  // namespace netd
