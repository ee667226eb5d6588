// Writing a file so that a reader, or a power cut, sees the old content or the new one, never a
// mix or nothing: a temporary next to it, fsync, rename, fsync of the directory.
#pragma once

#include <string>

#include "unique_fd.h"

namespace netd {

// Writes content to path through `.NAME.tmp` in the same directory and rename(); the file gets
// mode whatever the umask. Returns true if the content changed (false: left untouched).
Result<bool> write_file_atomic(const std::string& path, const std::string& content, unsigned mode = 0644);

}  // namespace netd
