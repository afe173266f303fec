// The sweep's statistics against numbers worked by hand and Student t tables.
#include <catch2/catch.hpp>

#include <cmath>

#include "train/study/stats.h"

using namespace tg::train::stats;

TEST_CASE("incomplete beta and the t CDF at points with closed forms", "[stats]") {
    // I_x(2, 3) = sum_{j=2..4} C(4, j) x^j (1-x)^(4-j): at x = 1/2, (6 + 4 + 1) / 16.
    CHECK(incomplete_beta(2, 3, 0.5) == Approx(11.0 / 16).epsilon(1e-12));
    // I_x(1, 1) = x; I_x(a, 1) = x^a.
    CHECK(incomplete_beta(1, 1, 0.3) == Approx(0.3).epsilon(1e-12));
    CHECK(incomplete_beta(2.5, 1, 0.64) == Approx(std::pow(0.64, 2.5)).epsilon(1e-12));
    CHECK(t_cdf(0, 7) == Approx(0.5).epsilon(1e-12));
    // df = 1 is the Cauchy distribution: P(T <= 1) = 1/2 + atan(1)/pi.
    CHECK(t_cdf(1, 1) == Approx(0.75).epsilon(1e-12));
    // df = 2: P(T <= t) = 1/2 + t / (2 sqrt(2 + t^2)).
    CHECK(t_cdf(1.5, 2) == Approx(0.5 + 1.5 / (2 * std::sqrt(2 + 2.25))).epsilon(1e-12));
    CHECK(t_cdf(-1.5, 2) == Approx(0.5 - 1.5 / (2 * std::sqrt(2 + 2.25))).epsilon(1e-12));
}

TEST_CASE("t quantiles equal the tables' two-sided 95% values", "[stats]") {
    CHECK(t_quantile(0.975, 1) == Approx(12.7062047).epsilon(1e-7));
    CHECK(t_quantile(0.975, 2) == Approx(4.3026527).epsilon(1e-7));
    CHECK(t_quantile(0.975, 4) == Approx(2.7764451).epsilon(1e-7));
    CHECK(t_quantile(0.975, 9) == Approx(2.2621572).epsilon(1e-7));
    CHECK(t_quantile(0.975, 29) == Approx(2.0452296).epsilon(1e-7));
    CHECK(t_quantile(0.975, 1e7) == Approx(1.9599640).epsilon(1e-6));  // the normal limit
    CHECK(t_quantile(0.025, 4) == Approx(-2.7764451).epsilon(1e-7));
}

TEST_CASE("mean, sd and 95% interval of three seeds, by hand", "[stats]") {
    // x = 4.1, 4.3, 4.2: mean 4.2, deviations -0.1, 0.1, 0 -> sd = sqrt(0.02 / 2) = 0.1,
    // half-width t_{.975,2} * 0.1 / sqrt(3) = 4.3026527 * 0.0577350 = 0.2484138.
    Summary s = summarize({4.1, 4.3, 4.2});
    CHECK(s.n == 3);
    CHECK(s.mean == Approx(4.2).epsilon(1e-12));
    CHECK(s.sd == Approx(0.1).epsilon(1e-9));
    CHECK(s.lo == Approx(4.2 - 0.2484138).epsilon(1e-7));
    CHECK(s.hi == Approx(4.2 + 0.2484138).epsilon(1e-7));
    CHECK(s.excludes_zero());
    Summary one = summarize({5.0});
    CHECK(one.n == 1);
    CHECK(std::isnan(one.sd));
    CHECK_FALSE(one.excludes_zero());
}

TEST_CASE("paired differences cancel shared seed noise, by hand", "[stats]") {
    // d = (1 - 0.5, 2 - 1.9, 3 - 2.6) = (0.5, 0.1, 0.4): mean 1/3, deviations 1/6, -7/30, 1/15,
    // squares 0.0277778 + 0.0544444 + 0.0044444 = 0.0866667, sd = sqrt(0.0433333) = 0.2081666,
    // half-width 4.3026527 * 0.2081666 / sqrt(3) = 0.5171145: the interval holds zero.
    Summary d = paired_difference({1, 2, 3}, {0.5, 1.9, 2.6});
    CHECK(d.mean == Approx(1.0 / 3).epsilon(1e-12));
    CHECK(d.sd == Approx(0.2081666).epsilon(1e-6));
    CHECK(d.hi - d.mean == Approx(0.5171145).epsilon(1e-6));
    CHECK_FALSE(d.excludes_zero());
    // Unpaired, the same values vary by ~1 across seeds; paired, a constant shift is exact.
    Summary shift = paired_difference({1, 2, 3}, {0.9, 1.9, 2.9});
    CHECK(shift.mean == Approx(0.1).epsilon(1e-9));
    CHECK(shift.sd == Approx(0).margin(1e-12));
    CHECK_THROWS(paired_difference({1, 2}, {1}));
}
