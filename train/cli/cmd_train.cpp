// `tapegrad train`: one GPT with the book's Chapter 5 loop.
// `tapegrad compare`: several attention variants from the same seed and batch
// order (the first variant draws the order, the others replay it), then report.
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <memory>

#include "train/cli/commands.h"
#include "train/cli/flags.h"
#include "train/report.h"
#include "train/summary.h"

namespace tg::cli {
namespace {

int run_train(TrainFlags& f) {
    train::TrainOptions o = finish(f);
    auto res = train::train_model(o);
    if (!o.out_dir.empty()) train::write_summary(o.out_dir, o, res);
    fmt::print("{} parameters, {} steps, {:.3f} s/step, {:.0f} tokens/s\n", res.num_parameters, res.steps,
               res.steps ? res.train_seconds / static_cast<double>(res.steps) : 0.0,
               res.train_seconds > 0 ? static_cast<double>(res.tokens_seen) / res.train_seconds : 0.0);
    return 0;
}

int run_compare(TrainFlags& f, const std::string& out, const std::vector<std::string>& variants) {
    std::vector<std::vector<int64_t>> orders;
    for (size_t i = 0; i < variants.size(); ++i) {
        f.cfg.attention = variants[i];
        train::TrainOptions o = finish(f);
        o.out_dir = out + "/" + variants[i];
        o.save_path = o.out_dir + "/model.safetensors";
        // The first variant draws the batch order; the others replay it.
        if (i == 0)
            o.record_orders = &orders;
        else
            o.replay_orders = &orders;
        fmt::print("== {} ({}) ==\n", variants[i], o.config.describe());
        auto res = train::train_model(o);
        train::write_summary(o.out_dir, o, res);
        fmt::print("{}: {} parameters, {:.3f} s/step, {:.0f} s in all\n", variants[i], res.num_parameters,
                   res.steps ? res.train_seconds / static_cast<double>(res.steps) : 0.0, res.seconds);
    }
    train::write_report(out);
    fmt::print("wrote {}/report.md and plots\n", out);
    return 0;
}

}  // namespace

Command train_command() {
    return {"train", "train one GPT with the book's Chapter 5 loop", [](CLI::App& sub) -> Action {
                auto f = std::make_shared<TrainFlags>();
                f->opt.data_path.clear();
                f->opt.vocab_dir = repo_path("data");
                f->opt.probe_every = 0;
                add_train_flags(&sub, *f, true);
                sub.add_option("--save", f->opt.save_path,
                               "write a checkpoint here at the end (model, optimizer, RNG, position)");
                sub.add_option("--resume", f->opt.resume_path,
                               "continue a run from a checkpoint written by --save");
                sub.add_option("--out", f->opt.out_dir,
                               "run folder for metrics.csv, dynamics.csv, summary.json");
                return [f] { return run_train(*f); };
            }};
}

Command compare_command() {
    return {"compare", "train mha and alt1 from the same seed and batch order, then report",
            [](CLI::App& sub) -> Action {
                auto f = std::make_shared<TrainFlags>();
                auto out = std::make_shared<std::string>("runs/compare");
                auto variants =
                    std::make_shared<std::vector<std::string>>(std::vector<std::string>{"mha", "alt1"});
                f->opt.data_path.clear();
                f->opt.vocab_dir = repo_path("data");
                f->opt.probe_every = 20;  // alt1 probing is 144 full SVDs: ~7% of its run at 20, 14% at 10
                add_train_flags(&sub, *f, false);
                sub.add_option("--out", *out, "run directory (one folder per variant, report.md, plots)")
                    ->capture_default_str();
                sub.add_option("--variants", *variants,
                               "attention variants to compare, the first sets the batch order")
                    ->capture_default_str();
                return [f, out, variants] { return run_compare(*f, *out, *variants); };
            }};
}

}  // namespace tg::cli
