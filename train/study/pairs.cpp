#include "train/study/pairs.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include <cblas.h>

namespace tg::train {
namespace {

std::vector<double> to_double(const float* p, int64_t n) { return std::vector<double>(p, p + n); }

// C = alpha op(A) op(B) + beta C, row-major, double: a read-out (DEVELOPERS.md).
void dgemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha, const double* a, int64_t lda,
           const double* b, int64_t ldb, double beta, double* c, int64_t ldc) {
    cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                static_cast<int>(m), static_cast<int>(n), static_cast<int>(k), alpha, a,
                static_cast<int>(lda), b, static_cast<int>(ldb), beta, c, static_cast<int>(ldc));
}

// P_b = X_b N X_b^T [T, T] for every sequence b, X [B T, C] in double.
//   dense:   Y = X op(N) [B T, C] (one GEMM), then P_b = Y_b X_b^T
//   factors: U = X L^T, V = X R^T [B T, rows], then P_b += scale U_b V_b^T
std::vector<double> quadratic_form(const std::vector<double>& X, int64_t B, int64_t T, int64_t C,
                                   const Bilinear& N) {
    std::vector<double> P(static_cast<size_t>(B * T * T), 0.0);
    const int64_t BT = B * T;
    if (N.dense) {
        std::vector<double> Nd = to_double(N.dense, C * C), Y(static_cast<size_t>(BT * C));
        dgemm(false, N.dense_transposed, BT, C, C, N.dense_scale, X.data(), C, Nd.data(), C, 0.0, Y.data(),
              C);
        for (int64_t b = 0; b < B; ++b)
            dgemm(false, true, T, T, C, 1.0, Y.data() + b * T * C, C, X.data() + b * T * C, C, 1.0,
                  P.data() + b * T * T, T);
    }
    for (const Bilinear::Factor& f : N.factors) {
        const int64_t r = f.rows;
        std::vector<double> L = to_double(f.l, r * C), R = to_double(f.r, r * C);
        std::vector<double> U(static_cast<size_t>(BT * r)), V(static_cast<size_t>(BT * r));
        dgemm(false, true, BT, r, C, 1.0, X.data(), C, L.data(), C, 0.0, U.data(), r);
        dgemm(false, true, BT, r, C, 1.0, X.data(), C, R.data(), C, 0.0, V.data(), r);
        for (int64_t b = 0; b < B; ++b)
            dgemm(false, true, T, T, r, f.scale, U.data() + b * T * r, r, V.data() + b * T * r, r, 1.0,
                  P.data() + b * T * T, T);
    }
    return P;
}

bool has_terms(const Bilinear& n) { return n.dense || !n.factors.empty(); }

// Mean over b < c of cos(G_b, G_c), G_b = X_b^T D_b X_b, through
// <G_b, G_c> = tr(X_b^T D_b^T X_b X_c^T D_c X_c) = <D_b, K D_c K^T>, K = X_b X_c^T.
double sequence_cosine(const std::vector<double>& X, const std::vector<double>& D, int64_t B, int64_t T,
                       int64_t C) {
    if (B < 2) return NAN;
    std::vector<double> K(static_cast<size_t>(T * T)), E(K.size()), F(K.size());
    auto inner = [&](int64_t b, int64_t c) {
        dgemm(false, true, T, T, C, 1.0, X.data() + b * T * C, C, X.data() + c * T * C, C, 0.0, K.data(), T);
        dgemm(false, false, T, T, T, 1.0, K.data(), T, D.data() + c * T * T, T, 0.0, E.data(), T);
        dgemm(false, true, T, T, T, 1.0, E.data(), T, K.data(), T, 0.0, F.data(), T);
        return std::inner_product(F.begin(), F.end(), D.begin() + b * T * T, 0.0);
    };
    std::vector<double> n2(static_cast<size_t>(B));
    for (int64_t b = 0; b < B; ++b) n2[b] = inner(b, b);
    double sum = 0;
    int64_t count = 0;
    for (int64_t b = 0; b < B; ++b)
        for (int64_t c = b + 1; c < B; ++c, ++count) {
            double d = std::sqrt(std::max(0.0, n2[b]) * std::max(0.0, n2[c]));
            sum += d > 0 ? inner(b, c) / d : 0.0;
        }
    return sum / static_cast<double>(count);
}

// The top k pairs by |share| (ties: the earlier pair), among pairs with g != 0.
std::vector<PairShare> top_pairs(const PairField& f, const std::vector<double>& D, int64_t T, int64_t k,
                                 const std::vector<double>& key) {
    std::vector<int64_t> idx;
    for (int64_t n = 0; n < static_cast<int64_t>(D.size()); ++n)
        if (D[n] != 0) idx.push_back(n);
    k = std::min<int64_t>(k, static_cast<int64_t>(idx.size()));
    std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), [&](int64_t a, int64_t b) {
        double x = std::abs(key[a]), y = std::abs(key[b]);
        return x != y ? x > y : a < b;
    });
    std::vector<PairShare> out;
    for (int64_t r = 0; r < k; ++r) {
        int64_t n = idx[r];
        out.push_back({n / (T * T), (n / T) % T, n % T, D[n], f.share_g[n], f.share_dm[n]});
    }
    return out;
}

// A token's text as one CSV cell: quoted, with inner quotes doubled (RFC 4180).
std::string csv_text(const std::string& s) {
    std::string out = "\"";
    for (char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
    return out + "\"";
}

}  // namespace

int64_t offset_bucket(int64_t offset) {
    int64_t k = 0;
    while (offset > 0) {
        offset >>= 1;
        ++k;
    }
    return k;  // 0 -> 0, 1 -> 1, 2..3 -> 2, 4..7 -> 3, ...
}

std::string offset_label(int64_t bucket) {
    if (bucket <= 1) return std::to_string(bucket);
    return fmt::format("{}-{}", int64_t{1} << (bucket - 1), (int64_t{1} << bucket) - 1);
}

PairField pair_shares(const PairInput& in) {
    const int64_t n = in.B * in.T * in.T;
    std::vector<double> X = to_double(in.x, in.B * in.T * in.C);
    PairField f;
    f.share_g.assign(static_cast<size_t>(n), 0.0);
    f.share_dm.assign(static_cast<size_t>(n), 0.0);
    if (in.g_norm2 > 0) {
        std::vector<double> P = quadratic_form(X, in.B, in.T, in.C, in.G);
        for (int64_t e = 0; e < n; ++e) f.share_g[e] = in.D[e] * P[e] / in.g_norm2;
    }
    if (has_terms(in.minus_dm) && in.dm_inner != 0) {
        std::vector<double> Q = quadratic_form(X, in.B, in.T, in.C, in.minus_dm);
        for (int64_t e = 0; e < n; ++e) f.share_dm[e] = in.D[e] * Q[e] / in.dm_inner;
    }
    return f;
}

HeadPairs analyse_pairs(const PairInput& in, int64_t top_k) {
    const int64_t B = in.B, T = in.T;
    PairField f = pair_shares(in);
    std::vector<double> D = to_double(in.D, B * T * T);
    HeadPairs h;
    h.seq_g.assign(static_cast<size_t>(B), 0.0);
    h.seq_dm.assign(static_cast<size_t>(B), 0.0);
    const size_t buckets = static_cast<size_t>(offset_bucket(T - 1) + 1);
    h.offset_g.assign(buckets, 0.0);
    h.offset_dm.assign(buckets, 0.0);
    for (int64_t b = 0; b < B; ++b)
        for (int64_t i = 0; i < T; ++i)
            for (int64_t j = 0; j < T; ++j) {
                const int64_t e = (b * T + i) * T + j;
                const double sg = f.share_g[e], sd = f.share_dm[e];
                h.total_g += sg;
                h.total_dm += sd;
                h.seq_g[b] += sg;
                h.seq_dm[b] += sd;
                if (j <= i) {  // g = 0 above the diagonal (causal mask)
                    h.offset_g[offset_bucket(i - j)] += sg;
                    h.offset_dm[offset_bucket(i - j)] += sd;
                }
                if (j == 0) {
                    h.sink_g += sg;
                    h.sink_dm += sd;
                }
            }
    h.top_g = top_pairs(f, D, T, top_k, f.share_g);
    h.top_dm = top_pairs(f, D, T, top_k, f.share_dm);
    h.seq_cos = sequence_cosine(to_double(in.x, B * T * in.C), D, B, T, in.C);
    return h;
}

// pairs.csv, one row per line, `kind` says which cells it fills:
//   step, layer, head   the probed step (metrics.csv's numbering), layer, head
//   kind   top_g | top_dm: one of the head's top K pairs by |share_g| / |share_dm|;
//          seq: the shares summed over sequence b; offset: summed over the pairs
//          whose i - j falls in `offset`; sink: summed over the pairs whose key is
//          position 0; total: summed over all pairs (1 up to rounding);
//          seq_cos: `value` is the mean over b < c of cos(G_b, G_c) (empty: B = 1)
//   rank   1..K within top_g / top_dm
//   b, i, j   sequence in the batch, query position, key position (top_*, b: seq)
//   offset    the bucket of i - j: 0, 1, 2-3, 4-7, ... (top_*, offset)
//   query_id, key_id   the model's input ids at (b, i) and (b, j) (compact ids
//                      under a corpus vocabulary); query_token, key_token their text
//   g         dL/ds_bij (top_*)
//   share_g   g_bij (X_b G X_b^T)_ij / ||G||^2
//   share_dm  g_bij (X_b (-dM) X_b^T)_ij / <G, -dM>
//   value     seq_cos only
std::string pairs_csv_header() {
    return "step,layer,head,kind,rank,b,i,j,offset,query_id,key_id,query_token,key_token,g,share_g,share_dm,"
           "value";
}

std::string pairs_csv_rows(const HeadPairs& h, const Ids& ids,
                           const std::function<std::string(int64_t)>& decode) {
    auto v = [](double x) { return std::isnan(x) ? std::string() : fmt::format("{:.8g}", x); };
    const std::string head = fmt::format("{},{},{},", h.step, h.layer, h.head);
    const int64_t T = ids.shape.size() == 2 ? ids.shape[1] : 0;
    std::string text;
    auto top = [&](const char* kind, const std::vector<PairShare>& pairs) {
        for (size_t r = 0; r < pairs.size(); ++r) {
            const PairShare& p = pairs[r];
            std::string tok = ",,,";
            if (T > 0) {
                int64_t q = ids.data[p.b * T + p.i], k = ids.data[p.b * T + p.j];
                auto text_of = [&](int64_t id) { return decode ? csv_text(decode(id)) : std::string(); };
                tok = fmt::format("{},{},{},{}", q, k, text_of(q), text_of(k));
            }
            text += head + fmt::format("{},{},{},{},{},{},{},{},{},{},\n", kind, r + 1, p.b, p.i, p.j,
                                       offset_label(offset_bucket(p.i - p.j)), tok, v(p.g), v(p.share_g),
                                       v(p.share_dm));
        }
    };
    top("top_g", h.top_g);
    top("top_dm", h.top_dm);
    for (size_t b = 0; b < h.seq_g.size(); ++b)
        text += head + fmt::format("seq,,{},,,,,,,,,{},{},\n", b, v(h.seq_g[b]), v(h.seq_dm[b]));
    for (size_t k = 0; k < h.offset_g.size(); ++k)
        text += head + fmt::format("offset,,,,,{},,,,,,{},{},\n", offset_label(static_cast<int64_t>(k)),
                                   v(h.offset_g[k]), v(h.offset_dm[k]));
    text += head + fmt::format("sink,,,,,,,,,,,{},{},\n", v(h.sink_g), v(h.sink_dm));
    text += head + fmt::format("total,,,,,,,,,,,{},{},\n", v(h.total_g), v(h.total_dm));
    text += head + fmt::format("seq_cos,,,,,,,,,,,,,{}\n", v(h.seq_cos));
    return text;
}

}  // namespace tg::train
