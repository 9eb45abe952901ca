// sharpness -- noise-compensated Laplacian variance over four octaves, from one histogram.
#include "superstack/sharpness.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <cstdint>
#include <tuple>
#include <vector>

namespace superstack {

namespace {
constexpr double kBinsPerUnit = 8192.0; // Laplacian values in [-4, 4) on 65536 bins
constexpr double kOffset = 32768.0;
constexpr int kMinScaledSide = 16;      // an octave counts while the shrunk frame is this large
}

double laplacian_noise(double laplacian_mad)
{
	return 1.4826 * laplacian_mad / std::sqrt(kLaplacianNoiseGain);
}

vips::VImage laplacian(const vips::VImage &image)
{
	const vips::VImage kernel = vips::VImage::new_matrixv(3, 3, 0.0, 1.0, 0.0, 1.0, -4.0, 1.0, 0.0, 1.0, 0.0);
	return image.cast(VIPS_FORMAT_FLOAT).conv(kernel, vips::VImage::option()->set("precision", VIPS_PRECISION_FLOAT));
}

Sharpness measure_sharpness(const vips::VImage &luminance)
{
	// The octaves that fit, and the area every one of them covers whole: multiples of the coarsest.
	const int w = luminance.width(), h = luminance.height();
	int octaves = 1;
	while (octaves < kSharpnessOctaves && std::min(w, h) >> octaves >= kMinScaledSide)
		octaves++;
	const int coarsest = 1 << (octaves - 1); // at most min(w, h) / 16
	const vips::VImage common = luminance.cast(VIPS_FORMAT_FLOAT).crop(0, 0, w / coarsest * coarsest, h / coarsest * coarsest);
	// Band k: the Laplacian of the frame box-averaged over 2^k x 2^k pixels, its taps 2^k apart: what
	// the Laplacian of the frame shrunk by 2^k says, at every pixel instead of every 2^k-th (the same
	// variance, from more samples). Separable boxes and sparse kernels (libvips skips zero taps), one
	// image, one pass over the frame: a JPEG read as a stream is decoded once.
	vips::VImage bands = laplacian(common);
	for (int k = 1; k < octaves; k++) {
		const int f = 1 << k;
		std::vector<double> box(static_cast<std::size_t>(f), 1.0 / f);
		const vips::VImage averaged = common.convsep(vips::VImage::new_matrix(f, 1, box.data(), f),
			vips::VImage::option()->set("precision", VIPS_PRECISION_FLOAT));
		std::vector<double> taps(static_cast<std::size_t>((2 * f + 1) * (2 * f + 1)), 0.0);
		auto tap = [&](int x, int y) -> double & { return taps[static_cast<std::size_t>(y * (2 * f + 1) + x)]; };
		tap(f, f) = -4, tap(0, f) = tap(2 * f, f) = tap(f, 0) = tap(f, 2 * f) = 1;
		const vips::VImage dilated = vips::VImage::new_matrix(2 * f + 1, 2 * f + 1, taps.data(), static_cast<int>(taps.size()));
		bands = bands.bandjoin(averaged.conv(dilated, vips::VImage::option()->set("precision", VIPS_PRECISION_FLOAT)));
	}
	// The last band: the luminance itself, for its mean (the brightness the sharpness is relative to).
	bands = bands.bandjoin(common);
	const int columns = octaves + 1;
	// Round to the nearest bin; cast() clamps to [0, 65535].
	const vips::VImage quantised = (bands * kBinsPerUnit + kOffset).round(VIPS_OPERATION_ROUND_RINT).cast(VIPS_FORMAT_USHORT);
	const vips::VImage hist = quantised.hist_find().cast(VIPS_FORMAT_DOUBLE);
	std::size_t bytes = 0;
	void *mem = hist.write_to_memory(&bytes);
	std::vector<double> all(bytes / sizeof(double));
	std::memcpy(all.data(), mem, bytes);
	g_free(mem);
	const std::size_t bins = all.size() / columns;
	auto counts_of = [&](int k) {
		std::vector<double> c(bins);
		for (std::size_t i = 0; i < bins; i++)
			c[i] = all[i * columns + k];
		return c;
	};
	auto moments = [&](const std::vector<double> &counts) {
		double n = 0, sum = 0, sum2 = 0;
		for (std::size_t i = 0; i < counts.size(); i++) {
			const double v = (static_cast<double>(i) - kOffset) / kBinsPerUnit;
			n += counts[i], sum += counts[i] * v, sum2 += counts[i] * v * v;
		}
		const double mean = n > 0 ? sum / n : 0;
		return std::tuple{n, n > 0 ? std::max(0.0, sum2 / n - mean * mean) : 0.0, mean};
	};

	const std::vector<double> finest = counts_of(0);
	const auto finest_moments = moments(finest);
	const double n = std::get<0>(finest_moments), variance = std::get<1>(finest_moments);
	Sharpness s;
	if (n < 2)
		return s;
	// The noise from the finest octave: the median, then the median of the distances to it, from
	// cumulative counts.
	auto quantile_bin = [&](const std::vector<double> &c, double q) {
		double run = 0;
		for (std::size_t i = 0; i < c.size(); i++) {
			run += c[i];
			if (run >= q * n)
				return static_cast<double>(i);
		}
		return static_cast<double>(c.size() - 1);
	};
	const double median = quantile_bin(finest, 0.5);
	std::vector<double> distance(finest.size(), 0.0);
	for (std::size_t i = 0; i < finest.size(); i++)
		distance[static_cast<std::size_t>(std::abs(static_cast<double>(i) - median))] += finest[i];
	s.noise = laplacian_noise(quantile_bin(distance, 0.5) / kBinsPerUnit);
	s.variance = variance;
	const double lap_sigma = s.noise * std::sqrt(kLaplacianNoiseGain);
	// Each octave's detail: its Laplacian's variance less what the noise explains there (a box of 4^k
	// pixels leaves white noise sigma / 2^k); their mean.
	double detail = 0;
	for (int k = 0; k < octaves; k++) {
		const double v = k == 0 ? variance : std::get<1>(moments(counts_of(k)));
		detail += std::max(0.0, v - lap_sigma * lap_sigma / static_cast<double>(1 << (2 * k)));
	}
	s.mean = std::get<2>(moments(counts_of(octaves)));
	const double brightness = std::max(s.mean, kMinSharpnessMean);
	s.sharpness = detail / octaves / (brightness * brightness);
	return s;
}

} // namespace superstack
