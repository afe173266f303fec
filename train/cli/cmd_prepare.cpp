// `tapegrad prepare`: text files, directory trees or stdin -> GPT-2 token shards
// in llm.c's format plus manifest.json (train/data/prepare.h has the rules).
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <iostream>
#include <memory>

#include "core/blas.h"
#include "train/cli/commands.h"
#include "train/cli/flags.h"
#include "train/data/prepare.h"
#include "train/run/paths.h"
#include "train/run/preflight.h"

namespace tg::cli {
namespace {

struct PrepareFlags {
    train::PrepareOptions opt;
    int threads = 0;            // 0: use_threads() picks
    std::string seed = "1337";  // parsed strictly: "-1" must not wrap to 2^64-1
};

int run_prepare(PrepareFlags& f) {
    f.opt.seed = train::parse_u64_strict("--seed", f.seed);
    use_threads(f.threads);
    if (f.opt.vocab_dir.empty()) f.opt.vocab_dir = train::data_dir();  // train/run/paths.h
    train::PrepareResult r = train::prepare(f.opt, std::cerr);
    fmt::print(
        "{} sources, {} documents ({} train, {} val), {} tokens ({} train, {} val) in {} shards in '{}'; "
        "{:.1f} MB in {:.1f} s ({:.2f} MB/s)\n",
        r.sources, r.documents_train + r.documents_val, r.documents_train, r.documents_val,
        r.tokens_train + r.tokens_val, r.tokens_train, r.tokens_val, r.shards, f.opt.out_dir,
        static_cast<double>(r.bytes) / 1e6, r.seconds, static_cast<double>(r.bytes) / 1e6 / r.seconds);
    return 0;
}

}  // namespace

Command prepare_command() {
    return {
        "prepare", "tokenize text corpora into llm.c-format token shards (train_NNNNNN.bin, val_NNNNNN.bin)",
        [](CLI::App& sub) -> Action {
            auto f = std::make_shared<PrepareFlags>();
            auto& o = f->opt;
            o.vocab_dir.clear();  // empty: the data folder, found at run time (train/run/paths.h)
            sub.add_option("--input", o.inputs, "text files, directories (walked recursively) or - for stdin")
                ->required();
            sub.add_option("--out", o.out_dir, "output directory for the shards and manifest.json")
                ->required();
            sub.add_option("--format", o.format,
                           "documents: file (one per file), lines (one per line), jsonl (one per line, a "
                           "JSON object's --text-field), brown (a tagged Brown Corpus sample per file)")
                ->capture_default_str();
            sub.add_option("--vocab", o.vocab,
                           "gpt2: shards of GPT-2 ids; compact: the corpus's distinct GPT-2 ids relabelled "
                           "0 .. K-1 (lossless, a smaller output head; the map goes into manifest.json and "
                           "train --data reads it)")
                ->capture_default_str()
                ->check(CLI::IsMember({"gpt2", "compact"}));
            sub.add_option("--text-field", o.text_field, "the text field of --format jsonl")
                ->capture_default_str();
            sub.add_option("--val-fraction", o.val_fraction,
                           "share of documents for val (by a seeded hash of each document's bytes)")
                ->capture_default_str();
            sub.add_option("--seed", f->seed, "seed of the val split rule (0 .. 2^64-1)")
                ->capture_default_str();
            sub.add_option("--shard-tokens", o.shard_tokens, "tokens per shard (the last one holds the rest)")
                ->capture_default_str();
            sub.add_option(
                "--vocab-dir", o.vocab_dir,
                "folder with encoder.json and vocab.bpe (default: the data folder, train/run/paths.h)");
            sub.add_option("--threads", f->threads, "tokenizer threads" + std::string(kThreadsDefault))

                ->check(CLI::PositiveNumber);
            sub.add_flag(
                "--quiet", [f](int64_t) { f->opt.progress = false; }, "no progress line");
            return [f] { return run_prepare(*f); };
        }};
}

}  // namespace tg::cli
