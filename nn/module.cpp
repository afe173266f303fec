#include "nn/module.h"

#include <fmt/format.h>

#include <algorithm>
#include <set>

namespace tg::nn {

Tensor Module::register_parameter(const std::string& name, Tensor t) {
    t.requires_grad_(true);
    params_.emplace_back(name, t);
    return params_.back().second;
}

Tensor Module::register_buffer(const std::string& name, Tensor t) {
    buffers_.emplace_back(name, t);
    return buffers_.back().second;
}

void Module::collect(const std::string& prefix, bool params, bool buffers, NamedTensors& out) const {
    if (params)
        for (auto& [n, t] : params_) out.emplace_back(prefix + n, t);
    if (buffers)
        for (auto& [n, t] : buffers_) out.emplace_back(prefix + n, t);
    for (auto& [n, c] : children_) c->collect(prefix + n + ".", params, buffers, out);
}

NamedTensors Module::named_parameters() const {
    NamedTensors out;
    collect("", true, false, out);
    return out;
}

NamedTensors Module::named_buffers() const {
    NamedTensors out;
    collect("", false, true, out);
    return out;
}

NamedTensors Module::state_dict() const {
    NamedTensors out;
    collect("", true, true, out);
    return out;
}

std::vector<Tensor> Module::parameters() const {
    std::vector<Tensor> out;
    for (auto& [n, t] : named_parameters()) out.push_back(t);
    return out;
}

int64_t Module::num_parameters() const {
    int64_t n = 0;
    for (auto& [name, t] : named_parameters()) n += t.numel();
    return n;
}

void Module::train(bool on) {
    training_ = on;
    for (auto& [n, c] : children_) c->train(on);
}

void Module::zero_grad() {
    for (auto& [n, t] : params_) t.zero_grad();
    for (auto& [n, c] : children_) c->zero_grad();
}

void Module::label_parameters() {
    for (auto& [n, t] : state_dict()) {
        Tensor h = t;
        h.set_label(n);
    }
}

void Module::load_state_dict(const std::map<std::string, Tensor>& sd, bool strict) {
    std::set<std::string> used;
    auto copy_in = [&](const std::string& name, Tensor& dst, bool required) {
        auto it = sd.find(name);
        if (it == sd.end()) {
            if (required && strict) throw Error("tapegrad: load_state_dict: missing tensor '" + name + "'");
            return;
        }
        used.insert(name);
        if (it->second.shape() != dst.shape())
            throw Error(
                fmt::format("tapegrad: load_state_dict: '{}' has shape {} in the file but {} in the model",
                            name, shape_str(it->second.shape()), shape_str(dst.shape())));
        std::vector<float> v = it->second.to_vector();
        std::copy(v.begin(), v.end(), dst.data());
    };
    for (auto& [n, t] : named_parameters()) copy_in(n, t, true);
    for (auto& [n, t] : named_buffers()) copy_in(n, t, false);
    if (!strict) return;
    for (auto& [n, t] : sd)
        if (!used.count(n))
            throw Error("tapegrad: load_state_dict: unexpected tensor '" + n + "' not in the model");
}

}  // namespace tg::nn
