// The book's data pipeline (Chapter 2 and 5): text split 90/10 on characters,
// token windows of max_length with a stride (targets shifted by one), and a
// loader with batch size, shuffle and drop_last.
//
// The loader draws random numbers exactly as torch.utils.data.DataLoader does
// with the global generator: every iteration over it (an epoch, or an
// evaluation that reads a few batches) first draws a base seed
// (random_int64); a shuffled loader then draws a seed for a fresh generator
// and takes randperm(n) from it. Evaluation iterates the train loader too, so
// it consumes random numbers the same way.
#pragma once

#include <string>
#include <vector>

#include "core/tapegrad.h"

namespace tg::train {

std::string read_text_file(const std::string& path);  // throws with the reason

// Split at int(ratio * number of code points), as Python slices a str.
std::pair<std::string, std::string> split_train_val(const std::string& text, double ratio);

class WindowDataset {
public:
    // Windows start at 0, stride, 2*stride, ... while start < len(ids) - max_length.
    WindowDataset(std::vector<int64_t> ids, int64_t max_length, int64_t stride);
    int64_t size() const { return static_cast<int64_t>(starts_.size()); }
    int64_t max_length() const { return max_length_; }
    // Window i: input ids[s, s+T), target ids[s+1, s+T+1).
    void window(int64_t i, int64_t* input, int64_t* target) const;
    int64_t num_tokens() const { return static_cast<int64_t>(ids_.size()); }

private:
    std::vector<int64_t> ids_;
    std::vector<int64_t> starts_;
    int64_t max_length_;
};

struct Batch {
    Ids input, target;  // [B, T]
    int64_t numel() const { return input.numel(); }
};

class DataLoader {
public:
    DataLoader(const WindowDataset& ds, int64_t batch_size, bool shuffle, bool drop_last);
    int64_t num_batches() const;  // len(loader)
    // One iteration's window order (draws from gen as described above).
    std::vector<int64_t> begin_iteration(Generator& gen);
    // Batch k of an iteration order.
    Batch batch(const std::vector<int64_t>& order, int64_t k) const;
    bool shuffle() const { return shuffle_; }

private:
    const WindowDataset& ds_;
    int64_t batch_size_;
    bool shuffle_, drop_last_;
};

}  // namespace tg::train
