// An op case against a PyTorch fixture case (written by record() of
// tools/op_fixture_lib.py): the fixture's inputs become leaves, each seen through
// its view ("T" transpose(-1, -2), "S" [..., 1:-1], none), out = fn(inputs, ints)
// is compared with the fixture's out, then backward from the fixture's upstream
// gradient and every leaf that takes a gradient against PyTorch's. Shared by
// tests/test_ops_torch.cpp (ops.json) and tests/test_ops_edge.cpp
// (edge_cases.json). Tolerances, as tinygrad's: forward |a - b| <= 1e-6 + 1e-3 |b|,
// gradients |a - b| <= 1e-4 + 1e-3 |b|; a NaN or infinity must be the same.
// The result is what differs ("" when all agrees): the edge sweep runs it in a
// child process, where Catch2 cannot report.
#pragma once

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "core/tapegrad.h"
#include "op_cases.h"

namespace tg::test {

// Fixture values: numbers, or "nan", "inf", "-inf" for what JSON cannot hold.
inline std::vector<double> fixture_values(const nlohmann::json& j) {
    std::vector<double> v;
    for (const auto& e : j) {
        if (!e.is_string()) {
            v.push_back(e.get<double>());
            continue;
        }
        std::string s = e.get<std::string>();
        v.push_back(s == "nan" ? std::numeric_limits<double>::quiet_NaN()
                               : (s[0] == '-' ? -INFINITY : static_cast<double>(INFINITY)));
    }
    return v;
}

inline std::vector<float> fixture_floats(const nlohmann::json& j) {
    std::vector<double> d = fixture_values(j);
    return {d.begin(), d.end()};
}

inline std::string compare_close(const std::vector<float>& got, const std::vector<double>& want, double atol,
                                 double rtol, const std::string& what) {
    if (got.size() != want.size())
        return fmt::format("{}: {} values, torch has {}", what, got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i) {
        double g = got[i], w = want[i];
        bool ok = std::isfinite(w) ? std::fabs(g - w) <= atol + rtol * std::fabs(w)
                                   : (std::isnan(w) ? std::isnan(g) : g == w);
        if (!ok) return fmt::format("{}: element {}: tapegrad {}, torch {}", what, i, g, w);
    }
    return "";
}

inline Tensor fixture_view(const Tensor& x, const std::string& v) {
    if (v == "T") return x.transpose(-1, -2);
    if (v == "S") return x.slice(-1, 1, -1);
    return x;
}

// The fixture's inputs as leaves; requires_grad unless the input says "grad": false.
inline std::vector<Tensor> fixture_leaves(const nlohmann::json& c) {
    std::vector<Tensor> in;
    for (const auto& ij : c["inputs"]) {
        Tensor x = Tensor::from_vector(fixture_floats(ij["data"]), ij["shape"].get<Shape>());
        in.push_back(x.requires_grad_(ij.value("grad", true)));
    }
    return in;
}

// fn on the leaves, each through its view.
inline Tensor fixture_call(const nlohmann::json& c, const std::vector<Tensor>& leaves, const CaseFn& fn) {
    std::vector<Tensor> in;
    for (size_t k = 0; k < leaves.size(); ++k)
        in.push_back(fixture_view(leaves[k], c["inputs"][k].value("view", "")));
    return fn(in, c["ints"].get<std::vector<int64_t>>());
}

inline std::string check_fixture_case(const nlohmann::json& c, const CaseFn& fn) {
    std::vector<Tensor> leaves = fixture_leaves(c);
    Tensor out = fixture_call(c, leaves, fn);
    Shape want_shape = c["out"]["shape"].get<Shape>();
    if (out.shape() != want_shape)
        return fmt::format("out shape {}, torch {}", shape_str(out.shape()), shape_str(want_shape));
    std::string diff =
        compare_close(out.to_vector(), fixture_values(c["out"]["data"]), 1e-6, 1e-3, "forward");
    if (!diff.empty()) return diff;
    out.backward(Tensor::from_vector(fixture_floats(c["upstream"]), out.shape()));
    size_t g = 0;
    for (size_t k = 0; k < leaves.size(); ++k) {
        if (!leaves[k].requires_grad()) continue;
        std::string what = "grad of input " + std::to_string(k);
        if (!leaves[k].grad().defined()) return what + ": none";
        diff = compare_close(leaves[k].grad().to_vector(), fixture_values(c["grads"][g++]), 1e-4, 1e-3, what);
        if (!diff.empty()) return diff;
    }
    return "";
}

}  // namespace tg::test
