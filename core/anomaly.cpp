// Anomaly mode (set_detect_anomaly, core/tape.h): the forward check of every
// recorded output and the backward check of every gradient an entry wrote.
// The engine (core/tape.cpp) calls both through core/tape_hooks.h.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "core/tape_hooks.h"

namespace tg {
namespace {

bool g_anomaly = false;

// First non-finite element of a contiguous buffer, or -1.
int64_t first_nonfinite(const float* p, int64_t n) {
    for (int64_t i = 0; i < n; ++i)
        if (!std::isfinite(p[i])) return i;
    return -1;
}

// First NaN and first Inf of a contiguous buffer (-1 where there is none).
std::pair<int64_t, int64_t> first_nan_inf(const float* p, int64_t n) {
    int64_t nan = -1, inf = -1;
    for (int64_t i = 0; i < n && nan < 0; ++i) {
        if (std::isnan(p[i]))
            nan = i;
        else if (inf < 0 && std::isinf(p[i]))
            inf = i;
    }
    return {nan, inf};
}

bool holds_inf(const Tensor& t) {
    if (!t.defined()) return false;
    Tensor c = t.is_contiguous() ? t : t.clone();
    return first_nan_inf(c.data(), c.numel()).second >= 0;
}

}  // namespace

void set_detect_anomaly(bool on) { g_anomaly = on; }
bool detect_anomaly() { return g_anomaly; }

namespace detail {

void check_forward_anomaly(const char* op, const Loc& loc, const std::vector<Tensor>& inputs,
                           const Tensor& out, bool documented_inf) {
    Tensor c = out.is_contiguous() ? out : out.clone();
    auto [nan, inf] = first_nan_inf(c.data(), c.numel());
    if (nan < 0 && (inf < 0 || documented_inf)) return;
    if (nan < 0 && std::any_of(inputs.begin(), inputs.end(), holds_inf)) return;  // carried over
    int64_t i = nan >= 0 ? nan : inf;
    fail(op, loc,
         fmt::format("anomaly: forward output {} has {} at flat index {}{}", describe(out), c.data()[i], i,
                     nan >= 0 ? "" : " (made here: no input holds an Inf)"));
}

void check_backward_anomaly(const TapeEntry& e, std::span<const GradSlot> slots) {
    for (size_t j = 0; j < e.inputs.size(); ++j) {
        if (!slots[j]) continue;
        Tensor g(e.inputs[j].impl()->grad);
        if (int64_t i = first_nonfinite(g.data(), g.numel()); i >= 0)
            throw Error(fmt::format("tapegrad: {}: anomaly: backward wrote {} into the gradient of input {} "
                                    "({}) at flat index {}; entry output {} [recorded at {}]",
                                    e.op, g.data()[i], j, describe(e.inputs[j]), i, describe(e.output),
                                    loc_str(e.where)));
    }
}

}  // namespace detail
}  // namespace tg
