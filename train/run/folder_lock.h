// Locks on folders and files: one writer at a time, said by pid.
//
// A lock is flock(LOCK_EX | LOCK_NB) on a lock file, held for the life of the
// object. The kernel drops it when the process ends in any way (a SIGKILL
// included), so a crashed writer never leaves anything locked: the next one
// simply takes the lock again. The file holds the holder's pid so a refused
// writer can say who holds it.
//
//   LockFile    one lock file at a given path (a `--save` target's is
//               ".NAME.lock" beside it: lock_path_for()), removed on release.
//   FolderLock  <dir>/.tapegrad.lock, the folder made if missing; a folder
//               left holding nothing but the lock file (the writer failed
//               before writing) is removed again on release when it made it.
//
// `what` names the thing in messages ("--out", "sweep --out", "--save").
#pragma once

#include <optional>
#include <string>

namespace tg::train {

class LockFile {
public:
    // Throws "tapegrad: {what} '{target}' is in use by another process (pid P)..."
    // when another live process holds `lock_path`.
    LockFile(const std::string& lock_path, const std::string& what, const std::string& target);
    ~LockFile();
    LockFile(const LockFile&) = delete;
    LockFile& operator=(const LockFile&) = delete;
    const std::string& path() const { return path_; }

private:
    std::string path_;
    int fd_ = -1;
};

// The lock file of a file target: ".NAME.lock" in the target's folder.
std::string lock_path_for(const std::string& file);

class FolderLock {
public:
    FolderLock(const std::string& dir, const std::string& what);
    ~FolderLock();
    FolderLock(const FolderLock&) = delete;
    FolderLock& operator=(const FolderLock&) = delete;
    const std::string& dir() const { return dir_; }
    bool created_dir() const { return created_dir_; }
    static constexpr const char* kFileName = ".tapegrad.lock";

private:
    std::string dir_;
    bool created_dir_ = false;
    std::optional<LockFile> lock_;  // taken once the folder exists
};

}  // namespace tg::train
