// The persistent log on the data disk, as `netctl log` reads it. rcS starts syslogd with
// -C512 -O /data/log/current/messages -s 512 -b 1: logread shows this boot from memory, and
// the same lines go to the file, which rotates to messages.0 past 512 KiB (at most 1 MiB per
// boot). At the next boot rcS moves current to boot-1, boot-1 to boot-2, boot-2 to boot-3 and
// drops boot-3: with this boot's, at most 4 MiB. A crash or a power cut leaves the files as
// they were on the disk (lines reach it within about 15 s: rcS shortens the kernel's
// writeback delay), so the boot that crashed is boot-1 after the reboot.
//
// netctl reads the files itself: the log is there when netd is not, and it is larger than a
// control reply.
#pragma once

#include <cstdio>
#include <string>
#include <vector>

#include "unique_fd.h"

namespace netd {

inline constexpr const char* kLogDir = "/data/log";
inline constexpr int kPreviousBootsKept = 3;

struct LogRequest {
    bool list = false;   // --list: the boots kept, with their size and time span
    int boot = 0;        // 0: this boot; N: N boots back (--previous [N])
};
// The arguments after "log": none, --previous [N], --list.
Result<LogRequest> parse_log_args(const std::vector<std::string>& args);

// "current" for this boot, "boot-N" for N boots back.
std::string boot_log_dir(const std::string& dir, int boot);
// A boot's log files, oldest first (messages.0, then messages); those that exist.
std::vector<std::string> boot_log_files(const std::string& dir, int boot);
// One line per boot kept: which, size, the times of its first and last lines.
std::string log_listing(const std::string& dir);

// `netctl log ARGS`: prints the log asked for to out, errors to err; the exit status.
int netctl_log(const std::vector<std::string>& args, const std::string& dir, FILE* out, FILE* err);

}  // namespace netd
