#include "train/run/run_dir.h"

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

const std::vector<std::string>& run_files() {
    static const std::vector<std::string> files = {"metrics.csv", "dynamics.csv", "summary.json"};
    return files;
}

bool holds_run(const std::string& dir) {
    for (const auto& f : run_files())
        if (fs::exists(fs::path(dir) / f)) return true;
    return false;
}

namespace {

// The pid written by the lock's holder, or "unknown" if it cannot be read.
std::string holder_pid(int fd) {
    char buf[32] = {};
    ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
    std::string s = n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
    return s.empty() ? "unknown" : s;
}

// Same file still at `path`? (Another run may have removed and re-made it
// between our open() and flock(); then we locked a stale inode.)
bool same_file(int fd, const std::string& path) {
    struct stat a {
    }, b{};
    return ::fstat(fd, &a) == 0 && ::stat(path.c_str(), &b) == 0 && a.st_ino == b.st_ino &&
           a.st_dev == b.st_dev;
}

}  // namespace

RunDirLock::RunDirLock(const std::string& dir, const std::string& flag, bool overwrite, bool resume)
    : dir_(dir), lock_path_((fs::path(dir) / ".tapegrad.lock").string()) {
    std::error_code ec;
    if (fs::exists(dir) && !fs::is_directory(dir))
        throw Error(fmt::format("tapegrad: {} '{}' is a file; expected a run folder", flag, dir));
    created_dir_ = fs::create_directories(dir, ec);
    if (ec)
        throw Error(fmt::format("tapegrad: {} '{}': cannot create the folder: {}", flag, dir, ec.message()));
    for (int attempt = 0;; ++attempt) {
        fd_ = ::open(lock_path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (fd_ < 0)
            throw Error(fmt::format("tapegrad: {} '{}': cannot create the lock file '{}': {}", flag, dir,
                                    lock_path_, std::strerror(errno)));
        if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
            int err = errno;
            std::string pid = holder_pid(fd_);
            ::close(fd_);
            fd_ = -1;
            if (err == EWOULDBLOCK)
                throw Error(fmt::format("tapegrad: {} '{}' is in use by another run (pid {}); wait for it, "
                                        "stop it, or choose another folder",
                                        flag, dir, pid));
            throw Error(fmt::format("tapegrad: {} '{}': cannot lock '{}': {}", flag, dir, lock_path_,
                                    std::strerror(err)));
        }
        if (same_file(fd_, lock_path_)) break;
        ::close(fd_);
        fd_ = -1;
        if (attempt > 10)
            throw Error(fmt::format("tapegrad: {} '{}': the lock file keeps changing", flag, dir));
    }
    std::string me = std::to_string(::getpid()) + "\n";
    bool wrote =
        ::ftruncate(fd_, 0) == 0 && ::pwrite(fd_, me.data(), me.size(), 0) == static_cast<ssize_t>(me.size());
    (void)wrote;  // the pid is informative only; the lock itself is what counts
    if (holds_run(dir) && !resume) {
        if (!overwrite) {
            ::close(fd_);  // we created nothing: leave the folder as it was
            fd_ = -1;
            throw Error(
                fmt::format("tapegrad: {} '{}' already holds a run (metrics.csv or summary.json); pass "
                            "--overwrite to replace it, --resume to continue it, or choose another folder",
                            flag, dir));
        }
        for (const auto& f : run_files()) fs::remove(fs::path(dir) / f, ec);
        fs::remove_all(fs::path(dir) / "plots", ec);
    }
}

RunDirLock::~RunDirLock() {
    if (fd_ < 0) return;
    // Nothing but the lock file in the folder: the run failed before writing
    // anything. Remove the lock file while still holding the lock (a waiting
    // run re-checks the inode), and the folder if this run made it.
    std::error_code ec;
    bool only_lock = true;
    for (fs::directory_iterator it(dir_, ec), end; !ec && it != end; it.increment(ec))
        if (it->path().filename() != ".tapegrad.lock") only_lock = false;
    if (!ec && only_lock) {
        ::unlink(lock_path_.c_str());
        if (created_dir_) fs::remove(dir_, ec);
    }
    ::close(fd_);
}

}  // namespace tg::train
