// Processes through pidfds: spawning (clone3 with CLONE_PIDFD, so there is never a moment
// when the child is known only by PID), signalling (pidfd_send_signal, so a recycled PID is
// never hit), reaping, and adopting a process found by PID after netd itself restarted.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "unique_fd.h"

namespace netd {

struct Spawned {
    pid_t pid = -1;
    UniqueFd pidfd;
};

struct SpawnOptions {
    std::vector<std::string> argv;      // argv[0] is an absolute path
    std::vector<std::string> env;       // the whole environment of the child
    int stdin_fd = -1;                  // -1: /dev/null
    int stdout_fd = -1;                 // -1: /dev/null; also used for stderr
    bool new_session = true;            // detach from netd's session and terminal
    // Set: the child keeps only these capabilities (a mask of 1 << CAP_...): its bounding set
    // is cut to them and no_new_privs set before exec, so, still uid 0, it runs with exactly
    // these. Unset: netd's own (all), for a program that drops privileges itself.
    std::optional<uint64_t> capabilities;
};

// Starts the child with an empty signal mask, default dispositions and only fds 0-2 open.
Result<Spawned> spawn(const SpawnOptions& opts);

Status send_signal(int pidfd, int sig);

// Whether the process behind the pidfd is still running (not yet exited).
bool is_alive(int pidfd);

// Reaps our own exited child; returns a description such as "exited 1" or "killed by signal 9",
// or "exited" when the process is not our child (adopted) and its status cannot be known.
std::string reap(int pidfd);

// What identifies a process beyond its PID, from /proc: the executable and the start time
// in clock ticks since boot (a recycled PID has a different start time).
struct ProcessIdentity {
    std::string exe;
    uint64_t start_time = 0;
    bool operator==(const ProcessIdentity&) const = default;
};
Result<ProcessIdentity> identity_of(pid_t pid);

// Race-free adoption of a process known by PID: pidfd_open first, then compare its identity
// with `expected`, then confirm through the pidfd that the process the identity was read
// from is still alive. Fails if anything differs. A child caught between clone and exec
// still shows its parent's executable: `pre_exec_exe` (netd's own) is accepted for it, since
// the start time alone already tells it is the recorded process.
Result<UniqueFd> adopt(pid_t pid, const ProcessIdentity& expected, const std::string& pre_exec_exe = {});

}  // namespace netd
