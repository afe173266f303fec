// The memory-saving switch, RSS readings and the allocation log behind
// saved_holders() (the per-entry side table lives in tape.cpp).
#include "core/memory.h"

#include <atomic>
#include <cstdio>
#include <cstring>
#include <utility>

#include "core/storage.h"

namespace tg {
namespace {
std::atomic<bool> g_saving{true};
std::atomic<bool> g_track{false};
thread_local std::vector<std::weak_ptr<Storage>> t_allocs;

// "VmRSS:     1234 kB" -> bytes; 0 when the line is absent.
size_t status_kb(const char* text, const char* key) {
    const char* p = std::strstr(text, key);
    if (!p) return 0;
    unsigned long long kb = 0;
    std::sscanf(p + std::strlen(key), " %llu", &kb);
    return static_cast<size_t>(kb) * 1024;
}
}  // namespace

void set_memory_saving(bool on) { g_saving = on; }
bool memory_saving() { return g_saving; }

Rss read_rss() {
    FILE* f = std::fopen("/proc/self/status", "r");
    if (!f) return {};
    char buf[8192];
    size_t n = std::fread(buf, 1, sizeof buf - 1, f);
    std::fclose(f);
    buf[n] = '\0';
    return {status_kb(buf, "VmRSS:"), status_kb(buf, "VmHWM:")};
}

bool reset_peak_rss() {
    FILE* f = std::fopen("/proc/self/clear_refs", "w");
    if (!f) return false;
    bool ok = std::fputs("5", f) >= 0;
    return std::fclose(f) == 0 && ok;
}

void set_track_saved(bool on) {
    g_track = on;
    t_allocs.clear();
}
bool track_saved() { return g_track; }

namespace detail {
void note_allocation(const std::shared_ptr<Storage>& s) { t_allocs.push_back(s); }
std::vector<std::weak_ptr<Storage>> take_allocations() { return std::exchange(t_allocs, {}); }
}  // namespace detail

}  // namespace tg
