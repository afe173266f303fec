// The probe's pair decomposition (train/study/pairs.h, issue 39) is exact:
//  - the shares of G and of -dM over all pairs sum to 1 (1e-5), against the
//    probe's own normalisers ||G||^2 and <G, -dM>;
//  - the pair sum  sum_bij g_bij x_bi x_bj^T  (a literal loop over the pairs)
//    rebuilds G: the probe's, and the tape's dL/dS^T (alt1) or, through
//    dL/dWq = Wk G^T and dL/dWk = Wq G, the tape's factor gradients (mha),
//    relative error <= 1e-5; for mha, alt1 and mha with --qk-dim 3;
//  - the top pairs are the largest |share| of a direct per-pair computation;
//  - PyTorch's autograd gives the same shares and top pairs
//    (tests/fixtures/pairs.safetensors, tools/make_pairs_fixture.py), 1e-5.
#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <optional>

#include "models/checkpoint.h"
#include "models/safetensors.h"
#include "optim/adamw.h"
#include "optim/sgd.h"
#include "test_util.h"
#include "train/study/probe.h"

using namespace tg;
using namespace tg::train;

namespace {

using Mat = std::vector<double>;

double norm(const Mat& a) {
    double s = 0;
    for (double v : a) s += v * v;
    return std::sqrt(s);
}
double rel(const Mat& a, const Mat& b) {
    double s = 0;
    for (size_t i = 0; i < a.size(); ++i) s += (a[i] - b[i]) * (a[i] - b[i]);
    return std::sqrt(s) / std::max(norm(b), 1e-300);
}
Mat from(const float* p, int64_t n) { return Mat(p, p + n); }
// X Y^T for X [a, r], Y [b, r]
Mat mul_t(const Mat& x, const Mat& y, int64_t a, int64_t r, int64_t b) {
    Mat out(static_cast<size_t>(a * b), 0.0);
    for (int64_t i = 0; i < a; ++i)
        for (int64_t j = 0; j < b; ++j)
            for (int64_t k = 0; k < r; ++k) out[i * b + j] += x[i * r + k] * y[j * r + k];
    return out;
}

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

// One probed step with the pair decomposition on, the tape's gradients kept.
struct Probed {
    std::vector<Mat> G, x, D, gq, gk, gs;  // by layer * 2 + head (x by layer)
    std::vector<Mat> wq, wk;               // mha: the factors before the step
};

template <class Opt>
Probed probed_step(models::GPTModel& m, Opt& opt, DynamicsProbe& probe, const Ids& ids, const Ids& targets) {
    const int64_t C = m.config().emb_dim, nh = m.config().n_heads, L = m.config().n_layers;
    const int64_t R = m.config().qk_head_dim();
    const bool alt1 = m.config().attention == "alt1";
    probe.begin_step(0);
    opt.zero_grad();
    cross_entropy(m.forward(ids), targets).backward();
    probe.after_backward();
    Probed p;
    for (int64_t l = 0; l < L; ++l) {
        Tensor x = probe.x(l).contiguous();
        p.x.push_back(from(x.data(), x.numel()));
        for (int64_t h = 0; h < nh; ++h) {
            p.G.push_back(from(probe.G(l, h).data(), C * C));
            p.D.push_back(Mat(probe.D(l, h).begin(), probe.D(l, h).end()));
            if (alt1) {
                auto* att = static_cast<nn::MHA_alt1*>(m.trf_blocks[l]->att.get());
                p.gs.push_back(from(att->heads[h]->S->weight.grad().data(), C * C));
            } else {
                auto* att = static_cast<nn::MultiHeadAttention*>(m.trf_blocks[l]->att.get());
                p.wq.push_back(from(att->W_query->weight.data() + h * R * C, R * C));
                p.wk.push_back(from(att->W_key->weight.data() + h * R * C, R * C));
                p.gq.push_back(from(att->W_query->weight.grad().data() + h * R * C, R * C));
                p.gk.push_back(from(att->W_key->weight.grad().data() + h * R * C, R * C));
            }
        }
    }
    probe.before_update();
    opt.step();
    probe.after_update(0);
    return p;
}

// sum over b, i, j of g_bij x_bi x_bj^T, one pair at a time.
Mat pair_sum(const Mat& x, const Mat& D, int64_t B, int64_t T, int64_t C) {
    Mat G(static_cast<size_t>(C * C), 0.0);
    for (int64_t b = 0; b < B; ++b)
        for (int64_t i = 0; i < T; ++i)
            for (int64_t j = 0; j < T; ++j) {
                const double g = D[(b * T + i) * T + j];
                const double *xi = &x[(b * T + i) * C], *xj = &x[(b * T + j) * C];
                for (int64_t c = 0; c < C; ++c)
                    for (int64_t d = 0; d < C; ++d) G[c * C + d] += g * xi[c] * xj[d];
            }
    return G;
}

}  // namespace

TEST_CASE("pair shares sum to 1 and the pair sum rebuilds G and the tape's gradients", "[probe][pairs]") {
    struct Case {
        std::string att;
        std::optional<int64_t> qk;
    };
    auto c = GENERATE(Case{"mha", {}}, Case{"alt1", {}}, Case{"mha", 3});
    INFO(c.att << " qk_dim " << c.qk.value_or(0));
    manual_seed(3);
    models::GPTModel m(cfg(c.att, c.qk));
    optim::AdamW opt(refs(m), {.lr = 1e-2});
    DynamicsProbe probe(m, "", 1);
    probe.enable_pairs(4, "", {});
    Probed p = probed_step(m, opt, probe, kIds, kTargets);
    const int64_t C = 16, B = 2, T = 8, R = m.config().qk_head_dim();
    REQUIRE(probe.pair_rows().size() == 4);
    for (int64_t l = 0; l < 2; ++l)
        for (int64_t h = 0; h < 2; ++h) {
            INFO("layer " << l << " head " << h);
            const size_t k = static_cast<size_t>(l * 2 + h);
            const HeadPairs& hp = probe.pair_rows()[k];
            CHECK(hp.layer == l);
            CHECK(hp.head == h);
            CHECK(std::abs(hp.total_g - 1) <= 1e-5);
            CHECK(std::abs(hp.total_dm - 1) <= 1e-5);
            double seq = 0, off = 0;
            for (double s : hp.seq_g) seq += s;
            for (double s : hp.offset_g) off += s;
            CHECK(std::abs(seq - hp.total_g) <= 1e-12);
            CHECK(std::abs(off - hp.total_g) <= 1e-12);
            Mat G = pair_sum(p.x[l], p.D[k], B, T, C);
            CHECK(rel(G, p.G[k]) <= 1e-5);
            if (c.att == "alt1") {  // dL/dS = G^T
                Mat Gt(G.size());
                for (int64_t i = 0; i < C; ++i)
                    for (int64_t j = 0; j < C; ++j) Gt[i * C + j] = G[j * C + i];
                CHECK(rel(Gt, p.gs[k]) <= 1e-5);
            } else {  // dL/dWq = Wk G^T and dL/dWk = Wq G, weights before the step
                Mat Gt(G.size());
                for (int64_t i = 0; i < C; ++i)
                    for (int64_t j = 0; j < C; ++j) Gt[i * C + j] = G[j * C + i];
                CHECK(rel(mul_t(p.wk[k], G, R, C, C), p.gq[k]) <= 1e-5);
                CHECK(rel(mul_t(p.wq[k], Gt, R, C, C), p.gk[k]) <= 1e-5);
            }
            // The top pairs are the largest |share_g| of share = g x_i^T G x_j / ||G||^2.
            double g2 = 0;
            for (double v : p.G[k]) g2 += v * v;
            std::vector<double> direct;
            for (int64_t b = 0; b < B; ++b)
                for (int64_t i = 0; i < T; ++i)
                    for (int64_t j = 0; j <= i; ++j) {
                        const double* xi = &p.x[l][(b * T + i) * C];
                        const double* xj = &p.x[l][(b * T + j) * C];
                        double q = 0;
                        for (int64_t a = 0; a < C; ++a)
                            for (int64_t d = 0; d < C; ++d) q += xi[a] * p.G[k][a * C + d] * xj[d];
                        direct.push_back(std::abs(p.D[k][(b * T + i) * T + j] * q / g2));
                    }
            std::sort(direct.rbegin(), direct.rend());
            REQUIRE(hp.top_g.size() == 4);
            for (size_t r = 0; r < 4; ++r) CHECK(std::abs(std::abs(hp.top_g[r].share_g) - direct[r]) <= 1e-9);
        }
    tape().clear();
}

TEST_CASE("pair shares and top pairs agree with PyTorch autograd (tests/fixtures/pairs.safetensors)",
          "[probe][pairs][torch]") {
    models::SafeTensors fx = models::read_safetensors(test::source_path("tests/fixtures/pairs.safetensors"));
    const std::string v = GENERATE(std::string("mha"), std::string("alt1"));
    INFO(v);
    models::SafeTensors st;
    const std::string prefix = v + ".init.";
    for (auto& [n, t] : fx.f32)
        if (n.rfind(prefix, 0) == 0) st.f32.emplace_back(n.substr(prefix.size()), t);
    models::GPTModel m(cfg(v));
    models::load_model_weights(m, st, "tests/fixtures/pairs.safetensors");
    optim::SGD opt(refs(m), {.lr = 1.0});  // the script's plain SGD step
    DynamicsProbe probe(m, "", 1);
    probe.enable_pairs(5, "", {});
    const Ids& ids = fx.i64.at(v + ".ids");
    Probed p = probed_step(m, opt, probe, ids, fx.i64.at(v + ".targets"));
    const Tensor& share_g = fx.get(v + ".share_g");  // [L, H, B, T, T]
    const Tensor& share_dm = fx.get(v + ".share_dm");
    const Ids& top = fx.i64.at(v + ".top_g");  // [L, H, K, 3]
    const int64_t n = 2 * 8 * 8, C = 16;
    for (int64_t k = 0; k < 4; ++k) {
        INFO("layer " << k / 2 << " head " << k % 2);
        const HeadPairs& hp = probe.pair_rows()[static_cast<size_t>(k)];
        // Every pair's shares, through the same routine the probe calls.
        PairInput in;
        std::vector<float> x(p.x[k / 2].begin(), p.x[k / 2].end()), D(p.D[k].begin(), p.D[k].end()),
            G(p.G[k].begin(), p.G[k].end());
        in.x = x.data();
        in.D = D.data();
        in.B = 2;
        in.T = 8;
        in.C = C;
        in.G.dense = G.data();
        in.g_norm2 = norm(p.G[k]) * norm(p.G[k]);
        PairField f = pair_shares(in);
        double err_g = 0, err_dm = 0;
        for (int64_t e = 0; e < n; ++e)
            err_g = std::max(err_g, std::abs(f.share_g[e] - share_g.data()[k * n + e]));
        CHECK(err_g <= 1e-5);
        REQUIRE(hp.top_g.size() == 5);
        for (int64_t r = 0; r < 5; ++r) {
            const int64_t* t = &top.data[(k * 5 + r) * 3];
            INFO("rank " << r + 1);
            CHECK(hp.top_g[r].b == t[0]);
            CHECK(hp.top_g[r].i == t[1]);
            CHECK(hp.top_g[r].j == t[2]);
            const int64_t e = (t[0] * 8 + t[1]) * 8 + t[2];
            CHECK(std::abs(hp.top_g[r].share_g - share_g.data()[k * n + e]) <= 1e-5);
            CHECK(std::abs(hp.top_g[r].share_dm - share_dm.data()[k * n + e]) <= 1e-5);
        }
        // -dM's shares of the pairs PyTorch ranks first, and the totals.
        for (const PairShare& ps : hp.top_dm) {
            const int64_t e = (ps.b * 8 + ps.i) * 8 + ps.j;
            err_dm = std::max(err_dm, std::abs(ps.share_dm - share_dm.data()[k * n + e]));
        }
        CHECK(err_dm <= 1e-5);
        CHECK(std::abs(hp.total_dm - 1) <= 1e-5);
    }
    tape().clear();
}

TEST_CASE("pairs.csv: a header, every row with its 17 cells, tokens quoted", "[probe][pairs]") {
    manual_seed(3);
    models::GPTModel m(cfg("alt1"));
    optim::SGD opt(refs(m), {.lr = 0.1});
    const std::string path = (std::filesystem::temp_directory_path() / "tapegrad_test_pairs.csv").string();
    DynamicsProbe probe(m, "", 1);
    DynamicsProbe::PairTokens tokens;
    tokens.ids = [] { return &kIds; };
    tokens.decode = [](int64_t id) { return id == 39 ? std::string("a,\"b") : fmt::format("t{}", id); };
    probe.enable_pairs(3, path, tokens);
    probed_step(m, opt, probe, kIds, kTargets);
    std::ifstream f(path);
    std::string line;
    REQUIRE(std::getline(f, line));
    CHECK(line == pairs_csv_header());
    int64_t rows = 0, tops = 0;
    while (std::getline(f, line)) {
        ++rows;
        // Cells outside quotes: 17 for every kind of row.
        int64_t cells = 1;
        bool quoted = false;
        for (char ch : line) {
            if (ch == '"') quoted = !quoted;
            if (ch == ',' && !quoted) ++cells;
        }
        CHECK(cells == 17);
        if (line.find(",top_g,") != std::string::npos) {
            ++tops;
            CHECK(line.find(",\"t") != std::string::npos);
        }
    }
    // Per head: 3 + 3 top rows, 2 seq, 4 offset buckets (T = 8: 0, 1, 2-3, 4-7), sink, total, seq_cos.
    CHECK(tops == 4 * 3);
    CHECK(rows == 4 * (6 + 2 + 4 + 3));
    std::filesystem::remove(path);
}
