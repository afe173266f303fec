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

#include <filesystem>
#include <iostream>
#include <iterator>

#include "core/blas.h"
#include "examples/lowrank_attention.h"
#include "models/checkpoint.h"
#include "models/generate.h"
#include "train/paths.h"
#include "train/report.h"
#include "train/summary.h"
#include "train/tokenizer.h"
#include "train/trainer.h"

namespace fs = std::filesystem;
using namespace tg;

namespace {

const char* kVocabHelp =
    "folder with encoder.json and vocab.bpe (default: $TAPEGRAD_DATA, else <prefix>/share/tapegrad)";

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
};

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
    app->add_option("--data", o.data_path, "training text (default: the-verdict.txt of the data folder)");
    app->add_option("--vocab-dir", o.vocab_dir, kVocabHelp);
    app->add_option("--epochs", o.epochs, "epochs")->capture_default_str()->check(CLI::NonNegativeNumber);
    app->add_option("--max-steps", o.max_steps, "stop after this many optimizer steps in all (-1: no limit)")
        ->capture_default_str();
    app->add_option("--batch-size", o.batch_size, "batch size")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
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
    app->add_option("--seed", o.seed, "torch.manual_seed before building the model")->capture_default_str();
    app->add_option("--eval-freq", o.eval_freq, "evaluate every N steps (from step 0)")
        ->capture_default_str();
    app->add_option("--eval-iter", o.eval_iter, "batches per loader in an evaluation")->capture_default_str();
    app->add_option("--threads", f.threads, "BLAS threads")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    app->add_flag("--no-shuffle", f.no_shuffle, "do not shuffle the training batches");
    app->add_option("--init-from", o.init_from,
                    "start from these weights (safetensors with the book's names)");
    app->add_option("--probe-every", o.probe_every,
                    "record gradient dynamics every N steps and at step 0 (0: off)")
        ->capture_default_str();
    app->add_flag("--detect-anomaly", o.detect_anomaly, "check every op output and gradient for NaN/Inf");
    app->add_flag("--profile", o.profile, "print a per-op profile of one training step");
    app->add_flag("--quiet", o.quiet, "no progress line and no loss lines on the terminal");
}

train::TrainOptions finish(TrainFlags& f) {
    train::TrainOptions o = f.opt;
    o.config = f.cfg.resolve();
    o.shuffle = !f.no_shuffle;
    if (f.min_lr >= 0) o.min_lr = f.min_lr;
    // Data defaults resolve only when used (train/paths.h: TAPEGRAD_DATA or <prefix>/share/tapegrad).
    if (o.data_path.empty()) o.data_path = train::data_file("the-verdict.txt", "--data");
    if (o.vocab_dir.empty()) o.vocab_dir = train::data_dir();
    set_num_threads(f.threads);
    return o;
}

int cmd_train(TrainFlags& f) {
    train::TrainOptions o = finish(f);
    auto res = train::train_model(o);
    if (!o.out_dir.empty()) train::write_summary(o.out_dir, o, res);
    fmt::print("{} parameters, {} steps, {:.3f} s/step, {:.0f} tokens/s\n", res.num_parameters, res.steps,
               res.steps ? res.train_seconds / static_cast<double>(res.steps) : 0.0,
               res.train_seconds > 0 ? static_cast<double>(res.tokens_seen) / res.train_seconds : 0.0);
    return 0;
}

int cmd_compare(TrainFlags& f, const std::string& out, const std::vector<std::string>& variants) {
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

int cmd_generate(const std::string& ckpt, const std::string& prompt, const std::string& vocab_dir,
                 models::GenerateOptions g, uint64_t seed) {
    auto st = models::read_safetensors(ckpt);
    models::GPTModel model(models::checkpoint_config(st, ckpt));
    models::load_model_weights(model, st, ckpt);
    train::Tokenizer tok(vocab_dir + "/encoder.json", vocab_dir + "/vocab.bpe");
    Generator gen(seed);
    auto ids = models::generate(model, tok.encode(prompt, true), g, gen);
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
        while (is >> w) {
            try {
                ids.push_back(std::stoll(w));
            } catch (const std::exception&) {
                throw Error("tapegrad: tokenize --decode: '" + w + "' is not a token id");
            }
        }
        std::cout << tok.decode(ids);
        return 0;
    }
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
    tf.opt.vocab_dir.clear();
    tf.opt.probe_every = 0;
    auto* train = app.add_subcommand("train", "train one GPT with the book's Chapter 5 loop");
    add_train_flags(train, tf, true);
    train->add_option("--save", tf.opt.save_path,
                      "write a checkpoint here at the end (model, optimizer, RNG, position)");
    train->add_option("--resume", tf.opt.resume_path, "continue a run from a checkpoint written by --save");
    train->add_option("--out", tf.opt.out_dir, "run folder for metrics.csv, dynamics.csv, summary.json");

    TrainFlags cf;
    cf.opt.data_path.clear();
    cf.opt.vocab_dir.clear();
    cf.opt.probe_every = 20;  // alt1 probing is 144 full SVDs: ~7% of its run at 20, 14% at 10
    std::string compare_out = "runs/compare";
    std::vector<std::string> variants = {"mha", "alt1"};
    auto* compare =
        app.add_subcommand("compare", "train mha and alt1 from the same seed and batch order, then report");
    add_train_flags(compare, cf, false);
    compare->add_option("--out", compare_out, "run directory (one folder per variant, report.md, plots)")
        ->capture_default_str();
    compare
        ->add_option("--variants", variants, "attention variants to compare, the first sets the batch order")
        ->capture_default_str();

    std::string ckpt, prompt = "Every effort moves you", gen_vocab;
    models::GenerateOptions gopt;
    int64_t top_k = 0;
    uint64_t gen_seed = 123;
    auto* gen = app.add_subcommand("generate", "continue a prompt with a trained checkpoint");
    gen->add_option("--checkpoint", ckpt, "a checkpoint written by tapegrad")->required();
    gen->add_option("--prompt", prompt, "start text")->capture_default_str();
    gen->add_option("--max-new-tokens", gopt.max_new_tokens, "tokens to add")->capture_default_str();
    gen->add_option("--temperature", gopt.temperature, "0: greedy; > 0: sample from softmax(logits / T)")
        ->capture_default_str();
    gen->add_option("--top-k", top_k, "keep the k most likely tokens (0: all)")->capture_default_str();
    gen->add_option("--seed", gen_seed, "sampling seed")->capture_default_str();
    gen->add_option("--vocab-dir", gen_vocab, kVocabHelp);

    bool allow_special = false, decode = false;
    std::string tok_vocab;
    auto* tok = app.add_subcommand("tokenize", "GPT-2 BPE: text on stdin, one id per line on stdout");
    tok->add_flag("--allow-special", allow_special, "treat <|endoftext|> as the special token 50256");
    tok->add_flag("--decode", decode, "the reverse: ids on stdin, text on stdout");
    tok->add_option("--vocab-dir", tok_vocab, kVocabHelp);

    std::string report_dir;
    auto* rep = app.add_subcommand("report", "write plots and report.md for a compare run directory");
    rep->add_option("RUN_DIR", report_dir, "the run directory")->required();

    CLI11_PARSE(app, argc, argv);
    try {
        if (*train) return cmd_train(tf);
        if (*compare) return cmd_compare(cf, compare_out, variants);
        if (*gen && gen_vocab.empty()) gen_vocab = train::data_dir();
        if (*tok && tok_vocab.empty()) tok_vocab = train::data_dir();
        if (*gen) {
            if (top_k > 0) gopt.top_k = top_k;
            return cmd_generate(ckpt, prompt, gen_vocab, gopt, gen_seed);
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
