#include "core/ops/broadcast.h"

#include <fmt/format.h>

#include <algorithm>

namespace tg {

Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op, const Loc& loc) {
    size_t nd = std::max(a.size(), b.size());
    Shape out(nd);
    for (size_t i = 0; i < nd; ++i) {
        int64_t da = i < nd - a.size() ? 1 : a[i - (nd - a.size())];
        int64_t db = i < nd - b.size() ? 1 : b[i - (nd - b.size())];
        if (da != db && da != 1 && db != 1)
            fail(op, loc,
                 fmt::format("shapes {} and {} cannot broadcast (dim {}: {} vs {})", shape_str(a),
                             shape_str(b), i, da, db));
        out[i] = da == 1 ? db : da;
    }
    return out;
}

Shape broadcast_strides(const Shape& shape, const Shape& strides, const Shape& out) {
    Shape st(out.size(), 0);
    size_t lead = out.size() - shape.size();
    for (size_t i = 0; i < shape.size(); ++i) st[lead + i] = shape[i] == 1 ? 0 : strides[i];
    return st;
}

void reduce_to_shape(const float* g, const Shape& from, const GradSlot& slot) {
    const Shape& to = *slot.shape;
    if (from == to) {
        parallel_for(numel_of(to), kElementGrain, [&](int64_t b, int64_t e) {
            for (int64_t i = b; i < e; ++i) slot.store(i, g[i]);
        });
        return;
    }
    if (!slot.accumulate) std::fill_n(slot.data, numel_of(to), 0.0f);
    Shape gs = contiguous_strides(from);
    Shape ts = broadcast_strides(to, contiguous_strides(to), from);
    float* dst = slot.data;
    strided_apply<2>(from, {gs.data(), ts.data()}, [&](auto off, int64_t n, auto in) {
        const float* s = g + off[0];
        float* d = dst + off[1];
        if (in[1] == 0) {
            float acc = 0;  // reduced innermost dim: sum the run, then add once
            for (int64_t i = 0; i < n; ++i) acc += s[i];
            *d += acc;
        } else {
            for (int64_t i = 0; i < n; ++i) d[i * in[1]] += s[i];
        }
    });
}

void scatter_to_view(const float* src, const Shape& view_shape, const Shape& view_strides,
                     int64_t view_offset, const GradSlot& slot) {
    int64_t n_base = numel_of(*slot.shape);
    bool covers_all = numel_of(view_shape) == n_base;
    if (!slot.accumulate && !covers_all) std::fill_n(slot.data, n_base, 0.0f);
    bool add = slot.accumulate || !covers_all;
    Shape ss = contiguous_strides(view_shape);
    float* base = slot.data + view_offset;
    strided_apply<2>(view_shape, {ss.data(), view_strides.data()}, [&](auto off, int64_t n, auto in) {
        const float* s = src + off[0];
        float* d = base + off[1];
        if (add)
            for (int64_t i = 0; i < n; ++i) d[i * in[1]] += s[i];
        else
            for (int64_t i = 0; i < n; ++i) d[i * in[1]] = s[i];
    });
}

void gather_contiguous(const Tensor& t, float* out) {
    if (t.is_contiguous()) {
        std::copy_n(t.data(), t.numel(), out);
        return;
    }
    Shape os = contiguous_strides(t.shape());
    const float* src = t.data();
    parallel_strided_apply<2>(t.shape(), {os.data(), t.strides().data()}, [&](auto off, int64_t n, auto in) {
        for (int64_t i = 0; i < n; ++i) out[off[0] + i] = src[off[1] + i * in[1]];
    });
}

}  // namespace tg
