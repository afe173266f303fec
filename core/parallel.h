// Parallel loops on the one thread pool of the process.
//
// gemm() (core/blas.h) spreads its tiles, single-threaded OpenBLAS calls, over
// libgomp's threads; parallel_for runs tapegrad's own loops (elementwise ops,
// row-wise softmax / cross-entropy / layer_norm, AdamW) on the same threads. So at
// any moment either a GEMM or one of our loops owns the cores, never both, and the
// 2 cores are never oversubscribed.
//
// Determinism: chunks are disjoint index ranges and every element (or row) is
// computed by exactly the code the serial loop runs, so results are bit-identical
// for any thread count. Loops that reduce across chunks must not use this.
#pragma once

#include <omp.h>

#include <algorithm>
#include <cstdint>

namespace tg {

// Threads the loops and gemm's tiles use, set with tg::set_num_threads (core/blas.h).
inline int max_threads() { return omp_in_parallel() ? 1 : omp_get_max_threads(); }

// Call f(begin, end) over [0, n) split into at most max_threads() contiguous
// chunks of at least `grain` indices each (fewer threads when n is small, since
// waking a thread costs a few microseconds). `grain` is in the loop's own units:
// elements for elementwise loops, rows for row-wise ones.
template <class F>
void parallel_for(int64_t n, int64_t grain, F&& f) {
    if (n <= 0) return;
    int64_t chunks = std::min<int64_t>(max_threads(), std::max<int64_t>(1, n / std::max<int64_t>(grain, 1)));
    if (chunks <= 1) {
        f(int64_t{0}, n);
        return;
    }
#pragma omp parallel num_threads(static_cast <int>(chunks))
    {
        int64_t k = omp_get_thread_num(), nt = omp_get_num_threads();
        int64_t begin = n * k / nt, end = n * (k + 1) / nt;
        if (begin < end) f(begin, end);
    }
}

// Element grain for cheap elementwise loops: below ~32K floats a second thread
// costs more to wake than it saves.
inline constexpr int64_t kElementGrain = 1 << 15;

}  // namespace tg
