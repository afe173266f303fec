#include "models/generate.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace tg::models {
namespace {

// The next token from the last position's logits: top-k, then argmax or a draw.
int64_t pick(std::vector<float> last, const GenerateOptions& opt, Generator& gen) {
    int64_t V = static_cast<int64_t>(last.size());
    if (opt.top_k && *opt.top_k > 0 && *opt.top_k < V) {
        std::vector<float> sorted = last;
        std::nth_element(sorted.begin(), sorted.begin() + (*opt.top_k - 1), sorted.end(),
                         std::greater<float>());
        float kth = sorted[*opt.top_k - 1];
        for (float& v : last)
            if (v < kth) v = -std::numeric_limits<float>::infinity();
    }
    if (opt.temperature <= 0.0f) return std::max_element(last.begin(), last.end()) - last.begin();
    Tensor scaled = Tensor::from_vector(last, {V});
    Tensor probs = softmax(div(scaled, opt.temperature));
    // torch.multinomial(probs, 1): inverse CDF on one uniform draw.
    double u = gen.uniform_double(0.0, 1.0), acc = 0;
    for (int64_t v = 0; v < V; ++v) {
        acc += probs.data()[v];
        if (u < acc) return v;
    }
    return V - 1;
}

Ids window(const std::vector<int64_t>& ids, size_t start) {
    return Ids{{1, static_cast<int64_t>(ids.size() - start)},
               std::vector<int64_t>(ids.begin() + start, ids.end())};
}

}  // namespace

std::vector<int64_t> generate(GPTModel& model, std::vector<int64_t> ids, const GenerateOptions& opt,
                              Generator& gen) {
    // An empty prompt has no last position to read logits from (row -1): the
    // caller must give at least one token; GPT-2 starts unconditional samples
    // from <|endoftext|>.
    if (ids.empty())
        throw Error(
            "tapegrad: generate: the prompt has no tokens (start from <|endoftext|>, id 50256, for an "
            "unconditional sample)");
    if (opt.max_new_tokens < 0 || !(opt.temperature >= 0.0f) || !std::isfinite(opt.temperature) ||
        (opt.top_k && *opt.top_k < 0))
        throw Error(
            "tapegrad: generate: max_new_tokens and top_k must be >= 0 and temperature finite and >= 0");
    bool was_training = model.is_training();
    model.eval();
    NoGradGuard ng;
    size_t ctx = static_cast<size_t>(model.config().context_length);
    KVCache cache;
    for (int64_t step = 0; step < opt.max_new_tokens; ++step) {
        size_t start = ids.size() > ctx ? ids.size() - ctx : 0;
        Tensor logits;
        if (!opt.kv_cache) {
            logits = model.forward(window(ids, start));
        } else if (step > 0 && start == 0) {
            logits = model.forward_cached(window(ids, ids.size() - 1), cache);  // the newest token only
        } else {
            cache.reset();  // first step, or the window moved: refill from the cropped window
            logits = model.forward_cached(window(ids, start), cache);
        }
        int64_t V = logits.shape().back();
        const float* row = logits.data() + (logits.numel() - V);
        int64_t next = pick(std::vector<float>(row, row + V), opt, gen);
        if (opt.eos_id && next == *opt.eos_id) break;
        ids.push_back(next);
        if (opt.on_token) opt.on_token(next);
    }
    model.train(was_training);
    return ids;
}

}  // namespace tg::models
