// matmul: C[..., M, N] = A[..., M, K] @ B[..., K, N], batch dims broadcast; a 1-d
// operand is a vector, as in PyTorch (matmul_vector below).
//   dA = dC @ B^T      dB = A^T @ dC     (summed over batch elements that broadcast)
// An operand whose last two dims are a row-major or a transposed (column-major)
// view goes to cblas_sgemm as is, with a transpose flag and its leading dimension:
// the attention heads' q @ k^T reads the projections in place. Only an operand
// whose last two dims are neither (e.g. a sliced transposed view) is gathered
// into a contiguous copy first.
#include <fmt/format.h>

#include <algorithm>

#include "core/blas.h"
#include "core/ops.h"
#include "core/ops/broadcast.h"
#include "core/parallel.h"

namespace tg {
namespace {

// How the last two dims of a tensor reach gemm.
struct MatView {
    Tensor t;            // the tensor read (the input itself, or a contiguous copy)
    bool trans = false;  // stored column-major: pass the transpose flag
    int64_t ld = 0;
};

MatView as_matrix(const Tensor& x) {
    int64_t nd = x.dim();
    int64_t R = x.shape()[nd - 2], C = x.shape()[nd - 1];
    int64_t sr = x.strides()[nd - 2], sc = x.strides()[nd - 1];
    if ((sc == 1 || C == 1) && sr >= std::max<int64_t>(C, 1)) return {x, false, R == 1 ? C : sr};
    if ((sr == 1 || R == 1) && sc >= std::max<int64_t>(R, 1)) return {x, true, C == 1 ? R : sc};
    Tensor c = Tensor::empty(x.shape());  // neither layout: one gather, said above
    gather_contiguous(x, c.data());
    return {c, false, C};
}

// Offsets of each batch element of the output in A, B, C and in the contiguous
// gradients of A and B; the gradient offsets repeat where an operand broadcasts.
struct BatchPlan {
    Shape batch;
    std::vector<int64_t> a, b, c, ga, gb;
    bool broadcasts = false;  // some gradient block is shared by several batch elements
};

BatchPlan plan_batches(const Tensor& A, const Tensor& B, const Shape& a_shape, const Shape& b_shape,
                       int64_t M, int64_t N, const char* op, const Loc& loc) {
    Shape ab(a_shape.begin(), a_shape.end() - 2), bb(b_shape.begin(), b_shape.end() - 2);
    BatchPlan p;
    p.batch = broadcast_shapes(ab, bb, op, loc);
    Shape as(A.strides().begin(), A.strides().end() - 2), bs(B.strides().begin(), B.strides().end() - 2);
    Shape gas = contiguous_strides(ab), gbs = contiguous_strides(bb);
    for (auto& s : gas) s *= a_shape[a_shape.size() - 2] * a_shape.back();
    for (auto& s : gbs) s *= b_shape[b_shape.size() - 2] * b_shape.back();
    Shape a_st = broadcast_strides(ab, as, p.batch), b_st = broadcast_strides(bb, bs, p.batch);
    Shape ga_st = broadcast_strides(ab, gas, p.batch), gb_st = broadcast_strides(bb, gbs, p.batch);
    Shape c_st = contiguous_strides(p.batch);
    for (auto& s : c_st) s *= M * N;
    int64_t nb = numel_of(p.batch);
    std::vector<int64_t> idx(p.batch.size(), 0);
    for (int64_t i = 0; i < nb; ++i) {
        int64_t oa = 0, ob = 0, oc = 0, oga = 0, ogb = 0;
        for (size_t d = 0; d < idx.size(); ++d) {
            oa += idx[d] * a_st[d];
            ob += idx[d] * b_st[d];
            oc += idx[d] * c_st[d];
            oga += idx[d] * ga_st[d];
            ogb += idx[d] * gb_st[d];
        }
        p.a.push_back(oa);
        p.b.push_back(ob);
        p.c.push_back(oc);
        p.ga.push_back(oga);
        p.gb.push_back(ogb);
        for (size_t d = idx.size(); d-- > 0;) {
            if (++idx[d] < p.batch[d]) break;
            idx[d] = 0;
        }
    }
    p.broadcasts = numel_of(ab) != nb || numel_of(bb) != nb;
    return p;
}

// A's batch dims fold into M when B is shared by every batch element and A's rows
// are evenly spaced across batches: then the whole product is one gemm.
bool foldable(const MatView& a, const BatchPlan& p, const Shape& b_shape, int64_t M) {
    if (a.trans || p.a.size() <= 1) return false;
    for (size_t d = 0; d + 2 < b_shape.size(); ++d)
        if (b_shape[d] != 1) return false;
    for (size_t i = 0; i < p.a.size(); ++i)
        if (p.a[i] != static_cast<int64_t>(i) * M * a.ld) return false;
    return true;
}

// A 1-d operand, as PyTorch: a [K] is the one-row matrix [1, K], b [K] the
// one-column [K, 1], and that dim is dropped from the result ([K] @ [K] is 0-d).
// The reshapes are views on the tape, so the gradients flow back through them.
Tensor matmul_vector(const Tensor& a, const Tensor& b, const Loc& loc) {
    Tensor a2 = a.dim() == 1 ? a.reshape({1, a.shape()[0]}, loc) : a;
    Tensor b2 = b.dim() == 1 ? b.reshape({b.shape()[0], 1}, loc) : b;
    Tensor c = matmul(a2, b2, loc);
    Shape os(c.shape().begin(), c.shape().end() - 2);
    if (a.dim() > 1) os.push_back(c.shape()[c.dim() - 2]);
    if (b.dim() > 1) os.push_back(c.shape().back());
    return c.reshape(os, loc);
}

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b, Loc loc) {
    if (!a.defined() || !b.defined()) fail("matmul", loc, "undefined operand");
    if (a.dim() < 1 || b.dim() < 1)
        fail("matmul", loc,
             fmt::format("operands must have at least 1 dim, got {} and {}", shape_str(a.shape()),
                         shape_str(b.shape())));
    int64_t K = a.shape().back(), Kb = b.shape()[b.dim() > 1 ? b.dim() - 2 : 0];
    if (Kb != K)
        fail("matmul", loc,
             fmt::format("inner dims differ: {} @ {} ({} vs {})", shape_str(a.shape()), shape_str(b.shape()),
                         K, Kb));
    if (a.dim() == 1 || b.dim() == 1) return matmul_vector(a, b, loc);
    int64_t M = a.shape()[a.dim() - 2], N = b.shape().back();
    MatView va = as_matrix(a), vb = as_matrix(b);
    BatchPlan p = plan_batches(va.t, vb.t, a.shape(), b.shape(), M, N, "matmul", loc);
    Shape os = p.batch;
    os.push_back(M);
    os.push_back(N);
    Tensor out = Tensor::empty(os);
    bool fold = foldable(va, p, b.shape(), M);
    if (fold) {
        int64_t rows = M * static_cast<int64_t>(p.a.size());
        gemm(false, vb.trans, rows, N, K, 1.0f, va.t.data(), va.ld, vb.t.data() + p.b[0], vb.ld, 0.0f,
             out.data(), N);
    } else {
        // Small per-head products (attention: [T, HS] @ [HS, T]) use the cores
        // better spread over the threads, one whole product each, than one after
        // another (gemm runs its tiles serially inside a parallel region).
        parallel_for(static_cast<int64_t>(p.a.size()), 1, [&](int64_t i0, int64_t i1) {
            for (int64_t i = i0; i < i1; ++i)
                gemm(va.trans, vb.trans, M, N, K, 1.0f, va.t.data() + p.a[i], va.ld, vb.t.data() + p.b[i],
                     vb.ld, 0.0f, out.data() + p.c[i], N);
        });
    }
    if (!needs_record({&a, &b})) return out;
    record("matmul", loc, {a, b}, out, [va, vb, p, M, N, K, fold](const Tensor& g, std::span<GradSlot> gi) {
        const float* dc = g.data();
        if (p.a.empty()) {  // an empty batch: no product adds to the gradients, so they are 0
            for (const GradSlot& s : gi)
                if (s && !s.accumulate) std::fill_n(s.data, numel_of(*s.shape), 0.0f);
            return;
        }
        if (fold) {
            int64_t rows = M * static_cast<int64_t>(p.a.size());
            // dA[rows,K] = dC[rows,N] @ B^T ; dB[K,N] = A^T[K,rows] @ dC[rows,N]
            if (gi[0])
                gemm(false, !vb.trans, rows, K, N, 1.0f, dc, N, vb.t.data() + p.b[0], vb.ld, gi[0].beta(),
                     gi[0].data, K);
            if (gi[1])
                gemm(true, false, K, N, rows, 1.0f, va.t.data(), va.ld, dc, N, gi[1].beta(), gi[1].data, N);
            return;
        }
        auto grads_of = [&](size_t i, float beta_a, float beta_b) {
            if (gi[0])
                gemm(false, !vb.trans, M, K, N, 1.0f, dc + p.c[i], N, vb.t.data() + p.b[i], vb.ld, beta_a,
                     gi[0].data + p.ga[i], K);
            if (gi[1])
                gemm(!va.trans, false, K, N, M, 1.0f, va.t.data() + p.a[i], va.ld, dc + p.c[i], N, beta_b,
                     gi[1].data + p.gb[i], N);
        };
        if (p.broadcasts) {
            // A broadcast operand's gradient block is written once, then added to
            // (serially: several batch elements add into the same block).
            std::vector<int64_t> done_a, done_b;
            auto first = [](std::vector<int64_t>& done, int64_t off) {
                if (std::find(done.begin(), done.end(), off) != done.end()) return false;
                done.push_back(off);
                return true;
            };
            for (size_t i = 0; i < p.a.size(); ++i)
                grads_of(i, first(done_a, p.ga[i]) ? gi[0].beta() : 1.0f,
                         first(done_b, p.gb[i]) ? gi[1].beta() : 1.0f);
            return;
        }
        // Every gradient block is its own: one single-threaded gemm pair per thread.
        parallel_for(static_cast<int64_t>(p.a.size()), 1, [&](int64_t i0, int64_t i1) {
            for (int64_t i = i0; i < i1; ++i) grads_of(static_cast<size_t>(i), gi[0].beta(), gi[1].beta());
        });
    });
    return out;
}

}  // namespace tg
