// The gradient dynamics probe: for each layer l and head h, how the effective
// bilinear matrix of attention moves under training.
//
//   mha:  scores = x Wq^T Wk x^T,  M = Wq^T Wk  [C, C], rank <= R
//         (Wq, Wk = head h's rows of W_query.weight, W_key.weight: [R, C];
//         R = qk_dim, HS unless --qk-dim; the HS x HS matrices below are then R x R)
//   alt1: scores = x S^T x^T,      M = S^T
//   G = dL/dM = sum over the batch of x^T (dL/dscores) x, with dL/dscores read
//   by a hook on the pre-mask scores (so the 1/sqrt(HS) scale is folded in).
//   Identities: dL/dWq = Wk G^T, dL/dWk = Wq G, dL/dS = G^T.
//
// After the optimizer step the change of M splits exactly:
//   mha:  dM = dWq^T Wk (query term) + Wq^T dWk (key term) + dWq^T dWk (cross)
//   alt1: dM = dS^T
// Norms and inner products of these terms never form a C x C matrix: with
// A^T B for A, B [HS, C],  ||A^T B||^2 = <A A^T, B B^T>  (HS x HS Gram matrices)
// and <A^T B, G> = <A, B G^T>. Spectra of M for mha come from the HS x HS core
// R_q R_k^T of the QR factors (M = Q_q R_q R_k^T Q_k^T); for alt1 a full SVD of
// S (LAPACK). Rows go to dynamics.csv every `every` steps (and at step 0).
//
// The drift D = M_t - M_0 from the first probed step says what training put
// into M, apart from the random init: for mha D = [Wq_t; -Wq_0]^T [Wk_t; Wk_0],
// rank <= 2R, its spectrum through the same [2R, 2R] core when 2R < C (else
// D [C, C] is formed); for alt1 D = (S_t - S_0)^T, a full SVD.
#pragma once

#include <cmath>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "models/gpt.h"
#include "train/io/checked_file.h"
#include "train/loop/observer.h"
#include "train/study/pairs.h"

namespace tg::train {

// Everything recorded for one head at one probed step.
struct HeadDynamics {
    int64_t step = 0, layer = 0, head = 0;
    bool merged = false;                                         // alt1 (M = S^T): one term
    double g_norm = 0, dwq_norm = 0, dwk_norm = 0, ds_norm = 0;  // gradient norms
    double m_norm = 0, dm_norm = 0, dm_rel = 0;                  // ||M||, ||dM||, ||dM||/||M||
    double term_norm[3] = {0, 0, 0};                             // query, key, cross (alt1: [0] = dS^T)
    double term_cos[3] = {0, 0, 0};                              // cosine of each term with -G
    double dm_cos = 0;                                           // cosine of dM with -G
    double wq_top = 0, wq_trace = 0, wk_top = 0, wk_trace = 0;   // Wq^T Wq, Wk^T Wk: top eigenvalue, trace
    std::vector<double> sv;                                      // top singular values of M
    double stable_rank = 0, effective_rank = 0, nuclear = 0;
    double attn_entropy = 0;  // mean over rows of the softmax entropy
    // What was learned: the same spectrum summary of D = M_t - M_0, M_0 being M
    // at the probe's first step (NaN when the probe did not see it: a resumed run).
    double drift_fro = NAN, drift_stable_rank = NAN, drift_effective_rank = NAN, drift_nuclear = NAN;
};

class DynamicsProbe : public StepObserver {
public:
    static constexpr int kTopSV = 8;
    // csv_path empty: keep rows in memory only (tests).
    DynamicsProbe(models::GPTModel& model, const std::string& csv_path, int64_t every, bool append = false);
    ~DynamicsProbe() override;
    DynamicsProbe(const DynamicsProbe&) = delete;
    DynamicsProbe& operator=(const DynamicsProbe&) = delete;

    void begin_step(int64_t step) override;
    void after_backward() override;
    void before_update() override;
    void after_update(double lr) override;

    const std::vector<HeadDynamics>& rows() const { return rows_; }
    double seconds() const { return seconds_; }
    // G of (layer, head) from the last probed backward, [C, C] row-major (tests).
    const std::vector<float>& G(int64_t layer, int64_t head) const;

    static std::string csv_header();

    // --probe-pairs K (train/study/pairs.h): at each probed step, every head's
    // pair decomposition of G and of -dM, kept in pair_rows() and written to
    // csv_path (empty: memory only). `ids` gives the step's input ids [B, T]
    // (null: no token columns), `decode` one id's text. Single process only:
    // under mpirun a rank's pairs are its rows, and G is the global one.
    struct PairTokens {
        std::function<const Ids*()> ids;
        std::function<std::string(int64_t)> decode;
    };
    void enable_pairs(int64_t top_k, const std::string& csv_path, PairTokens tokens, bool append = false);
    const std::vector<HeadPairs>& pair_rows() const { return pair_rows_; }
    // What the last probed backward held for the pairs (tests): dL/dscores of
    // (layer, head) [B, T, T], and the layer's attention input [B, T, C].
    const std::vector<float>& D(int64_t layer, int64_t head) const;
    const Tensor& x(int64_t layer) const;

private:
    struct Head;
    struct Layer;
    void snapshot(Layer& L, Head& h, std::vector<float>& a, std::vector<float>& b) const;
    void measure_update(Layer& L, Head& H) const;  // fills H.row; one head, thread-safe
    static void drift_spectrum(HeadDynamics& r, const Head& H, int64_t C, int64_t hs);
    void write_rows(size_t from);
    void measure_pairs();  // after measure_update: needs each head's g_norm, dm_cos, dm_norm

    models::GPTModel& model_;
    std::vector<Layer> layers_;
    int64_t every_, step_ = -1;
    bool active_ = false;
    std::vector<HeadDynamics> rows_;
    std::unique_ptr<CheckedFile> csv_;  // every write checked
    double seconds_ = 0;
    int64_t pairs_top_ = 0;  // 0: no pair decomposition
    PairTokens pair_tokens_;
    std::vector<HeadPairs> pair_rows_;
    std::unique_ptr<CheckedFile> pairs_csv_;
};

}  // namespace tg::train
