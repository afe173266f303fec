// Views: reshape, view, transpose, permute, slice share the input's storage;
// contiguous (and reshape of a strided input) copies.
// Backward of a view: the input's gradient is contiguous in the input's shape,
// so the output gradient is scattered through the same view of that contiguous
// layout (scatter_to_view): transposing back, or placing a slice.
#include <fmt/format.h>

#include <algorithm>

#include "core/ops.h"
#include "core/ops/broadcast.h"

namespace tg {
namespace {

// A view of `in`: data strides/offset address in's storage; grad strides/offset
// address a contiguous buffer of in's shape.
Tensor make_view(const Tensor& in, const char* op, const Loc& loc, const Shape& shape,
                 const Shape& data_strides, int64_t data_offset, const Shape& grad_strides,
                 int64_t grad_offset) {
    auto impl = std::make_shared<TensorImpl>();
    impl->storage = in.storage();
    impl->offset = in.offset() + data_offset;
    impl->shape = shape;
    impl->strides = data_strides;
    Tensor out(std::move(impl));
    if (!needs_record({&in})) return out;
    record(op, loc, {in}, out, [shape, grad_strides, grad_offset](const Tensor& g, std::span<GradSlot> gi) {
        scatter_to_view(g.data(), shape, grad_strides, grad_offset, gi[0]);
    });
    return out;
}

Shape infer_shape(const Shape& want, int64_t n, const char* op, const Loc& loc) {
    Shape s = want;
    int64_t known = 1, infer = -1;
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] == -1) {
            if (infer >= 0) fail(op, loc, "only one dimension can be -1 in " + shape_str(want));
            infer = static_cast<int64_t>(i);
        } else {
            known *= s[i];
        }
    }
    if (infer >= 0 && known == 0)  // 0 * anything is 0: the -1 could be any size (PyTorch refuses too)
        fail(op, loc,
             fmt::format("cannot reshape {} elements into shape {}: the -1 could be any size", n,
                         shape_str(want)));
    if (infer >= 0 && n % known == 0) s[infer] = n / known;
    if (numel_of(s) != n)
        fail(op, loc, fmt::format("shape {} is invalid for {} elements", shape_str(want), n));
    return s;
}

}  // namespace

Tensor Tensor::view(const Shape& shape, Loc loc) const {
    if (!is_contiguous())
        fail("view", loc,
             fmt::format("input {} with strides {} is not contiguous; use reshape (copies) "
                         "or contiguous() first",
                         shape_str(this->shape()), shape_str(strides())));
    Shape s = infer_shape(shape, numel(), "view", loc);
    Shape st = contiguous_strides(s);
    return make_view(*this, "view", loc, s, st, 0, st, 0);
}

Tensor Tensor::reshape(const Shape& shape, Loc loc) const {
    if (is_contiguous()) {
        Shape s = infer_shape(shape, numel(), "reshape", loc);
        Shape st = contiguous_strides(s);
        return make_view(*this, "reshape", loc, s, st, 0, st, 0);
    }
    return contiguous(loc).view(shape, loc);  // strided input: reshape copies, as in PyTorch
}

Tensor Tensor::permute(const Shape& order, Loc loc) const {
    if (static_cast<int64_t>(order.size()) != dim())
        fail("permute", loc, fmt::format("order {} for a tensor of rank {}", shape_str(order), dim()));
    Shape seen(order.size(), 0), s(order.size()), ds(order.size()), gs(order.size());
    Shape cs = contiguous_strides(shape());
    for (size_t i = 0; i < order.size(); ++i) {
        int64_t d = wrap_dim(order[i], dim(), "permute", loc);
        if (seen[d]++) fail("permute", loc, "repeated dim in order " + shape_str(order));
        s[i] = shape()[d];
        ds[i] = strides()[d];
        gs[i] = cs[d];
    }
    return make_view(*this, "permute", loc, s, ds, 0, gs, 0);
}

Tensor Tensor::transpose(int64_t d0, int64_t d1, Loc loc) const {
    int64_t a = wrap_dim(d0, dim(), "transpose", loc), b = wrap_dim(d1, dim(), "transpose", loc);
    Shape s = shape(), ds = strides(), gs = contiguous_strides(shape());
    if (dim() == 0) return make_view(*this, "transpose", loc, s, ds, 0, gs, 0);  // dims 0 and -1: itself
    std::swap(s[a], s[b]);
    std::swap(ds[a], ds[b]);
    std::swap(gs[a], gs[b]);
    return make_view(*this, "transpose", loc, s, ds, 0, gs, 0);
}

Tensor Tensor::slice(int64_t dim_, int64_t start, int64_t end, Loc loc) const {
    if (dim() == 0) fail("slice", loc, "slice() cannot be applied to a 0-dim tensor (shape [])");
    int64_t d = wrap_dim(dim_, dim(), "slice", loc);
    int64_t n = shape()[d];
    if (start < 0) start += n;
    if (end < 0) end += n;
    start = std::clamp<int64_t>(start, 0, n);
    end = std::clamp<int64_t>(end, start, n);
    Shape s = shape();
    s[d] = end - start;
    Shape cs = contiguous_strides(shape());
    return make_view(*this, "slice", loc, s, strides(), start * strides()[d], cs, start * cs[d]);
}

// contiguous: a row-major copy (no entry when already contiguous).  da = g.
Tensor Tensor::contiguous(Loc loc) const {
    if (is_contiguous()) return *this;
    Tensor out = Tensor::empty(shape());
    gather_contiguous(*this, out.data());
    record("contiguous", loc, {*this}, out, [](const Tensor& g, std::span<GradSlot> gi) {
        for (int64_t i = 0, n = g.numel(); i < n; ++i) gi[0].store(i, g.data()[i]);
    });
    return out;
}

}  // namespace tg
