// linear: y[N, OUT] = x[N, IN] @ W[OUT, IN]^T + bias[OUT]   (N = all leading dims of x)
//   dx = dy @ W          dW = dy^T @ x          dbias = sum over rows of dy
// IN = 0 is an empty sum: y = bias in every row (gemm writes 0 for K = 0).
// Fused (one gemm with the transpose flag, bias added in the same pass over y)
// because it is most of a GPT step: composing matmul(x, W.transpose) + add would
// route dW through a transposed buffer and a broadcast reduction.
#include <fmt/format.h>

#include "core/blas.h"
#include "core/ops.h"
#include "core/ops/broadcast.h"
#include "core/parallel.h"

namespace tg {

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias, Loc loc) {
    if (!x.defined() || !weight.defined()) fail("linear", loc, "undefined operand");
    if (weight.dim() != 2 || x.dim() < 1 || x.shape().back() != weight.shape()[1])
        fail("linear", loc,
             fmt::format("input {} does not match weight {} (expected [..., {}])", shape_str(x.shape()),
                         shape_str(weight.shape()), weight.dim() == 2 ? weight.shape()[1] : -1));
    int64_t OUT = weight.shape()[0], IN = weight.shape()[1];
    if (bias.defined() && bias.shape() != Shape{OUT})
        fail("linear", loc,
             fmt::format("bias {} does not match weight {}", shape_str(bias.shape()),
                         shape_str(weight.shape())));
    // Rows of x must be evenly spaced to be one gemm operand; gather otherwise.
    Tensor xc = x.is_contiguous() ? x : x.clone();
    Tensor wc = weight.is_contiguous() ? weight : weight.clone();
    int64_t N = numel_of(Shape(x.shape().begin(), x.shape().end() - 1));  // rows, also when IN = 0
    Shape os = x.shape();
    os.back() = OUT;
    Tensor out = Tensor::empty(os);
    gemm(false, true, N, OUT, IN, 1.0f, xc.data(), IN, wc.data(), IN, 0.0f, out.data(), OUT);
    if (bias.defined()) {
        const float* pb = bias.data();
        float* po = out.data();
        parallel_for(N, std::max<int64_t>(1, kElementGrain / std::max<int64_t>(OUT, 1)),
                     [&](int64_t r0, int64_t r1) {
                         for (int64_t r = r0; r < r1; ++r)
                             for (int64_t j = 0; j < OUT; ++j) po[r * OUT + j] += pb[j];
                     });
    }
    if (!needs_record({&x, &weight, &bias})) return out;
    record("linear", loc, {x, weight, bias}, out,
           [xc, wc, N, IN, OUT](const Tensor& g, std::span<GradSlot> gi) {
               const float* dy = g.data();
               if (gi[0])
                   gemm(false, false, N, IN, OUT, 1.0f, dy, OUT, wc.data(), IN, gi[0].beta(), gi[0].data, IN);
               if (gi[1])
                   gemm(true, false, OUT, IN, N, 1.0f, dy, OUT, xc.data(), IN, gi[1].beta(), gi[1].data, IN);
               if (gi.size() > 2 && gi[2]) {
                   // Column sums in row order; the columns split over threads.
                   parallel_for(OUT, 64, [&](int64_t c0, int64_t c1) {
                       std::vector<float> acc(static_cast<size_t>(c1 - c0), 0.0f);
                       for (int64_t r = 0; r < N; ++r)
                           for (int64_t j = c0; j < c1; ++j) acc[j - c0] += dy[r * OUT + j];
                       for (int64_t j = c0; j < c1; ++j) gi[2].store(j, acc[j - c0]);
                   });
               }
           });
    return out;
}

}  // namespace tg
