#include "train/data/shard_loader.h"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>

namespace tg::train {
namespace fs = std::filesystem;

ShardDataset::ShardDataset(const std::vector<std::string>& paths, int64_t T) : T_(T) {
    if (T <= 0) throw Error(fmt::format("tapegrad: shard data: context length {} must be positive", T));
    starts_.push_back(0);
    for (const auto& p : paths) {
        shards::MappedShard s(p);
        if (s.size() < T + 1)
            throw Error(
                fmt::format("tapegrad: shard '{}' holds {} tokens: fewer than one window of "
                            "--context-length {} + 1; lower --context-length or prepare larger shards",
                            p, s.size(), T));
        tokens_ += s.size();
        starts_.push_back(starts_.back() + (s.size() - 1) / T);
        shards_.push_back(std::move(s));
    }
    starts_.erase(starts_.begin());  // starts_[i] now counts the windows of shards 0..i
}

void ShardDataset::window(int64_t w, int64_t* input, int64_t* target) const {
    if (w < 0 || w >= num_windows())
        throw Error(fmt::format("tapegrad: shard data: window {} outside [0, {})", w, num_windows()));
    size_t i = static_cast<size_t>(std::upper_bound(starts_.begin(), starts_.end(), w) - starts_.begin());
    int64_t first = i == 0 ? 0 : starts_[i - 1];
    const uint16_t* t = shards_[i].tokens() + (w - first) * T_;
    for (int64_t k = 0; k < T_; ++k) {
        input[k] = t[k];
        target[k] = t[k + 1];
    }
}

namespace {

// SplitMix64's finaliser: a fast, well-mixed 64-bit hash.
uint64_t mix(uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

}  // namespace

WindowPermutation::WindowPermutation(int64_t n, uint64_t seed, int64_t epoch) : n_(n) {
    int bits = 2;
    while ((int64_t{1} << bits) < n) bits += 2;  // a power of 4 >= n: fewer than 4 walks per index on average
    half_bits_ = bits / 2;
    half_mask_ = (uint64_t{1} << half_bits_) - 1;
    uint64_t k = mix(seed ^ mix(static_cast<uint64_t>(epoch) + 0x5EED));
    for (auto& key : keys_) key = k = mix(k);
}

int64_t WindowPermutation::operator()(int64_t i) const {
    // Balanced Feistel rounds permute [0, 4^h); values >= n walk on until they
    // land inside [0, n), which keeps it a bijection of [0, n).
    uint64_t x = static_cast<uint64_t>(i);
    do {
        uint64_t l = x >> half_bits_, r = x & half_mask_;
        for (uint64_t key : keys_) {
            uint64_t f = mix(r ^ key) & half_mask_;
            uint64_t nl = r;
            r = l ^ f;
            l = nl;
        }
        x = (l << half_bits_) | r;
    } while (x >= static_cast<uint64_t>(n_));
    return static_cast<int64_t>(x);
}

ShardLoader::ShardLoader(const ShardDataset& ds, int64_t batch_size, bool shuffle, uint64_t seed, int rank,
                         int world)
    : ds_(ds), B_(batch_size), shuffle_(shuffle), seed_(seed), rank_(rank), world_(world) {
    if (batch_size <= 0)
        throw Error(fmt::format("tapegrad: loader: batch size {} must be positive", batch_size));
    if (world <= 0 || rank < 0 || rank >= world)
        throw Error(fmt::format("tapegrad: loader: rank {} is outside [0, world size {})", rank, world));
}

int64_t ShardLoader::batches_per_epoch() const { return ds_.num_windows() / (B_ * world_); }

int64_t ShardLoader::window_at(int64_t epoch, int64_t j) const {
    if (!shuffle_) return j;
    return WindowPermutation(ds_.num_windows(), seed_, epoch)(j);
}

Batch ShardLoader::make(const std::vector<int64_t>& windows) const {
    int64_t b = static_cast<int64_t>(windows.size()), T = ds_.context_length();
    Batch out{{{b, T}, std::vector<int64_t>(static_cast<size_t>(b * T))},
              {{b, T}, std::vector<int64_t>(static_cast<size_t>(b * T))}};
    for (int64_t r = 0; r < b; ++r)
        ds_.window(windows[r], out.input.data.data() + r * T, out.target.data.data() + r * T);
    return out;
}

Batch ShardLoader::batch(int64_t epoch, int64_t k) const {
    if (k < 0 || k >= batches_per_epoch())
        throw Error(fmt::format("tapegrad: loader: batch {} outside the epoch's {}", k, batches_per_epoch()));
    std::vector<int64_t> w(static_cast<size_t>(B_));
    std::optional<WindowPermutation> perm;
    if (shuffle_) perm.emplace(ds_.num_windows(), seed_, epoch);
    int64_t first = (k * world_ + rank_) * B_;
    for (int64_t r = 0; r < B_; ++r) w[r] = perm ? (*perm)(first + r) : first + r;
    return make(w);
}

int64_t ShardLoader::eval_batches(int64_t eval_iter) const {
    int64_t m = std::min(ds_.num_windows(), eval_iter * B_);
    return (m + B_ - 1) / B_;
}

Batch ShardLoader::eval_batch(int64_t k, int64_t eval_iter) const {
    // Windows evenly spaced over the split: subset index j of m -> j * N / m.
    int64_t n = ds_.num_windows(), m = std::min(n, eval_iter * B_);
    int64_t first = k * B_, b = std::min(B_, m - first);
    if (b <= 0) throw Error(fmt::format("tapegrad: loader: evaluation batch {} is past the subset", k));
    std::vector<int64_t> w(static_cast<size_t>(b));
    for (int64_t r = 0; r < b; ++r) w[r] = (first + r) * n / m;
    return make(w);
}

namespace {

// manifest.json's shards as file name -> (tokens, crc32 hex); throws naming the manifest.
std::map<std::string, std::pair<int64_t, std::string>> manifest_shards(const std::string& path) {
    std::map<std::string, std::pair<int64_t, std::string>> out;
    try {
        std::ifstream f(path);
        nlohmann::json m = nlohmann::json::parse(f);
        for (const auto& s : m.at("shards"))
            out[s.at("file").get<std::string>()] = {s.at("tokens").get<int64_t>(),
                                                    s.at("crc32").get<std::string>()};
    } catch (const nlohmann::json::exception& e) {
        throw Error(fmt::format("tapegrad: --data: '{}' is damaged ({}); run `tapegrad prepare` again", path,
                                e.what()));
    }
    return out;
}

// The first id >= vocab in a shard, or -1.
int64_t first_id_past(const shards::MappedShard& s, int64_t vocab) {
    const uint16_t* t = s.tokens();
    for (int64_t i = 0; i < s.size(); ++i)
        if (t[i] >= vocab) return i;
    return -1;
}

}  // namespace

void check_corpus(const std::string& dir, int64_t vocab_size, std::ostream& notes) {
    std::vector<std::string> files = shards::list_shards(dir, "train"), va = shards::list_shards(dir, "val");
    files.insert(files.end(), va.begin(), va.end());
    const std::string mpath = (fs::path(dir) / "manifest.json").string();
    std::optional<std::map<std::string, std::pair<int64_t, std::string>>> listed;
    if (fs::exists(mpath))
        listed = manifest_shards(mpath);
    else
        notes << fmt::format("tapegrad: note: --data '{}' has no manifest.json (shards from elsewhere, as "
                             "llm.c's): their list and checksums are not checked\n",
                             dir);
    for (const auto& path : files) {
        std::string name = fs::path(path).filename().string();
        shards::MappedShard s(path);  // validates the header against the size
        if (listed) {
            auto it = listed->find(name);
            if (it == listed->end())
                throw Error(
                    fmt::format("tapegrad: --data '{}': shard '{}' is not in manifest.json (left from "
                                "another prepare?); run `tapegrad prepare` again",
                                dir, name));
            if (it->second.first != s.size())
                throw Error(
                    fmt::format("tapegrad: --data '{}': shard '{}' holds {} tokens, manifest.json says {}",
                                dir, name, s.size(), it->second.first));
            std::string crc = fmt::format("{:08x}", s.file_crc32());
            if (crc != it->second.second)
                throw Error(
                    fmt::format("tapegrad: --data '{}': shard '{}' has CRC-32 {}, manifest.json says {}: "
                                "the file is damaged or from another prepare",
                                dir, name, crc, it->second.second));
            listed->erase(it);
        }
        if (int64_t at = first_id_past(s, vocab_size); at >= 0)
            throw Error(fmt::format(
                "tapegrad: --data '{}': shard '{}' holds token id {} at offset {} (token {} "
                "of its body), outside the vocabulary [0, {}) of --vocab-size {}",
                dir, name, s.tokens()[at], shards::kHeaderBytes + 2 * at, at, vocab_size, vocab_size));
    }
    if (listed && !listed->empty())
        throw Error(fmt::format("tapegrad: --data '{}': manifest.json lists '{}', which is missing", dir,
                                listed->begin()->first));
}

ShardCorpus::ShardCorpus(const std::string& d, int64_t T, int64_t B, bool shuffle, uint64_t seed) : dir(d) {
    std::vector<std::string> tr = shards::list_shards(d, "train"), va = shards::list_shards(d, "val");
    if (tr.empty())
        throw Error(
            fmt::format("tapegrad: --data '{}': the directory holds no token shards: expected "
                        "train_NNNNNN.bin (and val_NNNNNN.bin) in llm.c's format, as `tapegrad prepare "
                        "--out {}` writes them",
                        d, d));
    train_ds = std::make_unique<ShardDataset>(tr, T);
    train = std::make_unique<ShardLoader>(*train_ds, B, shuffle, seed);
    if (train->batches_per_epoch() == 0)
        throw Error(
            fmt::format("tapegrad: --data '{}': {} training windows of {}+1 tokens make no batch of {} "
                        "(lower --batch-size or --context-length)",
                        d, train_ds->num_windows(), T, B));
    if (!va.empty()) {
        val_ds = std::make_unique<ShardDataset>(va, T);
        val = std::make_unique<ShardLoader>(*val_ds, B, false, seed);
    }
}

}  // namespace tg::train
