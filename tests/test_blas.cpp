// The BLAS boundary (core/blas.h): gemm() against a double-precision reference,
// its tile grid, and the same bits for any thread count.
#include <catch2/catch.hpp>

#include <omp.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "core/blas.h"

using namespace tg;

namespace {

struct Case {
    bool ta, tb;
    int64_t M, N, K;
    float beta;
};

struct Operands {
    std::vector<float> A, B, C0;
    int64_t lda, ldb, ldc;
};

// Random operands stored as gemm reads them, with padded leading dimensions
// (ld > columns) so a tile that indexes past its own columns shows.
Operands operands(const Case& c, unsigned seed) {
    std::mt19937 gen(seed);
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    Operands o;
    int64_t a_rows = c.ta ? c.K : c.M, a_cols = c.ta ? c.M : c.K;
    int64_t b_rows = c.tb ? c.N : c.K, b_cols = c.tb ? c.K : c.N;
    o.lda = a_cols + 3;
    o.ldb = b_cols + 5;
    o.ldc = c.N + 7;
    o.A.resize(static_cast<size_t>(a_rows * o.lda));
    o.B.resize(static_cast<size_t>(b_rows * o.ldb));
    o.C0.resize(static_cast<size_t>(c.M * o.ldc));
    for (auto& x : o.A) x = u(gen);
    for (auto& x : o.B) x = u(gen);
    for (auto& x : o.C0) x = u(gen);
    return o;
}

std::vector<float> run_gemm(const Case& c, const Operands& o) {
    std::vector<float> C = o.C0;
    gemm(c.ta, c.tb, c.M, c.N, c.K, 1.0f, o.A.data(), o.lda, o.B.data(), o.ldb, c.beta, C.data(), o.ldc);
    return C;
}

// The products every training step makes (tiny and 124M shapes), both transposes,
// accumulation (beta 1), a single row (sgemv), and odd sizes that cut unevenly.
const std::vector<Case> kCases = {
    {false, true, 128, 50257, 64, 0.0f},   // tiny's logits
    {true, false, 50257, 64, 128, 1.0f},   // tiny's out_head gradient, accumulated
    {false, false, 128, 64, 50257, 0.0f},  // tiny's head input gradient
    {false, true, 512, 768, 768, 0.0f},    // 124M's attention projections
    {true, false, 768, 3072, 512, 1.0f},   // 124M's fc weight gradient
    {true, true, 300, 517, 129, 0.0f},     // odd sizes, both transposed
    {false, false, 1, 50257, 64, 0.0f},    // one row: sgemv
    {false, true, 1, 3000, 768, 1.0f},     // one row, B transposed, accumulated
    {false, false, 7, 9, 11, 0.0f},        // tiny: one direct call
};

}  // namespace

TEST_CASE("gemm equals a double-precision reference on every transpose, beta and tiling", "[blas]") {
    for (const Case& c : kCases) {
        if (c.M * c.N * c.K > int64_t{1} << 28)
            continue;  // the reference loop is slow; shapes below cover tiling
        Operands o = operands(c, 7);
        std::vector<float> C = run_gemm(c, o);
        INFO(c.M << " x " << c.N << " x " << c.K << " ta " << c.ta << " tb " << c.tb << " beta " << c.beta);
        size_t bad = 0;
        for (int64_t i = 0; i < c.M; ++i)
            for (int64_t j = 0; j < c.N; ++j) {
                double s = 0, mag = 0;
                for (int64_t k = 0; k < c.K; ++k) {
                    double a = c.ta ? o.A[k * o.lda + i] : o.A[i * o.lda + k];
                    double b = c.tb ? o.B[j * o.ldb + k] : o.B[k * o.ldb + j];
                    s += a * b;
                    mag += std::fabs(a * b);
                }
                s += c.beta * o.C0[i * o.ldc + j];
                // float32 accumulation error bound: a few ulps of the sum of |terms|
                bad += std::fabs(C[i * o.ldc + j] - s) > 1e-6 * (mag + 1.0) * std::sqrt(double(c.K) + 1);
            }
        CHECK(bad == 0);
        // Padding between rows of C is never written.
        for (int64_t i = 0; i < c.M; ++i)
            for (int64_t j = c.N; j < o.ldc && i * o.ldc + j < int64_t(C.size()); ++j)
                CHECK(C[i * o.ldc + j] == o.C0[i * o.ldc + j]);
    }
}

TEST_CASE("gemm gives the same bits on 1, 2 and 3 threads and inside a parallel region", "[blas][threads]") {
    int before = num_threads();
    for (const Case& c : kCases) {
        Operands o = operands(c, 11);
        set_num_threads(1);
        std::vector<float> one = run_gemm(c, o);
        INFO(c.M << " x " << c.N << " x " << c.K << " ta " << c.ta << " tb " << c.tb);
        for (int n : {2, 3}) {
            set_num_threads(n);
            std::vector<float> many = run_gemm(c, o);
            CHECK(std::memcmp(one.data(), many.data(), one.size() * sizeof(float)) == 0);
        }
        // As the attention heads call it: from inside the pool's parallel region.
        set_num_threads(2);
        std::vector<float> inner;
#pragma omp parallel num_threads(2)
        if (omp_get_thread_num() == 1) inner = run_gemm(c, o);
        CHECK(std::memcmp(one.data(), inner.data(), one.size() * sizeof(float)) == 0);
    }
    set_num_threads(before);
}

TEST_CASE("the tile grid depends on the shape only: power-of-two counts, wide enough tiles, least packing",
          "[blas]") {
    auto tiles = [](int64_t M, int64_t N, int64_t K) {
        GemmTiles t = gemm_tiles(M, N, K);
        return t.rows * t.cols;
    };
    CHECK(tiles(7, 9, 11) == 1);  // below kTileWork: one call
    CHECK(tiles(512, 50257, 768) == kMaxTiles);
    GemmTiles head = gemm_tiles(512, 50257, 768);
    CHECK(head.rows == 1);  // a wide C is cut into column panels: A is packed once per panel
    GemmTiles wgrad = gemm_tiles(50257, 768, 512);
    CHECK(wgrad.cols == 1);  // a tall C into row panels
    // Issue 37: the 124M step's smallest products (a 768 x 768 projection of 512
    // rows, its input gradient and its weight gradient) have >= 16 tiles.
    CHECK(tiles(512, 768, 768) >= 16);
    CHECK(tiles(768, 768, 512) >= 16);
    for (int64_t M : {1, 16, 33, 512, 3072})
        for (int64_t N : {1, 31, 768, 50257})
            for (int64_t K : {1, 64, 768, 50257}) {
                GemmTiles t = gemm_tiles(M, N, K);
                int P = t.rows * t.cols;
                CHECK((P & (P - 1)) == 0);
                CHECK(P <= kMaxTiles);
                CHECK((t.rows == 1 || M >= t.rows * kMinTileSide));
                CHECK((t.cols == 1 || N >= t.cols * kMinTileSide));
                if (P > 1) CHECK(double(M) * N * K / P >= double(kTileWork));
            }
}
