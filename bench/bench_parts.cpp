// The step's non-GEMM parts (issue 17, part 4), measured inside a step child:
//   copy_bandwidth  a STREAM-style copy c[i] = a[i] over 2 x 256 MiB of floats on
//                   the pool's threads, bytes counted as STREAM does (read a +
//                   write c = 8 bytes per element; the write-allocate read is not
//                   counted): the bandwidth a memory-bound pass can hope for;
//   categories      one profiled step (core/tape.h's per-op times, forward and
//                   backward) summed by kind of op, so the time that is not a GEMM
//                   shows where it goes.
// AdamW's pass reads p, g, m, v and writes p, m, v: 7 floats = 28 bytes per
// parameter, so its bound is 28 * params / copy bandwidth.
#include <algorithm>
#include <string>
#include <vector>

#include "bench/bench.h"
#include "core/parallel.h"
#include "core/tape.h"

namespace tg::bench {

double copy_bandwidth_gbs(int reps) {
    const int64_t n = int64_t{1} << 26;  // 64 Mi floats = 256 MiB per array, far above any cache
    std::vector<float> a(static_cast<size_t>(n), 1.0f), c(static_cast<size_t>(n), 0.0f);
    // Each thread touches its own chunk first (as it will copy it), then best of reps.
    double s = best_of(std::max(reps, 3), [&] {
        parallel_for(n, kElementGrain, [&](int64_t i0, int64_t i1) { std::copy(&a[i0], &a[i1], &c[i0]); });
    });
    return 8.0 * static_cast<double>(n) / s * 1e-9;
}

const std::vector<std::string>& category_names() {
    static const std::vector<std::string> names = {"gemm",       "elementwise", "softmax",
                                                   "layer_norm", "dropout",     "cross_entropy",
                                                   "gelu",       "embedding",   "views"};
    return names;
}

// The kind of an op of the profile. linear and matmul hold their GEMMs (and a
// bias add); views and copies are reshape/transpose/contiguous/cat; every
// other pointwise or reducing op is elementwise.
static std::string category_of(const std::string& op) {
    if (op == "linear" || op == "matmul") return "gemm";
    if (op == "softmax" || op == "log_softmax") return "softmax";
    if (op == "layer_norm" || op == "dropout" || op == "cross_entropy" || op == "gelu" || op == "embedding")
        return op;
    if (op == "contiguous" || op == "cat" || op == "reshape" || op == "view" || op == "transpose" ||
        op == "permute" || op == "slice" || op == "select" || op == "expand" || op == "flatten" ||
        op == "unsqueeze" || op == "squeeze")
        return "views";
    return "elementwise";
}

std::vector<double> profile_categories(const std::function<void()>& step) {
    take_profile();  // drop anything accumulated before
    set_profiling(true);
    step();
    set_profiling(false);
    std::vector<double> out(category_names().size(), 0.0);
    for (const OpProfile& p : take_profile()) {
        auto it = std::find(category_names().begin(), category_names().end(), category_of(p.op));
        out[static_cast<size_t>(it - category_names().begin())] += p.forward_s + p.backward_s;
    }
    return out;
}

}  // namespace tg::bench
