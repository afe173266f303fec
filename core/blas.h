// The BLAS boundary: every matrix product in tapegrad is one call to gemm() here,
// which forwards to OpenBLAS's cblas_sgemm (row-major, transpose flags); a single
// untransposed row (M == 1, batch-1 decoding) goes to cblas_sgemv instead.
#pragma once

#include <cstdint>
#include <vector>

namespace tg {

// C[M,N] = alpha * op(A)[M,K] @ op(B)[K,N] + beta * C, row-major, op(X) = X or X^T.
// beta == 0 means C is not read (it may hold NaN), as the BLAS standard says.
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
          int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

// GEMM log, for the benchmark's sgemm bound: while on, every gemm() call's shape
// and flags are appended.
struct GemmCall {
    bool ta, tb;
    int64_t M, N, K;
    float beta;
};
void set_gemm_log(std::vector<GemmCall>* log);

// Threads of the process's one pool: OpenBLAS's GEMMs and tapegrad's own
// parallel loops (core/parallel.h) both run on libgomp's threads.
void set_num_threads(int n);
int num_threads();

// The default thread count of every subcommand and the bench: OMP_NUM_THREADS
// when it is set to a positive count (its first value, as libgomp reads "4,2"),
// else the cores this process may run on (its sched_getaffinity mask, which
// taskset, cgroups' cpusets and mpirun's binding narrow); at least 1.
int available_threads();

}  // namespace tg
