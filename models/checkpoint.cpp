#include "models/checkpoint.h"

#include <fmt/format.h>

#include <cmath>
#include <nlohmann/json.hpp>

namespace tg::models {

using json = nlohmann::json;

std::string config_to_json(const GPTConfig& c) {
    json j = {{"vocab_size", c.vocab_size},  {"context_length", c.context_length},
              {"emb_dim", c.emb_dim},        {"n_heads", c.n_heads},
              {"n_layers", c.n_layers},      {"drop_rate", c.drop_rate},
              {"qkv_bias", c.qkv_bias},      {"attention", c.attention},
              {"out_proj", c.has_out_proj()}};
    // A variant with query/key factors (mha) always records their width (older
    // files without it mean HS);
    // another variant only when set, so loading it is refused by GPTModel.
    if (c.traits().qk_factors || c.qk_dim) j["qk_dim"] = c.qk_head_dim();
    // The study's arms (models/gpt.h), only when set: older files read as defaults.
    if (c.init != "default") j["init"] = c.init;
    if (c.init_gain != 1.0f) j["init_gain"] = c.init_gain;
    if (c.uniform_attention) j["uniform_attention"] = true;
    return j.dump();
}

GPTConfig config_from_json(const std::string& s) {
    try {
        json j = json::parse(s);
        GPTConfig c;
        c.vocab_size = j.at("vocab_size");
        c.context_length = j.at("context_length");
        c.emb_dim = j.at("emb_dim");
        c.n_heads = j.at("n_heads");
        c.n_layers = j.at("n_layers");
        c.drop_rate = j.at("drop_rate");
        c.qkv_bias = j.at("qkv_bias");
        c.attention = j.at("attention");
        c.out_proj = j.at("out_proj").get<bool>();
        if (j.contains("qk_dim")) {
            int64_t r = j.at("qk_dim");
            if (!c.traits().qk_factors || c.n_heads <= 0 || r != c.emb_dim / c.n_heads) c.qk_dim = r;
        }
        c.init = j.value("init", std::string("default"));
        c.init_gain = j.value("init_gain", 1.0f);
        c.uniform_attention = j.value("uniform_attention", false);
        return c;
    } catch (const json::exception& e) {
        throw Error(std::string("tapegrad: checkpoint config is malformed: ") + e.what());
    }
}

void save_checkpoint(const std::string& path, const GPTModel& model, const optim::Optimizer* opt,
                     const std::map<std::string, std::string>& extra) {
    std::vector<std::pair<std::string, Tensor>> tensors;
    for (auto& [n, t] : model.state_dict()) tensors.emplace_back(n, t);
    std::map<std::string, std::string> meta = extra;
    meta["format"] = "pt";
    meta["tapegrad.config"] = config_to_json(model.config());
    if (opt) {
        for (auto& [n, t] : opt->state_tensors()) tensors.emplace_back("optimizer." + n, t);
        json o = json::object();
        for (auto& [k, v] : opt->state_scalars()) o[k] = v;
        meta["tapegrad.optimizer"] = o.dump();
    }
    write_safetensors(path, tensors, meta);
}

GPTConfig checkpoint_config(const SafeTensors& st, const std::string& path) {
    auto it = st.metadata.find("tapegrad.config");
    if (it == st.metadata.end())
        throw Error("tapegrad: checkpoint '" + path +
                    "' has no tapegrad.config metadata (a plain state_dict needs "
                    "the model flags, e.g. --init-from with --preset)");
    return config_from_json(it->second);
}

std::string config_diff(const GPTConfig& file, const GPTConfig& asked) {
    json a = json::parse(config_to_json(file)), b = json::parse(config_to_json(asked));
    std::string out;
    for (auto& [k, v] : a.items()) {
        if (b.contains(k) && b[k] == v) continue;
        out += fmt::format("{}{} {} in the file, {} asked", out.empty() ? "" : "; ", k, v.dump(),
                           b.contains(k) ? b[k].dump() : "nothing");
    }
    return out;
}

std::string first_nonfinite_weight(const SafeTensors& st) {
    for (auto& [n, t] : st.f32) {
        if (n.rfind("optimizer.", 0) == 0) continue;
        const float* p = t.data();
        for (int64_t i = 0; i < t.numel(); ++i)
            if (!std::isfinite(p[i])) return fmt::format("'{}' has {} at flat index {}", n, p[i], i);
    }
    return "";
}

void load_model_weights(GPTModel& model, const SafeTensors& st, const std::string& path,
                        bool allow_nonfinite) {
    if (!allow_nonfinite)
        if (std::string bad = first_nonfinite_weight(st); !bad.empty())
            throw Error("tapegrad: checkpoint '" + path + "' holds non-finite weights (" + bad +
                        "): it comes from a diverged run; pass --allow-nonfinite to load it anyway");
    std::map<std::string, Tensor> sd;
    for (auto& [n, t] : st.f32)
        if (n.rfind("optimizer.", 0) != 0) sd[n] = t;
    try {
        model.load_state_dict(sd, true);
    } catch (const Error& e) {
        throw Error(std::string(e.what()) + " (in '" + path + "')");
    }
}

void load_optimizer_state(optim::Optimizer& opt, const std::string& type, const SafeTensors& st,
                          const std::string& path) {
    auto it = st.metadata.find("tapegrad.optimizer");
    if (it == st.metadata.end()) throw Error("tapegrad: checkpoint '" + path + "' holds no optimizer state");
    std::map<std::string, double> scalars;
    try {
        json parsed = json::parse(it->second);  // named: items() must not outlive it
        for (auto& [k, v] : parsed.items()) scalars[k] = v.get<double>();
    } catch (const json::exception& e) {
        throw Error("tapegrad: checkpoint '" + path + "': optimizer metadata is malformed: " + e.what());
    }
    if (auto t = st.metadata.find("tapegrad.optimizer_type"); t != st.metadata.end() && t->second != type)
        throw Error("tapegrad: checkpoint '" + path + "' holds " + t->second + " state, not " + type);
    std::map<std::string, Tensor> tensors;
    for (auto& [n, t] : st.f32)
        if (n.rfind("optimizer.", 0) == 0) tensors[n.substr(10)] = t;
    opt.load_state(tensors, scalars);
}

}  // namespace tg::models
