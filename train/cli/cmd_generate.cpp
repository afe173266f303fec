// `tapegrad generate`: continue a prompt from a checkpoint tapegrad wrote (its
// metadata carries the model's config), or from a pretrained GPT-2 in the Hugging
// Face model.safetensors layout (--gpt2; the shape comes from the file). Decoding
// uses the KV cache unless --no-kv-cache; --eos-id stops at a token. On a terminal
// (or with --stream) the text appears token by token as it is generated, followed
// by a tokens/s line on stderr; otherwise the whole text is printed at the end.
#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <iostream>
#include <memory>
#include <optional>

#include "core/blas.h"
#include "core/random.h"
#include "models/checkpoint.h"
#include "models/generate.h"
#include "models/gpt2_hf.h"
#include "nn/attention.h"
#include "train/run/preflight.h"
#include "train/cli/commands.h"
#include "train/cli/flags.h"
#include "train/run/paths.h"
#include "train/run/preflight.h"
#include "train/tokenizer/tokenizer.h"

namespace tg::cli {
namespace {

using Clock = std::chrono::steady_clock;

struct GenerateFlags {
    std::string checkpoint, gpt2, attention = "mha", prompt = "Every effort moves you",
                                  vocab_dir;  // vocab: empty = the data folder
    std::optional<int64_t> n_heads, eos_id;
    models::GenerateOptions gen;
    int64_t top_k = 0;
    std::string seed = "123";  // parsed strictly: no silent wrap of -1 or 2^64
    int threads = 0;           // 0: use_threads() picks
    bool no_kv_cache = false, stream = false, allow_nonfinite = false;
};

std::unique_ptr<models::GPTModel> load_model(const GenerateFlags& f) {
    if (f.checkpoint.empty() == f.gpt2.empty())
        throw Error(
            "tapegrad generate: give exactly one of --checkpoint FILE (written by tapegrad) or --gpt2 "
            "FILE (a Hugging Face GPT-2 model.safetensors)");
    if (!f.gpt2.empty()) {
        models::MappedSafeTensors st(f.gpt2);
        auto model = std::make_unique<models::GPTModel>(models::gpt2_hf_config(st, f.n_heads, f.attention));
        models::load_gpt2_hf(*model, st);
        return model;
    }
    auto st = models::read_safetensors(f.checkpoint);
    auto model = std::make_unique<models::GPTModel>(models::checkpoint_config(st, f.checkpoint));
    models::load_model_weights(*model, st, f.checkpoint, f.allow_nonfinite);
    return model;
}

// BPE decoding concatenates bytes, so the text of ids + [t] extends the text of
// ids: print only the new bytes as each token comes.
class Streamer {
public:
    Streamer(const train::Tokenizer& tok, std::vector<int64_t> ids) : tok_(tok), ids_(std::move(ids)) {
        std::string s = tok_.decode(ids_);
        std::cout << s << std::flush;
        printed_ = s.size();
    }
    void operator()(int64_t token) {
        ids_.push_back(token);
        std::string s = tok_.decode(ids_);
        std::cout << s.substr(printed_) << std::flush;
        printed_ = s.size();
    }

private:
    const train::Tokenizer& tok_;
    std::vector<int64_t> ids_;
    size_t printed_ = 0;
};

int run_generate(GenerateFlags& f) {
    use_threads(f.threads);
    if (!std::isfinite(f.gen.temperature) || f.gen.temperature < 0)
        throw Error(fmt::format("tapegrad: --temperature must be a finite number >= 0 (0: greedy), not {}",
                                f.gen.temperature));
    uint64_t seed = train::parse_u64_strict("--seed", f.seed);
    auto t_load = Clock::now();
    auto model = load_model(f);
    double load_s = std::chrono::duration<double>(Clock::now() - t_load).count();
    std::string dir = f.vocab_dir.empty() ? train::data_dir() : f.vocab_dir;
    train::Tokenizer tok(dir + "/encoder.json", dir + "/vocab.bpe");
    if (f.top_k > 0) f.gen.top_k = f.top_k;
    const int64_t vocab = model->config().vocab_size;
    if (f.eos_id && (*f.eos_id < 0 || *f.eos_id >= vocab))
        throw Error(fmt::format("tapegrad: --eos-id must be a token id in [0, {}] (the model's vocabulary), "
                                "not {}",
                                vocab - 1, *f.eos_id));
    f.gen.eos_id = f.eos_id;
    f.gen.kv_cache = !f.no_kv_cache;
    std::vector<int64_t> ids = tok.encode(f.prompt, true);
    if (ids.empty()) {  // no last position to continue from: start as GPT-2's unconditional samples
        std::cerr << "tapegrad: note: empty prompt: starting from <|endoftext|> (id 50256), as GPT-2 does\n";
        ids = {train::Tokenizer::kEndOfText};
    }
    bool stream = f.stream || ::isatty(STDOUT_FILENO);
    std::optional<Streamer> streamer;
    if (stream) {
        streamer.emplace(tok, ids);
        f.gen.on_token = [&](int64_t t) { (*streamer)(t); };
    }
    Generator gen(seed);
    auto t0 = Clock::now();
    auto out = models::generate(*model, ids, f.gen, gen);
    double secs = std::chrono::duration<double>(Clock::now() - t0).count();
    if (!stream) {
        std::cout << tok.decode(out) << std::endl;
        return 0;
    }
    size_t n = out.size() - ids.size();
    std::cout << std::endl;
    std::cerr << fmt::format(
        "[model loaded in {:.2f} s; {} new tokens in {:.2f} s, {:.1f} tokens/s, KV cache {}]\n", load_s, n,
        secs, static_cast<double>(n) / std::max(secs, 1e-9), f.gen.kv_cache ? "on" : "off");
    return 0;
}

}  // namespace

Command generate_command() {
    return {"generate", "continue a prompt with a trained checkpoint or a pretrained GPT-2",
            [](CLI::App& sub) -> Action {
                auto f = std::make_shared<GenerateFlags>();
                sub.add_option("--checkpoint", f->checkpoint,
                               "a checkpoint written by tapegrad (or by tools/convert_book_pth.py)");
                sub.add_option(
                    "--gpt2", f->gpt2,
                    "a pretrained GPT-2 (124M to 1558M) in the Hugging Face model.safetensors layout");
                sub.add_option("--attention", f->attention,
                               "with --gpt2: load into mha, or alt1 (merged S_h = Wk_h^T Wq_h per head)")
                    ->capture_default_str()
                    ->check([](const std::string& a) -> std::string {
                        // GPT-2's layout is query/key factors: it loads into a variant
                        // that has them (mha) or is converted from them (alt1).
                        const nn::AttentionTraits* t = nn::find_attention_traits(a);
                        if (t && (t->qk_factors || !t->product_of.empty())) return "";
                        return "GPT-2 weights load into attention mha or alt1, not '" + a + "'";
                    });
                sub.add_option("--n-heads", f->n_heads,
                               "with --gpt2: heads, for a file of none of OpenAI's sizes")
                    ->check(CLI::PositiveNumber);
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
                sub.add_option("--eos-id", f->eos_id,
                               "stop when this token is generated (50256 is GPT-2's <|endoftext|>)");
                sub.add_flag("--no-kv-cache", f->no_kv_cache,
                             "recompute the whole window for every token (the book's loop)");
                sub.add_flag("--stream", f->stream,
                             "print tokens as they come even when stdout is not a terminal");
                sub.add_option("--threads", f->threads, "BLAS threads" + std::string(kThreadsDefault))

                    ->check(CLI::PositiveNumber);
                sub.add_option(
                    "--vocab-dir", f->vocab_dir,
                    "folder with encoder.json and vocab.bpe (default: the data folder, train/run/paths.h)");
                return [f] { return run_generate(*f); };
            }};
}

}  // namespace tg::cli
