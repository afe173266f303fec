// tapegrad_downstream: tapegrad extended from another project.
//   tapegrad_downstream selftest [OUT_DIR]
//       gradchecks the new op and the new layer through the installed API, then
//       trains the tiny GPT with --attention tied for a few steps through
//       tapegrad's trainer with the dynamics probe on, and checks what it wrote.
//   tapegrad_downstream <any tapegrad command>   e.g. train --attention tied
//       tapegrad's own command line, with "tied" registered first.
// Data (vocab, the-verdict.txt): TAPEGRAD_DATA=<prefix>/share/tapegrad.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include <tapegrad/tapegrad.h>
#include <tapegrad/train/cli/cli.h>
#include <tapegrad/train/run/paths.h>

#include "relu2.h"
#include "tied_attention.h"

namespace {

int failures = 0;
void expect(bool ok, const std::string& what) {
    std::printf("%s: %s\n", ok ? "ok" : "FAILED", what.c_str());
    if (!ok) ++failures;
}

// Uniform in +-[0.1, 1): away from relu2's kink at 0, where finite differences
// would see the jump in the second derivative.
tg::Tensor away_from_zero(const tg::Shape& shape, uint64_t seed) {
    tg::Generator g(seed);
    tg::Tensor t = tg::Tensor::empty(shape);
    g.fill_uniform(t.data(), t.numel(), -0.9, 0.9);
    for (int64_t i = 0; i < t.numel(); ++i) t.data()[i] += t.data()[i] < 0 ? -0.1f : 0.1f;
    return t.requires_grad_();
}

void check_op() {
    auto r = tg::gradcheck([](const std::vector<tg::Tensor>& x) { return downstream::relu2(x[0]); },
                           {away_from_zero({3, 7}, 1)});
    expect(r.ok, "relu2 gradcheck " + r.report);
    tg::Tensor x = tg::Tensor::from_vector({-2, -0.5, 0.5, 3}, {4}).requires_grad_();
    tg::Tensor y = downstream::relu2(x);
    expect(y.to_vector() == std::vector<float>{0, 0, 0.25f, 9}, "relu2 forward values");
    tg::sum(y).backward();
    expect(x.grad().to_vector() == std::vector<float>{0, 0, 1, 6}, "relu2 gradient values");
    tg::tape().clear();
    tg::Tensor z = downstream::relu2(tg::Tensor::ones({2}).requires_grad_());
    expect(std::string(tg::tape().entries().back().op) == "relu2", "relu2 is named on the tape");
    tg::tape().clear();
}

void check_layer() {
    tg::manual_seed(2);
    downstream::TiedHead head(6, 3, 5, 0.0f, true);
    // relu2's kink at 0 would defeat finite differences: value weights scaled to
    // a tenth and a bias of 0.5 keep every pre-activation in 0.5 +- 6 * 0.1 /
    // sqrt(6) (|x| < 1, Linear's init bound 1/sqrt(C)), i.e. above 0.25, so the
    // head is smooth where it is checked and its values stay of order one.
    tg::Tensor wv = head.W_value->weight;
    for (int64_t i = 0; i < wv.numel(); ++i) wv.data()[i] *= 0.1f;
    std::fill_n(head.W_value->bias.data(), head.W_value->bias.numel(), 0.5f);
    std::vector<tg::Tensor> in = head.parameters();
    tg::Generator g(3);
    tg::Tensor x = tg::Tensor::empty({2, 5, 6});
    g.fill_uniform(x.data(), x.numel(), -1, 1);
    in.insert(in.begin(), x.requires_grad_());
    auto keep = [](tg::Tensor s) { return s; };
    auto r = tg::gradcheck([&](const std::vector<tg::Tensor>& v) { return head(v[0], keep); }, in);
    expect(r.ok, "TiedHead gradcheck through x and every parameter " + r.report);
}

// An observer of its own, beside tapegrad's probe: every step's loss.
struct LossLog : tg::train::StepObserver {
    std::vector<double> losses;
    void end_step(const tg::train::StepInfo& info) override { losses.push_back(info.loss); }
};

void check_training(const std::string& out) {
    downstream::register_tied_attention();
    tg::train::TrainOptions o;
    o.config = tg::models::preset("tiny");
    o.config.attention = "tied";
    o.data_path = tg::train::data_file("the-verdict.txt", "TAPEGRAD_DATA");
    o.vocab_dir = tg::train::data_dir();
    o.epochs = 1;
    o.max_steps = 3;
    o.quiet = true;
    std::filesystem::create_directories(out);
    // tapegrad's Trainer with the dynamics probe (every step) and our observer.
    tg::train::Trainer trainer(o);
    tg::train::DynamicsProbe probe(trainer.model(), out + "/dynamics.csv", 1);
    LossLog log;
    trainer.add_observer(&probe);
    trainer.add_observer(&log);
    tg::train::TrainResult res = trainer.run();
    expect(res.steps == 3 && log.losses.size() == 3, "trained 3 steps with --attention tied");
    bool finite = true;
    for (double l : log.losses) finite = finite && std::isfinite(l);
    expect(finite, "every step loss is finite");
    // The probe: one row per probed step, layer and head, with a gradient.
    std::ifstream f(out + "/dynamics.csv");
    std::string line;
    int rows = 0, with_g = 0;
    std::getline(f, line);
    expect(line.rfind("step,layer,head,g_norm", 0) == 0, "dynamics.csv header");
    while (std::getline(f, line)) {  // step,layer,head,g_norm,...
        ++rows;
        size_t p = 0;
        for (int comma = 0; comma < 3; ++comma) p = line.find(',', p) + 1;
        if (std::stod(line.substr(p)) > 0) ++with_g;
    }
    int64_t want = 3 * o.config.n_layers * o.config.n_heads;
    expect(rows == want,
           "the probe wrote " + std::to_string(rows) + " rows (want " + std::to_string(want) + ")");
    expect(with_g == rows, "every probed head has a nonzero G");
}

}  // namespace

int main(int argc, char** argv) {
    if (argc >= 2 && std::string(argv[1]) == "selftest") {
        try {
            std::printf("tapegrad %s\n", TAPEGRAD_VERSION_STRING);
            check_op();
            check_layer();
            check_training(argc >= 3 ? argv[2] : "downstream_run");
        } catch (const std::exception& e) {
            std::printf("FAILED: %s\n", e.what());
            return 1;
        }
        std::printf("%s\n", failures ? "selftest FAILED" : "selftest passed");
        return failures ? 1 : 0;
    }
    downstream::register_tied_attention();
    return tg::cli::cli_main(argc, argv);
}
