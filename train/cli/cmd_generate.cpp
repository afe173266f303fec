// `tapegrad generate`: continue a prompt from a checkpoint tapegrad wrote (its
// metadata carries the model's config).
#include <CLI/CLI.hpp>

#include <iostream>
#include <memory>

#include "core/random.h"
#include "models/checkpoint.h"
#include "models/generate.h"
#include "train/cli/commands.h"
#include "train/tokenizer.h"

namespace tg::cli {
namespace {

struct GenerateFlags {
    std::string checkpoint, prompt = "Every effort moves you", vocab_dir = repo_path("data");
    models::GenerateOptions gen;
    int64_t top_k = 0;
    uint64_t seed = 123;
};

int run_generate(GenerateFlags& f) {
    if (f.top_k > 0) f.gen.top_k = f.top_k;
    auto st = models::read_safetensors(f.checkpoint);
    models::GPTModel model(models::checkpoint_config(st, f.checkpoint));
    models::load_model_weights(model, st, f.checkpoint);
    train::Tokenizer tok(f.vocab_dir + "/encoder.json", f.vocab_dir + "/vocab.bpe");
    Generator gen(f.seed);
    auto ids = models::generate(model, tok.encode(f.prompt, true), f.gen, gen);
    std::cout << tok.decode(ids) << std::endl;
    return 0;
}

}  // namespace

Command generate_command() {
    return {
        "generate", "continue a prompt with a trained checkpoint", [](CLI::App& sub) -> Action {
            auto f = std::make_shared<GenerateFlags>();
            sub.add_option("--checkpoint", f->checkpoint, "a checkpoint written by tapegrad")->required();
            sub.add_option("--prompt", f->prompt, "start text")->capture_default_str();
            sub.add_option("--max-new-tokens", f->gen.max_new_tokens, "tokens to add")->capture_default_str();
            sub.add_option("--temperature", f->gen.temperature,
                           "0: greedy; > 0: sample from softmax(logits / T)")
                ->capture_default_str();
            sub.add_option("--top-k", f->top_k, "keep the k most likely tokens (0: all)")
                ->capture_default_str();
            sub.add_option("--seed", f->seed, "sampling seed")->capture_default_str();
            sub.add_option("--vocab-dir", f->vocab_dir, "folder with encoder.json and vocab.bpe")
                ->capture_default_str();
            return [f] { return run_generate(*f); };
        }};
}

}  // namespace tg::cli
