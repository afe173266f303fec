#include "train/study/stats.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

namespace tg::train::stats {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Continued fraction of I_x(a, b) (modified Lentz), valid for x < (a+1)/(a+b+2).
double beta_fraction(double a, double b, double x) {
    const double tiny = 1e-300, eps = 1e-15;
    double c = 1, d = 1 - (a + b) * x / (a + 1);
    if (std::fabs(d) < tiny) d = tiny;
    d = 1 / d;
    double h = d;
    for (int m = 1; m <= 500; ++m) {
        double m2 = 2.0 * m;
        double num = m * (b - m) * x / ((a + m2 - 1) * (a + m2));  // even step
        d = 1 + num * d;
        c = 1 + num / c;
        d = 1 / (std::fabs(d) < tiny ? tiny : d);
        c = std::fabs(c) < tiny ? tiny : c;
        h *= d * c;
        num = -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1));  // odd step
        d = 1 + num * d;
        c = 1 + num / c;
        d = 1 / (std::fabs(d) < tiny ? tiny : d);
        c = std::fabs(c) < tiny ? tiny : c;
        double delta = d * c;
        h *= delta;
        if (std::fabs(delta - 1) < eps) break;
    }
    return h;
}

}  // namespace

double mean(const std::vector<double>& x) {
    if (x.empty()) return kNaN;
    double s = 0;
    for (double v : x) s += v;
    return s / static_cast<double>(x.size());
}

double sd(const std::vector<double>& x) {
    if (x.size() < 2) return kNaN;
    double m = mean(x), s = 0;
    for (double v : x) s += (v - m) * (v - m);
    return std::sqrt(s / static_cast<double>(x.size() - 1));
}

// I_x(a, b) = x^a (1-x)^b / (a B(a, b)) * CF, using the symmetry
// I_x(a, b) = 1 - I_{1-x}(b, a) where the fraction converges slowly.
double incomplete_beta(double a, double b, double x) {
    if (x <= 0) return 0;
    if (x >= 1) return 1;
    double log_front =
        std::lgamma(a + b) - std::lgamma(a) - std::lgamma(b) + a * std::log(x) + b * std::log1p(-x);
    if (x < (a + 1) / (a + b + 2)) return std::exp(log_front) * beta_fraction(a, b, x) / a;
    return 1 - std::exp(log_front) * beta_fraction(b, a, 1 - x) / b;
}

// P(T <= t) = 1 - I_{df/(df+t^2)}(df/2, 1/2) / 2 for t >= 0, symmetric for t < 0.
double t_cdf(double t, double df) {
    double tail = 0.5 * incomplete_beta(df / 2, 0.5, df / (df + t * t));
    return t >= 0 ? 1 - tail : tail;
}

double t_quantile(double q, double df) {
    if (!(q > 0 && q < 1) || !(df > 0)) throw std::invalid_argument("t_quantile: need 0 < q < 1, df > 0");
    double lo = -1e6, hi = 1e6;  // the CDF is monotone: bisection to machine precision
    for (int i = 0; i < 200 && hi - lo > 1e-12 * std::max(1.0, std::fabs(lo)); ++i) {
        double mid = 0.5 * (lo + hi);
        (t_cdf(mid, df) < q ? lo : hi) = mid;
    }
    return 0.5 * (lo + hi);
}

Summary summarize(const std::vector<double>& x) {
    Summary s;
    s.n = static_cast<int64_t>(x.size());
    s.mean = mean(x);
    s.sd = sd(x);
    if (s.n < 2) {
        s.lo = s.hi = kNaN;
        return s;
    }
    double half =
        t_quantile(0.975, static_cast<double>(s.n - 1)) * s.sd / std::sqrt(static_cast<double>(s.n));
    s.lo = s.mean - half;
    s.hi = s.mean + half;
    return s;
}

Summary paired_difference(const std::vector<double>& a, const std::vector<double>& b) {
    if (a.size() != b.size())
        throw std::invalid_argument(fmt::format(
            "paired_difference: {} values against {} (pairs need the same seeds)", a.size(), b.size()));
    std::vector<double> d(a.size());
    for (size_t i = 0; i < a.size(); ++i) d[i] = a[i] - b[i];
    return summarize(d);
}

std::string Summary::str(int digits) const {
    if (n < 2) return fmt::format("{:.{}f} (n={})", mean, digits, n);
    return fmt::format("{:.{}f} +- {:.{}f} (95% CI {:.{}f} .. {:.{}f}, n={})", mean, digits, sd, digits, lo,
                       digits, hi, digits, n);
}

}  // namespace tg::train::stats

namespace tg::train::stats {

PairedTest paired_test(const std::vector<double>& a, const std::vector<double>& b, double delta) {
    PairedTest r;
    r.diff = paired_difference(a, b);
    const double n = static_cast<double>(r.diff.n);
    if (r.diff.n < 2 || !(r.diff.sd > 0)) {
        r.t = NAN;
        r.p = r.p_tost = NAN;
        return r;
    }
    const double se = r.diff.sd / std::sqrt(n), df = n - 1;
    r.t = r.diff.mean / se;
    r.p = 2 * (1 - t_cdf(std::fabs(r.t), df));
    double t_lo = (r.diff.mean + delta) / se, t_hi = (delta - r.diff.mean) / se;
    r.p_tost = std::max(1 - t_cdf(t_lo, df), 1 - t_cdf(t_hi, df));
    r.p_holm = r.p;
    r.p_tost_holm = r.p_tost;
    return r;
}

std::vector<double> holm(const std::vector<double>& p) {
    // A test that could not be made (NaN: too few seeds) is not in the family.
    std::vector<size_t> order;
    for (size_t i = 0; i < p.size(); ++i)
        if (!std::isnan(p[i])) order.push_back(i);
    const size_t m = order.size();
    std::stable_sort(order.begin(), order.end(), [&](size_t i, size_t j) { return p[i] < p[j]; });
    std::vector<double> out(p.size(), NAN);
    double running = 0;
    for (size_t k = 0; k < m; ++k) {
        running = std::max(running, std::min(1.0, p[order[k]] * static_cast<double>(m - k)));
        out[order[k]] = running;
    }
    return out;
}

double paired_power(double effect, double sd, int64_t n, double alpha) {
    if (n < 2 || !(sd > 0)) return NAN;
    const double df = static_cast<double>(n - 1), tc = t_quantile(1 - alpha / 2, df);
    const double shift = std::fabs(effect) * std::sqrt(static_cast<double>(n)) / sd;
    return (1 - t_cdf(tc - shift, df)) + t_cdf(-tc - shift, df);
}

Bootstrap document_bootstrap(const std::vector<double>& loss_sum, const std::vector<double>& tokens, int reps,
                             uint64_t seed) {
    Bootstrap b;
    const size_t n = loss_sum.size();
    double ls = 0, tk = 0;
    for (size_t i = 0; i < n; ++i) {
        ls += loss_sum[i];
        tk += tokens[i];
    }
    b.value = tk > 0 ? ls / tk : NAN;
    if (n == 0 || reps < 2) {
        b.lo = b.hi = b.value;
        return b;
    }
    // SplitMix64: a small, fixed generator, so a report's interval is reproducible.
    uint64_t state = seed;
    auto next = [&state] {
        uint64_t z = (state += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        return z ^ (z >> 31);
    };
    std::vector<double> vals(static_cast<size_t>(reps));
    for (int r = 0; r < reps; ++r) {
        double s = 0, t = 0;
        for (size_t i = 0; i < n; ++i) {
            size_t k = static_cast<size_t>(next() % n);
            s += loss_sum[k];
            t += tokens[k];
        }
        vals[static_cast<size_t>(r)] = t > 0 ? s / t : NAN;
    }
    std::sort(vals.begin(), vals.end());
    auto q = [&](double p) { return vals[static_cast<size_t>(std::floor(p * static_cast<double>(reps - 1)))]; };
    b.lo = q(0.025);
    b.hi = q(0.975);
    return b;
}

}  // namespace tg::train::stats
