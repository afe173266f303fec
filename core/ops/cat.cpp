// cat: join tensors along dim d (all other dims equal).
//   d(part k) = the slice of g that part k occupies
#include <fmt/format.h>

#include "core/ops.h"
#include "core/ops/broadcast.h"

namespace tg {

Tensor cat(const std::vector<Tensor>& parts, int64_t dim, Loc loc) {
    if (parts.empty()) fail("cat", loc, "no tensors to join");
    for (size_t k = 0; k < parts.size(); ++k)
        if (parts[k].dim() == 0)
            fail(
                "cat", loc,
                fmt::format("zero-dimensional tensor (at position {}) cannot be concatenated (shape [])", k));
    int64_t d = wrap_dim(dim, parts[0].dim(), "cat", loc);
    Shape os = parts[0].shape();
    os[d] = 0;
    for (const Tensor& t : parts) {
        Shape s = t.shape();
        if (s.size() != os.size())
            fail("cat", loc,
                 fmt::format("ranks differ: {} vs {}", shape_str(parts[0].shape()), shape_str(s)));
        for (size_t i = 0; i < s.size(); ++i)
            if (static_cast<int64_t>(i) != d && s[i] != parts[0].shape()[i])
                fail("cat", loc,
                     fmt::format("shapes {} and {} differ outside dim {}", shape_str(parts[0].shape()),
                                 shape_str(s), d));
        os[d] += s[d];
    }
    Tensor out = Tensor::empty(os);
    int64_t outer = 1, inner = 1;
    for (int64_t i = 0; i < d; ++i) outer *= os[i];
    for (size_t i = d + 1; i < os.size(); ++i) inner *= os[i];
    std::vector<int64_t> starts;
    int64_t at = 0;
    for (const Tensor& t : parts) {
        starts.push_back(at);
        std::vector<float> v = t.to_vector();
        int64_t len = t.shape()[d] * inner;
        for (int64_t o = 0; o < outer; ++o)
            std::copy_n(v.data() + o * len, len, out.data() + (o * os[d] + at) * inner);
        at += t.shape()[d];
    }
    record("cat", loc, parts, out,
           [parts, starts, outer, inner, os, d](const Tensor& g, std::span<GradSlot> gi) {
               for (size_t k = 0; k < parts.size(); ++k) {
                   if (!gi[k]) continue;
                   int64_t len = parts[k].shape()[d] * inner;
                   for (int64_t o = 0; o < outer; ++o)
                       for (int64_t i = 0; i < len; ++i)
                           gi[k].store(o * len + i, g.data()[(o * os[d] + starts[k]) * inner + i]);
               }
           });
    return out;
}

}  // namespace tg
