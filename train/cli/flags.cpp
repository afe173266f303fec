#include "train/cli/flags.h"

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <cmath>

#include "core/blas.h"
#include "models/gpt2_hf.h"
#include "train/run/preflight.h"
#include "train/cli/cli.h"
#include "train/dist/mpi.h"
#include "train/run/paths.h"
#include "train/data/vocab_map.h"

#include <filesystem>

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
    if (qk_dim) c.qk_dim = *qk_dim;
    c.init = init;
    c.init_gain = init_gain;
    c.uniform_attention = uniform_attention;
    return c;
}

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

CLI::Validator positive_number() {
    return CLI::Validator(
        [](std::string& s) -> std::string {
            try {
                size_t n = 0;
                double v = std::stod(s, &n);
                if (n == s.size() && std::isfinite(v) && v > 0) return "";
            } catch (const std::exception&) {}
            return fmt::format("must be a finite number > 0, not '{}'", s);
        },
        "NUMBER>0");
}

void add_train_flags(CLI::App* app, TrainFlags& f, bool with_attention) {
    auto& c = f.cfg;
    auto& o = f.opt;
    app->add_option("--preset", c.preset,
                    "model preset: gpt2-124m (the book's GPT_CONFIG_124M, context 256), tiny, or OpenAI's "
                    "shapes gpt2-small-hf, gpt2-medium-hf, gpt2-large-hf, gpt2-xl-hf (context 1024)")
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
    app->add_option("--qk-dim", c.qk_dim,
                    "mha only: query/key width R per head (W_query, W_key: C -> n_heads R; default the head "
                    "size, as the book; R = emb_dim gives a full-rank factored Wq^T Wk); scores stay "
                    "scaled by 1/sqrt(head size). compare applies it to mha only")
        ->check(at_least(1));
    app->add_option("--init", c.init,
                    "alt1 only: product draws each head's S_h = Wk_h^T Wq_h (and its bias) from the factors "
                    "mha with --qk-dim emb_dim would draw from the same seed, so both start as the same "
                    "function (default: alt1's own init)")
        ->capture_default_str()
        ->check(CLI::IsMember({"default", "product"}));
    app->add_option("--init-gain", c.init_gain,
                    "mha only: scale W_query and W_key by G after their init (M_h scales by G^2; "
                    "G = 3^(1/4) = 1.316 matches alt1's score scale at rank emb_dim)")
        ->capture_default_str()
        ->check(positive_number());
    app->add_flag("--uniform-attention", c.uniform_attention,
                  "mha only: no query or key, every score 0, so each token attends uniformly to its prefix "
                  "(the control for how much attention's scores matter)");
    app->add_option(
        "--data", o.data_path,
        "training text file (the book's 90/10 pipeline; default: the-verdict.txt of the data folder) "
        "or a directory of token shards (train_*.bin, val_*.bin in llm.c's format, e.g. from "
        "tapegrad prepare)");
    app->add_option("--vocab-dir", o.vocab_dir,
                    "folder with encoder.json and vocab.bpe (default: the data folder, train/run/paths.h)");
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
    f.threads_opt = app->add_option("--threads", f.threads,
                                    "threads of the BLAS and tapegrad's loops (default: OMP_NUM_THREADS when "
                                    "set, else the cores this process may use; under mpirun per rank: the "
                                    "cores this rank may use, or the node's cores / ranks on the node when "
                                    "unbound)")
                        ->check(at_least(1));
    app->add_option("--bucket-mb", o.bucket_mb,
                    "under mpirun: gradient allreduce bucket size in MB (buckets start during backward)")
        ->capture_default_str();  // > 0, checked by train/run/preflight.h (a short message)
    app->add_flag("--no-shuffle", f.no_shuffle, "do not shuffle the training batches");
    app->add_option(
        "--init-from", o.init_from,
        "start from these weights: safetensors with the book's names, or a Hugging Face GPT-2 "
        "model.safetensors (recognised by its names; the model's shape then comes from the file)");
    app->add_option("--max-length", o.max_length,
                    "training window in tokens, the book's max_length (default: the context length)")
        ->check(CLI::NonNegativeNumber);
    app->add_option("--probe-every", o.probe_every,
                    "record gradient dynamics every N steps and at step 0 (0: off)")
        ->capture_default_str();
    app->add_option("--probe-pairs", o.probe_pairs,
                    "with --probe-every: the top K (query, key) pairs of each head's gradient G and update "
                    "-dM, with per-sequence, per-offset and attention-sink shares, into pairs.csv (0: off)")
        ->check(CLI::NonNegativeNumber)
        ->capture_default_str();
    app->add_option_function<std::string>(
           "--final-eval", [&o](const std::string& v) { o.final_eval_full = v == "full"; },
           "full: after the last step, the loss over every window of the validation split, per "
           "document into final_eval.csv (off: only the eval_iter estimates; default off)")
        ->check(CLI::IsMember({"full", "off"}));
    app->add_option("--sample-kv-cache", o.sample_kv_cache,
                    "per-epoch samples: off (the book's uncached loop), on (KV cache, same tokens) or check "
                    "(both; a difference is reported and the uncached sample kept)")
        ->capture_default_str()
        ->check(CLI::IsMember({"off", "on", "check"}));
    app->add_flag("--detect-anomaly", o.detect_anomaly, "check every op output and gradient for NaN/Inf");
    app->add_flag("--profile", o.profile, "print a per-op and per-phase memory profile of one training step");
    app->add_option_function<std::string>(
           "--memory-saving", [&o](const std::string& v) { o.memory_saving = v == "on"; },
           "on: free what backward does not read as soon as forward is done with it, dropout masks as "
           "bits, GELU's tanh recomputed (same numbers, lower peak memory); off: keep it all (default on)")
        ->check(CLI::IsMember({"on", "off"}));
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

// With a Hugging Face GPT-2 file as --init-from, the file fixes the model's shape:
// the config comes from it (attention, n_heads and drop_rate may still be set).
models::GPTConfig resolve_config(const TrainFlags& f) {
    const ConfigFlags& c = f.cfg;
    if (f.opt.init_from.empty()) return c.resolve();
    std::optional<models::GPTConfig> hf;
    {
        models::MappedSafeTensors st(f.opt.init_from);
        if (models::is_gpt2_hf(st)) hf = models::gpt2_hf_config(st, c.n_heads, c.attention);
    }
    if (!hf) return c.resolve();
    if (c.vocab_size || c.context_length || c.emb_dim || c.n_layers || c.qkv_bias || c.out_proj || c.qk_dim)
        throw Error(
            "tapegrad: --init-from '" + f.opt.init_from +
            "' is a Hugging Face GPT-2 file, which fixes vocab, context, emb_dim, n_layers, qkv_bias, "
            "out_proj and qk_dim: drop those flags (use --max-length for a shorter training window)");
    if (c.drop_rate) hf->drop_rate = *c.drop_rate;
    return *hf;
}

int use_threads(int given) {
    int n = given > 0 ? given : dist::default_threads();
    set_num_threads(n);
    return n;
}

train::TrainOptions finish(TrainFlags& f) {
    train::TrainOptions o = f.opt;
    o.config = resolve_config(f);
    o.shuffle = !f.no_shuffle;
    if (f.min_lr >= 0) o.min_lr = f.min_lr;
    o.seed = train::parse_u64_strict("--seed", f.seed);
    if (o.data_path.empty()) o.data_path = train::data_file("the-verdict.txt", "--data");
    if (o.vocab_dir.empty()) o.vocab_dir = train::data_dir();
    // Shards in a compact vocabulary (prepare --vocab compact) fix the model's vocab_size.
    if (std::filesystem::is_directory(o.data_path))
        if (auto map = train::VocabMap::from_manifest(o.data_path)) {
            if (f.cfg.vocab_size && *f.cfg.vocab_size != map->size())
                throw Error(fmt::format("tapegrad: --vocab-size {}: the shards of --data '{}' use a compact "
                                        "vocabulary of {} ids (manifest.json); drop --vocab-size",
                                        *f.cfg.vocab_size, o.data_path, map->size()));
            o.config.vocab_size = map->size();
        }
    // Ranks x threads must not exceed the cores: under mpirun the default is per rank.
    bool given = f.threads_opt && f.threads_opt->count() > 0;
    use_threads(given ? f.threads : 0);
    return o;
}

}  // namespace tg::cli
