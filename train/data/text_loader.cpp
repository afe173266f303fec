#include "train/data/text_loader.h"

#include <fmt/format.h>

#include <filesystem>

#include "train/io/read_file.h"

namespace tg::train {

std::string read_text_file(const std::string& path) {
    if (std::filesystem::is_directory(path))
        throw Error(fmt::format("tapegrad: data file '{}' is a folder; expected a UTF-8 text file", path));
    return read_file(path, "cannot read data file");
}

std::pair<std::string, std::string> split_train_val(const std::string& text, double ratio) {
    int64_t chars = 0;
    for (unsigned char c : text) chars += (c & 0xC0) != 0x80;  // count code points
    int64_t split = static_cast<int64_t>(ratio * static_cast<double>(chars));
    size_t byte = 0;
    for (int64_t seen = 0; byte < text.size(); ++byte) {
        if ((static_cast<unsigned char>(text[byte]) & 0xC0) != 0x80) {
            if (seen == split) break;
            ++seen;
        }
    }
    return {text.substr(0, byte), text.substr(byte)};
}

WindowDataset::WindowDataset(std::vector<int64_t> ids, int64_t max_length, int64_t stride)
    : ids_(std::move(ids)), max_length_(max_length) {
    if (max_length <= 0 || stride <= 0)
        throw Error(fmt::format("tapegrad: dataset: max_length {} and stride {} must be positive", max_length,
                                stride));
    for (int64_t s = 0; s < static_cast<int64_t>(ids_.size()) - max_length; s += stride) starts_.push_back(s);
}

void WindowDataset::window(int64_t i, int64_t* input, int64_t* target) const {
    int64_t s = starts_.at(static_cast<size_t>(i));
    std::copy_n(ids_.begin() + s, max_length_, input);
    std::copy_n(ids_.begin() + s + 1, max_length_, target);
}

DataLoader::DataLoader(const WindowDataset& ds, int64_t batch_size, bool shuffle, bool drop_last)
    : ds_(ds), batch_size_(batch_size), shuffle_(shuffle), drop_last_(drop_last) {
    if (batch_size <= 0)
        throw Error(fmt::format("tapegrad: loader: batch size {} must be positive", batch_size));
}

int64_t DataLoader::num_batches() const {
    int64_t n = ds_.size();
    return drop_last_ ? n / batch_size_ : (n + batch_size_ - 1) / batch_size_;
}

std::vector<int64_t> DataLoader::begin_iteration(Generator& gen) {
    gen.random_int64();  // _BaseDataLoaderIter's base seed
    if (!shuffle_) {
        std::vector<int64_t> order(static_cast<size_t>(ds_.size()));
        for (int64_t i = 0; i < ds_.size(); ++i) order[i] = i;
        return order;
    }
    Generator sampler(static_cast<uint64_t>(gen.random_int64()));  // RandomSampler's seed
    return sampler.randperm(ds_.size());
}

Batch DataLoader::batch(const std::vector<int64_t>& order, int64_t k) const {
    int64_t first = k * batch_size_;
    int64_t b = std::min<int64_t>(batch_size_, static_cast<int64_t>(order.size()) - first);
    int64_t T = ds_.max_length();
    Batch out{{{b, T}, std::vector<int64_t>(static_cast<size_t>(b * T))},
              {{b, T}, std::vector<int64_t>(static_cast<size_t>(b * T))}};
    for (int64_t r = 0; r < b; ++r)
        ds_.window(order[first + r], out.input.data.data() + r * T, out.target.data.data() + r * T);
    return out;
}

}  // namespace tg::train
