// A run directory (--out) belongs to one run at a time.
//
// Ownership is an OS lock: flock(LOCK_EX) on <dir>/.tapegrad.lock, held for the
// life of the run. The kernel drops it when the process ends in any way (a
// SIGKILL included), so a crashed run never leaves the folder locked; the file
// holds the owner's pid so a second run can say who holds it.
//
// A folder that already holds a run's files (metrics.csv, dynamics.csv,
// summary.json) is a finished (or interrupted) run: it is refused unless the
// caller overwrites on purpose (--overwrite: those files are removed first) or
// continues it (--resume appends to them).
//
// If the run fails before writing anything, the lock file goes again, and so
// does the folder when this run created it: a failed run leaves no empty folder.
#pragma once

#include <string>
#include <vector>

namespace tg::train {

// The files of a run that make a folder "taken".
const std::vector<std::string>& run_files();

class RunDirLock {
public:
    // flag names the option in messages ("--out"). Throws when another live
    // process holds the folder (naming its pid) or when the folder holds a run
    // and neither overwrite nor resume is set.
    RunDirLock(const std::string& dir, const std::string& flag, bool overwrite, bool resume);
    ~RunDirLock();
    RunDirLock(const RunDirLock&) = delete;
    RunDirLock& operator=(const RunDirLock&) = delete;
    const std::string& dir() const { return dir_; }

private:
    std::string dir_, lock_path_;
    int fd_ = -1;
    bool created_dir_ = false;
};

// True when dir exists and holds any of run_files().
bool holds_run(const std::string& dir);

}  // namespace tg::train
