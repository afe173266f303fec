// Strided iteration and broadcasting, shared by the elementwise and view ops.
// reduce_to_shape is the one place where a broadcast gradient is summed back to
// an input's shape.
#pragma once

#include <array>

#include "core/parallel.h"
#include "core/tape.h"
#include "core/tensor.h"

namespace tg {

// NumPy broadcast of two shapes; fails naming op, both shapes and the call site.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op, const Loc& loc);

// Strides that read t as if it had shape `out` (0 on broadcast dimensions).
Shape broadcast_strides(const Shape& shape, const Shape& strides, const Shape& out);

// Visit `shape` row by row: f(offsets, n, inner_strides) is called once per
// innermost run of n elements, with the element offset of each of the K
// operands at the run's start and each operand's stride along the run.
// Rows [row0, row1) only, for parallel_strided_apply.
template <size_t K, class F>
void strided_apply_rows(const Shape& shape, const std::array<const int64_t*, K>& strides, int64_t row0,
                        int64_t row1, F&& f) {
    std::array<int64_t, K> off{}, inner{};
    size_t nd = shape.size();
    if (nd == 0) {
        if (row0 == 0 && row1 > 0) f(off, int64_t{1}, inner);
        return;
    }
    for (size_t k = 0; k < K; ++k) inner[k] = strides[k][nd - 1];
    int64_t n = shape[nd - 1];
    std::vector<int64_t> idx(nd, 0);
    for (int64_t d = static_cast<int64_t>(nd) - 2, rest = row0; d >= 0; --d) {  // row0 as a multi-index
        idx[d] = rest % shape[d];
        rest /= shape[d];
        for (size_t k = 0; k < K; ++k) off[k] += idx[d] * strides[k][d];
    }
    for (int64_t row = row0; row < row1; ++row) {
        f(off, n, inner);
        for (size_t d = nd - 1; d-- > 0;) {
            for (size_t k = 0; k < K; ++k) off[k] += strides[k][d];
            if (++idx[d] < shape[d]) break;
            for (size_t k = 0; k < K; ++k) off[k] -= strides[k][d] * shape[d];
            idx[d] = 0;
        }
    }
}

inline int64_t rows_of_shape(const Shape& shape) {
    int64_t total = numel_of(shape);
    return shape.empty() ? 1 : (shape.back() ? total / shape.back() : 0);
}

template <size_t K, class F>
void strided_apply(const Shape& shape, const std::array<const int64_t*, K>& strides, F&& f) {
    if (numel_of(shape) == 0) return;
    strided_apply_rows<K>(shape, strides, 0, rows_of_shape(shape), f);
}

// strided_apply with the rows split over the thread pool (core/parallel.h). Only
// for f whose runs write disjoint elements (elementwise maps), never for
// reductions into a shared destination.
template <size_t K, class F>
void parallel_strided_apply(const Shape& shape, const std::array<const int64_t*, K>& strides, F&& f) {
    if (numel_of(shape) == 0) return;
    int64_t rows = rows_of_shape(shape), n = shape.empty() ? 1 : shape.back();
    parallel_for(rows, std::max<int64_t>(1, kElementGrain / std::max<int64_t>(n, 1)),
                 [&](int64_t r0, int64_t r1) { strided_apply_rows<K>(shape, strides, r0, r1, f); });
}

// Sum the contiguous gradient g (shape `from`) over broadcast dimensions and
// store (assign or add, per the slot) into the slot of shape `to`.
void reduce_to_shape(const float* g, const Shape& from, const GradSlot& slot);

// dst (slot of a tensor with shape `base`) receives src, a contiguous gradient laid
// out as the view (view_shape, view_strides, view_offset) of a contiguous `base`.
// Elements of base outside the view get 0 when the slot assigns.
void scatter_to_view(const float* src, const Shape& view_shape, const Shape& view_strides,
                     int64_t view_offset, const GradSlot& slot);

// Gather any strided tensor into a contiguous buffer (used where a kernel needs rows).
void gather_contiguous(const Tensor& t, float* out);

}  // namespace tg
