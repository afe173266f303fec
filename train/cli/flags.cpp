#include "train/cli/flags.h"

#include <CLI/CLI.hpp>

#include "core/blas.h"
#include "train/cli/cli.h"

namespace tg::cli {

models::GPTConfig ConfigFlags::resolve() const {
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
    app->add_option("--data", o.data_path,
                    "training text file (the book's 90/10 pipeline) or a directory of token shards "
                    "(train_*.bin, val_*.bin in llm.c's format, e.g. from tapegrad prepare)")
        ->capture_default_str();
    app->add_option("--vocab-dir", o.vocab_dir, "folder with encoder.json and vocab.bpe")
        ->capture_default_str();
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
    o.data_path = o.data_path.empty() ? repo_path("data/the-verdict.txt") : o.data_path;
    set_num_threads(f.threads);
    return o;
}

}  // namespace tg::cli
