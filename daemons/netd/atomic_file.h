// Writing a file so that a reader, or a power cut, sees the old content or the new one, never a
// mix or nothing: a temporary next to it, fsync, rename, fsync of the directory.
#pragma once

#include <optional>
#include <string>

#include "unique_fd.h"

namespace netd {

// Writes content to path through `.NAME.tmp` in the same directory and rename(); the file gets
// mode whatever the umask. Returns true if the content changed (false: left untouched).
Result<bool> write_file_atomic(const std::string& path, const std::string& content, unsigned mode = 0644);

// The whole file, or nothing when it cannot be read. Plain read(2): netctl uses it, and
// iostreams would pull the locale machinery of the static libstdc++ into it (half a megabyte).
std::optional<std::string> read_whole_file(const std::string& path);

}  // namespace netd
