// A run directory (--out) belongs to one run at a time.
//
// Ownership is a FolderLock (train/run/folder_lock.h): flock(LOCK_EX) on
// <dir>/.tapegrad.lock, held (and the file kept) for the life of the run. The kernel drops it when
// the process ends in any way (a SIGKILL included), so a crashed run never
// leaves the folder locked; the file holds the owner's pid so a second run can
// say who holds it.
//
// A folder that already holds a run's files (metrics.csv, dynamics.csv,
// summary.json) is a finished (or interrupted) run: it is refused unless the
// caller overwrites on purpose (--overwrite) or continues it (--resume appends
// to them).
//
// --overwrite moves the old run's files aside (<dir>/.overwritten/) rather than
// removing them: they are removed only when keep_new() says the new run has
// passed its preflight and finished its first step. A run that fails or stops
// before that (or a RunDirLock destroyed without keep_new()) puts the old run
// back in place, and a run SIGKILLed before it is undone by the next lock of
// the folder. So a new run that never starts never costs the old one.
//
// If the run fails before writing anything, the lock file goes again, and so
// does the folder when this run created it: a failed run leaves no empty folder.
#pragma once

#include <string>
#include <vector>

#include "train/run/folder_lock.h"

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
    const std::string& dir() const { return lock_.dir(); }
    // The new run has started: the overwritten run's files are removed now.
    void keep_new();

private:
    FolderLock lock_;
    bool moved_aside_ = false;
};

// True when dir exists and holds any of run_files().
bool holds_run(const std::string& dir);

}  // namespace tg::train
