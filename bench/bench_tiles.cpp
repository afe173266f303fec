// The tiles row (`--only tiles`, issue 37 item 5): what gemm()'s tile grid of
// 128-wide tiles costs against the former 256-wide one, and a scaling model.
//
// Measured: each 124M-step GEMM shape (batch 2 x 256: 512 rows) as gemm() runs it
// with the pool's threads (1 and 2 here), under both grids, interleaved A/B;
// and one tile's single-threaded time (a cblas call of the tile's shape, the
// work one thread does per tile).
// Model (not a measurement): on c cores a GEMM of P equal tiles of time t takes
//   T(c) = ceil(P / c) * t        (dynamic schedule, one tile per thread at a time)
// summed over the step's GEMMs with their counts; it ignores memory bandwidth
// shared by the cores and the cut remainders, so it is an upper bound on speed-up.
#include <cblas.h>
#include <fmt/format.h>

#include <cmath>
#include <vector>

#include "bench.h"
#include "core/blas.h"
#include "core/tensor.h"

namespace tg::bench {
namespace {

struct StepGemm {
    int64_t M, N, K;
    int count;  // per step, all 12 layers
    const char* what;
};

// The 124M step's products of 512 rows (forward, input gradient, weight gradient).
const std::vector<StepGemm> kStepGemms = {
    {512, 768, 768, 12 * 4, "q/k/v/out proj fwd"},
    {512, 768, 768, 12 * 4, "q/k/v/out proj dX"},
    {768, 768, 512, 12 * 4, "q/k/v/out proj dW"},
    {512, 3072, 768, 12, "ff up fwd"},
    {512, 768, 3072, 12, "ff up dX"},
    {768, 3072, 512, 12, "ff up dW"},
    {512, 768, 3072, 12, "ff down fwd"},
    {512, 3072, 768, 12, "ff down dX"},
    {3072, 768, 512, 12, "ff down dW"},
    {512, 50257, 768, 1, "out_head fwd"},
    {512, 768, 50257, 1, "out_head dX"},
    {50257, 768, 512, 1, "out_head dW"},
};

double time_tile(int64_t m, int64_t n, int64_t k, int reps) {
    std::vector<float> a(static_cast<size_t>(m * k), 0.5f), b(static_cast<size_t>(k * n), 0.25f),
        c(static_cast<size_t>(m * n));
    return best_of(reps, [&] {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(m), static_cast<int>(n),
                    static_cast<int>(k), 1.f, a.data(), static_cast<int>(k), b.data(), static_cast<int>(n),
                    0.f, c.data(), static_cast<int>(n));
    });
}

}  // namespace

void run_tiles(const Options& opt) {
    const int before = num_threads();
    const int64_t sides[2] = {256, kMinTileSide};
    fmt::print("\n== gemm tiles: former grid (>= 256 wide) vs gemm()'s (>= {} wide), best of {} ==\n",
               kMinTileSide, opt.reps);
    fmt::print("{:<20} {:>16} {:>6} {:>6} {:>10} {:>10} {:>10} {:>10}\n", "GEMM (x count)", "M x N x K",
               "tiles", "tiles", "tile ms", "tile ms", "1-thr ms", "1-thr ms");
    std::vector<double> model[2];
    const std::vector<int> cores = {1, 2, 4, 8, 16, 32};
    for (auto& m : model) m.assign(cores.size(), 0.0);
    for (const StepGemm& g : kStepGemms) {
        GemmTiles t[2];
        double tile_s[2], whole_s[2];
        for (int v = 0; v < 2; ++v) t[v] = gemm_tiles(g.M, g.N, g.K, kTileWork, sides[v]);
        set_num_threads(1);
        for (int v = 0; v < 2; ++v)  // interleaved: both grids under the same load
            tile_s[v] = time_tile((g.M + t[v].rows - 1) / t[v].rows, (g.N + t[v].cols - 1) / t[v].cols, g.K,
                                  opt.reps);
        for (int v = 0; v < 2; ++v) whole_s[v] = tile_s[v] * t[v].rows * t[v].cols;
        for (int v = 0; v < 2; ++v)
            for (size_t c = 0; c < cores.size(); ++c) {
                int P = t[v].rows * t[v].cols;
                model[v][c] += g.count * std::ceil(double(P) / cores[c]) * tile_s[v];
            }
        fmt::print("{:<20} {:>16} {:>6} {:>6} {:>10.3f} {:>10.3f} {:>10.2f} {:>10.2f}\n",
                   fmt::format("{} x{}", g.what, g.count), fmt::format("{}x{}x{}", g.M, g.N, g.K),
                   t[0].rows * t[0].cols, t[1].rows * t[1].cols, tile_s[0] * 1e3, tile_s[1] * 1e3,
                   whole_s[0] * 1e3, whole_s[1] * 1e3);
    }
    fmt::print("MODEL (from the tile times above, not measured on c cores): the step's 512-row GEMMs, s\n");
    fmt::print("{:<8} {:>12} {:>12}\n", "cores", "former grid", "gemm() grid");
    for (size_t c = 0; c < cores.size(); ++c)
        fmt::print("{:<8} {:>12.3f} {:>12.3f}\n", cores[c], model[0][c], model[1][c]);
    set_num_threads(before);
}

}  // namespace tg::bench
