// sharpness -- noise-compensated Laplacian variance from one histogram.
#include "superstack/sharpness.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <cstdint>
#include <vector>

namespace superstack {

namespace {
constexpr double kBinsPerUnit = 8192.0; // Laplacian values in [-4, 4) on 65536 bins
constexpr double kOffset = 32768.0;
}

vips::VImage laplacian(const vips::VImage &image)
{
	const vips::VImage kernel = vips::VImage::new_matrixv(3, 3, 0.0, 1.0, 0.0, 1.0, -4.0, 1.0, 0.0, 1.0, 0.0);
	return image.cast(VIPS_FORMAT_FLOAT).conv(kernel, vips::VImage::option()->set("precision", VIPS_PRECISION_FLOAT));
}

Sharpness measure_sharpness(const vips::VImage &luminance)
{
	const vips::VImage lap = laplacian(luminance);
	// Round to the nearest bin; cast() clamps to [0, 65535].
	const vips::VImage quantised = (lap * kBinsPerUnit + kOffset).round(VIPS_OPERATION_ROUND_RINT).cast(VIPS_FORMAT_USHORT);
	const vips::VImage hist = quantised.hist_find().cast(VIPS_FORMAT_DOUBLE);
	std::size_t bytes = 0;
	void *mem = hist.write_to_memory(&bytes);
	std::vector<double> counts(bytes / sizeof(double));
	std::memcpy(counts.data(), mem, bytes);
	g_free(mem);

	double n = 0, sum = 0, sum2 = 0;
	for (std::size_t i = 0; i < counts.size(); i++) {
		const double v = (static_cast<double>(i) - kOffset) / kBinsPerUnit;
		n += counts[i], sum += counts[i] * v, sum2 += counts[i] * v * v;
	}
	Sharpness s;
	if (n < 2)
		return s;
	const double mean = sum / n;
	const double variance = std::max(0.0, sum2 / n - mean * mean);
	// The median, then the median of the distances to it, from cumulative counts.
	auto quantile_bin = [&](const std::vector<double> &c, double q) {
		double run = 0;
		for (std::size_t i = 0; i < c.size(); i++) {
			run += c[i];
			if (run >= q * n)
				return static_cast<double>(i);
		}
		return static_cast<double>(c.size() - 1);
	};
	const double median = quantile_bin(counts, 0.5);
	std::vector<double> distance(counts.size(), 0.0);
	for (std::size_t i = 0; i < counts.size(); i++)
		distance[static_cast<std::size_t>(std::abs(static_cast<double>(i) - median))] += counts[i];
	const double mad = quantile_bin(distance, 0.5) / kBinsPerUnit;
	const double lap_sigma = 1.4826 * mad;
	s.noise = lap_sigma / std::sqrt(kLaplacianNoiseGain);
	s.sharpness = std::max(0.0, variance - lap_sigma * lap_sigma);
	s.variance = variance;
	return s;
}

} // namespace superstack
