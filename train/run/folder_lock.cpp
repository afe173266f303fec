#include "train/run/folder_lock.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "core/tensor.h"

namespace tg::train {
namespace fs = std::filesystem;

namespace {

// The pid written by the lock's holder, or "unknown" if it cannot be read.
std::string holder_pid(int fd) {
    char buf[32] = {};
    ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
    std::string s = n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
    return s.empty() ? "unknown" : s;
}

// Same file still at `path`? (Another writer may have removed and re-made it
// between our open() and flock(); then we locked a stale inode.)
bool same_file(int fd, const std::string& path) {
    struct stat a {
    }, b{};
    return ::fstat(fd, &a) == 0 && ::stat(path.c_str(), &b) == 0 && a.st_ino == b.st_ino &&
           a.st_dev == b.st_dev;
}

}  // namespace

LockFile::LockFile(const std::string& lock_path, const std::string& what, const std::string& target)
    : path_(lock_path) {
    for (int attempt = 0;; ++attempt) {
        fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (fd_ < 0)
            throw Error(fmt::format("tapegrad: {} '{}': cannot create the lock file '{}': {}", what, target,
                                    path_, std::strerror(errno)));
        if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
            int err = errno;
            std::string pid = holder_pid(fd_);
            ::close(fd_);
            fd_ = -1;
            if (err == EWOULDBLOCK)
                throw Error(fmt::format("tapegrad: {} '{}' is in use by another run (pid {}); wait for it, "
                                        "stop it, or choose another one",
                                        what, target, pid));
            throw Error(fmt::format("tapegrad: {} '{}': cannot lock '{}': {}", what, target, path_,
                                    std::strerror(err)));
        }
        if (same_file(fd_, path_)) break;
        ::close(fd_);
        fd_ = -1;
        if (attempt > 10)
            throw Error(fmt::format("tapegrad: {} '{}': the lock file keeps changing", what, target));
    }
    std::string me = std::to_string(::getpid()) + "\n";
    bool wrote =
        ::ftruncate(fd_, 0) == 0 && ::pwrite(fd_, me.data(), me.size(), 0) == static_cast<ssize_t>(me.size());
    (void)wrote;  // the pid is informative only; the lock itself is what counts
}

// The lock file goes while it is still held: a writer that opened it just
// before finds another inode (or none) at the path after its flock, and retries.
LockFile::~LockFile() {
    if (fd_ < 0) return;
    ::unlink(path_.c_str());
    ::close(fd_);
}

std::string lock_path_for(const std::string& file) {
    fs::path p(file);
    std::string name = p.filename().string();
    name.insert(name.begin(), '.');  // (not "." + name: GCC 12's -Wrestrict false positive)
    name += ".lock";
    return (p.parent_path() / name).string();
}

FolderLock::FolderLock(const std::string& dir, const std::string& what) : dir_(dir) {
    std::error_code ec;
    if (fs::exists(dir) && !fs::is_directory(dir))
        throw Error(fmt::format("tapegrad: {} '{}' is a file; expected a folder", what, dir));
    created_dir_ = fs::create_directories(dir, ec);
    if (ec)
        throw Error(fmt::format("tapegrad: {} '{}': cannot create the folder: {}", what, dir, ec.message()));
    try {
        lock_.emplace((fs::path(dir) / kFileName).string(), what, dir);
    } catch (...) {
        if (created_dir_) fs::remove(dir, ec);
        throw;
    }
}

FolderLock::~FolderLock() {
    // Nothing but the lock file in a folder this lock made: the writer failed
    // before writing anything, and the folder goes too.
    std::error_code ec;
    bool only_lock = true;
    for (fs::directory_iterator it(dir_, ec), end; !ec && it != end; it.increment(ec))
        if (it->path().filename() != kFileName) only_lock = false;
    lock_.reset();
    if (!ec && only_lock && created_dir_) fs::remove(dir_, ec);
}

}  // namespace tg::train
