#include "models/generate.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace tg::models {

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
    int64_t ctx = model.config().context_length;
    for (int64_t step = 0; step < opt.max_new_tokens; ++step) {
        size_t start = ids.size() > static_cast<size_t>(ctx) ? ids.size() - ctx : 0;
        Ids in{{1, static_cast<int64_t>(ids.size() - start)},
               std::vector<int64_t>(ids.begin() + start, ids.end())};
        Tensor logits = model.forward(in);
        int64_t V = logits.shape().back();
        std::vector<float> last(logits.data() + (in.numel() - 1) * V, logits.data() + in.numel() * V);
        if (opt.top_k && *opt.top_k > 0 && *opt.top_k < V) {
            std::vector<float> sorted = last;
            std::nth_element(sorted.begin(), sorted.begin() + (*opt.top_k - 1), sorted.end(),
                             std::greater<float>());
            float kth = sorted[*opt.top_k - 1];
            for (float& v : last)
                if (v < kth) v = -std::numeric_limits<float>::infinity();
        }
        int64_t next;
        if (opt.temperature > 0.0f) {
            Tensor scaled = Tensor::from_vector(last, {V});
            Tensor probs = softmax(div(scaled, opt.temperature));
            // torch.multinomial(probs, 1): inverse CDF on one uniform draw.
            double u = gen.uniform_double(0.0, 1.0), acc = 0;
            next = V - 1;
            for (int64_t v = 0; v < V; ++v) {
                acc += probs.data()[v];
                if (u < acc) {
                    next = v;
                    break;
                }
            }
        } else {
            next = std::max_element(last.begin(), last.end()) - last.begin();
        }
        if (opt.eos_id && next == *opt.eos_id) break;
        ids.push_back(next);
    }
    model.train(was_training);
    return ids;
}

}  // namespace tg::models
