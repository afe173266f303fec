// A compact vocabulary for one corpus: the distinct GPT-2 ids the corpus uses,
// relabelled 0 .. K-1 in increasing GPT-2 order. Lossless for that corpus
// (every token it holds has a dense id), and the output head and embedding
// shrink from 50,257 rows to K (Brown: ~32.7k), which is most of a small
// model's step. The GPT-2 tokenizer stays the only tokenizer: text is encoded
// to GPT-2 ids and mapped to dense ids; samples are mapped back and decoded.
//
// `prepare --vocab compact` writes the map into manifest.json:
//   "vocabulary": {"kind": "compact", "size": K, "gpt2_ids": [g_0, g_1, ...]}
// (dense id i is GPT-2 id g_i, g strictly increasing) and the shards hold
// dense ids. `train --data DIR` reads it, sets the model's vocab_size to K and
// decodes its samples through it; checkpoints carry it ("tapegrad.vocab").
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace tg::train {

class VocabMap {
public:
    // From a strictly increasing list of GPT-2 ids; throws naming the problem.
    explicit VocabMap(std::vector<int64_t> gpt2_ids);
    // The map of a shard directory's manifest.json, or nullopt when the
    // directory has no manifest or its vocabulary is GPT-2's own.
    static std::optional<VocabMap> from_manifest(const std::string& dir);
    // The map as stored in a checkpoint's metadata (to_json()).
    static VocabMap from_json(const std::string& text);
    std::string to_json() const;

    int64_t size() const { return static_cast<int64_t>(gpt2_.size()); }
    int64_t to_gpt2(int64_t dense) const;  // throws for an id outside [0, K)
    // The dense id of a GPT-2 id, or -1 when the corpus never used it.
    int64_t to_dense(int64_t gpt2) const;
    std::vector<int64_t> to_gpt2(const std::vector<int64_t>& dense) const;
    // Throws naming the first GPT-2 id the corpus never used and `what` (e.g.
    // "the start context"): a prompt must be made of the corpus's tokens.
    std::vector<int64_t> to_dense(const std::vector<int64_t>& gpt2, const std::string& what) const;
    const std::vector<int64_t>& gpt2_ids() const { return gpt2_; }

private:
    std::vector<int64_t> gpt2_;
    std::vector<int32_t> dense_;  // indexed by GPT-2 id, -1 where unused
};

}  // namespace tg::train
