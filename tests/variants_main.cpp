// tapegrad_variants: tapegrad's command line as a downstream project's main
// builds it (examples/downstream/main.cpp), with every extension variant the
// tests drive registered in-process (tests/test_variants.cpp):
//   lowrank  the in-tree example (examples/lowrank_attention.h)
//   tied     the downstream example (examples/downstream/tied_attention.h)
//   bare     below: none of the optional capabilities (no cached forward, no
//            bilinear heads, no converter; out_proj left to the default, off)
// Like a downstream project, it reads tapegrad's installed-style headers
// (staged-include) only: mixing them with the source tree's in one file would
// define every class twice.
#include <tapegrad/core/blas.h>
#include <tapegrad/train/cli/cli.h>

#include "tied_attention.h"

// examples/lowrank_attention.h (not installed, so not staged): its one entry point.
namespace tg::examples {
void register_lowrank_attention();
}

namespace {

using tg::Tensor;

// One causal head of width d_out with tied query and key: scores = q q^T, q = x Wqk^T
// [B, T, d_out]; softmax(mask(scores) / sqrt(d_out)), dropout, weights @ (x Wv^T).
class BareAttention : public tg::nn::Attention {
public:
    explicit BareAttention(const tg::nn::AttentionSpec& s) : Attention(s) {
        qk = register_module("qk", std::make_shared<tg::nn::Linear>(s.d_in, s.d_out, false));
        value = register_module("value", std::make_shared<tg::nn::Linear>(s.d_in, s.d_out, s.qkv_bias));
        dropout = register_module("dropout", std::make_shared<tg::nn::Dropout>(s.dropout));
        mask = register_buffer("mask", tg::nn::causal_mask(s.context_length));
    }
    Tensor forward(const Tensor& x) override {
        Tensor q = (*qk)(x);
        Tensor scores = tg::matmul(q, q.transpose(1, 2)).named("scores");  // [B, T, T]
        Tensor w = tg::nn::causal_attention_weights(scores, mask, spec_.d_out, *dropout);
        return tg::matmul(w, (*value)(x)).named("context");
    }
    std::shared_ptr<tg::nn::Linear> qk, value;
    std::shared_ptr<tg::nn::Dropout> dropout;
    Tensor mask;
};

}  // namespace

int main(int argc, char** argv) {
    tg::exec_with_default_wait_policy(argv);
    tg::examples::register_lowrank_attention();
    downstream::register_tied_attention();
    // The factory-only shorthand: a variant that states nothing.
    tg::nn::register_attention(
        "bare", [](const tg::nn::AttentionSpec& s) { return std::make_shared<BareAttention>(s); });
    return tg::cli::cli_main(argc, argv);
}
