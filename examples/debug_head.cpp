// Step through the backward of one attention head in gdb (docs/debugging.md).
//   gdb -iex "add-auto-load-safe-path $PWD/build/release" --args build/release/examples/debug_head
//   (gdb) break tapegrad_backward_break
//   (gdb) run
//   (gdb) print entry          # the tape entry: op, label, shape, call site
//   (gdb) print grad_out       # dL/dscores of that head, as the probe's hook sees it
#include <cmath>
#include <cstdio>

#include "models/gpt.h"
#include "train/study/probe.h"

using namespace tg;

int main() {
    manual_seed(1);
    models::GPTConfig c;
    c.vocab_size = 50;
    c.context_length = 8;
    c.emb_dim = 16;
    c.n_heads = 2;
    c.n_layers = 2;
    c.drop_rate = 0;
    c.attention = "alt1";
    models::GPTModel model(c);
    train::DynamicsProbe probe(model, "", 1);
    set_break_on("trf_blocks.1.att.heads.1.scores");  // or TAPEGRAD_BREAK_ON=... in the environment
    Ids ids{{1, 6}, {3, 14, 15, 9, 26, 5}};
    Ids targets{{1, 6}, {14, 15, 9, 26, 5, 35}};
    probe.begin_step(0);
    Tensor loss = cross_entropy(model.forward(ids), targets);
    loss.backward();
    probe.after_backward();
    const auto& G = probe.G(1, 1);
    double n = 0;
    for (float v : G) n += static_cast<double>(v) * v;
    std::printf("loss %.6f; probe: ||G|| of layer 1 head 1 = %.6g\n", loss.item(), std::sqrt(n));
    return 0;
}
