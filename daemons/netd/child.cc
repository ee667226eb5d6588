#include "child.h"

#include <signal.h>
#include <sys/epoll.h>

namespace netd {

Result<std::unique_ptr<Child>> Child::spawn(EventLoop& loop, const SpawnOptions& opts, ExitHandler on_exit) {
    auto sp = netd::spawn(opts);
    if (!sp) return sp.error();
    return watch(loop, std::unique_ptr<Child>(new Child(sp->pid, std::move(sp->pidfd), false)), std::move(on_exit));
}

Result<std::unique_ptr<Child>> Child::adopt(EventLoop& loop, pid_t pid, UniqueFd pidfd, ExitHandler on_exit) {
    return watch(loop, std::unique_ptr<Child>(new Child(pid, std::move(pidfd), true)), std::move(on_exit));
}

void Child::kill_and_reap() {
    watch_.reset();
    on_exit_ = nullptr;
    signal(SIGKILL);
    if (!adopted_) reap(pidfd_.get());
}

Result<std::unique_ptr<Child>> Child::watch(EventLoop& loop, std::unique_ptr<Child> c, ExitHandler on_exit) {
    c->on_exit_ = std::move(on_exit);
    Child* self = c.get();
    auto w = loop.watch_fd(c->pidfd_.get(), EPOLLIN, [self](uint32_t) {
        self->watch_.reset();
        std::string how = self->adopted_ ? "exited (adopted: status unknown)" : reap(self->pidfd_.get());
        // The handler may destroy *self: nothing of it is touched after the call.
        auto handler = std::move(self->on_exit_);
        if (handler) handler(how);
    });
    if (!w) return w.error();
    c->watch_ = std::move(*w);
    return c;
}

}  // namespace netd
