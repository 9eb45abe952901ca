// kernels -- the per-pixel estimators, typed and free of libvips, so tests can call them directly.
//
// Two kinds. Running estimators (mean, weighted mean, min, max) are fed one sample at a time in frame
// order and keep O(1) state per pixel-band, so they need no sample buffer. Order estimators (median,
// sigma-clip, winsorized, trimmed) take all of a pixel-band's samples as a float array and reorder it
// in place (the clippings and the trimmed mean sort it ascending); an estimator after another on the
// same array finds it sorted and does not sort again, so the reducer gathers each pixel-band's samples
// once into one scratch array for all of them.
// Sums are in double, in a fixed order (frame order, or ascending after the sort): a result depends
// only on the samples and their frame order, never on tiling or threads.
//
// Every estimator is defined for every n: n = 0 gives 0 (and 0 rejected), one sample gives itself,
// and no clipping ever rejects every sample.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

namespace superstack::kernels {

// The running mean: float samples summed in double, divided once. A float has 24 significant bits and
// a double 53, so up to 2^29 samples add with a relative error of at most N * 2^-53 (under 1e-12 for a
// thousand frames): no compensation needed, and no division per sample.
inline double mean_of(double sum, std::uint32_t count)
{
	return count ? sum / static_cast<double>(count) : 0.0;
}

// The weighted mean sum(w_f x_f) / sum(w_f), from running sums in frame order (each product w_f x_f
// rounded to double, then added). Weights are >= 0; a pixel whose frames all weigh 0 takes the plain
// mean `sum / count` instead (no frame is preferred when none has any weight).
inline double weighted_mean_of(double weighted_sum, double weight_sum, double sum, std::uint32_t count)
{
	return weight_sum > 0 ? weighted_sum / weight_sum : mean_of(sum, count);
}

// Running extremes: `first` for a pixel's first sample. A pixel without samples keeps the reducer's 0.
inline void extend_range(float &lo, float &hi, float x, bool first)
{
	lo = first ? x : std::min(lo, x);
	hi = first ? x : std::max(hi, x);
}

// What an order estimator gives: the value, and how many of the n samples it left out.
struct Estimate {
	float value = 0.0f;
	std::uint32_t rejected = 0;
};

// Sorts v[0..n) ascending, unless it already is (a second estimator on the same samples). Small
// stacks (the usual burst) are sorted by insertion, which beats std::sort below ~32 values.
inline void sort_samples(float *v, std::uint32_t n)
{
	if (n > 32) {
		if (!std::is_sorted(v, v + n))
			std::sort(v, v + n);
		return;
	}
	for (std::uint32_t i = 1; i < n; i++) {
		const float x = v[i];
		std::uint32_t j = i;
		for (; j > 0 && v[j - 1] > x; j--)
			v[j] = v[j - 1];
		v[j] = x;
	}
}

namespace detail {

// The median of sorted s[lo..hi), hi > lo, in double: the middle value, or the mean of the two.
inline double median_of_sorted(const float *s, std::uint32_t lo, std::uint32_t hi)
{
	const std::uint32_t m = hi - lo, mid = lo + m / 2;
	return m & 1 ? static_cast<double>(s[mid]) : (static_cast<double>(s[mid - 1]) + static_cast<double>(s[mid])) * 0.5;
}

inline double mean_of_range(const float *s, std::uint32_t lo, std::uint32_t hi)
{
	double sum = 0;
	for (std::uint32_t i = lo; i < hi; i++)
		sum += s[i];
	return sum / static_cast<double>(hi - lo);
}

// The sample standard deviation (divisor m - 1, m >= 2) of s[lo..hi), each value clamped to [a, b]
// first (a = -inf, b = +inf: none). Two passes: the mean, then the squared deviations.
inline double clamped_deviation(const float *s, std::uint32_t lo, std::uint32_t hi, double a, double b)
{
	double sum = 0;
	for (std::uint32_t i = lo; i < hi; i++)
		sum += std::clamp(static_cast<double>(s[i]), a, b);
	const double mean = sum / static_cast<double>(hi - lo);
	double squares = 0;
	for (std::uint32_t i = lo; i < hi; i++) {
		const double d = std::clamp(static_cast<double>(s[i]), a, b) - mean;
		squares += d * d;
	}
	return std::sqrt(squares / static_cast<double>(hi - lo - 1));
}

// Narrows sorted s[lo..hi) to the values within `limit` of `centre` (|x - centre| <= limit). Returns
// false, and changes nothing, when that keeps every value or none.
inline bool clip_range(const float *s, std::uint32_t &lo, std::uint32_t &hi, double centre, double limit)
{
	std::uint32_t a = lo, b = hi;
	while (a < b && centre - s[a] > limit)
		a++;
	while (b > a && s[b - 1] - centre > limit)
		b--;
	if (a == b || (a == lo && b == hi))
		return false;
	lo = a, hi = b;
	return true;
}

inline Estimate mean_of_kept(const float *s, std::uint32_t lo, std::uint32_t hi, std::uint32_t n)
{
	return {static_cast<float>(mean_of_range(s, lo, hi)), n - (hi - lo)};
}

} // namespace detail

inline constexpr double kWinsorBound = 1.5;       // winsorize at median +- 1.5 sigma
inline constexpr double kWinsorCorrection = 1.134; // sd of a normal winsorized at 1.5 sigma is sigma / 1.134
inline constexpr double kWinsorTolerance = 5e-4;   // the robust sigma has settled: relative change below this
inline constexpr int kWinsorSteps = 50;            // at most this many winsorizing steps per pass

// The exact median of v[0..n), reordering v. Even n: the mean of the two middle values, in double,
// rounded once to float. Up to 32 values, or values already sorted, it sorts (and leaves v sorted);
// beyond, a selection (O(n): 1.8 us for 100 values against 4.2 us for a sort, measured) leaves v
// partitioned around the middle, and a later order estimator sorts it.
inline float median_inplace(float *v, std::uint32_t n)
{
	if (n == 0)
		return 0.0f;
	if (n <= 32 || std::is_sorted(v, v + n)) {
		sort_samples(v, n);
		return static_cast<float>(detail::median_of_sorted(v, 0, n));
	}
	const std::uint32_t k = n / 2;
	std::nth_element(v, v + k, v + n);
	const float upper = v[k];
	if (n & 1)
		return upper;
	const float lower = *std::max_element(v, v + k);
	return static_cast<float>((static_cast<double>(lower) + static_cast<double>(upper)) * 0.5);
}

namespace detail {

// The clipping loop both sigma clippings share (sorting v): from all n samples, each pass, while at
// least 3 samples are kept and fewer than `iterations` passes have run: centre = median of the kept
// samples, sigma = sigma_of(kept run, centre); keep only |x - centre| <= kappa * sigma; stop if that
// keeps all or none (so sigma 0 keeps the samples equal to the centre, and all-equal samples stay).
// The value is the mean of the kept samples, `rejected` = n - kept. The kept set is always a run of
// the sorted samples, so a pass costs O(m).
template <typename SigmaOf>
Estimate clip_around_median(float *v, std::uint32_t n, double kappa, int iterations, SigmaOf sigma_of)
{
	if (n == 0)
		return {};
	sort_samples(v, n);
	std::uint32_t lo = 0, hi = n;
	for (int pass = 0; pass < iterations && hi - lo >= 3; pass++) {
		const double centre = median_of_sorted(v, lo, hi);
		const double sigma = sigma_of(v, lo, hi, centre);
		if (!(sigma >= 0) || !clip_range(v, lo, hi, centre, kappa * sigma))
			break;
	}
	return mean_of_kept(v, lo, hi, n);
}

} // namespace detail

// Kappa-sigma clipping around the median: detail::clip_around_median with sigma = the sample standard
// deviation (divisor m - 1) of the m kept samples.
inline Estimate sigma_clip_inplace(float *v, std::uint32_t n, double kappa, int iterations)
{
	return detail::clip_around_median(v, n, kappa, iterations,
		[](const float *s, std::uint32_t lo, std::uint32_t hi, double) {
			return detail::clamped_deviation(s, lo, hi, -HUGE_VAL, HUGE_VAL);
		});
}

// The robust sigma of winsorized sigma clipping: from sigma = the sample standard deviation of the
// kept samples (0 stays 0), repeat at most kWinsorSteps times: sigma <- 1.134 x the sample standard
// deviation of the kept samples each clamped to [centre - 1.5 sigma, centre + 1.5 sigma], until sigma
// changes by at most 5e-4 of itself or reaches 0. Each step clamps the kept samples themselves (Siril
// clamps its previous clamped copy: the same while the bounds shrink, as they do with outliers).
inline double winsorized_sigma(const float *s, std::uint32_t lo, std::uint32_t hi, double centre)
{
	double sigma = detail::clamped_deviation(s, lo, hi, -HUGE_VAL, HUGE_VAL);
	for (int step = 0; step < kWinsorSteps && sigma > 0; step++) {
		const double bound = kWinsorBound * sigma;
		const double next = kWinsorCorrection * detail::clamped_deviation(s, lo, hi, centre - bound, centre + bound);
		const bool settled = std::fabs(next - sigma) <= kWinsorTolerance * sigma;
		sigma = next;
		if (settled)
			break;
	}
	return sigma;
}

// Winsorized sigma clipping (as Siril and PixInsight): detail::clip_around_median with sigma =
// winsorized_sigma() of the kept samples around their median; the value is the mean of the kept
// (unclamped) samples. When many kept samples are equal to the median (say 10 of 16), the robust
// sigma shrinks by a constant factor every step, ends near 0 after kWinsorSteps, and the samples
// unequal to the median are rejected: the median's own value wins.
inline Estimate winsorized_clip_inplace(float *v, std::uint32_t n, double kappa, int iterations)
{
	return detail::clip_around_median(v, n, kappa, iterations,
		[](const float *s, std::uint32_t lo, std::uint32_t hi, double centre) {
			return winsorized_sigma(s, lo, hi, centre);
		});
}

// The number of samples trimmed from each end: floor(trim * n), but always leaving at least one
// sample. (trim * n is nudged by 1e-9 first: 0.29 * 100 is 28.999999999999996 in doubles, and trims 29.)
inline std::uint32_t trimmed_per_side(std::uint32_t n, double trim)
{
	if (n == 0)
		return 0;
	const auto t = static_cast<std::uint32_t>(std::floor(trim * n + 1e-9));
	return std::min(t, (n - 1) / 2);
}

// The trimmed mean (sorting v): the mean of the samples left when trimmed_per_side(n, trim) lowest and
// as many highest are dropped; `rejected` = both ends. trim in [0, 0.5).
inline Estimate trimmed_mean_inplace(float *v, std::uint32_t n, double trim)
{
	if (n == 0)
		return {};
	sort_samples(v, n);
	const std::uint32_t t = trimmed_per_side(n, trim);
	return detail::mean_of_kept(v, t, n - t, n);
}

} // namespace superstack::kernels
