#include "process.h"

#include <fcntl.h>
#include <linux/sched.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <fstream>
#include <sstream>

namespace netd {
namespace {

int sys_pidfd_open(pid_t pid) { return static_cast<int>(syscall(SYS_pidfd_open, pid, 0)); }

// Everything the child needs, prepared before clone3: after it only async-signal-safe calls.
struct ChildPlan {
    std::vector<char*> argv;
    std::vector<char*> envp;
    int in, out;
    bool new_session;
    std::optional<uint64_t> capabilities;
};

// Cuts the bounding set to `keep` (execve then gives a uid-0 process exactly these) and sets
// no_new_privs. Only prctl: async-signal-safe.
bool restrict_capabilities(uint64_t keep) {
    for (int cap = 0; cap < 64; ++cap) {
        if (keep & (uint64_t{1} << cap)) continue;
        if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0) {
            if (errno == EINVAL) break;  // past the kernel's last capability
            return false;
        }
    }
    return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0;
}

[[noreturn]] void run_child(const ChildPlan& p) {
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    for (int s = 1; s < NSIG; ++s) sigaction(s, &dfl, nullptr);
    if (p.new_session) setsid();
    if (dup2(p.in, 0) < 0 || dup2(p.out, 1) < 0 || dup2(p.out, 2) < 0) _exit(126);
    close_range(3, ~0U, 0);
    if (p.capabilities && !restrict_capabilities(*p.capabilities)) _exit(126);
    execve(p.argv[0], p.argv.data(), p.envp.data());
    _exit(127);
}

}  // namespace

Result<Spawned> spawn(const SpawnOptions& opts) {
    if (opts.argv.empty() || opts.argv[0].empty() || opts.argv[0][0] != '/')
        return Error{"spawn: argv[0] must be an absolute path"};
    UniqueFd devnull(open("/dev/null", O_RDWR | O_CLOEXEC));
    if (!devnull) return Error::from_errno("open /dev/null");

    std::vector<std::string> argv = opts.argv, env = opts.env;
    ChildPlan plan;
    for (auto& a : argv) plan.argv.push_back(a.data());
    plan.argv.push_back(nullptr);
    for (auto& e : env) plan.envp.push_back(e.data());
    plan.envp.push_back(nullptr);
    plan.in = opts.stdin_fd >= 0 ? opts.stdin_fd : devnull.get();
    plan.out = opts.stdout_fd >= 0 ? opts.stdout_fd : devnull.get();
    plan.new_session = opts.new_session;
    plan.capabilities = opts.capabilities;

    int pidfd = -1;
    clone_args args{};
    args.flags = CLONE_PIDFD;
    args.pidfd = reinterpret_cast<uint64_t>(&pidfd);
    args.exit_signal = SIGCHLD;
    long pid = syscall(SYS_clone3, &args, sizeof(args));
    if (pid < 0) return Error::from_errno("clone3");
    if (pid == 0) run_child(plan);
    // The pidfd from clone3 is not close-on-exec by default in every kernel: make sure.
    fcntl(pidfd, F_SETFD, FD_CLOEXEC);
    return Spawned{static_cast<pid_t>(pid), UniqueFd(pidfd)};
}

Status send_signal(int pidfd, int sig) {
    if (syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0) < 0) return Error::from_errno("pidfd_send_signal");
    return Ok{};
}

bool is_alive(int pidfd) {
    // A pidfd becomes readable when its process exits.
    pollfd p{pidfd, POLLIN, 0};
    return poll(&p, 1, 0) == 0;
}

std::string reap(int pidfd) {
    siginfo_t info{};
    if (waitid(static_cast<idtype_t>(P_PIDFD), pidfd, &info, WEXITED) < 0) return "exited";
    if (info.si_code == CLD_EXITED) return "exited " + std::to_string(info.si_status);
    return "killed by signal " + std::to_string(info.si_status);
}

Result<ProcessIdentity> identity_of(pid_t pid) {
    std::string dir = "/proc/" + std::to_string(pid);
    char exe[PATH_MAX];
    ssize_t n = readlink((dir + "/exe").c_str(), exe, sizeof(exe) - 1);
    if (n < 0) return Error::from_errno("readlink " + dir + "/exe");
    exe[n] = '\0';
    std::ifstream stat(dir + "/stat");
    std::string line;
    if (!std::getline(stat, line)) return Error{"cannot read " + dir + "/stat"};
    // The command name (field 2) may hold spaces and parentheses: fields restart after the last ')'.
    auto close = line.rfind(')');
    if (close == std::string::npos) return Error{"malformed " + dir + "/stat"};
    std::istringstream rest(line.substr(close + 2));
    std::string field;
    // starttime is field 22 overall, i.e. the 20th after the command name.
    for (int i = 3; i <= 22 && rest >> field; ++i) {
    }
    ProcessIdentity id;
    id.exe = exe;
    try {
        id.start_time = std::stoull(field);
    } catch (...) {
        return Error{"malformed start time in " + dir + "/stat"};
    }
    return id;
}

Result<UniqueFd> adopt(pid_t pid, const ProcessIdentity& expected, const std::string& pre_exec_exe) {
    if (pid <= 1) return Error{"adopt: invalid pid " + std::to_string(pid)};
    UniqueFd pidfd(sys_pidfd_open(pid));
    if (!pidfd) return Error::from_errno("pidfd_open " + std::to_string(pid));
    auto id = identity_of(pid);
    if (!id) return id.error();
    bool same_exe = id->exe == expected.exe || (!pre_exec_exe.empty() && id->exe == pre_exec_exe);
    if (!same_exe || id->start_time != expected.start_time)
        return Error{"pid " + std::to_string(pid) + " is now " + id->exe + " started at " +
                     std::to_string(id->start_time) + ", not the recorded process"};
    // The identity was read from /proc/<pid>; only if the pidfd's process is still alive now
    // was that the same process.
    if (!is_alive(pidfd.get())) return Error{"pid " + std::to_string(pid) + " exited during adoption"};
    fcntl(pidfd.get(), F_SETFD, FD_CLOEXEC);
    return pidfd;
}

}  // namespace netd
