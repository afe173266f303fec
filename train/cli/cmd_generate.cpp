// `tapegrad generate`: continue a prompt from a checkpoint tapegrad wrote (its
// metadata carries the model's config).
#include <CLI/CLI.hpp>

#include <fmt/format.h>

#include <cmath>
#include <iostream>
#include <memory>

#include "core/random.h"
#include "models/checkpoint.h"
#include "models/generate.h"
#include "train/checks.h"
#include "train/cli/commands.h"
#include "train/cli/flags.h"
#include "train/tokenizer.h"

namespace tg::cli {
namespace {

struct GenerateFlags {
    std::string checkpoint, prompt = "Every effort moves you", vocab_dir = repo_path("data");
    models::GenerateOptions gen;
    int64_t top_k = 0;
    std::string seed = "123";
    bool allow_nonfinite = false;
};

int run_generate(GenerateFlags& f) {
    if (f.top_k > 0) f.gen.top_k = f.top_k;
    if (!std::isfinite(f.gen.temperature) || f.gen.temperature < 0)
        throw Error(fmt::format("tapegrad: --temperature must be a finite number >= 0 (0: greedy), not {}",
                                f.gen.temperature));
    uint64_t seed = train::parse_u64_strict("--seed", f.seed);
    auto st = models::read_safetensors(f.checkpoint);
    models::GPTModel model(models::checkpoint_config(st, f.checkpoint));
    models::load_model_weights(model, st, f.checkpoint, f.allow_nonfinite);
    train::Tokenizer tok(f.vocab_dir + "/encoder.json", f.vocab_dir + "/vocab.bpe");
    Generator gen(seed);
    std::vector<int64_t> start = tok.encode(f.prompt, true);
    if (start.empty()) {  // no last position to continue from: start as GPT-2's unconditional samples
        std::cerr << "tapegrad: note: empty prompt: starting from <|endoftext|> (id 50256), as GPT-2 does\n";
        start = {train::Tokenizer::kEndOfText};
    }
    auto ids = models::generate(model, start, f.gen, gen);
    std::cout << tok.decode(ids) << std::endl;
    return 0;
}

}  // namespace

Command generate_command() {
    return {"generate", "continue a prompt with a trained checkpoint", [](CLI::App& sub) -> Action {
                auto f = std::make_shared<GenerateFlags>();
                sub.add_option("--checkpoint", f->checkpoint, "a checkpoint written by tapegrad")->required();
                sub.add_option("--prompt", f->prompt, "start text")->capture_default_str();
                sub.add_option("--max-new-tokens", f->gen.max_new_tokens, "tokens to add")
                    ->capture_default_str()
                    ->check(at_least(0));
                sub.add_option("--temperature", f->gen.temperature,
                               "0: greedy; > 0: sample from softmax(logits / T)")
                    ->capture_default_str();
                sub.add_option("--top-k", f->top_k, "keep the k most likely tokens (0: all)")
                    ->capture_default_str()
                    ->check(at_least(0));
                sub.add_option("--seed", f->seed, "sampling seed (0 .. 2^64-1)")->capture_default_str();
                sub.add_flag("--allow-nonfinite", f->allow_nonfinite,
                             "load a checkpoint whose weights hold NaN/Inf");
                sub.add_option("--vocab-dir", f->vocab_dir, "folder with encoder.json and vocab.bpe")
                    ->capture_default_str();
                return [f] { return run_generate(*f); };
            }};
}

}  // namespace tg::cli
