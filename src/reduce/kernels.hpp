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
//
// Speed (issue 4: mean, median, sigma-clip and winsorized in one pass within 2x of the mean alone).
// Measured on 12 M real pixel-bands of 16 samples (bench stack, 2x), CPU per pixel-band for median,
// sigma-clip and winsorized together: 1.0-1.2 us before, about 0.4-0.5 us after, on a busy machine.
// What changed, and what each did to the results:
// - The sort of up to 32 samples is a branch-free sorting network (sorting_network.hpp): 45 ns for 16
//   samples instead of 260 ns (insertion sort, one mispredicted branch in two). Same sorted values.
// - The clippings' sigmas come from prefix sums (AnchoredSums, once per pixel-band for both
//   clippings: SortedSamples) instead of two passes over the kept samples: a pass costs O(1), and so
//   does a winsorized sigma's stop, solved piece by piece (winsorized_sigma; it was 9 steps of two O(m)
//   passes per pixel-band on average, then 9 O(1) steps in one chain). The sums are about the median and anchored
//   at the middle, and any sum whose one-pass variance would cancel more than 10 bits is done again
//   in two passes (kCancellation), so a sigma stays within ~1e-12 (relative) of the two-pass value:
//   a sample's keep-or-reject decision can only differ when it lies that close to kappa x sigma.
//   On the 12 M pixel-bands above no value and no reject count changed (compared bit for bit);
//   the oracle tests keep comparing reject counts exactly. (The winsorized stop, solved piece by
//   piece later, moves a winsorized sigma by up to about 5e-4 of itself: README, winsorized_sigma.)
// - The value of a clipping is the mean of the kept samples from the same sums (origin + their sum
//   about it / m): O(1), within ~1e-16 of the sum in ascending order it replaced.
// 24 MP stack at 2x (bench/robust.sh): mean, median, sigma-clip and winsorized took 2.52x the mean
// alone's time before the last two changes, 1.73-1.77x after.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <vector>

#include "sorting_network.hpp"

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

// Sorts v[0..n) ascending, unless it already is (a second estimator on the same samples: checking
// costs n - 1 well-predicted compares). Up to 32 values by a branch-free sorting network
// (sorting_network.hpp: 4-5x faster than the insertion sort it replaced on 16 real samples), beyond by
// std::sort.
inline void sort_samples(float *v, std::uint32_t n)
{
	if (std::is_sorted(v, v + n))
		return;
	if (n <= 4)
		network::sort<4>(v, n);
	else if (n <= 8)
		network::sort<8>(v, n);
	else if (n <= 16)
		network::sort<16>(v, n);
	else if (n <= 32)
		network::sort<32>(v, n);
	else
		std::sort(v, v + n);
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

// The mean of s[lo..hi) (hi > lo) and the sum of the squared deviations from it, in two passes: what
// the sums' one-pass formulas fall back on where they would cancel (kCancellation).
struct Spread {
	double mean = 0, squares = 0;
};
inline Spread two_pass_spread(const float *s, std::uint32_t lo, std::uint32_t hi)
{
	Spread r{mean_of_range(s, lo, hi), 0.0};
	for (std::uint32_t i = lo; i < hi; i++)
		r.squares += (s[i] - r.mean) * (s[i] - r.mean);
	return r;
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
inline constexpr double kWinsorTolerance = 5e-4;   // the robust sigma stops where W moves it by at most this

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

// Sums of a sorted run's values about an origin (the run's median), for the clippings' passes and
// winsorizing steps in O(1) each instead of O(m). Prefix sums anchored at the middle index a: for
// j >= a, sum(a, j) adds the values s[a..j); for i < a, sum(i, a) the values s[i..a); any range is
// a difference of two. So a range's sum only ever holds the values between the middle and the
// range's ends: the far outliers a pass has rejected never enter it, and cannot swamp its rounding.
// In double, of values shifted by the origin (so the squares of a run near the median are small).
class AnchoredSums {
public:
	AnchoredSums() = default;
	AnchoredSums(const float *s, std::uint32_t n, double origin) { assign(s, n, origin); }
	AnchoredSums(const AnchoredSums &) = delete;
	AnchoredSums &operator=(const AnchoredSums &) = delete;

	// The sums of sorted s[0..n) about `origin`: O(n).
	void assign(const float *s, std::uint32_t n, double origin)
	{
		origin_ = origin;
		if (n + 1 > kInline && heap_.size() < 2 * (static_cast<std::size_t>(n) + 1))
			heap_.resize(2 * (static_cast<std::size_t>(n) + 1));
		q1_ = n + 1 > kInline ? heap_.data() : inline_.data();
		q2_ = q1_ + n + 1;
		const std::uint32_t a = n / 2;
		q1_[a] = q2_[a] = 0;
		for (std::uint32_t i = a; i < n; i++) {
			const double y = static_cast<double>(s[i]) - origin;
			q1_[i + 1] = q1_[i] + y;
			q2_[i + 1] = q2_[i] + y * y;
		}
		for (std::uint32_t i = a; i-- > 0;) {
			const double y = static_cast<double>(s[i]) - origin;
			q1_[i] = q1_[i + 1] - y;
			q2_[i] = q2_[i + 1] - y * y;
		}
	}

	double origin() const { return origin_; }
	// The sum of (s[k] - origin), and of its squares, over k in [i, j).
	double sum(std::uint32_t i, std::uint32_t j) const { return q1_[j] - q1_[i]; }
	double squares(std::uint32_t i, std::uint32_t j) const { return q2_[j] - q2_[i]; }
	// The mean of s[i..j), j > i.
	double mean(std::uint32_t i, std::uint32_t j) const { return origin_ + sum(i, j) / (j - i); }

private:
	static constexpr std::size_t kInline = 65; // stacks of up to 64 samples need no allocation
	std::array<double, 2 * kInline> inline_;
	std::vector<double> heap_;
	double *q1_ = nullptr, *q2_ = nullptr;
	double origin_ = 0;
};

// A sum of squared deviations from sums keeps less than this fraction of the sum of squares: the
// values lie far from the origin for their spread (or are all equal), and the one-pass formula would
// lose more than 10 of double's 53 bits; the deviation is then computed again in two passes.
inline constexpr double kCancellation = 1.0 / 1024;

// The sample standard deviation (divisor m - 1, m >= 2) of m values from their sum s1 and sum of
// squares s2 about an origin, or -1 when cancellation makes that unreliable (kCancellation). Otherwise
// within about 2^-40 (relative) of the two-pass value (two_pass_spread).
inline double deviation_of_sums(double s1, double s2, std::uint32_t m)
{
	const double per_m = 1.0 / m, per_m1 = 1.0 / (m - 1); // off the samples' dependency chain
	const double centred = s2 - s1 * s1 * per_m;
	if (!(centred > kCancellation * s2))
		return -1;
	return std::sqrt(centred * per_m1);
}

// The sample standard deviation of sorted s[lo..hi) (divisor m - 1), from the sums when reliable.
inline double deviation(const float *s, std::uint32_t lo, std::uint32_t hi, const AnchoredSums &sums)
{
	const double sd = deviation_of_sums(sums.sum(lo, hi), sums.squares(lo, hi), hi - lo);
	return sd >= 0 ? sd : std::sqrt(two_pass_spread(s, lo, hi).squares / (hi - lo - 1));
}

} // namespace detail

// One pixel-band's samples sorted in place, with their AnchoredSums about the median: what the two
// clippings share (the reducer keeps one per thread and assigns it once per pixel-band for both: one
// sort, one set of sums, no allocation).
class SortedSamples {
public:
	SortedSamples() = default;
	SortedSamples(float *v, std::uint32_t n) { assign(v, n); }

	// Sorts v[0..n) (kept, not copied: v must outlive the use) and makes its sums: O(n log n) once.
	void assign(float *v, std::uint32_t n)
	{
		sort_samples(v, n);
		s_ = v;
		n_ = n;
		sums_.assign(v, n, n ? detail::median_of_sorted(v, 0, n) : 0.0);
	}
	const float *data() const { return s_; }
	std::uint32_t size() const { return n_; }
	const detail::AnchoredSums &sums() const { return sums_; }

private:
	const float *s_ = nullptr;
	std::uint32_t n_ = 0;
	detail::AnchoredSums sums_;
};

namespace detail {

// The clipping loop both sigma clippings share: from all n samples, each pass, while at least 3
// samples are kept and fewer than `iterations` passes have run: centre = median of the kept samples,
// sigma = sigma_of(kept run, centre); keep only |x - centre| <= kappa * sigma; stop if that keeps all
// or none (so sigma 0 keeps the samples equal to the centre, and all-equal samples stay). The value is
// the mean of the kept samples (from the sums), `rejected` = n - kept. The kept set is
// always a run of the sorted samples: a pass costs O(1) for sigma (AnchoredSums) plus one step per
// sample it rejects.
template <typename SigmaOf>
Estimate clip_around_median(const SortedSamples &samples, double kappa, int iterations, SigmaOf sigma_of)
{
	const float *v = samples.data();
	const std::uint32_t n = samples.size();
	if (n == 0)
		return {};
	std::uint32_t lo = 0, hi = n;
	for (int pass = 0; pass < iterations && hi - lo >= 3; pass++) {
		const double centre = median_of_sorted(v, lo, hi);
		const double sigma = sigma_of(v, lo, hi, centre, samples.sums());
		if (!(sigma >= 0) || !clip_range(v, lo, hi, centre, kappa * sigma))
			break;
	}
	return {static_cast<float>(samples.sums().mean(lo, hi)), n - (hi - lo)};
}

} // namespace detail

// Kappa-sigma clipping around the median: detail::clip_around_median with sigma = the sample standard
// deviation (divisor m - 1) of the m kept samples.
inline Estimate sigma_clip(const SortedSamples &samples, double kappa, int iterations)
{
	return detail::clip_around_median(samples, kappa, iterations,
		[](const float *s, std::uint32_t lo, std::uint32_t hi, double, const detail::AnchoredSums &sums) {
			return detail::deviation(s, lo, hi, sums);
		});
}

// The same, sorting v.
inline Estimate sigma_clip_inplace(float *v, std::uint32_t n, double kappa, int iterations)
{
	return sigma_clip(SortedSamples(v, n), kappa, iterations);
}

// The robust sigma of winsorized sigma clipping, with
//   W(sigma) = 1.134 x the sample standard deviation of the kept samples s[lo..hi), each clamped to
//              [centre - 1.5 sigma, centre + 1.5 sigma]:
// from sigma_0 = their sample standard deviation (0 stays 0), Siril's iteration sigma <- W(sigma)
// moves sigma towards a fixed point of W until a step moves it by at most 5e-4 of itself. Here that
// stop is taken continuously: sigma_stop = the first sigma from sigma_0, in the direction W moves
// it, where |W(sigma) - sigma| <= 5e-4 sigma, and the result is W(sigma_stop) (W(sigma_0) when
// sigma_0 is there already). A definition with no step count, within about 5e-4 sigma of the
// iteration's (which stops at the first iterate inside that region), and found exactly:
//
// Piece by piece, in a few O(1) steps. The samples are sorted, so the clamped ones are the L lowest
// (each worth centre - 1.5 sigma) and the H highest (centre + 1.5 sigma); between two sigmas where a
// sample meets a bound, L and H stay and W^2 is a quadratic c0 + c1 sigma + c2 sigma^2. So in the
// piece holding sigma, the stop solves a quadratic equation, W^2 = ((1 -+ 5e-4) sigma)^2; if its
// root lies in the piece, that is sigma_stop; if not, sigma moves to the piece's end (a sample is
// clamped, or released) and the next piece is solved. One step per sample that crosses a bound on the
// way (0 to 2 here; the iteration took 9 steps on average, each a square root in one dependency
// chain, and was the reducers' largest cost). A limit, not a tolerance, would differ where W is
// nearly sigma over a long way (say 10 of 17 samples equal to the centre: W(sigma) = 0.99996 sigma
// for all small sigma): its fixed point is 0, where Siril, and this stop, keep sigma.
inline double winsorized_sigma(const float *s, std::uint32_t lo, std::uint32_t hi, double centre,
	const detail::AnchoredSums &sums)
{
	// Divisions and square roots in one dependency chain were the cost: the constant ones are hoisted,
	// and a step takes one root of one quadratic and no square root of W.
	const std::uint32_t m = hi - lo;
	const double k = kWinsorBound, per_k = 1 / kWinsorBound, per_m = 1.0 / m;
	const double scale = kWinsorCorrection * kWinsorCorrection / (m - 1); // W^2 per centred square
	double sigma = detail::deviation(s, lo, hi, sums);
	if (!(sigma > 0))
		return sigma;
	// The piece holding sigma: s[lo..below) below centre - k sigma, s[above..hi) above centre + k sigma.
	std::uint32_t below = lo, above = hi;
	while (below < hi && s[below] < centre - k * sigma)
		below++;
	while (above > below && s[above - 1] > centre + k * sigma)
		above--;
	int direction = 0; // -1: W lowers sigma, +1: W raises it (from sigma_0)
	for (std::uint32_t step = 0; step <= m; step++) {
		// W^2 = c0 + c1 sigma + c2 sigma^2 in this piece: the centred squares of U (the u = above - below
		// unclamped samples, mean mu, centred squares V), L values centre - k sigma and H values centre +
		// k sigma are V + (u L (e + k sigma)^2 + u H (e - k sigma)^2 + L H (2 k sigma)^2) / m, e = mu -
		// centre (the groups' own squares plus the squares between the groups' means). No term cancels
		// but V, taken from the sums when they are reliable, and in two passes when not.
		const double u = above - below, low = below - lo, high = hi - above;
		double mu = centre, squares = 0;
		if (u > 0) {
			const double s1 = sums.sum(below, above), s2 = sums.squares(below, above), per_u = 1 / u;
			mu = sums.origin() + s1 * per_u;
			squares = s2 - s1 * s1 * per_u;
			if (!(squares > detail::kCancellation * s2)) {
				const detail::Spread spread = detail::two_pass_spread(s, below, above);
				mu = spread.mean, squares = spread.squares;
			}
		}
		const double e = mu - centre;
		const double c0 = scale * (squares + u * (low + high) * e * e * per_m);
		const double c1 = scale * (2 * u * e * k * (low - high) * per_m);
		const double c2 = scale * (k * k * (u * (low + high) + 4 * low * high) * per_m);
		if (direction == 0) {
			const double w2 = c0 + sigma * (c1 + sigma * c2), below_stop = 1 - kWinsorTolerance, above_stop = 1 + kWinsorTolerance;
			if (w2 >= below_stop * below_stop * sigma * sigma && w2 <= above_stop * above_stop * sigma * sigma)
				return std::sqrt(w2); // |W - sigma| <= tol sigma at sigma_0
			direction = w2 < sigma * sigma ? -1 : 1;
		}
		const bool down = direction < 0;
		// The piece's end in that direction: where the next sample meets a bound (none: 0 or infinity).
		double end = down ? 0 : HUGE_VAL;
		if (down) {
			if (below < above)
				end = std::max({end, (centre - s[below]) * per_k, (s[above - 1] - centre) * per_k});
		} else {
			if (below > lo)
				end = std::min(end, (centre - s[below - 1]) * per_k);
			if (above < hi)
				end = std::min(end, (s[above] - centre) * per_k);
		}
		// The stop: W = f t, f = 1 - tol going down, 1 + tol going up: h(t) = a t^2 - c1 t - c0 = 0 with
		// a = f^2 - c2, and the root of h nearest sigma on that side is wanted. There, W = f t.
		const double f = down ? 1 - kWinsorTolerance : 1 + kWinsorTolerance;
		const double a = f * f - c2;
		double root = down ? -HUGE_VAL : HUGE_VAL;
		if (a > 0) {
			// h(0) = -c0 <= 0 and h is convex: h(sigma) > 0 (not stopped, going down) puts sigma above the
			// larger root, h(sigma) < 0 (going up) below it: the larger root either way, without
			// cancellation: numerator / denominator, compared with `end` before dividing (the division's
			// latency then delays no branch).
			const double r = std::sqrt(c1 * c1 + 4 * a * c0);
			const double numerator = c1 >= 0 ? c1 + r : 2 * c0, denominator = c1 >= 0 ? 2 * a : r - c1;
			if (!(denominator > 0))
				return 0.0; // c0 = c1 = 0: the root is 0
			if (down ? numerator >= end * denominator : numerator <= end * denominator)
				return f * (numerator / denominator);
		} else if (a == 0) {
			if (c1 != 0)
				root = -c0 / c1;
		} else if (const double discriminant = c1 * c1 + 4 * a * c0; discriminant >= 0) {
			// Both roots: q = (c1 + sign(c1) r) / 2, roots q / a and -c0 / q; the one nearest on that side.
			const double q = 0.5 * (c1 + std::copysign(std::sqrt(discriminant), c1));
			for (const double t : {q / a, q != 0 ? -c0 / q : 0.0})
				if (down ? t <= sigma && t > root : t >= sigma && t < root)
					root = t;
		}
		if (down ? root >= end : root <= end)
			return f * std::max(root, 0.0);
		if (!down && std::isinf(end)) // (unreachable: with no sample clamped W is constant, and its root found)
			return std::sqrt(std::max(0.0, c0 + sigma * (c1 + sigma * c2)));
		sigma = end;
		// Into the next piece: the samples at the bound are clamped (down) or released (up).
		if (down) {
			while (below < above && (centre - s[below]) * per_k >= end)
				below++;
			while (above > below && (s[above - 1] - centre) * per_k >= end)
				above--;
		} else {
			while (below > lo && (centre - s[below - 1]) * per_k <= end)
				below--;
			while (above < hi && (s[above] - centre) * per_k <= end)
				above++;
		}
	}
	return sigma;
}

// Winsorized sigma clipping (as Siril and PixInsight): detail::clip_around_median with sigma =
// winsorized_sigma() of the kept samples around their median; the value is the mean of the kept
// (unclamped) samples. When many kept samples are equal to the median and W shrinks sigma by a
// constant factor (say 10 of 16, the 6 others on one side: 0.85), the robust sigma is 0, and the
// samples unequal to the median are rejected: the median's own value wins.
inline Estimate winsorized_clip(const SortedSamples &samples, double kappa, int iterations)
{
	return detail::clip_around_median(samples, kappa, iterations,
		[](const float *s, std::uint32_t lo, std::uint32_t hi, double centre, const detail::AnchoredSums &sums) {
			return winsorized_sigma(s, lo, hi, centre, sums);
		});
}

// The same, sorting v.
inline Estimate winsorized_clip_inplace(float *v, std::uint32_t n, double kappa, int iterations)
{
	return winsorized_clip(SortedSamples(v, n), kappa, iterations);
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
