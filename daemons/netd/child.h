// A child process watched on the event loop: spawned (or adopted after netd restarted) with a
// pidfd, its exit reported once, signalled only through the pidfd (a recycled PID is never
// hit). The supervisor's services, their log forwarders and the tunnel's update helper are
// all Children. Destroying one stops watching it; it does not kill it (the owner decides).
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "event_loop.h"
#include "process.h"

namespace netd {

class Child {
public:
    // how: "exited 1", "killed by signal 9", or for an adopted one "exited (adopted: status unknown)".
    // The handler may destroy the Child.
    using ExitHandler = std::function<void(const std::string& how)>;

    static Result<std::unique_ptr<Child>> spawn(EventLoop& loop, const SpawnOptions& opts, ExitHandler on_exit);
    // A process found by PID whose pidfd adopt() (process.h) opened: not our child, so its exit
    // status cannot be known.
    static Result<std::unique_ptr<Child>> adopt(EventLoop& loop, pid_t pid, UniqueFd pidfd, ExitHandler on_exit);

    pid_t pid() const { return pid_; }
    bool adopted() const { return adopted_; }
    Status signal(int sig) const { return send_signal(pidfd_.get(), sig); }
    // SIGKILL, then reap it at once (it can no longer run any code); its exit is not reported.
    void kill_and_reap();

private:
    Child(pid_t pid, UniqueFd pidfd, bool adopted) : pid_(pid), pidfd_(std::move(pidfd)), adopted_(adopted) {}
    static Result<std::unique_ptr<Child>> watch(EventLoop& loop, std::unique_ptr<Child> c, ExitHandler on_exit);

    pid_t pid_;
    UniqueFd pidfd_;
    bool adopted_;
    ExitHandler on_exit_;
    Registration watch_;
};

}  // namespace netd
