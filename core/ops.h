// Every op tapegrad has. Each lives with its backward in core/ops/<family>.cpp;
// the file named after the family is the one to open (elementwise.cpp, matmul.cpp,
// reduce.cpp, softmax.cpp, layer_norm.cpp, embedding.cpp, cross_entropy.cpp,
// dropout.cpp, gelu.cpp, linear.cpp, masked_fill.cpp, view.cpp, cat.cpp).
// The last parameter of each op is the caller's source location, recorded on the
// tape; leave it defaulted.
#pragma once

#include <vector>

#include "core/random.h"
#include "core/tape.h"
#include "core/tensor.h"

namespace tg {

// ---- elementwise, NumPy broadcasting (elementwise.cpp) ----
// Each is its own op on the tape (its name shows in dumps and anomaly messages).
Tensor add(const Tensor& a, const Tensor& b, Loc loc = Loc::current());
Tensor mul(const Tensor& a, const Tensor& b, Loc loc = Loc::current());
Tensor neg(const Tensor& a, Loc loc = Loc::current());
Tensor exp(const Tensor& a, Loc loc = Loc::current());
Tensor log(const Tensor& a, Loc loc = Loc::current());
Tensor tanh(const Tensor& a, Loc loc = Loc::current());
Tensor pow(const Tensor& a, float p, Loc loc = Loc::current());
Tensor add(const Tensor& a, float s, Loc loc = Loc::current());
Tensor mul(const Tensor& a, float s, Loc loc = Loc::current());
Tensor div(const Tensor& a, float s, Loc loc = Loc::current());
Tensor sub(const Tensor& a, const Tensor& b, Loc loc = Loc::current());
Tensor div(const Tensor& a, const Tensor& b, Loc loc = Loc::current());
Tensor sub(const Tensor& a, float s, Loc loc = Loc::current());
Tensor sqrt(const Tensor& a, Loc loc = Loc::current());

// ---- activations (gelu.cpp) ----
// GELU, tanh approximation as the book writes it:
// 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
Tensor gelu(const Tensor& x, Loc loc = Loc::current());

// ---- matrix products (matmul.cpp, linear.cpp) ----
// [..., M, K] @ [..., K, N] -> [..., M, N]; batch dims broadcast; a 1-d operand is a
// vector, as in PyTorch ([K] @ [K, N] -> [N], [M, K] @ [K] -> [M]). Operands may be
// transposed views: they reach cblas_sgemm as transpose flags, never as copies.
Tensor matmul(const Tensor& a, const Tensor& b, Loc loc = Loc::current());
// x [..., IN] @ W[OUT, IN]^T + bias[OUT] -> [..., OUT]; bias may be undefined.
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias, Loc loc = Loc::current());

// ---- reductions (reduce.cpp) ----
Tensor sum(const Tensor& a, Loc loc = Loc::current());  // over all -> scalar
Tensor sum(const Tensor& a, int64_t dim, bool keepdim = false, Loc loc = Loc::current());
Tensor mean(const Tensor& a, Loc loc = Loc::current());
Tensor mean(const Tensor& a, int64_t dim, bool keepdim = false, Loc loc = Loc::current());
// Biased (unbiased=false, divides by n) unless unbiased is set.
Tensor var(const Tensor& a, int64_t dim, bool keepdim = false, bool unbiased = false,
           Loc loc = Loc::current());
Tensor max(const Tensor& a, int64_t dim, bool keepdim = false, Loc loc = Loc::current());

// ---- normalisation over the last dim (softmax.cpp, layer_norm.cpp) ----
Tensor softmax(const Tensor& a, Loc loc = Loc::current());
Tensor log_softmax(const Tensor& a, Loc loc = Loc::current());
// (x - mean) / sqrt(var_biased + eps) * scale + shift, over the last dim.
Tensor layer_norm(const Tensor& x, const Tensor& scale, const Tensor& shift, float eps = 1e-5f,
                  Loc loc = Loc::current());

// ---- masking (masked_fill.cpp) ----
// out = mask != 0 ? value : a; mask broadcasts to a's shape, gets no gradient.
Tensor masked_fill(const Tensor& a, const Tensor& mask, float value, Loc loc = Loc::current());

// ---- lookup and loss (embedding.cpp, cross_entropy.cpp) ----
// weight [V, C], ids of any shape S -> [S..., C]. Backward adds rows, so repeated ids accumulate.
Tensor embedding(const Tensor& weight, const Ids& ids, Loc loc = Loc::current());
// logits [N, V] (or [B, T, V], flattened), targets N ids; mean over targets that are
// not ignore_index. Fused log-softmax + NLL.
Tensor cross_entropy(const Tensor& logits, const Ids& targets, int64_t ignore_index = -100,
                     Loc loc = Loc::current());

// ---- dropout (dropout.cpp) ----
// Training: mask ~ bernoulli(1 - p) from gen, out = a * mask / (1 - p). Eval or p == 0: a itself.
Tensor dropout(const Tensor& a, float p, bool training, Generator& gen = default_generator(),
               Loc loc = Loc::current());
// Data parallelism (train/dist/grad_reducer.h): this process holds rows [begin, begin + rows)
// of a global batch of `total` rows (set_dropout_rows; total = 0, the default:
// off). While set, the caller says what its input is, never the shape:
//   DropoutSplit::rows  dim 0 is this rank's `rows` rows of the batch: the mask is
//                       the single process's for those rows of the [total, ...]
//                       input (the other rows' draws are skipped, so the
//                       generator stream, and every later draw, is the single
//                       process's). Another dim 0 throws naming the shapes.
//   DropoutSplit::none  not split over ranks (every rank holds all of it): the
//                       whole mask is drawn, as the single process does.
// Without a split given (the overload above) dropout under an active row split
// throws: a layer must state which path it takes. nn::Dropout is batch-first
// (DropoutSplit::rows), as is every activation of the GPT.
struct DropoutRows {
    int64_t begin = 0, rows = 0, total = 0;
};
void set_dropout_rows(DropoutRows r);
DropoutRows dropout_rows();
enum class DropoutSplit { none, rows };
Tensor dropout(const Tensor& a, float p, bool training, DropoutSplit split,
               Generator& gen = default_generator(), Loc loc = Loc::current());
// The same with a given mask of 0/1 values (for tests and fixtures).
Tensor dropout_with_mask(const Tensor& a, const Tensor& mask, float p, Loc loc = Loc::current());

// ---- joining (cat.cpp) ----
Tensor cat(const std::vector<Tensor>& parts, int64_t dim, Loc loc = Loc::current());

// Operators for convenience; they record the operator as call site, so module
// code calls the named functions.
inline Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
inline Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
inline Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
inline Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
inline Tensor operator-(const Tensor& a) { return neg(a); }
inline Tensor operator*(const Tensor& a, float s) { return mul(a, s); }
inline Tensor operator/(const Tensor& a, float s) { return div(a, s); }
inline Tensor operator+(const Tensor& a, float s) { return add(a, s); }

}  // namespace tg
