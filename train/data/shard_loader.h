// Training data from token shards (train/data/shards.h), memory-mapped.
//
// ShardDataset: one split (every train_* or val_* shard of a directory) cut into
// windows of T+1 tokens at stride T inside each shard (a window never spans two
// shards): window w gives input tokens[s, s+T) and target tokens[s+1, s+T+1).
// A shard of n tokens holds floor((n-1)/T) windows, as the book's sliding
// window with stride T. Tokens are read from the mapped files when a batch is
// made, so anonymous memory does not grow with the corpus.
//
// ShardLoader: batches of B windows. Order is sequential or, with shuffle, a
// seeded permutation of all windows, different every epoch. The permutation is
// a function, not a table (a 4-round Feistel network over the next power of 4
// >= N with cycle walking: a bijection of [0, N) computed per index), so its
// memory is O(1) however many windows there are, and a position is just
// (epoch, batch): a checkpoint stores those two numbers and resumes exactly.
// Rank slices: with `world` ranks, step k of an epoch takes windows
// [(k*world + rank)*B, +B) of the order, so ranks see disjoint windows and
// batches_per_epoch = floor(N / (B*world)) for every rank.
//
// eval_windows: a fixed subset for evaluation, evenly spaced over the split and
// independent of seed, epoch and position, so --eval-iter losses are
// comparable across runs.
#pragma once

#include <algorithm>
#include <cstdint>
#include <iosfwd>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "train/data/shards.h"
#include "train/data/text_loader.h"

namespace tg::train {

class ShardDataset {
public:
    // Throws naming the shard if one holds fewer than T+1 tokens.
    ShardDataset(const std::vector<std::string>& paths, int64_t context_length);
    int64_t num_windows() const { return starts_.empty() ? 0 : starts_.back(); }
    int64_t num_tokens() const { return tokens_; }
    int64_t context_length() const { return T_; }
    size_t num_shards() const { return shards_.size(); }
    void window(int64_t w, int64_t* input, int64_t* target) const;

private:
    std::vector<shards::MappedShard> shards_;
    std::vector<int64_t> starts_;  // starts_[i]: windows before shard i; back(): all
    int64_t T_, tokens_ = 0;
};

// A seeded bijection of [0, n): the shuffled order of one epoch.
class WindowPermutation {
public:
    WindowPermutation(int64_t n, uint64_t seed, int64_t epoch);
    int64_t operator()(int64_t i) const;

private:
    int64_t n_;
    int half_bits_;
    uint64_t half_mask_, keys_[4];
};

class ShardLoader {
public:
    ShardLoader(const ShardDataset& ds, int64_t batch_size, bool shuffle, uint64_t seed, int rank = 0,
                int world = 1);
    int64_t batches_per_epoch() const;
    // Batch k (0-based) of `epoch` for this rank.
    Batch batch(int64_t epoch, int64_t k) const;
    // The window the order of `epoch` puts at position j.
    int64_t window_at(int64_t epoch, int64_t j) const;
    // Batch k of the fixed evaluation subset of at most eval_iter batches;
    // eval_batches(eval_iter) of them exist (fewer when the split is small).
    Batch eval_batch(int64_t k, int64_t eval_iter) const;
    int64_t eval_batches(int64_t eval_iter) const;
    int64_t batch_size() const { return B_; }

private:
    Batch make(const std::vector<int64_t>& windows) const;
    const ShardDataset& ds_;
    int64_t B_;
    bool shuffle_;
    uint64_t seed_;
    int rank_, world_;
};

// `train --data DIR` before step 0: the folder's manifest.json (prepare's) is
// read and must list exactly the train/val shards present, each with its size
// (1024 + 2 x tokens) and CRC-32; a folder without a manifest (llm.c's own
// shards) is allowed, said on `notes`. Every shard's ids are scanned against the
// vocabulary: the first id >= vocab_size is refused naming the shard and its
// token offset, so a wrong --vocab-size or a damaged shard fails here, not at
// the step whose batch holds it.
void check_corpus(const std::string& dir, int64_t vocab_size, std::ostream& notes);

// `train --data DIR`: the train_* and val_* shards of a directory, their
// loaders (train: shuffled or not, seeded by the run's seed; val: sequential),
// and the evaluation subsets. A directory without train shards is refused
// saying what was expected; val shards are optional (val loss is then NaN).
struct ShardCorpus {
    ShardCorpus(const std::string& dir, int64_t context_length, int64_t batch_size, bool shuffle,
                uint64_t seed);
    std::string dir;
    // The end-of-text id in these shards' numbering (documents' delimiter): GPT-2's
    // 50256, or what a compact vocabulary (the manifest's id map) made of it.
    int64_t eot_id = 50256;
    std::unique_ptr<ShardDataset> train_ds, val_ds;
    std::unique_ptr<ShardLoader> train, val;
    // Mean loss of `loss(batch)` over the first eval_iter batches of the subset.
    template <class F>
    static double eval_loss(const ShardLoader* l, int64_t eval_iter, F&& loss);
};

template <class F>
double ShardCorpus::eval_loss(const ShardLoader* l, int64_t eval_iter, F&& loss) {
    if (!l || eval_iter <= 0) return std::numeric_limits<double>::quiet_NaN();
    int64_t n = std::min<int64_t>(eval_iter, l->eval_batches(eval_iter));
    double total = 0;
    for (int64_t k = 0; k < n; ++k) total += loss(l->eval_batch(k, eval_iter));
    return total / static_cast<double>(n);
}

}  // namespace tg::train
