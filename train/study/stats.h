// Statistics for comparing runs across seeds: the figures a sweep report states.
//
//   mean, sample sd (n - 1 in the denominator), standard error sd / sqrt(n);
//   a two-sided 95% Student t-interval  mean +- t_{0.975, n-1} * sd / sqrt(n);
//   paired differences d_i = a_i - b_i over the same seeds, with the same interval
//   on mean(d) (a paired t-interval: seed noise shared by both variants cancels).
// t quantiles come from the Student t CDF, written with the regularized
// incomplete beta function I_x(a, b) (Lentz's continued fraction) and inverted
// by bisection: exact to ~1e-10, for any number of degrees of freedom.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace tg::train::stats {

struct Summary {
    int64_t n = 0;
    double mean = 0, sd = 0, lo = 0, hi = 0;  // lo, hi: the 95% t-interval (NaN for n < 2)
    // Zero outside the interval: the difference (or value) is larger than seed noise.
    bool excludes_zero() const { return n >= 2 && (lo > 0 || hi < 0); }
    std::string str(int digits = 3) const;  // "4.123 +- 0.050 (95% CI 4.01 .. 4.23, n=3)"
};

double mean(const std::vector<double>& x);
double sd(const std::vector<double>& x);  // sample standard deviation; NaN for n < 2
// Regularized incomplete beta I_x(a, b), 0 <= x <= 1, a, b > 0.
double incomplete_beta(double a, double b, double x);
// P(T <= t) for Student's t with df degrees of freedom.
double t_cdf(double t, double df);
// The q quantile (0 < q < 1) of Student's t with df degrees of freedom.
double t_quantile(double q, double df);
Summary summarize(const std::vector<double>& x);
// Paired differences a_i - b_i (same length, same seeds in the same order).
Summary paired_difference(const std::vector<double>& a, const std::vector<double>& b);

}  // namespace tg::train::stats

namespace tg::train::stats {

// The answer's design (docs/results.md): primary contrasts fixed in advance,
// each a paired difference d_i over seeds, tested two ways.
//
// Difference: H0 mean(d) = 0, two-sided paired t-test,
//   t = mean(d) / (sd(d) / sqrt(n)),  p = 2 P(T_{n-1} >= |t|).
// Equivalence (two one-sided tests, TOST) with a smallest effect of interest
// delta > 0: H0 |mean(d)| >= delta, rejected when both
//   t_lo = (mean(d) + delta) / se  and  t_hi = (delta - mean(d)) / se
// exceed their one-sided quantile; p = max(P(T >= t_lo), P(T >= t_hi)).
// Equivalence at level alpha is the 1 - 2 alpha interval lying in (-delta, delta).
// Holm's step-down correction makes each family of tests hold its level.
struct PairedTest {
    Summary diff;               // mean(d), sd(d), the 95% interval
    double t = 0, p = 1;        // difference test, two-sided
    double p_tost = 1;          // equivalence within +-delta (the larger one-sided p)
    double p_holm = 1, p_tost_holm = 1;  // after Holm over the family (set by holm())
};
PairedTest paired_test(const std::vector<double>& a, const std::vector<double>& b, double delta);
// Holm-adjusted p-values, in the input's order: sort ascending, p_(k) * (m - k + 1)
// (k from 1), made monotone by a running maximum and capped at 1; NaN p-values
// (tests that could not be made) stay NaN and do not count in m.
std::vector<double> holm(const std::vector<double>& p);
// The power of the two-sided paired t-test at level alpha to detect a true mean
// difference `effect` with n pairs whose differences have sd `sd`: from the
// noncentral t, approximated by P(T_{n-1} >= t_crit - effect sqrt(n) / sd) (the
// shifted central t; accurate to a few percent for the n here, and said so).
double paired_power(double effect, double sd, int64_t n, double alpha = 0.05);

// A run's validation loss with a bootstrap over documents: losses and token
// counts per document (final_eval.csv); each of `reps` resamples draws as many
// documents with replacement (seeded, so reports are reproducible) and takes
// sum(loss) / sum(tokens); lo and hi are its 2.5% and 97.5% quantiles.
struct Bootstrap {
    double value = 0, lo = 0, hi = 0;
};
Bootstrap document_bootstrap(const std::vector<double>& loss_sum, const std::vector<double>& tokens, int reps,
                             uint64_t seed);

}  // namespace tg::train::stats
