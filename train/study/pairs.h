// The pair decomposition of a head's G (issue 39): which (query, key) pairs of
// the batch make the gradient of the bilinear matrix M, and the realised update.
//
//   s_bij = x_bi^T M x_bj   =>   G = dL/dM = sum over b, i, j of g_bij x_bi x_bj^T,
//   g_bij = dL/ds_bij (the probe's D, pre-mask: masked pairs have g = 0)
//
// A pair's share of G is its projection on G over ||G||^2:
//   share_g(b, i, j)  = <g_bij x_bi x_bj^T, G> / ||G||^2 = g_bij (X_b G X_b^T)_ij / ||G||^2
// and its share of the update direction -dM (mha: dM from the factor snapshots
// before and after the step, = dWq^T Wk' + Wq^T dWk with Wk' after; alt1: dS^T):
//   share_dm(b, i, j) = g_bij (X_b (-dM) X_b^T)_ij / <G, -dM>
// Both sum to exactly 1 over all pairs (sum_ij g_ij (X N X^T)_ij = <X^T D X, N>).
// X_b N X_b^T is [T, T]: one GEMM per head for X N ([B T, C] x [C, C]) and one
// per sequence for (X N)_b X_b^T; a factored -dM goes through [B T, R]
// products. No C x C matrix is formed per pair. All in double: the shares are
// differences of much larger terms, and the rebuild check asks for 1e-5.
//
// How much the sequences agree: cos(G_b, G_c) = <G_b, G_c> / (||G_b|| ||G_c||)
// with G_b = X_b^T D_b X_b and <G_b, G_c> = <D_b, K_bc D_c K_bc^T>, K_bc = X_b X_c^T
// [T, T] (again no C x C matrix per sequence).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace tg::train {

// One (query, key) pair: sequence b, query position i, key position j <= i.
struct PairShare {
    int64_t b = 0, i = 0, j = 0;
    double g = 0, share_g = 0, share_dm = 0;
};

// Offset buckets of i - j: 0, 1, 2-3, 4-7, ..., [2^(k-1), 2^k - 1].
int64_t offset_bucket(int64_t offset);
std::string offset_label(int64_t bucket);

// One head at one probed step.
struct HeadPairs {
    int64_t step = 0, layer = 0, head = 0;
    std::vector<PairShare> top_g, top_dm;     // the top K by |share_g|, by |share_dm|
    std::vector<double> seq_g, seq_dm;        // summed shares by sequence b
    std::vector<double> offset_g, offset_dm;  // summed shares by offset bucket
    double sink_g = 0, sink_dm = 0;           // pairs whose key is position 0
    double total_g = 0, total_dm = 0;         // over all pairs: 1 up to rounding
    double seq_cos = 0;                       // mean over b < c of cos(G_b, G_c) (NaN: B = 1)
};

// A matrix N [C, C] as the pair decomposition reads it:
//   N = dense_scale * op(dense) + sum over factors of scale * L^T R  (L, R [rows, C])
// with op the identity or the transpose (alt1's -dM = -dS^T).
struct Bilinear {
    const float* dense = nullptr;
    bool dense_transposed = false;
    double dense_scale = 1;
    struct Factor {
        const float *l, *r;
        int64_t rows;
        double scale;
    };
    std::vector<Factor> factors;
};

struct PairInput {
    const float* x = nullptr;  // the attention input [B, T, C]
    const float* D = nullptr;  // dL/dscores of the head [B, T, T]
    int64_t B = 0, T = 0, C = 0;
    Bilinear G;           // the probe's G
    double g_norm2 = 0;   // ||G||^2, the share_g normaliser
    Bilinear minus_dm;    // -dM; no terms: share_dm is 0
    double dm_inner = 0;  // <G, -dM>, the share_dm normaliser (0: share_dm is 0)
};

// The shares of every pair of one head, [B, T, T] each (j > i: 0).
struct PairField {
    std::vector<double> share_g, share_dm;
};
PairField pair_shares(const PairInput& in);

// The aggregates and the top `top_k` pairs of one head (step, layer, head left 0).
HeadPairs analyse_pairs(const PairInput& in, int64_t top_k);

// pairs.csv: the columns (documented in pairs.cpp and docs/dynamics.md) and a
// head's rows; `ids` the batch's input ids [B, T] (empty: no token columns),
// `decode` one id to its text.
std::string pairs_csv_header();
std::string pairs_csv_rows(const HeadPairs& h, const Ids& ids,
                           const std::function<std::string(int64_t)>& decode);

}  // namespace tg::train
