// Text generation as the book's `generate` (Chapter 5): crop the context to the
// last context_length tokens, take the last position's logits, optionally keep
// the top-k (others -inf), then greedy argmax (temperature 0) or sampling from
// softmax(logits / temperature); stop early at eos_id when given.
//
// With kv_cache on, the first step runs the (cropped) prompt once through
// GPTModel::forward_cached and every later step feeds only the newest token.
// Past the context window the book crops to the last context_length tokens,
// which moves every token to a new position, so cached keys no longer apply: the
// cache restarts from the cropped window at each such step (the same tokens and
// positions as the uncached path, at the uncached cost). It does not slide.
#pragma once

#include <functional>
#include <optional>

#include "models/gpt.h"

namespace tg::models {

struct GenerateOptions {
    int64_t max_new_tokens = 25;
    float temperature = 0.0f;
    std::optional<int64_t> top_k{};
    std::optional<int64_t> eos_id{};
    bool kv_cache = false;                          // the per-epoch samples keep the uncached path
    std::function<void(int64_t token)> on_token{};  // called with each new token as it comes
};

// ids: one sequence of at least one token (an empty one is refused: GPT-2
// starts unconditional samples from <|endoftext|>); returns it with the new
// tokens appended. Runs in eval mode
// under NoGradGuard; restores the model's training flag. Sampling draws from gen.
std::vector<int64_t> generate(GPTModel& model, std::vector<int64_t> ids, const GenerateOptions& opt,
                              Generator& gen = default_generator());

}  // namespace tg::models
