#include "atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <iterator>

namespace netd {

Result<bool> write_file_atomic(const std::string& path, const std::string& content, unsigned mode) {
    {
        std::ifstream in(path, std::ios::binary);
        if (in) {
            std::string old((std::istreambuf_iterator<char>(in)), {});
            if (old == content) return false;
        }
    }
    // The temporary is a dotfile next to the file: readers of a whole directory (dnsmasq's
    // hostsdir) skip dotfiles, and a leftover one after a crash is simply overwritten.
    size_t slash = path.rfind('/');
    std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
    std::string tmp = (slash == std::string::npos ? "" : path.substr(0, slash + 1)) + "." +
                      path.substr(slash == std::string::npos ? 0 : slash + 1) + ".tmp";
    UniqueFd fd(open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode));
    if (!fd) return Error::from_errno("open " + tmp);
    // The mode whatever the umask (dnsmasq reads its hosts files after dropping root).
    if (fchmod(fd.get(), mode) < 0) {
        auto e = Error::from_errno("chmod " + tmp);
        unlink(tmp.c_str());
        return e;
    }
    size_t off = 0;
    while (off < content.size()) {
        ssize_t n = write(fd.get(), content.data() + off, content.size() - off);
        if (n < 0) {
            if (errno == EINTR) continue;
            auto e = Error::from_errno("write " + tmp);
            unlink(tmp.c_str());
            return e;
        }
        off += static_cast<size_t>(n);
    }
    if (fsync(fd.get()) < 0) {
        auto e = Error::from_errno("fsync " + tmp);
        unlink(tmp.c_str());
        return e;
    }
    fd.reset();
    if (rename(tmp.c_str(), path.c_str()) < 0) {
        auto e = Error::from_errno("rename " + tmp + " to " + path);
        unlink(tmp.c_str());
        return e;
    }
    // The rename is durable only once the directory is on the disk too (a power cut on /data
    // must leave the old file or the new one, never none).
    if (UniqueFd d(open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)); d && fsync(d.get()) < 0 && errno != EINVAL)
        return Error::from_errno("fsync " + dir);
    return true;
}

std::optional<std::string> read_whole_file(const std::string& path) {
    UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return std::nullopt;
    std::string out;
    char buf[8192];
    for (;;) {
        ssize_t n = read(fd.get(), buf, sizeof(buf));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return std::nullopt;
        if (n == 0) return out;
        out.append(buf, static_cast<size_t>(n));
    }
}

}  // namespace netd
