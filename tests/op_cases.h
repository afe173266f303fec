// The one table of op cases. Each row is an op call on some inputs; the table
// drives both checks of every op:
//   tests/test_ops.cpp        gradcheck of the row on seeded uniform inputs (`inputs`)
//   tests/test_ops_torch.cpp  forward and gradients against PyTorch on the inputs
//                             of the fixture case of the same name, written by
//                             tools/make_op_fixtures.py (a row without a fixture,
//                             or a fixture without a row, fails that test by name)
// A new op adds one row here and one case() line in tools/make_op_fixtures.py.
#pragma once

#include <cmath>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "core/tapegrad.h"

namespace tg::test {

// One gradcheck input: uniform in [lo, hi) from a per-row seed, or `values`.
struct InputSpec {
    InputSpec(Shape s, float l = -1.0f, float h = 1.0f, std::vector<float> v = {})
        : shape(std::move(s)), lo(l), hi(h), values(std::move(v)) {}
    Shape shape;
    float lo, hi;
    std::vector<float> values;
};

// fn(inputs, ints): ints carry what is not a float input (ids, targets, a mask);
// the fixture has its own ints, `ints` below are gradcheck's.
using CaseFn = std::function<Tensor(const std::vector<Tensor>&, const std::vector<int64_t>&)>;

struct OpCase {
    std::string name;
    std::vector<InputSpec> inputs;
    std::vector<int64_t> ints;
    CaseFn fn;
};

inline Tensor causal_mask_for_test(int64_t T) {
    Tensor m = Tensor::zeros({T, T});
    for (int64_t i = 0; i < T; ++i)
        for (int64_t j = i + 1; j < T; ++j) m.data()[i * T + j] = 1.0f;
    return m;
}

inline const std::vector<OpCase>& op_cases() {
    using V = const std::vector<Tensor>&;
    using I = const std::vector<int64_t>&;
    // max: distinct values 0.1 apart, so the argmax does not move under gradcheck's +-2h
    std::vector<float> distinct;
    for (int i = 0; i < 15; ++i) distinct.push_back(static_cast<float>((i * 7) % 15) / 10.0f - 0.7f);
    static const std::vector<OpCase> rows = {
        {"add_broadcast", {{{2, 3, 4}}, {{3, 1}}}, {}, [](V x, I) { return add(x[0], x[1]); }},
        {"mul_broadcast", {{{2, 3, 4}}, {{4}}}, {}, [](V x, I) { return mul(x[0], x[1]); }},
        {"sub", {{{2, 3, 4}}, {{3, 1}}}, {}, [](V x, I) { return sub(x[0], x[1]); }},
        {"div", {{{2, 3, 4}}, {{4}, 0.5f, 2.0f}}, {}, [](V x, I) { return div(x[0], x[1]); }},
        {"neg", {{{5}}}, {}, [](V x, I) { return neg(x[0]); }},
        {"exp", {{{3, 4}}}, {}, [](V x, I) { return exp(x[0]); }},
        {"log", {{{3, 4}, 0.5f, 3.0f}}, {}, [](V x, I) { return log(x[0]); }},
        {"sqrt", {{{3, 4}, 0.5f, 3.0f}}, {}, [](V x, I) { return sqrt(x[0]); }},
        {"pow3", {{{3, 4}}}, {}, [](V x, I) { return pow(x[0], 3.0f); }},
        {"tanh", {{{3, 4}, -3.0f, 3.0f}}, {}, [](V x, I) { return tanh(x[0]); }},
        {"gelu", {{{4, 8}, -3.0f, 3.0f}}, {}, [](V x, I) { return gelu(x[0]); }},
        {"scalar_ops",
         {{{3, 4}}},
         {},
         [](V x, I) { return sub(div(mul(add(x[0], 2.5f), 0.75f), 8.0f), 1.0f); }},
        {"matmul_2d", {{{5, 7}}, {{7, 3}}}, {}, [](V x, I) { return matmul(x[0], x[1]); }},
        {"matmul_batched_broadcast",
         {{{2, 1, 4, 5}}, {{3, 5, 6}}},
         {},
         [](V x, I) { return matmul(x[0], x[1]); }},
        {"matmul_nt",
         {{{2, 4, 5}}, {{2, 6, 5}}},
         {},
         [](V x, I) { return matmul(x[0], x[1].transpose(-1, -2)); }},
        {"matmul_tn",
         {{{2, 5, 4}}, {{2, 5, 6}}},
         {},
         [](V x, I) { return matmul(x[0].transpose(-1, -2), x[1]); }},
        {"attention_heads",
         {{{2, 3, 8}}, {{2, 3, 8}}},
         {},
         [](V x, I) {
             return matmul(x[0].view({2, 3, 2, 4}).transpose(1, 2),
                           x[1].view({2, 3, 2, 4}).transpose(1, 2).transpose(2, 3));
         }},
        {"linear", {{{2, 3, 6}}, {{4, 6}}, {{4}}}, {}, [](V x, I) { return linear(x[0], x[1], x[2]); }},
        {"linear_nobias", {{{5, 6}}, {{4, 6}}}, {}, [](V x, I) { return linear(x[0], x[1], Tensor()); }},
        {"sum_all", {{{3, 4}}}, {}, [](V x, I) { return sum(x[0]); }},
        {"sum_dim1_keep", {{{2, 3, 4}}}, {}, [](V x, I) { return sum(x[0], 1, true); }},
        {"mean_dim0", {{{2, 3, 4}}}, {}, [](V x, I) { return mean(x[0], 0); }},
        {"var_last_biased", {{{3, 7}}}, {}, [](V x, I) { return var(x[0], -1, true, false); }},
        {"max_dim1", {{{3, 5}, -1.0f, 1.0f, distinct}}, {}, [](V x, I) { return max(x[0], 1); }},
        {"softmax", {{{3, 6}, -3.0f, 3.0f}}, {}, [](V x, I) { return softmax(x[0]); }},
        {"log_softmax", {{{3, 6}, -3.0f, 3.0f}}, {}, [](V x, I) { return log_softmax(x[0]); }},
        {"masked_softmax",
         {{{2, 5, 5}}},
         {},
         [](V x, I) { return softmax(div(masked_fill(x[0], causal_mask_for_test(5), -INFINITY), 2.0f)); }},
        {"layer_norm",
         {{{2, 3, 16}, -2.0f, 2.0f}, {{16}, 0.5f, 1.5f}, {{16}}},
         {},
         [](V x, I) { return layer_norm(x[0], x[1], x[2]); }},
        {"embedding_repeated",
         {{{7, 5}}},
         {3, 1, 3, 0, 3, 6},
         [](V x, I ids) {
             return embedding(x[0], Ids{{2, 3}, ids});
         }},
        {"cross_entropy_ignore",
         {{{2, 4, 10}, -3.0f, 3.0f}},
         {2, -100, 9, 0, 9, -100, 4, 1},
         [](V x, I t) {
             return cross_entropy(x[0], Ids{{8}, t});
         }},
        {"dropout_mask",
         {{{3, 4}}},
         {1, 0, 1, 1, 0, 1, 1, 1, 1, 0, 1, 1},
         [](V x, I m) {
             std::vector<float> mf(m.begin(), m.end());
             return dropout_with_mask(x[0], Tensor::from_vector(mf, x[0].shape()), 0.1f);
         }},
        {"cat_dim1",
         {{{2, 3}}, {{2, 2}}},
         {},
         [](V x, I) {
             return cat({x[0], x[1]}, 1);
         }},
        {"slice_permute",
         {{{2, 3, 4}}},
         {},
         [](V x, I) {
             return x[0].permute({2, 0, 1}).slice(0, 1, 3).reshape({2, 6});
         }},
    };
    return rows;
}

}  // namespace tg::test
