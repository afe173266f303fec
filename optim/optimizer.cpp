#include "optim/optimizer.h"

namespace tg::optim {

void Optimizer::zero_grad() {
    for (auto& p : params_) p.param.zero_grad();
}

std::vector<ParamBlock> param_blocks(const std::vector<int64_t>& numels) {
    std::vector<ParamBlock> out;
    for (size_t i = 0; i < numels.size(); ++i)
        for (int64_t b = 0; b < numels[i]; b += kParamBlock)
            out.push_back({i, b, std::min(numels[i], b + kParamBlock)});
    return out;
}

// Eight running sums (element i goes to lane i % 8), added at the end: a fixed
// order, so the result is reproducible, and the lanes vectorise where one
// in-order double sum (a 4-cycle add chain per element) would not.
double sum_squares(const float* x, int64_t n) {
    double lane[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; ++k) lane[k] += static_cast<double>(x[i + k]) * x[i + k];
    for (; i < n; ++i) lane[i % 8] += static_cast<double>(x[i]) * x[i];
    double s = 0;
    for (double l : lane) s += l;
    return s;
}

}  // namespace tg::optim
