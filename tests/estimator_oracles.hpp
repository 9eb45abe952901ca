// estimator_oracles -- the statistics written the slow, obvious way (copies, std::sort, long double,
// a vector of kept samples rebuilt every pass), straight from their definitions in README.md, for the
// kernels and the reducer to be checked against.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

namespace superstack::test {

struct OracleEstimate {
	long double value = 0;
	std::uint32_t rejected = 0;
};

inline long double oracle_mean(const std::vector<float> &s)
{
	long double sum = 0;
	for (float v : s)
		sum += v;
	return s.empty() ? 0.0L : sum / s.size();
}

// The median, exactly: the middle value, or the mean of the two middle values.
inline long double oracle_middle(std::vector<float> s)
{
	if (s.empty())
		return 0;
	std::sort(s.begin(), s.end());
	const std::size_t n = s.size();
	return n % 2 ? s[n / 2] : (static_cast<long double>(s[n / 2 - 1]) + s[n / 2]) / 2;
}

// The median as the reducer stores it: rounded once to float.
inline float oracle_median(const std::vector<float> &s)
{
	return static_cast<float>(oracle_middle(s));
}

// The sample standard deviation (n - 1) of s, each value first clamped to [lo, hi].
inline long double oracle_sd(const std::vector<float> &s, long double lo = -INFINITY, long double hi = INFINITY)
{
	std::vector<long double> c;
	for (float v : s)
		c.push_back(std::clamp(static_cast<long double>(v), lo, hi));
	long double mean = 0;
	for (long double v : c)
		mean += v;
	mean /= c.size();
	long double squares = 0;
	for (long double v : c)
		squares += (v - mean) * (v - mean);
	return std::sqrt(squares / (c.size() - 1));
}

// Passes of "keep |x - median| <= kappa * sigma(kept, median)" while 3 or more are kept, stopping when
// a pass keeps all or none; then the mean of the kept.
template <typename Sigma>
OracleEstimate oracle_clip(const std::vector<float> &s, double kappa, int iterations, Sigma sigma_of)
{
	if (s.empty())
		return {};
	std::vector<float> kept = s;
	for (int pass = 0; pass < iterations && kept.size() >= 3; pass++) {
		const long double centre = oracle_middle(kept);
		const long double sigma = sigma_of(kept, centre);
		std::vector<float> next;
		for (float v : kept)
			if (std::fabs(v - centre) <= kappa * sigma)
				next.push_back(v);
		if (next.empty() || next.size() == kept.size())
			break;
		kept = next;
	}
	return {oracle_mean(kept), static_cast<std::uint32_t>(s.size() - kept.size())};
}

inline OracleEstimate oracle_sigma_clip(const std::vector<float> &s, double kappa, int iterations)
{
	return oracle_clip(s, kappa, iterations, [](const std::vector<float> &kept, long double) { return oracle_sd(kept); });
}

// Winsorized: W(sigma) = 1.134 sd(kept clamped to centre +- 1.5 sigma). From sigma_0 = sd(kept): if
// |W - sigma| <= 5e-4 sigma there, W(sigma_0); otherwise walk sigma from sigma_0 in the direction W
// moves it, in steps of 1% (the region where |W - sigma| <= 5e-4 sigma about a fixed point is wider
// than 5e-4 sigma, and once past its edge W stays on the other side of (1 -+ 5e-4) sigma), then
// bisect the last step to the edge: sigma_stop; the result is W(sigma_stop). Walking down below 1e-12
// of sigma_0 without stopping: 0.
inline long double oracle_winsorized_sigma(const std::vector<float> &kept, long double centre)
{
	const auto w = [&](long double t) { return 1.134L * oracle_sd(kept, centre - 1.5L * t, centre + 1.5L * t); };
	const long double sigma0 = oracle_sd(kept);
	if (!(sigma0 > 0))
		return sigma0;
	const long double first = w(sigma0);
	if (std::fabs(first - sigma0) <= 5e-4L * sigma0)
		return first;
	const bool down = first < sigma0;
	const long double f = down ? 1 - 5e-4L : 1 + 5e-4L;
	const auto stopped = [&](long double t) { return down ? w(t) >= f * t : w(t) <= f * t; };
	long double from = sigma0, to = sigma0;
	while (!stopped(to)) {
		from = to;
		to = down ? to * 0.99L : to * 1.01L;
		if (to < 1e-12L * sigma0)
			return 0;
	}
	for (int i = 0; i < 100; i++) { // the edge between `from` (not stopped) and `to` (stopped)
		const long double mid = (from + to) / 2;
		(stopped(mid) ? to : from) = mid;
	}
	return w(to);
}

inline OracleEstimate oracle_winsorized(const std::vector<float> &s, double kappa, int iterations)
{
	return oracle_clip(s, kappa, iterations, oracle_winsorized_sigma);
}

inline OracleEstimate oracle_trimmed(std::vector<float> s, double trim)
{
	if (s.empty())
		return {};
	std::sort(s.begin(), s.end());
	std::size_t t = static_cast<std::size_t>(std::floor(trim * s.size() + 1e-9));
	while (2 * t >= s.size())
		t--;
	const std::vector<float> kept(s.begin() + static_cast<long>(t), s.end() - static_cast<long>(t));
	return {oracle_mean(kept), static_cast<std::uint32_t>(2 * t)};
}

// Weighted mean; the plain mean when the weights sum to 0.
inline long double oracle_weighted(const std::vector<float> &s, const std::vector<double> &w)
{
	long double num = 0, den = 0;
	for (std::size_t i = 0; i < s.size(); i++)
		num += static_cast<long double>(w[i]) * s[i], den += w[i];
	return den > 0 ? num / den : oracle_mean(s);
}

} // namespace superstack::test
