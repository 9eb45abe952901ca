// kernels -- the per-pixel estimators, typed and free of libvips, so tests can call them directly.
#pragma once

#include <algorithm>
#include <cstdint>

namespace superstack::kernels {

// The running mean: float samples summed in double, divided once. A float has 24 significant bits and
// a double 53, so up to 2^29 samples add with a relative error of at most N * 2^-53 (under 1e-12 for a
// thousand frames): no compensation needed, and no division per sample.
inline double mean_of(double sum, std::uint32_t count)
{
	return count ? sum / static_cast<double>(count) : 0.0;
}

// The exact median of v[0..n), reordering v. Even n: the mean of the two middle values. Small stacks
// (the usual burst) are sorted by insertion, which beats a selection's overhead below ~32 values.
inline float median_inplace(float *v, std::uint32_t n)
{
	if (n == 0)
		return 0.0f;
	if (n <= 32) {
		for (std::uint32_t i = 1; i < n; i++) {
			const float x = v[i];
			std::uint32_t j = i;
			for (; j > 0 && v[j - 1] > x; j--)
				v[j] = v[j - 1];
			v[j] = x;
		}
		const float upper = v[n / 2];
		if (n & 1)
			return upper;
		return static_cast<float>((static_cast<double>(v[n / 2 - 1]) + static_cast<double>(upper)) * 0.5);
	}
	const std::uint32_t k = n / 2;
	std::nth_element(v, v + k, v + n);
	const float upper = v[k];
	if (n & 1)
		return upper;
	const float lower = *std::max_element(v, v + k);
	return static_cast<float>((static_cast<double>(lower) + static_cast<double>(upper)) * 0.5);
}

} // namespace superstack::kernels
