// The ops of the edge-shape sweep (tests/test_ops_edge.cpp): every public op of
// core/ops.h, the layers of nn/layers.h and the attention variants of
// nn/attention.h, by the name the cases of
// tools/make_edge_fixtures.py give them. What `ints` carry, per op:
//   sum_dim, mean_dim, max_dim   dim, keepdim        var_dim   dim, keepdim, unbiased
//   transpose  d0, d1    permute  the order    slice  dim, start, end
//   view, reshape  the rank, then the shape          cat  the dim
//   embedding, Embedding  the rank of the ids, their shape, the ids
//   cross_entropy  the targets                       masked_fill  1: fill -inf, 0: fill 0.25
//   dropout, Dropout_train  the seed of the generator
// Layers get their parameters from the inputs (the fixture's values, in place of
// the initialisation), so the case checks the layer's forward and the gradient
// of every parameter.
#pragma once

#include <map>
#include <string>

#include "core/tapegrad.h"
#include "nn/attention.h"
#include "nn/layers.h"
#include "op_cases.h"

namespace tg::test {

struct EdgeOp {
    const char* name;  // the op its errors name: "tapegrad: <name>: ..."
    CaseFn fn;
};

inline Ids ids_from(const std::vector<int64_t>& ints) {  // rank, shape, ids
    Shape s(ints.begin() + 1, ints.begin() + 1 + ints[0]);
    return Ids{s, std::vector<int64_t>(ints.begin() + 1 + ints[0], ints.end())};
}

inline Tensor linear_layer(const std::vector<Tensor>& x) {
    bool has_bias = x.size() > 2;
    nn::Linear lin(x[1].dim() == 2 ? x[1].shape()[1] : 0, x[1].dim() == 2 ? x[1].shape()[0] : 0, has_bias);
    lin.weight = x[1];
    if (has_bias) lin.bias = x[2];
    return lin(x[0]);
}

inline Tensor feed_forward_layer(const std::vector<Tensor>& x) {
    nn::FeedForward ff(x[4].shape()[0]);
    ff.up->weight = x[1];
    ff.up->bias = x[2];
    ff.down->weight = x[3];
    ff.down->bias = x[4];
    return ff(x[0]);
}

// ints: d_in, d_out, context_length, num_heads, out_proj; x[0] the input, then the
// parameters in PyTorch's order (mha: W_query, W_key, W_value; alt1: each head's S,
// W_value; then out_proj's weight and bias), dropout 0.
inline Tensor attention_layer(const std::string& variant, const std::vector<Tensor>& x,
                              const std::vector<int64_t>& i) {
    nn::AttentionSpec spec{i[0], i[1], i[2], i[3], 0.0f, false, i[4] != 0};
    std::shared_ptr<nn::Attention> att = nn::make_attention(variant, spec);
    size_t k = 1;
    std::vector<Tensor*> params;  // in PyTorch's order
    if (auto* mha = dynamic_cast<nn::MultiHeadAttention*>(att.get())) {
        params = {&mha->W_query->weight, &mha->W_key->weight, &mha->W_value->weight};
        if (mha->out_proj) params.insert(params.end(), {&mha->out_proj->weight, &mha->out_proj->bias});
    } else if (auto* alt = dynamic_cast<nn::MHA_alt1*>(att.get())) {
        for (auto& h : alt->heads) params.insert(params.end(), {&h->S->weight, &h->W_value->weight});
        if (alt->out_proj) params.insert(params.end(), {&alt->out_proj->weight, &alt->out_proj->bias});
    }
    for (Tensor* p : params) *p = x[k++];
    return (*att)(x[0]);
}

inline const std::map<std::string, EdgeOp>& edge_ops() {
    using V = const std::vector<Tensor>&;
    using I = const std::vector<int64_t>&;
    static const std::map<std::string, EdgeOp> ops = {
        {"neg", {"neg", [](V x, I) { return neg(x[0]); }}},
        {"exp", {"exp", [](V x, I) { return exp(x[0]); }}},
        {"log", {"log", [](V x, I) { return log(x[0]); }}},
        {"tanh", {"tanh", [](V x, I) { return tanh(x[0]); }}},
        {"sqrt", {"sqrt", [](V x, I) { return sqrt(x[0]); }}},
        {"pow0", {"pow", [](V x, I) { return pow(x[0], 0.0f); }}},
        {"pow3", {"pow", [](V x, I) { return pow(x[0], 3.0f); }}},
        {"pow_half", {"pow", [](V x, I) { return pow(x[0], 0.5f); }}},
        {"gelu", {"gelu", [](V x, I) { return gelu(x[0]); }}},
        {"add_scalar", {"add_scalar", [](V x, I) { return add(x[0], 2.5f); }}},
        {"sub_scalar", {"sub_scalar", [](V x, I) { return sub(x[0], 2.5f); }}},
        {"mul_scalar", {"mul_scalar", [](V x, I) { return mul(x[0], 0.75f); }}},
        {"div_scalar", {"div_scalar", [](V x, I) { return div(x[0], 8.0f); }}},
        {"softmax", {"softmax", [](V x, I) { return softmax(x[0]); }}},
        {"log_softmax", {"log_softmax", [](V x, I) { return log_softmax(x[0]); }}},
        {"contiguous", {"contiguous", [](V x, I) { return x[0].contiguous(); }}},
        {"add", {"add", [](V x, I) { return add(x[0], x[1]); }}},
        {"sub", {"sub", [](V x, I) { return sub(x[0], x[1]); }}},
        {"mul", {"mul", [](V x, I) { return mul(x[0], x[1]); }}},
        {"div", {"div", [](V x, I) { return div(x[0], x[1]); }}},
        {"sum_all", {"sum", [](V x, I) { return sum(x[0]); }}},
        {"mean_all", {"mean", [](V x, I) { return mean(x[0]); }}},
        {"sum_dim", {"sum", [](V x, I i) { return sum(x[0], i[0], i[1] != 0); }}},
        {"mean_dim", {"mean", [](V x, I i) { return mean(x[0], i[0], i[1] != 0); }}},
        {"max_dim", {"max", [](V x, I i) { return max(x[0], i[0], i[1] != 0); }}},
        {"var_dim", {"var", [](V x, I i) { return var(x[0], i[0], i[1] != 0, i[2] != 0); }}},
        {"matmul", {"matmul", [](V x, I) { return matmul(x[0], x[1]); }}},
        {"linear", {"linear", [](V x, I) { return linear(x[0], x[1], x[2]); }}},
        {"linear_nobias", {"linear", [](V x, I) { return linear(x[0], x[1], Tensor()); }}},
        {"layer_norm", {"layer_norm", [](V x, I) { return layer_norm(x[0], x[1], x[2]); }}},
        {"masked_fill",
         {"masked_fill", [](V x, I i) { return masked_fill(x[0], x[1], i[0] ? -INFINITY : 0.25f); }}},
        {"dropout_mask", {"dropout", [](V x, I) { return dropout_with_mask(x[0], x[1], 0.25f); }}},
        {"dropout",
         {"dropout",
          [](V x, I i) {
              Generator g(static_cast<uint64_t>(i[0]));
              return dropout(x[0], 0.25f, true, g);
          }}},
        {"embedding", {"embedding", [](V x, I i) { return embedding(x[0], ids_from(i)); }}},
        {"cross_entropy",
         {"cross_entropy",
          [](V x, I i) {
              return cross_entropy(x[0], Ids{{static_cast<int64_t>(i.size())}, i});
          }}},
        {"cat",
         {"cat",
          [](V x, I i) {
              return cat({x[0], x[1]}, i[0]);
          }}},
        {"transpose", {"transpose", [](V x, I i) { return x[0].transpose(i[0], i[1]); }}},
        {"permute", {"permute", [](V x, I i) { return x[0].permute(i); }}},
        {"slice", {"slice", [](V x, I i) { return x[0].slice(i[0], i[1], i[2]); }}},
        {"view", {"view", [](V x, I i) { return x[0].view(Shape(i.begin() + 1, i.end())); }}},
        {"reshape", {"reshape", [](V x, I i) { return x[0].reshape(Shape(i.begin() + 1, i.end())); }}},
        // nn/layers.h
        {"Linear", {"linear", [](V x, I) { return linear_layer(x); }}},
        {"Linear_nobias", {"linear", [](V x, I) { return linear_layer(x); }}},
        {"LayerNorm",
         {"layer_norm",
          [](V x, I) {
              nn::LayerNorm ln(x[1].shape()[0]);
              ln.scale = x[1];
              ln.shift = x[2];
              return ln(x[0]);
          }}},
        {"Embedding",
         {"embedding",
          [](V x, I i) {
              nn::Embedding emb(x[0].dim() == 2 ? x[0].shape()[0] : 0, x[0].dim() == 2 ? x[0].shape()[1] : 0);
              emb.weight = x[0];
              return emb(ids_from(i));
          }}},
        {"GELU", {"gelu", [](V x, I) { return nn::GELU()(x[0]); }}},
        {"Dropout_eval",
         {"dropout",
          [](V x, I) {
              nn::Dropout d(0.5f);
              d.eval();
              return d(x[0]);
          }}},
        {"Dropout_train",
         {"dropout",
          [](V x, I i) {
              manual_seed(static_cast<uint64_t>(i[0]));  // the layer draws from the default generator
              return nn::Dropout(0.25f)(x[0]);
          }}},
        {"attention_mha", {"attention", [](V x, I i) { return attention_layer("mha", x, i); }}},
        {"attention_alt1", {"attention", [](V x, I i) { return attention_layer("alt1", x, i); }}},
        {"FeedForward", {"linear", [](V x, I) { return feed_forward_layer(x); }}},
    };
    return ops;
}

}  // namespace tg::test
