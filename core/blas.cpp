#include "core/blas.h"

#include <cblas.h>

#include <omp.h>
#include <sched.h>

#include <cstdlib>
#include <cstring>

#include <algorithm>
#include <mutex>

namespace tg {

static std::vector<GemmCall>* g_gemm_log = nullptr;
static std::mutex g_gemm_log_mu;
void set_gemm_log(std::vector<GemmCall>* log) { g_gemm_log = log; }

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
        // ~3x faster on this machine for the 50257 x 768 output head.
        //   trans_b: B stored [N, K], c[N] = B a;  else B stored [K, N], c[N] = B^T a.
        cblas_sgemv(CblasRowMajor, trans_b ? CblasNoTrans : CblasTrans, static_cast<int>(trans_b ? N : K),
                    static_cast<int>(trans_b ? K : N), alpha, B, static_cast<int>(ldb), A, 1, beta, C, 1);
        return;
    }
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
                static_cast<int>(M), static_cast<int>(N), static_cast<int>(K), alpha, A,
                static_cast<int>(lda), B, static_cast<int>(ldb), beta, C, static_cast<int>(ldc));
}

// OpenBLAS's OpenMP build sizes its parallel regions by its own count; our loops
// by omp's. Both are set together so the pool has one size.
void set_num_threads(int n) {
    openblas_set_num_threads(n);
    omp_set_num_threads(n);
}
int num_threads() { return openblas_get_num_threads(); }

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

}  // namespace tg
