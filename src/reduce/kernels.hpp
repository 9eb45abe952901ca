// kernels -- the per-pixel estimators, typed and free of libvips, so tests can call them directly.
#pragma once

#include <algorithm>
#include <cstdint>

namespace superstack::kernels {

// Running mean (Welford's update) in double: stable for any count, no growing sum to lose precision.
inline void mean_add(double &mean, double x, std::uint32_t count_after)
{
	mean += (x - mean) / static_cast<double>(count_after);
}

// The exact median of v[0..n), reordering v. Even n: the mean of the two middle values.
inline float median_inplace(float *v, std::uint32_t n)
{
	if (n == 0)
		return 0.0f;
	const std::uint32_t k = n / 2;
	std::nth_element(v, v + k, v + n);
	const float upper = v[k];
	if (n & 1)
		return upper;
	const float lower = *std::max_element(v, v + k);
	return static_cast<float>((static_cast<double>(lower) + static_cast<double>(upper)) * 0.5);
}

} // namespace superstack::kernels
