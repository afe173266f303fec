// --profile's per-op timings (core/tape.h): record() charges the time since
// the previous mark to the op it records (its forward), the backward walk
// times each closure. Accumulated per thread until take_profile().
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <ostream>

#include "core/tape_hooks.h"

namespace tg {
namespace {

bool g_profiling = false;
thread_local std::map<std::string, OpProfile> t_profile;
thread_local std::chrono::steady_clock::time_point t_last_mark = std::chrono::steady_clock::now();

double seconds_since_mark() {
    auto now = std::chrono::steady_clock::now();
    double s = std::chrono::duration<double>(now - t_last_mark).count();
    t_last_mark = now;
    return s;
}

}  // namespace

void set_profiling(bool on) {
    g_profiling = on;
    seconds_since_mark();
}
bool profiling() { return g_profiling; }
void profile_add(const char* op, double fwd, double bwd) {
    auto& p = t_profile[op];
    p.op = op;
    p.forward_s += fwd;
    p.backward_s += bwd;
    if (fwd > 0) p.calls++;
}
std::vector<OpProfile> take_profile() {
    std::vector<OpProfile> out;
    for (auto& [k, v] : t_profile) out.push_back(v);
    t_profile.clear();
    return out;
}

void print_profile(std::ostream& os, double step_seconds) {
    std::vector<OpProfile> ops = take_profile();
    std::sort(ops.begin(), ops.end(),
              [](auto& a, auto& b) { return a.forward_s + a.backward_s > b.forward_s + b.backward_s; });
    double total = 0;
    for (auto& p : ops) total += p.forward_s + p.backward_s;
    os << fmt::format("per-op profile of one step ({:.3f} s; ops account for {:.3f} s)\n", step_seconds,
                      total);
    os << fmt::format("{:<16} {:>6} {:>11} {:>11} {:>8}\n", "op", "calls", "forward ms", "backward ms",
                      "share");
    for (auto& p : ops)
        os << fmt::format("{:<16} {:>6} {:>11.2f} {:>11.2f} {:>7.1f}%\n", p.op, p.calls, p.forward_s * 1e3,
                          p.backward_s * 1e3,
                          100.0 * (p.forward_s + p.backward_s) / std::max(step_seconds, 1e-12));
}

namespace detail {
void profile_forward(const char* op) { profile_add(op, seconds_since_mark(), 0); }
}  // namespace detail

}  // namespace tg
