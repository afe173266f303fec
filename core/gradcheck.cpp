#include "core/gradcheck.h"

#include <fmt/format.h>

#include <cmath>

#include "core/random.h"
#include "core/tape.h"

namespace tg {
namespace {

double weighted_sum(const Tensor& out, const std::vector<float>& r) {
    std::vector<float> v = out.to_vector();
    double s = 0;
    for (size_t i = 0; i < v.size(); ++i) s += static_cast<double>(v[i]) * r[i];
    return s;
}

// Analytic gradients of L = sum(out * R), one run of forward + backward.
std::vector<std::vector<float>> analytic(const GradcheckFn& fn, std::vector<Tensor>& inputs,
                                         const std::vector<float>& r) {
    Tensor out = fn(inputs);
    if (!out.requires_grad()) throw Error("tapegrad: gradcheck: the output does not depend on any input");
    out.backward(Tensor::from_vector(r, out.shape()));
    std::vector<std::vector<float>> g;
    for (Tensor& in : inputs)
        g.push_back(in.grad().defined() ? in.grad().to_vector() : std::vector<float>(in.numel(), 0.f));
    return g;
}

}  // namespace

GradcheckResult gradcheck(const GradcheckFn& fn, std::vector<Tensor> inputs, GradcheckOptions opt) {
    GradcheckResult res;
    for (Tensor& in : inputs)
        if (!in.is_leaf() || !in.requires_grad())
            throw Error("tapegrad: gradcheck: every input must be a leaf with requires_grad");
    Generator gen(opt.seed);
    Tensor probe;
    {
        NoGradGuard ng;
        probe = fn(inputs);
    }
    std::vector<float> r(static_cast<size_t>(probe.numel()));
    // Weights of magnitude [0.5, 1) with random signs: no output is nearly ignored,
    // so no gradient element is too small for a 1% error to show.
    gen.fill_uniform(r.data(), probe.numel(), 0.5, 1.0);
    for (float& w : r)
        if (gen.random() & 1u) w = -w;

    // 1) fresh gradients, NaN-filled buffers
    bool prev_nan = debug_fill_nan();
    set_debug_fill_nan(true);
    for (Tensor& in : inputs) in.zero_grad();
    auto ga = analytic(fn, inputs, r);
    set_debug_fill_nan(prev_nan);

    // 2) accumulate onto known gradients: result - preset must equal (1)
    std::vector<std::vector<float>> preset;
    for (Tensor& in : inputs) {
        std::vector<float> p(static_cast<size_t>(in.numel()));
        gen.fill_uniform(p.data(), in.numel(), -1.0, 1.0);
        in.set_grad(Tensor::from_vector(p, in.shape()));
        preset.push_back(p);
    }
    auto gb = analytic(fn, inputs, r);
    for (size_t k = 0; k < inputs.size(); ++k) {
        for (size_t i = 0; i < gb[k].size(); ++i) {
            double added = static_cast<double>(gb[k][i]) - preset[k][i];
            double tol = 1e-5 + 1e-4 * (std::fabs(ga[k][i]) + std::fabs(preset[k][i]));
            if (!(std::fabs(added - ga[k][i]) <= tol)) {
                res.ok = false;
                res.report +=
                    fmt::format("input {} element {}: backward does not accumulate: preset {} + grad {} "
                                "gave {}\n",
                                k, i, preset[k][i], ga[k][i], gb[k][i]);
                break;
            }
        }
        inputs[k].zero_grad();
    }

    // 3) numeric derivatives
    NoGradGuard ng;
    double worst = -1e300;
    std::string worst_msg;
    for (size_t k = 0; k < inputs.size(); ++k) {
        Tensor& in = inputs[k];
        if (!in.is_contiguous()) throw Error("tapegrad: gradcheck: inputs must be contiguous");
        float* p = in.data();
        for (int64_t i = 0; i < in.numel(); ++i) {
            float x0 = p[i];
            auto L = [&](double step) {
                p[i] = static_cast<float>(x0 + step);
                double v = weighted_sum(fn(inputs), r);
                p[i] = x0;
                return v;
            };
            double h = opt.h;
            double num = (8.0 * (L(h) - L(-h)) - (L(2 * h) - L(-2 * h))) / (12.0 * h);
            double a = ga[k][i];
            double excess = std::fabs(a - num) - (opt.atol + opt.rtol * std::fabs(num));
            if (std::isnan(a) || std::isnan(num)) excess = 1e300;
            if (excess > worst) {
                worst = excess;
                worst_msg =
                    fmt::format("worst: input {} element {}: analytic {:.7g}, numeric {:.7g}, |diff| {:.3g}",
                                k, i, a, num, std::fabs(a - num));
            }
        }
    }
    res.worst_excess = worst;
    if (worst > 0) res.ok = false;
    res.report += worst_msg;
    return res;
}

}  // namespace tg
