#include "train/data/vocab_map.h"

#include <fmt/format.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/tensor.h"

namespace tg::train {
using json = nlohmann::json;

VocabMap::VocabMap(std::vector<int64_t> ids) : gpt2_(std::move(ids)) {
    if (gpt2_.empty()) throw Error("tapegrad: compact vocabulary: the id list is empty");
    for (size_t i = 0; i < gpt2_.size(); ++i) {
        if (gpt2_[i] < 0 || gpt2_[i] > 0xFFFF || (i > 0 && gpt2_[i] <= gpt2_[i - 1]))
            throw Error(fmt::format("tapegrad: compact vocabulary: entry {} ({}) is not a GPT-2 id above the "
                                    "one before it",
                                    i, gpt2_[i]));
    }
    dense_.assign(static_cast<size_t>(gpt2_.back() + 1), -1);
    for (size_t i = 0; i < gpt2_.size(); ++i) dense_[static_cast<size_t>(gpt2_[i])] = static_cast<int32_t>(i);
}

std::optional<VocabMap> VocabMap::from_manifest(const std::string& dir) {
    std::string path = dir + "/manifest.json";
    if (!std::filesystem::is_regular_file(path)) return std::nullopt;
    std::ifstream f(path);
    json m;
    try {
        m = json::parse(f);
    } catch (const json::exception& e) {
        throw Error("tapegrad: --data '" + dir + "': manifest.json is not valid JSON: " + e.what());
    }
    if (!m.contains("vocabulary") || m["vocabulary"].value("kind", "gpt2") == "gpt2") return std::nullopt;
    const json& v = m["vocabulary"];
    try {
        if (v.at("kind") != "compact")
            throw Error("tapegrad: --data '" + dir + "': manifest.json: vocabulary kind " + v.at("kind").dump() +
                        " is not understood (gpt2 or compact)");
        VocabMap map(v.at("gpt2_ids").get<std::vector<int64_t>>());
        if (map.size() != v.at("size").get<int64_t>())
            throw Error(fmt::format("tapegrad: --data '{}': manifest.json: vocabulary size {} but {} ids", dir,
                                    v.at("size").get<int64_t>(), map.size()));
        return map;
    } catch (const json::exception& e) {
        throw Error("tapegrad: --data '" + dir + "': manifest.json: the vocabulary is malformed: " + e.what());
    }
}

VocabMap VocabMap::from_json(const std::string& text) {
    try {
        return VocabMap(json::parse(text).at("gpt2_ids").get<std::vector<int64_t>>());
    } catch (const json::exception& e) {
        throw Error(std::string("tapegrad: a checkpoint's tapegrad.vocab is malformed: ") + e.what());
    }
}

std::string VocabMap::to_json() const { return json{{"kind", "compact"}, {"size", size()}, {"gpt2_ids", gpt2_}}.dump(); }

int64_t VocabMap::to_gpt2(int64_t d) const {
    if (d < 0 || d >= size())
        throw Error(fmt::format("tapegrad: compact vocabulary: id {} is outside [0, {})", d, size()));
    return gpt2_[static_cast<size_t>(d)];
}

int64_t VocabMap::to_dense(int64_t g) const {
    return g >= 0 && g < static_cast<int64_t>(dense_.size()) ? dense_[static_cast<size_t>(g)] : -1;
}

std::vector<int64_t> VocabMap::to_gpt2(const std::vector<int64_t>& dense) const {
    std::vector<int64_t> out;
    out.reserve(dense.size());
    for (int64_t d : dense) out.push_back(to_gpt2(d));
    return out;
}

std::vector<int64_t> VocabMap::to_dense(const std::vector<int64_t>& gpt2, const std::string& what) const {
    std::vector<int64_t> out;
    out.reserve(gpt2.size());
    for (int64_t g : gpt2) {
        int64_t d = to_dense(g);
        if (d < 0)
            throw Error(fmt::format("tapegrad: {} holds GPT-2 token {}, which the corpus's compact "
                                    "vocabulary ({} ids) does not have",
                                    what, g, size()));
        out.push_back(d);
    }
    return out;
}

}  // namespace tg::train
