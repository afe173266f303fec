#include "train/run/run_dir.h"

#include <fmt/format.h>

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

constexpr const char* kAside = ".overwritten";            // the old run while the new one starts
constexpr const char* kDiscard = ".overwritten.discard";  // the old run being removed

// What --overwrite replaces: the run's files and its plots.
std::vector<std::string> replaced_entries() {
    std::vector<std::string> e = run_files();
    e.push_back("plots");
    return e;
}

// Move the entries named in `names` from `from` to `to` (same file system: renames).
void move_entries(const fs::path& from, const fs::path& to, const std::vector<std::string>& names) {
    for (const auto& n : names)
        if (fs::exists(from / n)) fs::rename(from / n, to / n);
}

// The new run's files go, the aside ones come back, the aside folder goes.
void restore_aside(const fs::path& dir) {
    std::error_code ec;
    for (const auto& n : replaced_entries()) fs::remove_all(dir / n, ec);
    move_entries(dir / kAside, dir, replaced_entries());
    fs::remove_all(dir / kAside, ec);
}

}  // namespace

RunDirLock::RunDirLock(const std::string& dir, const std::string& flag, bool overwrite, bool resume)
    : lock_(dir, flag) {
    const fs::path d(dir);
    std::error_code ec;
    // Left by a run SIGKILLed mid-overwrite: it never started, so the old run
    // comes back; or it had started and its old run was being removed.
    fs::remove_all(d / kDiscard, ec);
    if (fs::is_directory(d / kAside)) restore_aside(d);
    if (holds_run(dir) && !resume) {
        if (!overwrite)
            throw Error(
                fmt::format("tapegrad: {} '{}' already holds a run (metrics.csv or summary.json); pass "
                            "--overwrite to replace it, --resume to continue it, or choose another folder",
                            flag, dir));
        fs::create_directory(d / kAside);
        move_entries(d, d / kAside, replaced_entries());
        moved_aside_ = true;
    }
}

void RunDirLock::keep_new() {
    if (!moved_aside_) return;
    const fs::path d(dir());
    std::error_code ec;
    fs::rename(d / kAside, d / kDiscard, ec);  // one step: a kill midway never restores half of it
    fs::remove_all(ec ? d / kAside : d / kDiscard, ec);
    moved_aside_ = false;
}

RunDirLock::~RunDirLock() {
    if (!moved_aside_) return;
    try {
        restore_aside(fs::path(dir()));
    } catch (const std::exception&) {
        // A destructor must not throw; the next lock of the folder restores it.
    }
}

}  // namespace tg::train
