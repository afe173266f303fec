// Shared pieces of the benchmarks (Release build only; see `make bench`).
#pragma once

#include <algorithm>
#include <chrono>
#include <functional>
#include <string>
#include <vector>

namespace tg::bench {

struct Options {
    int reps = 5;
    bool torch = false;  // also run tools/torch_bench.py and print ratios
    std::string what = "all";
    std::string self;        // this executable, re-run for each step config
    std::string child;       // "--child PRESET ATTENTION": measure one config, print numbers
    bool step_only = false;  // --step-only: the child times the training step alone (contended row)
};

// Best wall time of `reps` runs of f, after one warm-up run.
inline double best_of(int reps, const std::function<void()>& f) {
    f();
    double best = 1e300;
    for (int i = 0; i < reps; ++i) {
        auto t0 = std::chrono::steady_clock::now();
        f();
        best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    return best;
}

// bench_parts.cpp: a STREAM-style copy's GB/s (read + write) on the pool, and
// one profiled call of `step` summed by the op kinds of category_names().
double copy_bandwidth_gbs(int reps);
const std::vector<std::string>& category_names();
std::vector<double> profile_categories(const std::function<void()>& step);

// bench_step.cpp: one step config measured in a fresh process (peak RSS its own),
// `env` prefixing its command line; step_only: 9 numbers, else numbers_count().
// att may end in ":off" (memory saving off); reps > 0 overrides opt.reps.
std::vector<double> in_child(const Options& opt, const std::string& preset, const std::string& att,
                             bool step_only, const std::string& env, int reps = 0);

void run_core(const Options& opt);
void run_contended(const Options& opt);
void run_step(const Options& opt);
void run_generate(const Options& opt);
int run_step_child(const Options& opt);
void run_data(const Options& opt);
int run_loader_child(const Options& opt, const std::string& dir);
void run_dp(const Options& opt);
void run_tiles(const Options& opt);  // bench_tiles.cpp
int run_dp_child(const Options& opt);

}  // namespace tg::bench
