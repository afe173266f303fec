#include "core/blas.h"

#include <cblas.h>

#include <omp.h>
#include <sched.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

#include <algorithm>
#include <mutex>

namespace tg {

static std::vector<GemmCall>* g_gemm_log = nullptr;
static std::mutex g_gemm_log_mu;
void set_gemm_log(std::vector<GemmCall>* log) { g_gemm_log = log; }

GemmTiles gemm_tiles(int64_t M, int64_t N, int64_t K, int64_t tile_work, int64_t min_side) {
    // P, the tile count: the largest power of two <= kMaxTiles leaving each tile
    // at least tile_work multiply-adds; 1 for a product below that.
    double work = static_cast<double>(M) * static_cast<double>(N) * static_cast<double>(K);
    int P = 1;
    while (P < kMaxTiles && work / (2.0 * P) >= static_cast<double>(tile_work)) P *= 2;
    // The grid tm x tn == P with the least packing: each tile packs its rows of A
    // (K values per row) and its columns of B, so the grid packs K * (M*tn + N*tm)
    // values. A tile keeps >= min_side rows and columns; P halves until one fits.
    for (; P > 1; P /= 2) {
        GemmTiles best{0, 0};
        double best_cost = 0;
        for (int tm = 1; tm <= P; tm *= 2) {
            int tn = P / tm;
            if ((tm > 1 && M < tm * min_side) || (tn > 1 && N < tn * min_side)) continue;
            double cost = static_cast<double>(M) * tn + static_cast<double>(N) * tm;
            if (best.rows == 0 || cost < best_cost) best = {tm, tn}, best_cost = cost;
        }
        if (best.rows) return best;
    }
    return {1, 1};
}

namespace {

// The i-th of t cuts of [0, n): multiples of 16 (whole micro-kernel panels), the last at n.
int64_t cut(int64_t n, int t, int i) { return i == t ? n : (n * i / t) / 16 * 16; }

// OpenBLAS's OpenMP build splits a call among as many threads as OpenMP's
// count, except inside an active parallel region, where it runs the call
// single-threaded (a two-thread split gives other bits: ~7% of a 512 x 768 x 768
// product's elements). Below its size threshold (sgemm: 65536 *
// GEMM_MULTITHREAD_THRESHOLD multiply-adds, 4 in Debian's build; sgemv: 2304 * 4
// values) it never splits; kNeverSplit is under both.
constexpr double kNeverSplit = 8192;

// Run tile(0..P-1), every tile's call single-threaded: spread over the pool in
// one parallel region when there are several tiles and threads; serially when
// already inside a region or on one thread; a lone tile above kNeverSplit outside
// a region runs on the first thread of a two-thread region (the other waits).
template <class F>
void run_tiles(int P, double work, F&& tile) {
    int threads = omp_in_parallel() ? 1 : omp_get_max_threads();
    if (threads <= 1 || (P == 1 && work < kNeverSplit)) {
        for (int p = 0; p < P; ++p) tile(p);
        return;
    }
    if (P == 1) {
#pragma omp parallel num_threads(2)
        if (omp_get_thread_num() == 0) tile(0);
        return;
    }
#pragma omp parallel for schedule(dynamic, 1) num_threads(std::min(P, threads))
    for (int p = 0; p < P; ++p) tile(p);
}

void sgemm_tile(bool trans_a, bool trans_b, int64_t m0, int64_t m1, int64_t n0, int64_t n1, int64_t K,
                float alpha, const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C,
                int64_t ldc) {
    // Row m of op(A) starts at A + m*lda (stored untransposed) or at column m (transposed).
    const float* a = trans_a ? A + m0 : A + m0 * lda;
    const float* b = trans_b ? B + n0 * ldb : B + n0;
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
                static_cast<int>(m1 - m0), static_cast<int>(n1 - n0), static_cast<int>(K), alpha, a,
                static_cast<int>(lda), b, static_cast<int>(ldb), beta, C + m0 * ldc + n0,
                static_cast<int>(ldc));
}

}  // namespace

void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
          int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
    if (M == 0 || N == 0) return;
    if (g_gemm_log) {  // gemm may run on several pool threads at once (core/parallel.h)
        std::lock_guard<std::mutex> lock(g_gemm_log_mu);
        g_gemm_log->push_back({trans_a, trans_b, M, N, K, beta});
    }
    if (K == 0) {  // empty sum: C = beta * C, without reading C when beta == 0
        for (int64_t i = 0; i < M; ++i)
            for (int64_t j = 0; j < N; ++j) C[i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[i * ldc + j];
        return;
    }
    // BLAS requires ld >= max(1, columns of the stored matrix) even when unused.
    lda = std::max<int64_t>(lda, std::max<int64_t>(1, trans_a ? M : K));
    ldb = std::max<int64_t>(ldb, std::max<int64_t>(1, trans_b ? K : N));
    if (M == 1 && !trans_a) {
        // One row (a decoding step): c = op(B)^T a as a matrix-vector product.
        // OpenBLAS's sgemm packs all of B for a single row; sgemv reads B once,
        // ~3x faster on this machine for the 50257 x 768 output head. Cut into
        // column tiles like a GEMM's, each one single-threaded sgemv.
        //   trans_b: B stored [N, K], c[N] = B a;  else B stored [K, N], c[N] = B^T a.
        int tn = gemm_tiles(1, N, K, kVecTileWork).cols;
        auto tile = [&](int j) {
            int64_t n0 = cut(N, tn, j), n1 = cut(N, tn, j + 1);
            const float* b = trans_b ? B + n0 * ldb : B + n0;
            cblas_sgemv(CblasRowMajor, trans_b ? CblasNoTrans : CblasTrans,
                        static_cast<int>(trans_b ? n1 - n0 : K), static_cast<int>(trans_b ? K : n1 - n0),
                        alpha, b, static_cast<int>(ldb), A, 1, beta, C + n0, 1);
        };
        run_tiles(tn, static_cast<double>(N) * static_cast<double>(K), tile);
        return;
    }
    GemmTiles t = gemm_tiles(M, N, K);
    run_tiles(t.rows * t.cols, static_cast<double>(M) * static_cast<double>(N) * static_cast<double>(K),
              [&](int p) {
                  int i = p / t.cols, j = p % t.cols;
                  sgemm_tile(trans_a, trans_b, cut(M, t.rows, i), cut(M, t.rows, i + 1), cut(N, t.cols, j),
                             cut(N, t.cols, j + 1), K, alpha, A, lda, B, ldb, beta, C, ldc);
              });
}

// OpenBLAS's OpenMP build follows OpenMP's count (and threads a call by it
// outside a parallel region: gemm() above never lets it); both are set together
// so the pool has one size.
void set_num_threads(int n) {
    n = std::max(1, n);
    openblas_set_num_threads(n);
    omp_set_num_threads(n);
}
int num_threads() { return omp_get_max_threads(); }

int available_threads() {
    if (const char* env = std::getenv("OMP_NUM_THREADS"); env && *env) {
        char* end = nullptr;
        long n = std::strtol(env, &end, 10);
        if (n > 0 && n < 1 << 20 && (*end == '\0' || *end == ',')) return static_cast<int>(n);
    }
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) != 0) return 1;
    return std::max(1, CPU_COUNT(&set));
}

void exec_with_default_wait_policy(char** argv) {
    if (std::getenv("OMP_WAIT_POLICY") || std::getenv("GOMP_SPINCOUNT")) return;
    if (setenv("OMP_WAIT_POLICY", "passive", 1) != 0) return;
    execv("/proc/self/exe", argv);
    unsetenv("OMP_WAIT_POLICY");  // no exec: libgomp runs with its default, and wait_policy() says so
}

std::string wait_policy() {
    std::string out;
    for (const char* name : {"OMP_WAIT_POLICY", "GOMP_SPINCOUNT"}) {
        const char* v = std::getenv(name);
        if (!v) continue;
        if (!out.empty()) out += ' ';
        out.append(name).append("=").append(v);
    }
    return out.empty() ? std::string("libgomp default") : out;
}

}  // namespace tg
