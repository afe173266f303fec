#include "train/study/probe.h"

#include <fmt/format.h>
#include <lapacke.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <exception>
#include <filesystem>

#include <cblas.h>

#include "core/blas.h"
#include "core/ops/broadcast.h"
#include "core/parallel.h"
#include "train/dist/mpi.h"

namespace tg::train {
namespace {

double dot(const float* a, const float* b, int64_t n) {
    double s = 0;
    for (int64_t i = 0; i < n; ++i) s += static_cast<double>(a[i]) * b[i];
    return s;
}

// X Y^T for X, Y [r, c] row-major, in double: the [HS, HS] products behind every
// norm and inner product of the dM terms (float would lose ||dM||, ~1e-3 of ||M||).
std::vector<double> gram(const float* x, const float* y, int64_t r, int64_t c) {
    std::vector<double> xd(x, x + r * c), yd(y, y + r * c), g(static_cast<size_t>(r * r));
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(r), static_cast<int>(r),
                static_cast<int>(c), 1.0, xd.data(), static_cast<int>(c), yd.data(), static_cast<int>(c), 0.0,
                g.data(), static_cast<int>(r));
    return g;
}

double dotd(const std::vector<double>& a, const std::vector<double>& b) {
    double s = 0;
    for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
    return s;
}

// Descending singular values of a [m, n] row-major float matrix (LAPACK gesdd, values only).
std::vector<double> singular_values(std::vector<float> a, int64_t m, int64_t n) {
    std::vector<float> s(static_cast<size_t>(std::min(m, n)));
    int info = LAPACKE_sgesdd(LAPACK_ROW_MAJOR, 'N', static_cast<int>(m), static_cast<int>(n), a.data(),
                              static_cast<int>(n), s.data(), nullptr, static_cast<int>(m), nullptr,
                              static_cast<int>(n));
    if (info != 0) throw Error(fmt::format("tapegrad: probe: LAPACK sgesdd failed (info {})", info));
    return {s.begin(), s.end()};
}

// R factor (upper triangle, [k, k]) of the QR of A^T, A [k, c] row-major, k <= c, in double.
std::vector<double> r_of_transpose(const float* a, int64_t k, int64_t c) {
    std::vector<double> at(static_cast<size_t>(c * k));  // A^T [c, k] row-major
    for (int64_t i = 0; i < k; ++i)
        for (int64_t j = 0; j < c; ++j) at[j * k + i] = a[i * c + j];
    std::vector<double> tau(static_cast<size_t>(k));
    int info = LAPACKE_dgeqrf(LAPACK_ROW_MAJOR, static_cast<int>(c), static_cast<int>(k), at.data(),
                              static_cast<int>(k), tau.data());
    if (info != 0) throw Error(fmt::format("tapegrad: probe: LAPACK dgeqrf failed (info {})", info));
    std::vector<double> r(static_cast<size_t>(k * k), 0.0);
    for (int64_t i = 0; i < k; ++i)
        for (int64_t j = i; j < k; ++j) r[i * k + j] = at[i * k + j];
    return r;
}

// Singular values of M = Wq^T Wk through the [HS, HS] core R_q R_k^T.
std::vector<double> lowrank_singular_values(const float* wq, const float* wk, int64_t hs, int64_t c) {
    std::vector<double> rq = r_of_transpose(wq, hs, c), rk = r_of_transpose(wk, hs, c);
    std::vector<double> core(static_cast<size_t>(hs * hs), 0.0);
    for (int64_t i = 0; i < hs; ++i)
        for (int64_t j = 0; j < hs; ++j) {
            double s = 0;
            for (int64_t t = 0; t < hs; ++t) s += rq[i * hs + t] * rk[j * hs + t];
            core[i * hs + j] = s;
        }
    std::vector<double> sv(static_cast<size_t>(hs));
    int info = LAPACKE_dgesdd(LAPACK_ROW_MAJOR, 'N', static_cast<int>(hs), static_cast<int>(hs), core.data(),
                              static_cast<int>(hs), sv.data(), nullptr, static_cast<int>(hs), nullptr,
                              static_cast<int>(hs));
    if (info != 0) throw Error(fmt::format("tapegrad: probe: LAPACK dgesdd failed (info {})", info));
    return sv;
}

// Largest eigenvalue of a symmetric [n, n] matrix.
double top_eigenvalue(const std::vector<double>& s, int64_t n) {
    std::vector<double> a(s.begin(), s.end()), w(static_cast<size_t>(n));
    int info = LAPACKE_dsyev(LAPACK_ROW_MAJOR, 'N', 'U', static_cast<int>(n), a.data(), static_cast<int>(n),
                             w.data());
    if (info != 0) throw Error(fmt::format("tapegrad: probe: LAPACK dsyev failed (info {})", info));
    return w.back();
}

void spectrum_summary(HeadDynamics& r, const std::vector<double>& sv, double fro2) {
    double top = sv.empty() ? 0 : sv[0], nuc = 0;
    for (double s : sv) nuc += s;
    r.nuclear = nuc;
    r.stable_rank = top > 0 ? fro2 / (top * top) : 0;
    double h = 0;
    for (double s : sv)
        if (s > 0 && nuc > 0) h -= (s / nuc) * std::log(s / nuc);
    r.effective_rank = std::exp(h);
    r.sv.assign(sv.begin(), sv.begin() + std::min<size_t>(sv.size(), DynamicsProbe::kTopSV));
}

// Mean over rows of the entropy of softmax(masked scores / sqrt(HS)); scores [n, T, T].
double attention_entropy(const float* s, int64_t n, int64_t T, int64_t hs) {
    double total = 0;
    float scale = 1.0f / std::sqrt(static_cast<float>(hs));
    for (int64_t b = 0; b < n; ++b)
        for (int64_t i = 0; i < T; ++i) {
            const float* row = s + (b * T + i) * T;
            double m = -1e300, z = 0, e = 0;
            for (int64_t j = 0; j <= i; ++j) m = std::max(m, static_cast<double>(row[j] * scale));
            for (int64_t j = 0; j <= i; ++j) z += std::exp(row[j] * scale - m);
            for (int64_t j = 0; j <= i; ++j) {
                double p = std::exp(row[j] * scale - m) / z;
                if (p > 0) e -= p * std::log(p);
            }
            total += e;
        }
    return total / static_cast<double>(n * T);
}

// The probe's contract with an attention variant (nn::BilinearHead): one entry
// per head, each factor rows of a 2-D parameter [*, C]; merged heads are [C, C].
void check_bilinear(const std::vector<nn::BilinearHead>& bil, const nn::Attention& att,
                    const std::string& name) {
    const nn::AttentionSpec& s = att.spec();
    if (bil.empty())
        throw Error("tapegrad: probe: attention '" + name +
                    "' exposes no bilinear factors (override nn::Attention::bilinear_heads)");
    if (static_cast<int64_t>(bil.size()) != s.num_heads)
        throw Error(fmt::format("tapegrad: probe: attention '{}' gives {} bilinear heads for {} heads", name,
                                bil.size(), s.num_heads));
    auto check = [&](const nn::WeightRows& w, bool merged) {
        bool ok = w.weight.defined() && w.weight.dim() == 2 && w.weight.size(1) == s.d_in && w.row0 >= 0 &&
                  w.rows > 0 && w.row0 + w.rows <= w.weight.size(0) && w.weight.is_contiguous() &&
                  (!merged || w.rows == s.d_in);
        if (!ok)
            throw Error(fmt::format("tapegrad: probe: attention '{}': a bilinear factor must be rows of a "
                                    "contiguous 2-D parameter [*, {}] ([{}, {}] when merged)",
                                    name, s.d_in, s.d_in, s.d_in));
    };
    for (auto& h : bil) {
        check(h.a, !h.b);
        if (h.b) {
            check(*h.b, false);
            if (h.b->rows != h.a.rows)
                throw Error("tapegrad: probe: attention '" + name + "': factors A and B differ in rows");
        }
    }
}

void copy_rows(const nn::WeightRows& w, std::vector<float>& out) {
    int64_t C = w.weight.size(1);
    const float* p = w.weight.data() + w.row0 * C;
    out.assign(p, p + w.rows * C);
}

double rows_grad_norm(const nn::WeightRows& w) {
    Tensor g = w.weight.grad();
    if (!g.defined()) return 0;
    int64_t C = w.weight.size(1);
    Tensor gc = g.is_contiguous() ? g : g.clone();
    return std::sqrt(dot(gc.data() + w.row0 * C, gc.data() + w.row0 * C, w.rows * C));
}

}  // namespace

struct DynamicsProbe::Head {
    std::vector<float> D;     // dL/dscores [B, T, T]
    std::vector<float> G;     // [C, C]
    std::vector<float> a, b;  // before the update: Wq, Wk [HS, C] (mha) or S [C, C] (alt1)
    std::vector<float> a0, b0;  // the same at the probe's first step: M_0
    HeadDynamics row;
    bool have_grad = false;
};

struct DynamicsProbe::Layer {
    nn::Attention* att = nullptr;
    std::vector<nn::BilinearHead> bil;  // each head's M = A^T B (or A^T), from the variant
    std::vector<Head> heads;
    Tensor x;  // attention input [B, T, C]
    int64_t B = 0, T = 0;
};

DynamicsProbe::DynamicsProbe(models::GPTModel& model, const std::string& csv_path, int64_t every, bool append)
    : model_(model), every_(std::max<int64_t>(every, 1)) {
    for (size_t l = 0; l < model.trf_blocks.size(); ++l) {
        Layer L;
        L.att = model.trf_blocks[l]->att.get();
        L.bil = L.att->bilinear_heads();
        check_bilinear(L.bil, *L.att, model.config().attention);
        L.heads.resize(L.bil.size());
        layers_.push_back(std::move(L));
    }
    if (!csv_path.empty()) {
        bool exists = append && std::filesystem::exists(csv_path);
        csv_ = std::make_unique<CheckedFile>(csv_path, append ? "a" : "w");
        if (!exists) csv_->write(csv_header() + "\n");
    }
}

DynamicsProbe::~DynamicsProbe() {
    for (auto& L : layers_) L.att->observe = nullptr;
}

std::string DynamicsProbe::csv_header() {
    std::string h =
        "step,layer,head,g_norm,dwq_norm,dwk_norm,ds_norm,m_norm,dm_norm,dm_rel,"
        "term_q_norm,term_k_norm,term_x_norm,term_s_norm,term_q_cos,term_k_cos,term_x_cos,term_s_cos,"
        "dm_cos,wq_top,wq_trace,wk_top,wk_trace,stable_rank,effective_rank,nuclear,attn_entropy";
    for (int i = 1; i <= kTopSV; ++i) h += fmt::format(",sv{}", i);
    h += ",drift_fro,drift_stable_rank,drift_effective_rank,drift_nuclear";
    return h;
}

const std::vector<float>& DynamicsProbe::G(int64_t layer, int64_t head) const {
    return layers_.at(static_cast<size_t>(layer)).heads.at(static_cast<size_t>(head)).G;
}

void DynamicsProbe::begin_step(int64_t step) {
    step_ = step;
    active_ = step % every_ == 0;
    for (size_t li = 0; li < layers_.size(); ++li) {
        Layer& L = layers_[li];
        if (!active_) {
            L.att->observe = nullptr;
            continue;
        }
        for (auto& h : L.heads) h.have_grad = false;
        L.att->observe = [this, li](const Tensor& scores, const Tensor& x, int64_t head) {
            if (!active_ || !scores.requires_grad()) return;  // evaluation passes are not probed
            auto t0 = std::chrono::steady_clock::now();
            Layer& L = layers_[li];
            L.x = x;
            L.B = x.size(0);
            L.T = x.size(1);
            int64_t T = L.T, hs = L.att->spec().head_dim(), nh = static_cast<int64_t>(L.heads.size());
            std::vector<float> s(static_cast<size_t>(scores.numel()));
            gather_contiguous(scores, s.data());
            // mha hands all heads [B, NH, T, T] at once (head = -1); alt1 one head [B, T, T].
            for (int64_t h = (head < 0 ? 0 : head); h < (head < 0 ? nh : head + 1); ++h) {
                std::vector<float> one(static_cast<size_t>(L.B * T * T));
                for (int64_t b = 0; b < L.B; ++b)
                    std::copy_n(s.data() + ((head < 0 ? b * nh + h : b) * T * T), T * T,
                                one.data() + b * T * T);
                L.heads[h].row.attn_entropy = attention_entropy(one.data(), L.B, T, hs);
            }
            Tensor sc = scores;
            sc.register_hook([this, li, head](const Tensor& g) {
                Layer& L = layers_[li];
                int64_t T = L.T, nh = static_cast<int64_t>(L.heads.size());
                for (int64_t h = (head < 0 ? 0 : head); h < (head < 0 ? nh : head + 1); ++h) {
                    Head& H = L.heads[h];
                    H.D.resize(static_cast<size_t>(L.B * T * T));
                    for (int64_t b = 0; b < L.B; ++b)
                        std::copy_n(g.data() + ((head < 0 ? b * nh + h : b) * T * T), T * T,
                                    H.D.data() + b * T * T);
                    H.have_grad = true;
                }
                return Tensor();
            });
            seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        };
    }
}

void DynamicsProbe::after_backward() {
    if (!active_) return;
    auto t0 = std::chrono::steady_clock::now();
    for (size_t li = 0; li < layers_.size(); ++li) {
        Layer& L = layers_[li];
        int64_t C = L.att->spec().d_in, T = L.T;
        std::vector<float> x(static_cast<size_t>(L.x.numel()));
        gather_contiguous(L.x, x.data());
        std::vector<float> y(static_cast<size_t>(T * C));
        for (size_t h = 0; h < L.heads.size(); ++h) {
            Head& H = L.heads[h];
            if (!H.have_grad)
                throw Error(fmt::format("tapegrad: probe: no gradient reached the scores of layer {} head {}",
                                        li, h));
            H.G.assign(static_cast<size_t>(C * C), 0.0f);
            for (int64_t b = 0; b < L.B; ++b) {  // G += x_b^T (D_b x_b)
                gemm(false, false, T, C, T, 1.0f, H.D.data() + b * T * T, T, x.data() + b * T * C, C, 0.0f,
                     y.data(), C);
                gemm(true, false, C, C, T, 1.0f, x.data() + b * T * C, C, y.data(), C, 1.0f, H.G.data(), C);
            }
            HeadDynamics& r = H.row;
            if (dist::world() > 1) {
                // Under mpirun each rank holds G_r of its rows' mean loss L_r; the
                // global loss is (1/N) sum_r L_r, so G = (1/N) sum_r G_r, and the
                // attention entropy (a mean over equally many rows per rank) alike.
                dist::allreduce_sum(H.G.data(), C * C);
                const float n = static_cast<float>(dist::world());
                for (float& v : H.G) v /= n;
                dist::allreduce_sum(&r.attn_entropy, 1);
                r.attn_entropy /= dist::world();
            }
            r.step = step_;
            r.layer = static_cast<int64_t>(li);
            r.head = static_cast<int64_t>(h);
            r.g_norm = std::sqrt(dot(H.G.data(), H.G.data(), C * C));
            const nn::BilinearHead& f = L.bil[h];
            r.merged = !f.b;
            if (r.merged) {
                r.ds_norm = rows_grad_norm(f.a);
            } else {
                r.dwq_norm = rows_grad_norm(f.a);
                r.dwk_norm = rows_grad_norm(*f.b);
            }
        }
    }
    seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

void DynamicsProbe::snapshot(Layer& L, Head& H, std::vector<float>& a, std::vector<float>& b) const {
    const nn::BilinearHead& f = L.bil[static_cast<size_t>(&H - L.heads.data())];
    copy_rows(f.a, a);
    if (f.b)
        copy_rows(*f.b, b);
    else
        b.clear();
}

void DynamicsProbe::before_update() {
    if (!active_) return;
    auto t0 = std::chrono::steady_clock::now();
    for (auto& L : layers_)
        for (auto& H : L.heads) {
            snapshot(L, H, H.a, H.b);
            if (H.a0.empty() && step_ == 0) {  // M_0: the init, before any update
                H.a0 = H.a;
                H.b0 = H.b;
            }
        }
    seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// One head's update: its terms, cosines, preconditioners and spectrum. Reads the
// head's snapshots and weights, writes only H.row, so heads run in parallel.
void DynamicsProbe::measure_update(Layer& L, Head& H) const {
    const nn::BilinearHead& f = L.bil[static_cast<size_t>(&H - L.heads.data())];
    int64_t C = L.att->spec().d_in, hs = f.a.rows;
    HeadDynamics& r = H.row;
    std::vector<float> a1, b1;
    snapshot(L, H, a1, b1);
    const float* G = H.G.data();
    if (r.merged) {
        // M = S^T, dM = dS^T: <dS^T, G> = sum_ij dS_ij G_ji
        std::vector<float> dS(a1.size());
        for (size_t i = 0; i < dS.size(); ++i) dS[i] = a1[i] - H.a[i];
        double ip = 0;
        for (int64_t i = 0; i < C; ++i)
            for (int64_t j = 0; j < C; ++j) ip += static_cast<double>(dS[i * C + j]) * G[j * C + i];
        double m2 = dot(H.a.data(), H.a.data(), C * C), d2 = dot(dS.data(), dS.data(), C * C);
        r.m_norm = std::sqrt(m2);
        r.dm_norm = r.term_norm[0] = std::sqrt(d2);
        r.term_cos[0] = r.dm_cos = (r.dm_norm > 0 && r.g_norm > 0) ? -ip / (r.dm_norm * r.g_norm) : 0;
        spectrum_summary(r, singular_values(H.a, C, C), m2);
    } else {
        const float *A = H.a.data(), *B = H.b.data();
        std::vector<float> dA(a1.size()), dB(b1.size());
        for (size_t i = 0; i < dA.size(); ++i) dA[i] = a1[i] - A[i];
        for (size_t i = 0; i < dB.size(); ++i) dB[i] = b1[i] - B[i];
        // With <X^T Y, Z^T W> = <X Z^T, Y W^T>: Tq = dA^T B, Tk = A^T dB, Tx = dA^T dB.
        const float *pdA = dA.data(), *pdB = dB.data();
        auto AA = gram(A, A, hs, C), BB = gram(B, B, hs, C), dAdA = gram(pdA, pdA, hs, C),
             dBdB = gram(pdB, pdB, hs, C), dAA = gram(pdA, A, hs, C), BdB = gram(B, pdB, hs, C),
             AdA = gram(A, pdA, hs, C);
        double m2 = dotd(AA, BB);
        double tq = dotd(dAdA, BB), tk = dotd(AA, dBdB), tx = dotd(dAdA, dBdB);
        double qk = dotd(dAA, BdB), qx = dotd(dAdA, BdB), kx = dotd(AdA, dBdB);
        double dm2 = std::max(0.0, tq + tk + tx + 2 * (qk + qx + kx));
        // <A^T B, G> = <A, B G^T>, with the [HS, C] products by gemm
        std::vector<float> BGt(static_cast<size_t>(hs * C)), dBGt(static_cast<size_t>(hs * C)),
            AG(static_cast<size_t>(hs * C));
        gemm(false, true, hs, C, C, 1.0f, B, C, G, C, 0.0f, BGt.data(), C);
        gemm(false, true, hs, C, C, 1.0f, pdB, C, G, C, 0.0f, dBGt.data(), C);
        gemm(false, false, hs, C, C, 1.0f, A, C, G, C, 0.0f, AG.data(), C);
        double iq = dot(pdA, BGt.data(), hs * C);   // <dWq^T Wk, G>
        double ik = dot(pdB, AG.data(), hs * C);    // <Wq^T dWk, G> = <dWk, Wq G>
        double ix = dot(pdA, dBGt.data(), hs * C);  // <dWq^T dWk, G>
        r.m_norm = std::sqrt(m2);
        r.dm_norm = std::sqrt(dm2);
        double norms[3] = {std::sqrt(std::max(0.0, tq)), std::sqrt(std::max(0.0, tk)),
                           std::sqrt(std::max(0.0, tx))};
        double ips[3] = {iq, ik, ix};
        for (int t = 0; t < 3; ++t) {
            r.term_norm[t] = norms[t];
            r.term_cos[t] = (norms[t] > 0 && r.g_norm > 0) ? -ips[t] / (norms[t] * r.g_norm) : 0;
        }
        r.dm_cos = (r.dm_norm > 0 && r.g_norm > 0) ? -(iq + ik + ix) / (r.dm_norm * r.g_norm) : 0;
        r.wq_top = top_eigenvalue(AA, hs);
        r.wq_trace = dot(A, A, hs * C);
        r.wk_top = top_eigenvalue(BB, hs);
        r.wk_trace = dot(B, B, hs * C);
        spectrum_summary(r, lowrank_singular_values(A, B, hs, C), m2);
    }
    r.dm_rel = r.m_norm > 0 ? r.dm_norm / r.m_norm : 0;
    if (!H.a0.empty()) drift_spectrum(r, H, C, hs);
}

// D = M_t - M_0 (see probe.h): its Frobenius norm, stable and effective rank, nuclear norm.
void DynamicsProbe::drift_spectrum(HeadDynamics& r, const Head& H, int64_t C, int64_t hs) {
    std::vector<double> sv;
    if (r.merged) {  // D^T = S_t - S_0: the same singular values
        std::vector<float> d(H.a.size());
        for (size_t i = 0; i < d.size(); ++i) d[i] = H.a[i] - H.a0[i];
        sv = singular_values(std::move(d), C, C);
    } else {
        // D = A'^T B' with A' = [A_t; -A_0], B' = [B_t; B_0], both [2 hs, C].
        const int64_t k = 2 * hs;
        std::vector<float> a(static_cast<size_t>(k * C)), b(static_cast<size_t>(k * C));
        std::copy(H.a.begin(), H.a.end(), a.begin());
        std::transform(H.a0.begin(), H.a0.end(), a.begin() + hs * C, [](float v) { return -v; });
        std::copy(H.b.begin(), H.b.end(), b.begin());
        std::copy(H.b0.begin(), H.b0.end(), b.begin() + hs * C);
        if (k < C) {
            sv = lowrank_singular_values(a.data(), b.data(), k, C);
        } else {  // a full-rank factor (qk-dim >= C/2): form D [C, C]
            std::vector<float> d(static_cast<size_t>(C * C));
            gemm(true, false, C, C, k, 1.0f, a.data(), C, b.data(), C, 0.0f, d.data(), C);
            sv = singular_values(std::move(d), C, C);
        }
    }
    double fro2 = 0;
    for (double s : sv) fro2 += s * s;
    HeadDynamics d;
    spectrum_summary(d, sv, fro2);
    r.drift_fro = std::sqrt(fro2);
    r.drift_stable_rank = d.stable_rank;
    r.drift_effective_rank = d.effective_rank;
    r.drift_nuclear = d.nuclear;
}

// The heads' spectra dominate a probe (alt1: a full 768x768 SVD per head), so
// heads are spread over the pool, each LAPACK/BLAS call single-threaded inside
// it; rows are then written in (layer, head) order.
void DynamicsProbe::after_update(double) {
    if (!active_) return;
    auto t0 = std::chrono::steady_clock::now();
    std::vector<std::pair<Layer*, Head*>> work;
    for (auto& L : layers_)
        for (auto& H : L.heads) work.emplace_back(&L, &H);
    std::vector<std::exception_ptr> errors(work.size());
    parallel_for(static_cast<int64_t>(work.size()), 1, [&](int64_t i0, int64_t i1) {
        for (int64_t i = i0; i < i1; ++i) {
            try {
                measure_update(*work[i].first, *work[i].second);
            } catch (...) {
                errors[i] = std::current_exception();  // never throw out of a parallel region
            }
        }
    });
    for (auto& e : errors)
        if (e) std::rethrow_exception(e);
    size_t first = rows_.size();
    for (auto& w : work) rows_.push_back(w.second->row);
    write_rows(first);
    if (pairs_top_ > 0) measure_pairs();
    active_ = false;
    seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

void DynamicsProbe::write_rows(size_t from) {
    if (!csv_) return;
    std::string text;  // one checked write for the step's rows
    for (size_t i = from; i < rows_.size(); ++i) {
        const HeadDynamics& r = rows_[i];
        bool a = r.merged;
        auto v = [](double x) { return fmt::format("{:.6g}", x); };
        std::string line = fmt::format("{},{},{},{},{},{},{},{},{},{},", r.step, r.layer, r.head, v(r.g_norm),
                                       a ? "" : v(r.dwq_norm), a ? "" : v(r.dwk_norm), a ? v(r.ds_norm) : "",
                                       v(r.m_norm), v(r.dm_norm), v(r.dm_rel));
        if (a)
            line += fmt::format(",,,{},,,,{},", v(r.term_norm[0]), v(r.term_cos[0]));
        else
            line += fmt::format("{},{},{},,{},{},{},,", v(r.term_norm[0]), v(r.term_norm[1]),
                                v(r.term_norm[2]), v(r.term_cos[0]), v(r.term_cos[1]), v(r.term_cos[2]));
        line += fmt::format("{},{},{},{},{},{},{},{},{}", v(r.dm_cos), a ? "" : v(r.wq_top),
                            a ? "" : v(r.wq_trace), a ? "" : v(r.wk_top), a ? "" : v(r.wk_trace),
                            v(r.stable_rank), v(r.effective_rank), v(r.nuclear), v(r.attn_entropy));
        for (int k = 0; k < kTopSV; ++k) {
            line += ',';
            if (k < static_cast<int>(r.sv.size())) line += v(r.sv[k]);
        }
        auto nv = [&](double x) { return std::isnan(x) ? std::string() : v(x); };  // empty: not recorded
        line += fmt::format(",{},{},{},{}", nv(r.drift_fro), nv(r.drift_stable_rank),
                            nv(r.drift_effective_rank), nv(r.drift_nuclear));
        text += line + "\n";
    }
    csv_->write(text);
}

void DynamicsProbe::enable_pairs(int64_t top_k, const std::string& csv_path, PairTokens tokens, bool append) {
    if (top_k <= 0) throw Error(fmt::format("tapegrad: probe: --probe-pairs wants K > 0 (got {})", top_k));
    pairs_top_ = top_k;
    pair_tokens_ = std::move(tokens);
    if (!csv_path.empty()) {
        bool exists = append && std::filesystem::exists(csv_path);
        pairs_csv_ = std::make_unique<CheckedFile>(csv_path, append ? "a" : "w");
        if (!exists) pairs_csv_->write(pairs_csv_header() + "\n");
    }
}

const std::vector<float>& DynamicsProbe::D(int64_t layer, int64_t head) const {
    return layers_.at(static_cast<size_t>(layer)).heads.at(static_cast<size_t>(head)).D;
}

const Tensor& DynamicsProbe::x(int64_t layer) const { return layers_.at(static_cast<size_t>(layer)).x; }

// Every head's pair decomposition (train/study/pairs.h), heads spread over the
// pool as in after_update. The normalisers are the probe's own: ||G||^2 from
// g_norm, and <G, -dM> = dm_cos ||dM|| ||G|| (measure_update), so that the shares
// summing to 1 checks the pair sum against them.
void DynamicsProbe::measure_pairs() {
    struct Work {
        Layer* L;
        Head* H;
        size_t layer, head;
        std::vector<float>* x;
        HeadPairs out;
    };
    std::vector<std::vector<float>> xs(layers_.size());
    std::vector<Work> work;
    for (size_t li = 0; li < layers_.size(); ++li) {
        Layer& L = layers_[li];
        xs[li].resize(static_cast<size_t>(L.x.numel()));
        gather_contiguous(L.x, xs[li].data());
        for (size_t h = 0; h < L.heads.size(); ++h) work.push_back({&L, &L.heads[h], li, h, &xs[li], {}});
    }
    std::vector<std::exception_ptr> errors(work.size());
    parallel_for(static_cast<int64_t>(work.size()), 1, [&](int64_t i0, int64_t i1) {
        for (int64_t i = i0; i < i1; ++i) {
            try {
                Work& w = work[i];
                const nn::BilinearHead& f = w.L->bil[w.head];
                const HeadDynamics& r = w.H->row;
                PairInput in;
                in.x = w.x->data();
                in.D = w.H->D.data();
                in.B = w.L->B;
                in.T = w.L->T;
                in.C = w.L->att->spec().d_in;
                in.G.dense = w.H->G.data();
                in.g_norm2 = r.g_norm * r.g_norm;
                in.dm_inner = r.dm_cos * r.dm_norm * r.g_norm;
                std::vector<float> a1, b1, da, db;
                snapshot(*w.L, *w.H, a1, b1);
                da.resize(a1.size());
                for (size_t k = 0; k < a1.size(); ++k) da[k] = a1[k] - w.H->a[k];
                if (r.merged) {  // -dM = -dS^T
                    in.minus_dm.dense = da.data();
                    in.minus_dm.dense_transposed = true;
                    in.minus_dm.dense_scale = -1;
                } else {  // -dM = -(dWq^T Wk' + Wq^T dWk), Wk' after the step
                    db.resize(b1.size());
                    for (size_t k = 0; k < b1.size(); ++k) db[k] = b1[k] - w.H->b[k];
                    in.minus_dm.factors = {{da.data(), b1.data(), f.a.rows, -1.0},
                                           {w.H->a.data(), db.data(), f.a.rows, -1.0}};
                }
                w.out = analyse_pairs(in, pairs_top_);
            } catch (...) {
                errors[i] = std::current_exception();  // never throw out of a parallel region
            }
        }
    });
    for (auto& e : errors)
        if (e) std::rethrow_exception(e);
    const Ids* ids = pair_tokens_.ids ? pair_tokens_.ids() : nullptr;
    if (ids && !layers_.empty() &&
        (ids->shape.size() != 2 || ids->shape[0] != layers_[0].B || ids->shape[1] != layers_[0].T))
        throw Error(fmt::format("tapegrad: probe: the batch's ids ({} dims, {} ids) do not match the attention "
                                "input [{}, {}]",
                                ids->shape.size(), ids->numel(), layers_[0].B, layers_[0].T));
    std::string text;
    for (Work& w : work) {
        w.out.step = step_;
        w.out.layer = static_cast<int64_t>(w.layer);
        w.out.head = static_cast<int64_t>(w.head);
        if (pairs_csv_) text += pairs_csv_rows(w.out, ids ? *ids : Ids{}, pair_tokens_.decode);
        pair_rows_.push_back(std::move(w.out));
    }
    if (pairs_csv_) pairs_csv_->write(text);
}

}  // namespace tg::train
