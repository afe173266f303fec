// tapegrad: the command-line front end.
//   tapegrad train     train one GPT (the book's Chapter 5 loop)
//   tapegrad compare   train mha and alt1 on the same seed and batch order, then report
//   tapegrad generate  continue a prompt from a checkpoint
//   tapegrad tokenize  GPT-2 BPE ids of stdin (or --decode ids back to text)
//   tapegrad report    plots and report.md of a compare run directory
// CLI11 (Debian's libcli11-dev) gives every subcommand --help and prints usage
// on a bad flag.
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <cmath>
#include <csignal>
#include <filesystem>
#include <iostream>
#include <iterator>
#include <optional>

#include "core/blas.h"
#include "examples/lowrank_attention.h"
#include "models/checkpoint.h"
#include "models/generate.h"
#include "train/checks.h"
#include "train/report.h"
#include "train/run_dir.h"
#include "train/run_guard.h"
#include "train/summary.h"
#include "train/tokenizer.h"
#include "train/trainer.h"

namespace fs = std::filesystem;
using namespace tg;

namespace {

// A default path relative to the repository: the working directory's if present,
// else the source tree's (so the binary also works when run from elsewhere).
std::string repo_path(const std::string& rel) {
    if (fs::exists(rel)) return rel;
    std::string src = std::string(TAPEGRAD_SOURCE_DIR) + "/" + rel;
    return fs::exists(src) ? src : rel;
}

// GPTConfig overrides: applied on top of --preset after parsing.
struct ConfigFlags {
    std::string preset = "gpt2-124m";
    std::optional<int64_t> vocab_size, context_length, emb_dim, n_heads, n_layers;
    std::optional<float> drop_rate;
    std::optional<bool> qkv_bias, out_proj;
    std::string attention = "mha";
    models::GPTConfig resolve() const {
        models::GPTConfig c = models::preset(preset);
        if (vocab_size) c.vocab_size = *vocab_size;
        if (context_length) c.context_length = *context_length;
        if (emb_dim) c.emb_dim = *emb_dim;
        if (n_heads) c.n_heads = *n_heads;
        if (n_layers) c.n_layers = *n_layers;
        if (drop_rate) c.drop_rate = *drop_rate;
        if (qkv_bias) c.qkv_bias = *qkv_bias;
        c.attention = attention;
        if (out_proj) c.out_proj = *out_proj;
        return c;
    }
};

struct TrainFlags {
    ConfigFlags cfg;
    train::TrainOptions opt;
    int threads = 2;
    bool no_shuffle = false;
    double min_lr = -1;
    std::string seed = "123";  // parsed strictly: "-1" and 2^64 must not wrap
};

// An integer flag with a lower bound. (CLI11's PositiveNumber states its range
// as a 309-digit double.)
CLI::Validator at_least(int64_t lo) {
    return CLI::Validator(
        [lo](std::string& s) -> std::string {
            try {
                size_t n = 0;
                long long v = std::stoll(s, &n);
                if (n == s.size() && v >= lo) return "";
            } catch (const std::exception&) {}
            return fmt::format("must be an integer >= {}, not '{}'", lo, s);
        },
        fmt::format("INT>={}", lo));
}

void add_train_flags(CLI::App* app, TrainFlags& f, bool with_attention) {
    auto& c = f.cfg;
    auto& o = f.opt;
    app->add_option("--preset", c.preset,
                    "model preset: gpt2-124m (the book's GPT_CONFIG_124M, context 256) or tiny")
        ->capture_default_str();
    if (with_attention)
        app->add_option("--attention", c.attention, "attention variant: mha, alt1, or a registered extension")
            ->capture_default_str();
    app->add_option("--vocab-size", c.vocab_size, "override the preset's vocab_size");
    app->add_option("--context-length", c.context_length, "override context_length (also the window length)");
    app->add_option("--emb-dim", c.emb_dim, "override emb_dim");
    app->add_option("--n-heads", c.n_heads, "override n_heads");
    app->add_option("--n-layers", c.n_layers, "override n_layers");
    app->add_option("--drop-rate", c.drop_rate, "override drop_rate");
    app->add_option("--qkv-bias", c.qkv_bias, "bias on the query/key/value (and S) projections: true|false");
    app->add_option("--out-proj", c.out_proj,
                    "output projection after the heads: true|false (default: mha on, alt1 off)");
    app->add_option("--data", o.data_path, "training text")->capture_default_str();
    app->add_option("--vocab-dir", o.vocab_dir, "folder with encoder.json and vocab.bpe")
        ->capture_default_str();
    app->add_option("--epochs", o.epochs, "epochs")->capture_default_str()->check(at_least(0));
    app->add_option("--max-steps", o.max_steps, "stop after this many optimizer steps in all (-1: no limit)")
        ->capture_default_str();
    app->add_option("--batch-size", o.batch_size, "batch size")->capture_default_str()->check(at_least(1));
    app->add_option("--optimizer", o.optimizer, "adamw or sgd")
        ->capture_default_str()
        ->check(CLI::IsMember({"adamw", "sgd"}));
    app->add_option("--lr", o.lr, "peak learning rate")->capture_default_str();
    app->add_option("--weight-decay", o.weight_decay, "weight decay (decoupled for AdamW, L2 for SGD)")
        ->capture_default_str();
    app->add_option("--momentum", o.momentum, "SGD momentum")->capture_default_str();
    app->add_option("--warmup", o.warmup, "linear warmup steps, then cosine decay (appendix D)")
        ->capture_default_str();
    app->add_option("--min-lr", f.min_lr, "cosine decay floor and warmup start (enables the schedule)");
    app->add_option("--clip", o.clip, "clip the global gradient norm to this (0: off)")
        ->capture_default_str();
    app->add_option("--seed", f.seed, "torch.manual_seed before building the model (0 .. 2^64-1)")
        ->capture_default_str();
    app->add_option("--eval-freq", o.eval_freq, "evaluate every N steps (from step 0)")
        ->capture_default_str();
    app->add_option("--eval-iter", o.eval_iter, "batches per loader in an evaluation")->capture_default_str();
    app->add_option("--threads", f.threads, "BLAS threads")->capture_default_str()->check(at_least(1));
    app->add_flag("--no-shuffle", f.no_shuffle, "do not shuffle the training batches");
    app->add_option("--init-from", o.init_from,
                    "start from these weights (safetensors with the book's names)");
    app->add_option("--probe-every", o.probe_every,
                    "record gradient dynamics every N steps and at step 0 (0: off)")
        ->capture_default_str();
    app->add_flag("--detect-anomaly", o.detect_anomaly, "check every op output and gradient for NaN/Inf");
    app->add_flag("--profile", o.profile, "print a per-op profile of one training step");
    app->add_flag("--quiet", o.quiet, "no progress line and no loss lines on the terminal");
    app->add_option(
           "--on-nan", o.on_nan,
           "a NaN/Inf loss or gradient norm: stop (keep the last good checkpoint, exit 3) or skip the "
           "step")
        ->capture_default_str()
        ->check(CLI::IsMember({"stop", "skip"}));
    app->add_flag("--allow-nonfinite", o.allow_nonfinite,
                  "load --init-from/--resume weights that hold NaN/Inf (refused by default)");
    app->add_flag("--overwrite", o.overwrite,
                  "replace a finished run in the --out folder (refused by default)");
}

train::TrainOptions finish(TrainFlags& f) {
    train::TrainOptions o = f.opt;
    o.config = f.cfg.resolve();
    o.shuffle = !f.no_shuffle;
    if (f.min_lr >= 0) o.min_lr = f.min_lr;
    o.seed = train::parse_u64_strict("--seed", f.seed);
    o.data_path = o.data_path.empty() ? repo_path("data/the-verdict.txt") : o.data_path;
    set_num_threads(f.threads);
    return o;
}

// After a run that ended early, say what was kept; the exit code: 0, 128 +
// signal (130 SIGINT, 143 SIGTERM), or 3 for a diverged run.
int report_end(const train::TrainResult& res, const train::TrainOptions& o) {
    if (res.stopped_by.empty()) return 0;
    std::string kept;
    if (!res.saved_path.empty())
        kept += fmt::format("\n  checkpoint '{}' (step {}; continue with --resume {})", res.saved_path,
                            res.saved_step, res.saved_path);
    if (!o.out_dir.empty() && res.steps > 0)
        kept += fmt::format("\n  '{}/metrics.csv' and '{}/summary.json'", o.out_dir, o.out_dir);
    if (kept.empty()) kept = "\n  nothing (no --save, no --out)";
    if (res.stopped_by == "nonfinite") {
        std::cerr << fmt::format("tapegrad: {}: the run diverged and was stopped (--on-nan skip would skip "
                                 "such steps). No checkpoint "
                                 "of the diverged weights was written. {}{}\n",
                                 res.diverged,
                                 res.saved_path.empty()
                                     ? "No good checkpoint was saved (--save-every N keeps one). Kept:"
                                     : "Kept, the last good checkpoint and the logs:",
                                 kept);
        return 3;
    }
    int sig = res.stopped_by == "SIGTERM" ? SIGTERM : SIGINT;
    std::cerr << fmt::format("tapegrad: stopped by {} after step {} ({} steps in all). Kept:{}\n",
                             res.stopped_by, res.steps - 1, res.steps, kept);
    return 128 + sig;
}

int cmd_train(TrainFlags& f) {
    train::install_stop_handlers();
    train::TrainOptions o = finish(f);
    train::preflight(o);  // before the lock: a refused value creates nothing
    std::optional<train::RunDirLock> lock;
    if (!o.out_dir.empty()) lock.emplace(o.out_dir, "--out", o.overwrite, !o.resume_path.empty());
    auto res = train::train_model(o);
    if (!o.out_dir.empty() && res.steps > 0) train::write_summary(o.out_dir, o, res);
    if (res.stopped_by.empty())
        fmt::print("{} parameters, {} steps, {:.3f} s/step, {:.0f} tokens/s\n", res.num_parameters, res.steps,
                   res.steps ? res.train_seconds / static_cast<double>(res.steps) : 0.0,
                   res.train_seconds > 0 ? static_cast<double>(res.tokens_seen) / res.train_seconds : 0.0);
    return report_end(res, o);
}

// compare without --out: runs/compare, or the first runs/compare-N that holds
// no run, so running it twice never overwrites the first results.
std::string fresh_compare_dir(const std::vector<std::string>& variants) {
    for (int n = 1;; ++n) {
        std::string d = n == 1 ? "runs/compare" : fmt::format("runs/compare-{}", n);
        bool taken = fs::exists(d + "/report.md");
        for (auto& v : variants) taken = taken || train::holds_run(d + "/" + v);
        if (!taken) return d;
    }
}

int cmd_compare(TrainFlags& f, std::string out, const std::vector<std::string>& variants) {
    train::install_stop_handlers();
    if (out.empty()) {
        out = fresh_compare_dir(variants);
        fmt::print("compare: writing to {} (--out to choose the folder)\n", out);
    }
    for (const auto& v : variants) {  // every variant's values and paths before the first step
        f.cfg.attention = v;
        train::TrainOptions o = finish(f);
        o.out_dir = out + "/" + v;
        train::preflight(o);
    }
    train::RunDirLock lock(out, "--out", f.opt.overwrite, false);
    std::vector<std::vector<int64_t>> orders;
    for (size_t i = 0; i < variants.size(); ++i) {
        f.cfg.attention = variants[i];
        train::TrainOptions o = finish(f);
        o.out_dir = out + "/" + variants[i];
        o.save_path = o.out_dir + "/model.safetensors";
        train::RunDirLock vlock(o.out_dir, "--out", o.overwrite, false);
        // The first variant draws the batch order; the others replay it.
        if (i == 0)
            o.record_orders = &orders;
        else
            o.replay_orders = &orders;
        fmt::print("== {} ({}) ==\n", variants[i], o.config.describe());
        auto res = train::train_model(o);
        if (res.steps > 0) train::write_summary(o.out_dir, o, res);
        if (int code = report_end(res, o); code != 0) return code;  // no later variant, no report
        fmt::print("{}: {} parameters, {:.3f} s/step, {:.0f} s in all\n", variants[i], res.num_parameters,
                   res.steps ? res.train_seconds / static_cast<double>(res.steps) : 0.0, res.seconds);
    }
    train::write_report(out);
    fmt::print("wrote {}/report.md and plots\n", out);
    return 0;
}

int cmd_generate(const std::string& ckpt, const std::string& prompt, const std::string& vocab_dir,
                 models::GenerateOptions g, uint64_t seed, bool allow_nonfinite) {
    if (!std::isfinite(g.temperature) || g.temperature < 0)
        throw Error(fmt::format("tapegrad: --temperature must be a finite number >= 0 (0: greedy), not {}",
                                g.temperature));
    if (g.max_new_tokens < 0)
        throw Error(
            fmt::format("tapegrad: --max-new-tokens must be an integer >= 0, not {}", g.max_new_tokens));
    auto st = models::read_safetensors(ckpt);
    models::GPTModel model(models::checkpoint_config(st, ckpt));
    models::load_model_weights(model, st, ckpt, allow_nonfinite);
    train::Tokenizer tok(vocab_dir + "/encoder.json", vocab_dir + "/vocab.bpe");
    Generator gen(seed);
    std::vector<int64_t> start = tok.encode(prompt, true);
    if (start.empty()) {  // as GPT-2 samples unconditionally
        std::cerr << "tapegrad: note: empty prompt: starting from <|endoftext|> (id 50256), as GPT-2 does\n";
        start = {train::Tokenizer::kEndOfText};
    }
    auto ids = models::generate(model, start, g, gen);
    std::cout << tok.decode(ids) << std::endl;
    return 0;
}

int cmd_tokenize(const std::string& vocab_dir, bool allow_special, bool decode) {
    train::Tokenizer tok(vocab_dir + "/encoder.json", vocab_dir + "/vocab.bpe");
    std::string in((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
    if (decode) {
        std::vector<int64_t> ids;
        std::istringstream is(in);
        std::string w;
        while (is >> w) {  // whole decimal ids only: "12.5" is not 12
            try {
                ids.push_back(train::parse_int_strict("tokenize --decode", w, 0, tok.vocab_size() - 1));
            } catch (const Error&) {
                throw Error(
                    fmt::format("tapegrad: tokenize --decode: '{}' is not a token id (an integer in [0, {}])",
                                w, tok.vocab_size() - 1));
            }
        }
        std::cout << tok.decode(ids);
        return 0;
    }
    train::Tokenizer::note_invalid_utf8("stdin", in);
    for (int64_t id : tok.encode(in, allow_special)) std::cout << id << '\n';
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    examples::register_lowrank_attention();  // the extension example: --attention lowrank
    CLI::App app{"tapegrad: a tape-based autograd and the book's Chapter 5 GPT, with standard and merged "
                 "(alt1) attention"};
    app.require_subcommand(1);

    TrainFlags tf;
    tf.opt.data_path.clear();
    tf.opt.vocab_dir = repo_path("data");
    tf.opt.probe_every = 0;
    auto* train = app.add_subcommand("train", "train one GPT with the book's Chapter 5 loop");
    add_train_flags(train, tf, true);
    train->add_option("--save", tf.opt.save_path,
                      "write a checkpoint here at the end (model, optimizer, RNG, position)");
    train->add_option("--resume", tf.opt.resume_path, "continue a run from a checkpoint written by --save");
    train
        ->add_option("--save-every", tf.opt.save_every,
                     "also rewrite the --save checkpoint (atomically) every N steps: a crash loses at most N")
        ->check(at_least(0));
    train->add_option("--out", tf.opt.out_dir, "run folder for metrics.csv, dynamics.csv, summary.json");

    TrainFlags cf;
    cf.opt.data_path.clear();
    cf.opt.vocab_dir = repo_path("data");
    cf.opt.probe_every = 20;  // alt1 probing is 144 full SVDs: ~7% of its run at 20, 14% at 10
    std::string compare_out;  // empty: runs/compare or the first free runs/compare-N
    std::vector<std::string> variants = {"mha", "alt1"};
    auto* compare =
        app.add_subcommand("compare", "train mha and alt1 from the same seed and batch order, then report");
    add_train_flags(compare, cf, false);
    compare->add_option("--out", compare_out,
                        "run directory (one folder per variant, report.md, plots); default runs/compare, or "
                        "runs/compare-N when that holds a run");
    compare
        ->add_option("--variants", variants, "attention variants to compare, the first sets the batch order")
        ->capture_default_str();

    std::string ckpt, prompt = "Every effort moves you", gen_vocab = repo_path("data");
    models::GenerateOptions gopt;
    int64_t top_k = 0;
    std::string gen_seed = "123";
    bool gen_allow_nonfinite = false;
    auto* gen = app.add_subcommand("generate", "continue a prompt with a trained checkpoint");
    gen->add_option("--checkpoint", ckpt, "a checkpoint written by tapegrad")->required();
    gen->add_option("--prompt", prompt, "start text")->capture_default_str();
    gen->add_option("--max-new-tokens", gopt.max_new_tokens, "tokens to add")
        ->capture_default_str()
        ->check(at_least(0));
    gen->add_option("--temperature", gopt.temperature, "0: greedy; > 0: sample from softmax(logits / T)")
        ->capture_default_str();
    gen->add_option("--top-k", top_k, "keep the k most likely tokens (0: all)")
        ->capture_default_str()
        ->check(at_least(0));
    gen->add_option("--seed", gen_seed, "sampling seed")->capture_default_str();
    gen->add_option("--vocab-dir", gen_vocab, "folder with encoder.json and vocab.bpe")
        ->capture_default_str();
    gen->add_flag("--allow-nonfinite", gen_allow_nonfinite, "load a checkpoint whose weights hold NaN/Inf");

    bool allow_special = false, decode = false;
    std::string tok_vocab = repo_path("data");
    auto* tok = app.add_subcommand("tokenize", "GPT-2 BPE: text on stdin, one id per line on stdout");
    tok->add_flag("--allow-special", allow_special, "treat <|endoftext|> as the special token 50256");
    tok->add_flag("--decode", decode, "the reverse: ids on stdin, text on stdout");
    tok->add_option("--vocab-dir", tok_vocab, "folder with encoder.json and vocab.bpe")
        ->capture_default_str();

    std::string report_dir;
    auto* rep = app.add_subcommand("report", "write plots and report.md for a compare run directory");
    rep->add_option("RUN_DIR", report_dir, "the run directory")->required();

    CLI11_PARSE(app, argc, argv);
    try {
        if (*train) return cmd_train(tf);
        if (*compare) return cmd_compare(cf, compare_out, variants);
        if (*gen) {
            if (top_k > 0) gopt.top_k = top_k;
            return cmd_generate(ckpt, prompt, gen_vocab, gopt, train::parse_u64_strict("--seed", gen_seed),
                                gen_allow_nonfinite);
        }
        if (*tok) return cmd_tokenize(tok_vocab, allow_special, decode);
        if (*rep) {
            train::write_report(report_dir);
            fmt::print("wrote {}/report.md and plots\n", report_dir);
            return 0;
        }
    } catch (const std::exception& e) {
        std::cerr << "error: " << e.what() << std::endl;
        return 1;
    }
    return 0;
}
