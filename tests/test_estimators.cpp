// The estimator kernels against the brute-force oracles (estimator_oracles.hpp) on many seeded
// random stacks with outliers, ties and runs of equal values, N from 0 to 40; and the edge cases
// (N = 0, 1, 2, all equal, a clear outlier) with the values they must give.
#include "estimator_oracles.hpp"

#include "../src/reduce/kernels.hpp"

#include <doctest/doctest.h>
#include <fmt/core.h>

#include <array>
#include <initializer_list>
#include <random>

using namespace superstack;
using namespace superstack::test;

namespace {

// A stack of n samples of one of six kinds, with outliers.
std::vector<float> random_stack(std::mt19937 &rng, std::uint32_t n, int kind)
{
	std::normal_distribution<float> noise(0.5f, 0.02f);
	std::uniform_real_distribution<float> u(0.0f, 1.0f);
	std::uniform_int_distribution<int> level(120, 136);
	std::vector<float> s(n);
	for (auto &x : s) {
		switch (kind) {
		case 0: x = noise(rng); break;                                   // Gaussian
		case 1: x = level(rng) / 255.0f; break;                          // 8-bit: many ties
		case 2: x = 0.25f; break;                                        // all equal
		case 3: x = u(rng) < 0.6f ? 0.75f : noise(rng); break;           // a run of equal values
		case 4: x = u(rng); break;                                       // uniform
		default: x = u(rng) < 0.5f ? 0.2f + 0.01f * u(rng) : 0.8f + 0.01f * u(rng); break; // two clusters
		}
		if (kind != 2 && u(rng) < 0.15f) // outliers, both ways, near and far
			x = u(rng) < 0.5f ? x + 0.1f + 0.6f * u(rng) : x - 0.1f - 0.6f * u(rng);
	}
	return s;
}

// One float ulp at 1: the kernels round a double once to float, the oracle works in long double.
bool close(float kernel, long double oracle)
{
	return std::fabs(static_cast<long double>(kernel) - oracle) <= 1.2e-7L * std::max(1.0L, std::fabs(oracle));
}

} // namespace

TEST_CASE("estimators match the brute-force oracles on random stacks with outliers, N = 0 to 40")
{
	std::mt19937 rng(2024);
	int stacks = 0, rejecting = 0, mismatches = 0;
	for (int kind = 0; kind < 6; kind++)
		for (std::uint32_t n = 0; n <= 40; n++)
			for (int repeat = 0; repeat < 4; repeat++) {
				const std::vector<float> s = random_stack(rng, n, kind);
				const double kappa = std::array{1.5, 2.0, 2.5, 3.0}[static_cast<std::size_t>(repeat)];
				const int iterations = std::array{1, 3, 5, 100}[static_cast<std::size_t>((repeat + kind) % 4)];
				const double trim = std::array{0.0, 0.1, 0.2, 0.25, 0.49}[static_cast<std::size_t>((n + repeat) % 5)];
				CAPTURE(kind);
				CAPTURE(n);
				CAPTURE(kappa);
				CAPTURE(iterations);
				CAPTURE(trim);
				stacks++;
				// One scratch array for all the order estimators in turn, as the reducer does.
				std::vector<float> v = s;
				const float median = kernels::median_inplace(v.data(), n);
				const kernels::Estimate clipped = kernels::sigma_clip_inplace(v.data(), n, kappa, iterations);
				const kernels::Estimate winsorized = kernels::winsorized_clip_inplace(v.data(), n, kappa, iterations);
				const kernels::Estimate trimmed = kernels::trimmed_mean_inplace(v.data(), n, trim);
				CHECK(std::is_sorted(v.begin(), v.end()));
				CHECK(median == oracle_median(s));
				const OracleEstimate oc = oracle_sigma_clip(s, kappa, iterations);
				const OracleEstimate ow = oracle_winsorized(s, kappa, iterations);
				const OracleEstimate ot = oracle_trimmed(s, trim);
				mismatches += clipped.rejected != oc.rejected || !close(clipped.value, oc.value);
				mismatches += winsorized.rejected != ow.rejected || !close(winsorized.value, ow.value);
				mismatches += trimmed.rejected != ot.rejected || !close(trimmed.value, ot.value);
				CHECK(clipped.rejected == oc.rejected);
				CHECK(close(clipped.value, oc.value));
				CHECK(winsorized.rejected == ow.rejected);
				CHECK(close(winsorized.value, ow.value));
				CHECK(trimmed.rejected == ot.rejected);
				CHECK(close(trimmed.value, ot.value));
				rejecting += clipped.rejected > 0 && winsorized.rejected > 0;
				// Never everything rejected.
				if (n > 0) {
					CHECK(clipped.rejected < n);
					CHECK(winsorized.rejected < n);
					CHECK(trimmed.rejected < n);
				}
			}
	MESSAGE(fmt::format("{} stacks, {} with rejections by both clippings", stacks, rejecting));
	CHECK(mismatches == 0);
	CHECK(rejecting > stacks / 4); // the outliers really exercised rejection
}

TEST_CASE("winsorized sigma: where Siril's iteration stops, found piece by piece, on random stacks and centres")
{
	// The sigma alone, against the oracle's walk in 1% steps and bisection, for centres at the median and
	// away from it (later passes centre on the kept samples' median, not all samples').
	std::mt19937 rng(77);
	std::uniform_real_distribution<double> offset(-0.03, 0.03);
	int checked = 0, moving = 0;
	double worst = 0;
	for (int kind = 0; kind < 6; kind++)
		for (std::uint32_t n = 2; n <= 40; n++)
			for (int repeat = 0; repeat < 6; repeat++) {
				std::vector<float> v = random_stack(rng, n, kind);
				const kernels::SortedSamples sorted(v.data(), n);
				const double median = n % 2 ? v[n / 2] : 0.5 * (static_cast<double>(v[n / 2 - 1]) + v[n / 2]);
				const double centre = repeat < 3 ? median : median + offset(rng);
				const double sigma = kernels::winsorized_sigma(v.data(), 0, n, centre, sorted.sums());
				const std::vector<float> kept(v.begin(), v.end());
				const double oracle = static_cast<double>(oracle_winsorized_sigma(kept, centre));
				CAPTURE(kind);
				CAPTURE(n);
				CAPTURE(centre);
				CAPTURE(sigma);
				CAPTURE(oracle);
				const double error = std::fabs(sigma - oracle);
				CHECK(error <= 1e-10 * oracle);
				worst = std::max(worst, oracle > 0 ? error / oracle : 0.0);
				checked++;
				const double sd = static_cast<double>(oracle_sd(kept));
				moving += std::fabs(oracle - sd) > 1e-3 * sd;
				// Where the iteration has settled: one more step of W moves it by at most the tolerance.
				const double w = static_cast<double>(1.134L * oracle_sd(kept, centre - 1.5L * sigma, centre + 1.5L * sigma));
				CHECK(std::fabs(w - sigma) <= 5.01e-4 * sigma);
			}
	MESSAGE(fmt::format("{} stacks, {} where the robust sigma is not the sd; worst relative error {:.2e}", checked, moving, worst));
	CHECK(moving > checked / 2);
}

TEST_CASE("running estimators: weighted mean, min and max against the oracles in frame order")
{
	std::mt19937 rng(99);
	std::uniform_real_distribution<double> weight(0.0, 2.0);
	for (std::uint32_t n = 0; n <= 40; n++)
		for (int kind : {0, 3, 4}) {
			const std::vector<float> s = random_stack(rng, n, kind);
			std::vector<double> w(n);
			for (auto &x : w)
				x = weight(rng);
			double sum = 0, weighted = 0, weights = 0;
			float lo = 0, hi = 0;
			for (std::uint32_t k = 0; k < n; k++) {
				sum += s[k], weighted += w[k] * s[k], weights += w[k];
				kernels::extend_range(lo, hi, s[k], k == 0);
			}
			CAPTURE(n);
			CHECK(close(static_cast<float>(kernels::weighted_mean_of(weighted, weights, sum, n)), oracle_weighted(s, w)));
			if (n > 0) {
				CHECK(lo == *std::min_element(s.begin(), s.end()));
				CHECK(hi == *std::max_element(s.begin(), s.end()));
			}
		}
	// Zero weights: the plain mean; no samples: 0.
	CHECK(kernels::weighted_mean_of(0.0, 0.0, 3.0, 4) == 0.75);
	CHECK(kernels::weighted_mean_of(0.0, 0.0, 0.0, 0) == 0.0);
	// Weights 3 and 1 on 0 and 1.
	CHECK(kernels::weighted_mean_of(1.0, 4.0, 1.0, 2) == 0.25);
}

// Samples the compiler cannot size: with a known 2-element array it follows the n > 32 branch of
// median_inplace (which n never reaches) and warns about reading past the end.
[[gnu::noinline]] std::vector<float> opaque_samples(std::initializer_list<float> values)
{
	return std::vector<float>(values);
}

TEST_CASE("estimators: N = 0, 1 and 2, all equal, ties, and a clear outlier")
{
	std::vector<float> none = opaque_samples({0.0f});
	CHECK(kernels::median_inplace(none.data(), 0) == 0.0f);
	for (auto e : {kernels::sigma_clip_inplace(none.data(), 0, 3, 5), kernels::winsorized_clip_inplace(none.data(), 0, 3, 5),
		     kernels::trimmed_mean_inplace(none.data(), 0, 0.2)}) {
		CHECK(e.value == 0.0f);
		CHECK(e.rejected == 0);
	}
	// One sample is itself; two are their mean (clipping needs three).
	for (std::uint32_t n : {1u, 2u}) {
		std::vector<float> v = opaque_samples({0.25f, 0.75f});
		const float expect = n == 1 ? 0.25f : 0.5f;
		CHECK(kernels::sigma_clip_inplace(v.data(), n, 0.1, 5).value == expect);
		CHECK(kernels::winsorized_clip_inplace(v.data(), n, 0.1, 5).value == expect);
		CHECK(kernels::trimmed_mean_inplace(v.data(), n, 0.49).value == expect);
		CHECK(kernels::median_inplace(v.data(), n) == expect);
	}
	// All equal: sigma 0 keeps everything, whatever kappa.
	std::vector<float> equal(9, 0.3f);
	for (double kappa : {0.01, 3.0}) {
		auto a = equal, b = equal;
		const auto sc = kernels::sigma_clip_inplace(a.data(), 9, kappa, 5);
		const auto wc = kernels::winsorized_clip_inplace(b.data(), 9, kappa, 5);
		CHECK(sc.value == 0.3f);
		CHECK(sc.rejected == 0);
		CHECK(wc.value == 0.3f);
		CHECK(wc.rejected == 0);
	}
	// An even count all at one distance from their median, and kappa below 1: a pass that would
	// reject everything is not applied.
	{
		float v[4] = {0.0f, 0.0f, 1.0f, 1.0f};
		const auto e = kernels::sigma_clip_inplace(v, 4, 0.5, 5);
		CHECK(e.rejected == 0);
		CHECK(e.value == 0.5f);
	}
	// Ten equal values and one far off: the robust sigma collapses and the odd one goes.
	{
		std::vector<float> v(10, 0.5f);
		v.push_back(0.9f);
		const auto e = kernels::winsorized_clip_inplace(v.data(), 11, 3.0, 5);
		CHECK(e.rejected == 1);
		CHECK(e.value == 0.5f);
	}
	// Fifteen samples near 0.5 and one at 0.95: both clippings reject exactly it; trimming 0.1 of 16
	// drops one at each end.
	{
		std::mt19937 rng(3);
		std::normal_distribution<float> noise(0.5f, 0.01f);
		std::vector<float> good(15);
		for (auto &x : good)
			x = noise(rng);
		std::vector<float> s = good;
		s.insert(s.begin() + 7, 0.95f);
		auto a = s, b = s, c = s;
		const auto sc = kernels::sigma_clip_inplace(a.data(), 16, 3.0, 5);
		const auto wc = kernels::winsorized_clip_inplace(b.data(), 16, 3.0, 5);
		const auto tc = kernels::trimmed_mean_inplace(c.data(), 16, 0.1);
		CHECK(sc.rejected == 1);
		CHECK(close(sc.value, oracle_mean(good)));
		CHECK(wc.rejected == 1);
		CHECK(close(wc.value, oracle_mean(good)));
		CHECK(tc.rejected == 2);
		CHECK(kernels::trimmed_per_side(16, 0.1) == 1);
		CHECK(kernels::trimmed_per_side(100, 0.29) == 29); // 0.29 x 100 is 28.999999999999996 in doubles
		CHECK(kernels::trimmed_per_side(3, 0.49) == 1);
		CHECK(kernels::trimmed_per_side(2, 0.49) == 0);  // at least one sample stays
	}
	// The reach of plain sigma clipping: a sample is at most about sqrt(N) sample standard deviations
	// from the median, so with kappa 3 one outlier among 8 is never rejected, however far.
	{
		std::vector<float> v(7, 0.5f);
		v.push_back(100.0f);
		CHECK(kernels::sigma_clip_inplace(v.data(), 8, 3.0, 5).rejected == 0);
		std::vector<float> w(7, 0.5f);
		w.push_back(100.0f);
		CHECK(kernels::winsorized_clip_inplace(w.data(), 8, 3.0, 5).rejected == 1);
	}
}
