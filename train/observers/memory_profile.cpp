#include "train/observers/memory_profile.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <ostream>

#include "core/storage.h"

namespace tg::train {

std::string label_pattern(const std::string& label) {
    std::string out;
    size_t i = 0;
    while (i < label.size()) {
        size_t end = label.find('.', i);
        if (end == std::string::npos) end = label.size();
        std::string part = label.substr(i, end - i);
        bool digits = !part.empty() && std::all_of(part.begin(), part.end(),
                                                   [](unsigned char c) { return std::isdigit(c) != 0; });
        out += digits ? "*" : part;
        if (end < label.size()) out += '.';
        i = end + 1;
    }
    return out;
}

void MemoryProfile::begin_step() {
    phases_.clear();
    holders_.clear();
    set_track_saved(true);
    reset_ok_ = reset_peak_rss();
}

void MemoryProfile::phase(const char* name) {
    PoolStats ps = pool_stats();
    phases_.push_back({name, read_rss(), ps.bytes_live, ps.bytes_pooled});
    reset_ok_ = reset_peak_rss() && reset_ok_;
}

void MemoryProfile::after_forward() {
    std::map<std::pair<std::string, std::string>, Holder> by;
    for (const SavedHolder& h : saved_holders()) {
        Holder& x = by[{h.op, label_pattern(h.label)}];
        x.op = h.op;
        x.pattern = label_pattern(h.label);
        x.bytes += h.bytes;
        x.entries++;
    }
    for (auto& [k, h] : by) holders_.push_back(h);
    std::stable_sort(holders_.begin(), holders_.end(), [](auto& a, auto& b) { return a.bytes > b.bytes; });
    set_track_saved(false);
    phase("forward");
}

void MemoryProfile::after_backward() { phase("backward"); }
void MemoryProfile::after_update() { phase("optimizer"); }

void MemoryProfile::print(std::ostream& os, size_t top) const {
    constexpr double MB = 1024.0 * 1024.0;
    os << fmt::format("memory profile of the step (memory saving {}; floor = parameters + gradients + "
                      "AdamW m, v = {:.0f} MB{})\n",
                      memory_saving() ? "on" : "off", floor_ / MB,
                      reset_ok_ ? "" : "; peaks are cumulative: /proc/self/clear_refs refused the reset");
    os << fmt::format("{:<10} {:>12} {:>16} {:>10} {:>13} {:>15}\n", "phase", "peak RSS MB", "above floor MB",
                      "RSS MB", "pool live MB", "pool parked MB");
    for (const Phase& p : phases_)
        os << fmt::format("{:<10} {:>12.0f} {:>16.0f} {:>10.0f} {:>13.0f} {:>15.0f}\n", p.name,
                          p.rss.peak / MB,
                          (static_cast<double>(p.rss.peak) - static_cast<double>(floor_)) / MB,
                          p.rss.current / MB, p.pool_live / MB, p.pool_parked / MB);
    size_t total = 0;
    for (const Holder& h : holders_) total += h.bytes;
    os << fmt::format("saved for backward at the end of forward: {:.0f} MB; top holders by tape label "
                      "(blocks summed as *):\n",
                      total / MB);
    os << fmt::format("  {:<14} {:<44} {:>8} {:>8}\n", "op", "label", "MB", "entries");
    for (size_t i = 0; i < holders_.size() && i < top; ++i)
        os << fmt::format("  {:<14} {:<44} {:>8.1f} {:>8}\n", holders_[i].op, holders_[i].pattern,
                          holders_[i].bytes / MB, holders_[i].entries);
}

}  // namespace tg::train
