// The gradient dynamics probe asserts identities, not just that numbers appear:
//  - G from the hook on the scores satisfies dL/dWq = Wk G^T, dL/dWk = Wq G
//    (mha) and dL/dS = G^T (alt1), to 1e-4 relative;
//  - the query, key and cross terms add up to M_after - M_before, and the
//    probe's norms and cosines equal the explicit C x C computations;
//  - both also with --qk-dim R (3 < HS and 16 = C): factors [R, C], rank(M) <= R;
//  - under plain SGD the alt1 term is -lr G, and the mha terms are the closed
//    forms -lr G Wk^T Wk and -lr Wq^T Wq G.
#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <optional>

#include "optim/adamw.h"
#include "optim/sgd.h"
#include "test_util.h"
#include "train/study/probe.h"

using namespace tg;
using namespace tg::train;

namespace {

using Mat = std::vector<double>;  // row-major, sized by the caller

// X^T Y for X [r, a], Y [r, b] -> [a, b]
Mat tmul(const float* x, const float* y, int64_t r, int64_t a, int64_t b) {
    Mat out(static_cast<size_t>(a * b), 0.0);
    for (int64_t k = 0; k < r; ++k)
        for (int64_t i = 0; i < a; ++i)
            for (int64_t j = 0; j < b; ++j)
                out[i * b + j] += static_cast<double>(x[k * a + i]) * y[k * b + j];
    return out;
}
// X Y for X [a, r], Y [r, b]
Mat mul(const Mat& x, const Mat& y, int64_t a, int64_t r, int64_t b) {
    Mat out(static_cast<size_t>(a * b), 0.0);
    for (int64_t i = 0; i < a; ++i)
        for (int64_t k = 0; k < r; ++k)
            for (int64_t j = 0; j < b; ++j) out[i * b + j] += x[i * r + k] * y[k * b + j];
    return out;
}
Mat transpose(const Mat& x, int64_t a, int64_t b) {
    Mat out(x.size());
    for (int64_t i = 0; i < a; ++i)
        for (int64_t j = 0; j < b; ++j) out[j * a + i] = x[i * b + j];
    return out;
}
Mat from(const float* p, int64_t n) { return Mat(p, p + n); }
Mat sub(const Mat& a, const Mat& b) {
    Mat o(a);
    for (size_t i = 0; i < o.size(); ++i) o[i] -= b[i];
    return o;
}
Mat add(const Mat& a, const Mat& b) {
    Mat o(a);
    for (size_t i = 0; i < o.size(); ++i) o[i] += b[i];
    return o;
}
Mat scale(const Mat& a, double s) {
    Mat o(a);
    for (double& v : o) v *= s;
    return o;
}
double norm(const Mat& a) {
    double s = 0;
    for (double v : a) s += v * v;
    return std::sqrt(s);
}
double inner(const Mat& a, const Mat& b) {
    double s = 0;
    for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
    return s;
}
double rel(const Mat& a, const Mat& b) { return norm(sub(a, b)) / std::max(norm(b), 1e-300); }

models::GPTConfig cfg(const std::string& attention, std::optional<int64_t> qk_dim = {}) {
    models::GPTConfig c;
    c.qk_dim = qk_dim;
    c.vocab_size = 40;
    c.context_length = 8;
    c.emb_dim = 16;
    c.n_heads = 2;
    c.n_layers = 2;
    c.drop_rate = 0;
    c.attention = attention;
    return c;
}

const Ids kIds{{2, 8}, {1, 5, 9, 3, 3, 7, 0, 2, 8, 8, 1, 39, 4, 22, 6, 17}};
const Ids kTargets{{2, 8}, {5, 9, 3, 3, 7, 0, 2, 8, 8, 1, 39, 4, 22, 6, 17, 30}};

std::vector<optim::ParamRef> refs(const models::GPTModel& m) {
    std::vector<optim::ParamRef> r;
    for (auto& [n, t] : m.named_parameters()) r.push_back({n, t});
    return r;
}

// One probed step; returns the model's Wq/Wk (or S) of (layer, head) before and after.
struct Step {
    Mat a0, b0, a1, b1, G;
    HeadDynamics row;
};

template <class Opt>
std::vector<Step> probed_step(models::GPTModel& m, Opt& opt, DynamicsProbe& probe, double lr) {
    int64_t C = 16, hs = m.config().qk_head_dim();  // mha: the factors' rows R (--qk-dim)
    bool alt1 = m.config().attention == "alt1";
    auto weights = [&](int64_t l, int64_t h) {
        if (alt1) {
            auto* att = static_cast<nn::MHA_alt1*>(m.trf_blocks[l]->att.get());
            return std::pair{from(att->heads[h]->S->weight.data(), C * C), Mat()};
        }
        auto* att = static_cast<nn::MultiHeadAttention*>(m.trf_blocks[l]->att.get());
        return std::pair{from(att->W_query->weight.data() + h * hs * C, hs * C),
                         from(att->W_key->weight.data() + h * hs * C, hs * C)};
    };
    probe.begin_step(0);
    opt.zero_grad();
    cross_entropy(m.forward(kIds), kTargets).backward();
    probe.after_backward();
    std::vector<Step> steps;
    for (int64_t l = 0; l < 2; ++l)
        for (int64_t h = 0; h < 2; ++h) {
            Step s;
            std::tie(s.a0, s.b0) = weights(l, h);
            s.G = from(probe.G(l, h).data(), C * C);
            steps.push_back(s);
        }
    probe.before_update();
    opt.step();
    probe.after_update(lr);
    for (size_t i = 0; i < steps.size(); ++i) {
        std::tie(steps[i].a1, steps[i].b1) =
            weights(static_cast<int64_t>(i / 2), static_cast<int64_t>(i % 2));
        steps[i].row = probe.rows()[probe.rows().size() - steps.size() + i];
    }
    return steps;
}

}  // namespace

TEST_CASE("G from the scores hook satisfies dL/dWq = Wk G^T and dL/dWk = Wq G (mha)", "[probe]") {
    // R = qk_dim rows per factor: the book's HS = 8, and --qk-dim 3 and 16 (= C).
    auto qk = GENERATE(std::optional<int64_t>{}, std::optional<int64_t>{3}, std::optional<int64_t>{16});
    manual_seed(3);
    models::GPTModel m(cfg("mha", qk));
    DynamicsProbe probe(m, "", 1);
    probe.begin_step(0);
    cross_entropy(m.forward(kIds), kTargets).backward();
    probe.after_backward();
    int64_t C = 16, hs = qk.value_or(8);
    for (int64_t l = 0; l < 2; ++l)
        for (int64_t h = 0; h < 2; ++h) {
            auto* att = static_cast<nn::MultiHeadAttention*>(m.trf_blocks[l]->att.get());
            Mat G = from(probe.G(l, h).data(), C * C);
            Mat Wq = from(att->W_query->weight.data() + h * hs * C, hs * C);
            Mat Wk = from(att->W_key->weight.data() + h * hs * C, hs * C);
            Mat gq = from(att->W_query->weight.grad().data() + h * hs * C, hs * C);
            Mat gk = from(att->W_key->weight.grad().data() + h * hs * C, hs * C);
            INFO("layer " << l << " head " << h);
            CHECK(rel(mul(Wk, transpose(G, C, C), hs, C, C), gq) <= 1e-4);
            CHECK(rel(mul(Wq, G, hs, C, C), gk) <= 1e-4);
            CHECK(norm(G) > 0);
        }
    tape().clear();
}

TEST_CASE("G from the scores hook satisfies dL/dS = G^T (alt1)", "[probe]") {
    manual_seed(3);
    models::GPTModel m(cfg("alt1"));
    DynamicsProbe probe(m, "", 1);
    probe.begin_step(0);
    cross_entropy(m.forward(kIds), kTargets).backward();
    probe.after_backward();
    for (int64_t l = 0; l < 2; ++l)
        for (int64_t h = 0; h < 2; ++h) {
            auto* att = static_cast<nn::MHA_alt1*>(m.trf_blocks[l]->att.get());
            Mat G = from(probe.G(l, h).data(), 256);
            Mat gS = from(att->heads[h]->S->weight.grad().data(), 256);
            CHECK(rel(transpose(G, 16, 16), gS) <= 1e-4);
        }
    tape().clear();
}

TEST_CASE("mha under AdamW: query + key + cross terms are exactly M_after - M_before, probe norms and "
          "cosines agree",
          "[probe]") {
    // With --qk-dim R the same identities hold with [R, C] factors, and rank(M) <= R.
    auto qk = GENERATE(std::optional<int64_t>{}, std::optional<int64_t>{3}, std::optional<int64_t>{16});
    manual_seed(4);
    models::GPTModel m(cfg("mha", qk));
    optim::AdamW opt(refs(m), {.lr = 1e-2});
    DynamicsProbe probe(m, "", 1);
    for (const Step& s : probed_step(m, opt, probe, 1e-2)) {
        int64_t C = 16, hs = qk.value_or(8);
        Mat dA = sub(s.a1, s.a0), dB = sub(s.b1, s.b0);
        auto T = [&](const Mat& x, const Mat& y) {
            std::vector<float> xf(x.begin(), x.end()), yf(y.begin(), y.end());
            return tmul(xf.data(), yf.data(), hs, C, C);
        };
        Mat Tq = T(dA, s.b0), Tk = T(s.a0, dB), Tx = T(dA, dB);
        Mat dM = sub(T(s.a1, s.b1), T(s.a0, s.b0));
        INFO("layer " << s.row.layer << " head " << s.row.head);
        CHECK(rel(add(add(Tq, Tk), Tx), dM) <= 1e-5);
        CHECK(s.row.dm_norm == Approx(norm(dM)).epsilon(1e-5));
        CHECK(s.row.term_norm[0] == Approx(norm(Tq)).epsilon(1e-5));
        CHECK(s.row.term_norm[1] == Approx(norm(Tk)).epsilon(1e-5));
        CHECK(s.row.term_norm[2] == Approx(norm(Tx)).epsilon(1e-5));
        CHECK(s.row.m_norm == Approx(norm(T(s.a0, s.b0))).epsilon(1e-5));
        CHECK(s.row.g_norm == Approx(norm(s.G)).epsilon(1e-5));
        CHECK(s.row.term_cos[0] == Approx(-inner(Tq, s.G) / (norm(Tq) * norm(s.G))).margin(1e-4));
        CHECK(s.row.term_cos[1] == Approx(-inner(Tk, s.G) / (norm(Tk) * norm(s.G))).margin(1e-4));
        CHECK(s.row.dm_cos == Approx(-inner(dM, s.G) / (norm(dM) * norm(s.G))).margin(1e-4));
        CHECK(s.row.sv.size() == static_cast<size_t>(std::min<int64_t>(hs, DynamicsProbe::kTopSV)));
        CHECK(s.row.stable_rank >= 1.0);
        CHECK(s.row.stable_rank <= static_cast<double>(hs) + 1e-6);  // rank(M) <= R
        CHECK(s.row.effective_rank <= static_cast<double>(hs) + 1e-6);
        // the probe's spectrum is M's: the nuclear norm bounds ||M||_F from above
        CHECK(s.row.nuclear >= s.row.m_norm * (1 - 1e-6));
    }
}

TEST_CASE("under plain SGD the alt1 term is -lr G", "[probe]") {
    manual_seed(5);
    models::GPTModel m(cfg("alt1"));
    const double lr = 1.0;  // large steps keep float rounding of S - lr g far below the 1e-5 checked
    optim::SGD opt(refs(m), {.lr = lr});
    DynamicsProbe probe(m, "", 1);
    for (const Step& s : probed_step(m, opt, probe, lr)) {
        Mat dMt = transpose(sub(s.a1, s.a0), 16, 16);  // dM = dS^T
        CHECK(rel(dMt, scale(s.G, -lr)) <= 1e-5);
        CHECK(s.row.dm_cos == Approx(1.0).margin(1e-5));
        CHECK(s.row.dm_norm == Approx(lr * s.row.g_norm).epsilon(1e-5));
    }
}

TEST_CASE("under plain SGD the mha terms are -lr G Wk^T Wk and -lr Wq^T Wq G", "[probe]") {
    manual_seed(6);
    models::GPTModel m(cfg("mha"));
    const double lr = 1.0;
    optim::SGD opt(refs(m), {.lr = lr});
    DynamicsProbe probe(m, "", 1);
    int64_t C = 16, hs = 8;
    for (const Step& s : probed_step(m, opt, probe, lr)) {
        std::vector<float> dA(s.a1.size()), dB(s.b1.size()), a0(s.a0.begin(), s.a0.end()),
            b0(s.b0.begin(), s.b0.end());
        for (size_t i = 0; i < dA.size(); ++i) dA[i] = static_cast<float>(s.a1[i] - s.a0[i]);
        for (size_t i = 0; i < dB.size(); ++i) dB[i] = static_cast<float>(s.b1[i] - s.b0[i]);
        Mat Tq = tmul(dA.data(), b0.data(), hs, C, C), Tk = tmul(a0.data(), dB.data(), hs, C, C);
        Mat WkTWk = tmul(b0.data(), b0.data(), hs, C, C), WqTWq = tmul(a0.data(), a0.data(), hs, C, C);
        CHECK(rel(Tq, scale(mul(s.G, WkTWk, C, C, C), -lr)) <= 1e-4);
        CHECK(rel(Tk, scale(mul(WqTWq, s.G, C, C, C), -lr)) <= 1e-4);
        // the preconditioners' summaries: top eigenvalue and trace of Wk^T Wk, Wq^T Wq
        CHECK(s.row.wk_trace == Approx(inner(s.b0, s.b0)).epsilon(1e-5));  // trace(Wk^T Wk) = ||Wk||^2
        CHECK(s.row.wq_trace == Approx(inner(s.a0, s.a0)).epsilon(1e-5));
        CHECK(s.row.wk_top <= s.row.wk_trace + 1e-9);
    }
}

TEST_CASE("probe rows go to a CSV with a header and one row per layer and head", "[probe]") {
    manual_seed(7);
    models::GPTModel m(cfg("mha"));
    optim::AdamW opt(refs(m), {.lr = 1e-3});
    std::string path =
        (std::filesystem::temp_directory_path() / ("tapegrad_probe_" + std::to_string(::getpid()) + ".csv"))
            .string();
    {
        DynamicsProbe probe(m, path, 2);
        for (int s = 0; s < 3; ++s) {  // steps 0 and 2 are probed
            probe.begin_step(s);
            opt.zero_grad();
            cross_entropy(m.forward(kIds), kTargets).backward();
            probe.after_backward();
            probe.before_update();
            opt.step();
            probe.after_update(1e-3);
        }
        CHECK(probe.rows().size() == 2 * 2 * 2);
    }
    std::ifstream f(path);
    std::string line;
    std::getline(f, line);
    CHECK(line == DynamicsProbe::csv_header());
    int rows = 0;
    while (std::getline(f, line)) rows++;
    CHECK(rows == 8);
    std::filesystem::remove(path);
}
