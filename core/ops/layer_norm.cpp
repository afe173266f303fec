// layer_norm over the last dim (C), as the book's LayerNorm:
//   mu = mean(x), var = mean((x - mu)^2) (biased), r = 1 / sqrt(var + eps)
//   xhat = (x - mu) r,  y = xhat * scale + shift          x, y [N, C]; scale, shift [C]
// Backward, with gs = g * scale:
//   dx = r (gs - mean(gs) - xhat mean(gs xhat))
//   dscale = sum over rows of g xhat,  dshift = sum over rows of g
// Fused: the composed version (mean, sub, var, add, pow, mul, add) would keep
// seven [N, C] tensors per call on the tape. The output y leaves a recipe
// (core/memory.h): a caller that frees it (recompute_in_backward) gets it back
// in backward from the saved xhat by the same expression, the same bits.
#include <fmt/format.h>

#include <cmath>

#include "core/memory.h"
#include "core/ops.h"
#include "core/ops/broadcast.h"
#include "core/parallel.h"

namespace tg {

// y = xhat * scale + shift; forward and the recipe share this one expression.
static inline float ln_out(float h, float s, float b) { return h * s + b; }

Tensor layer_norm(const Tensor& x, const Tensor& scale, const Tensor& shift, float eps, Loc loc) {
    if (x.dim() < 1) fail("layer_norm", loc, "needs at least one dim");
    int64_t C = x.shape().back();
    if (scale.shape() != Shape{C} || shift.shape() != Shape{C})
        fail("layer_norm", loc,
             fmt::format("scale {} and shift {} must be [{}] for input {}", shape_str(scale.shape()),
                         shape_str(shift.shape()), C, shape_str(x.shape())));
    Tensor xc = x.is_contiguous() ? x : x.clone();
    int64_t N = x.numel() / std::max<int64_t>(C, 1);
    Tensor out = Tensor::empty(x.shape());
    Tensor xhat = Tensor::empty(x.shape());
    std::vector<float> rstd(static_cast<size_t>(N));
    const float *px = xc.data(), *ps = scale.data(), *pb = shift.data();
    const int64_t grain = std::max<int64_t>(1, kElementGrain / std::max<int64_t>(C, 1));
    parallel_for(N, grain, [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r) {
            const float* xr = px + r * C;
            double m = 0, v = 0;
            for (int64_t i = 0; i < C; ++i) m += xr[i];
            m /= static_cast<double>(C);
            for (int64_t i = 0; i < C; ++i) v += (xr[i] - m) * (xr[i] - m);
            v /= static_cast<double>(C);
            float rs = static_cast<float>(1.0 / std::sqrt(v + eps));
            rstd[r] = rs;
            float mf = static_cast<float>(m);
            for (int64_t i = 0; i < C; ++i) {
                float h = (xr[i] - mf) * rs;
                xhat.data()[r * C + i] = h;
                out.data()[r * C + i] = ln_out(h, ps[i], pb[i]);
            }
        }
    });
    if (!needs_record({&x, &scale, &shift})) return out;
    record("layer_norm", loc, {x, scale, shift}, out,
           [xhat, rstd, scale, N, C, grain](const Tensor& g, std::span<GradSlot> gi) {
               const float *pg = g.data(), *ph = xhat.data(), *ps = scale.data();
               if (gi[0])  // dx: row by row
                   parallel_for(N, grain, [&](int64_t r0, int64_t r1) {
                       for (int64_t r = r0; r < r1; ++r) {
                           const float *gr = pg + r * C, *hr = ph + r * C;
                           double m1 = 0, m2 = 0;
                           for (int64_t i = 0; i < C; ++i) {
                               float gs = gr[i] * ps[i];
                               m1 += gs;
                               m2 += gs * hr[i];
                           }
                           float a = static_cast<float>(m1 / C), b = static_cast<float>(m2 / C);
                           for (int64_t i = 0; i < C; ++i)
                               gi[0].store(r * C + i, rstd[r] * (gr[i] * ps[i] - a - hr[i] * b));
                       }
                   });
               if (!gi[1] && !gi[2]) return;
               // dscale, dshift: column sums in row order, the columns split over threads.
               parallel_for(C, 64, [&](int64_t c0, int64_t c1) {
                   std::vector<double> dscale(static_cast<size_t>(c1 - c0), 0.0), dshift(dscale.size(), 0.0);
                   for (int64_t r = 0; r < N; ++r) {
                       const float *gr = pg + r * C, *hr = ph + r * C;
                       for (int64_t i = c0; i < c1; ++i) {
                           dscale[i - c0] += gr[i] * hr[i];
                           dshift[i - c0] += gr[i];
                       }
                   }
                   for (int64_t i = c0; i < c1; ++i) {
                       if (gi[1]) gi[1].store(i, static_cast<float>(dscale[i - c0]));
                       if (gi[2]) gi[2].store(i, static_cast<float>(dshift[i - c0]));
                   }
               });
           });
    detail::set_recipe(out, xhat, [scale, shift, N, C, grain](const float* ph, float* dst) {
        const float *ps = scale.data(), *pb = shift.data();
        parallel_for(N, grain, [&](int64_t r0, int64_t r1) {
            for (int64_t r = r0; r < r1; ++r)
                for (int64_t i = 0; i < C; ++i) dst[r * C + i] = ln_out(ph[r * C + i], ps[i], pb[i]);
        });
    });
    return out;
}

}  // namespace tg
