// The BLAS boundary: every matrix product in tapegrad is one call to gemm() here,
// which forwards to OpenBLAS's cblas_sgemm (row-major, transpose flags); a single
// untransposed row (M == 1, batch-1 decoding) goes to cblas_sgemv instead.
//
// Results do not depend on the thread count. OpenBLAS splits a product among its
// threads by their number, and its kernels round differently at different split
// points (Debian's 0.3.21: a 512 x 768 x 768 product differs in ~7% of elements
// between 1 and 2 threads). So OpenBLAS never splits a call: gemm() cuts C into a
// grid of tiles chosen from the shape (M, N, K) alone and computes every tile with
// one single-threaded cblas_sgemm (inside a parallel region, where Debian's OpenMP
// OpenBLAS does not split), the tiles spread over the pool (core/parallel.h). The
// same tiles and the same calls on 1, 2 or 16 threads give the same bits. Tiles
// are at least 128 x 128 (issue 37: 256 x 256 gave a 512 x 768 x 768 projection
// 4 tiles, so at most 4 busy cores), which gives the 124M step's smallest
// products 16 tiles; docs/performance.md ("Tiles that scale") has what the
// smaller tiles cost here and a model of their scaling to 32 cores.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace tg {

// C[M,N] = alpha * op(A)[M,K] @ op(B)[K,N] + beta * C, row-major, op(X) = X or X^T.
// beta == 0 means C is not read (it may hold NaN), as the BLAS standard says.
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
          int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

// The tile grid of an M x N x K product: rows x cols tiles of C, a power of two
// up to kMaxTiles in all, each of at least tile_work multiply-adds (one tile below
// that) and kMinTileSide rows and columns (unless not cut that way), arranged to
// pack the fewest values (each tile packs its rows of A and its columns of B).
// Cut points are multiples of 16. A function of the shape only.
struct GemmTiles {
    int rows = 1, cols = 1;
};
inline constexpr int64_t kTileWork = int64_t{1} << 24;
inline constexpr int kMaxTiles = 64;
inline constexpr int64_t kMinTileSide = 128;
// A matrix-vector product (M == 1) reads each of B's values once: memory-bound,
// it gains from a second thread at a smaller size, so its tiles are smaller.
inline constexpr int64_t kVecTileWork = int64_t{1} << 18;
// min_side other than kMinTileSide: for the bench's scaling model only (gemm() never passes it).
GemmTiles gemm_tiles(int64_t M, int64_t N, int64_t K, int64_t tile_work = kTileWork,
                     int64_t min_side = kMinTileSide);

// GEMM log, for the benchmark's sgemm bound: while on, every gemm() call's shape
// and flags are appended.
struct GemmCall {
    bool ta, tb;
    int64_t M, N, K;
    float beta;
};
void set_gemm_log(std::vector<GemmCall>* log);

// Threads of the process's one pool: gemm()'s tiles and tapegrad's own parallel
// loops (core/parallel.h) both run on libgomp's threads.
void set_num_threads(int n);
int num_threads();

// The default thread count of every subcommand and the bench: OMP_NUM_THREADS
// when it is set to a positive count (its first value, as libgomp reads "4,2"),
// else the cores this process may run on (its sched_getaffinity mask, which
// taskset, cgroups' cpusets and mpirun's binding narrow); at least 1.
int available_threads();

// The OpenMP wait policy of tapegrad's executables: passive (a thread that has
// finished its share sleeps at once), unless OMP_WAIT_POLICY or GOMP_SPINCOUNT
// is set, which then wins. Why passive: `tapegrad_bench --only contended`
// (docs/performance.md, "Threads"). libgomp reads the variables once, when it loads, before
// main, and a variable set from the executable's .preinit_array is lost (libc's
// own initialiser resets the environment after it). So an executable calls this
// first thing in main: with neither variable set it sets OMP_WAIT_POLICY=passive
// and execs itself again (/proc/self/exe, same pid and arguments), once; if the
// exec fails it goes on under libgomp's default.
void exec_with_default_wait_policy(char** argv);
// What libgomp read: "OMP_WAIT_POLICY=passive", "GOMP_SPINCOUNT=10000", ..., or
// "libgomp default" (spin 300000 times, then sleep).
std::string wait_policy();

}  // namespace tg
