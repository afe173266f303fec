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
