// sharpen -- a Wiener deconvolution kernel designed in the frequency domain, applied by libvips.
#include "superstack/sharpen.hpp"

#include "superstack/error.hpp"

#include <cmath>
#include <numbers>
#include <string>

namespace superstack {

double parse_sharpen(std::string_view text)
{
	if (text == "auto")
		return 1.0;
	if (text == "none")
		return 0.0;
	std::size_t used = 0;
	double amount = 0;
	try {
		amount = std::stod(std::string(text), &used);
	} catch (const std::exception &) {
		used = 0;
	}
	if (used != text.size() || !(amount > 0 && amount <= 100))
		throw_error(ExitCode::usage, "--sharpen must be auto, none or an amount in (0, 100] (got '{}')", text);
	return amount;
}

MergeBlur merge_blur(Merge merge, double scale, double pixfrac, const RegressionOptions &regression)
{
	MergeBlur b;
	b.box = scale;
	b.noise = kInterpolateNoise;
	if (merge == Merge::drizzle) {
		b.drop = pixfrac * scale;
		b.noise = kDrizzleNoise;
	}
	if (merge == Merge::kernel) {
		b.gaussian = regression.detail * kKernelBlur * scale;
		b.noise = kKernelNoise;
	}
	return b;
}

namespace {

// The normalised sinc: the frequency response of a unit-area box of width 1 at frequency f.
double sinc(double f)
{
	const double x = std::numbers::pi * f;
	return std::abs(x) < 1e-12 ? 1.0 : std::sin(x) / x;
}

// The blur's response along one axis at frequency f (cycles per output pixel).
double response(const MergeBlur &b, double f)
{
	const double s = b.gaussian;
	return sinc(b.box * f) * (b.drop > 0 ? sinc(b.drop * f) : 1.0) * std::exp(-2 * std::numbers::pi * std::numbers::pi * s * s * f * f) / sinc(f);
}

vips::VImage positive(const vips::VImage &v)
{
	return (v > 0.0).ifthenelse(v, 0.0);
}

// The 3x3 neighbourhood's range (edges replicated) and how far each pixel stands above (peak) or
// below (trough) both its neighbours along the direction where it does most: peak = v - min over the
// 4 directions of max(the two neighbours), trough the same downwards; negative where the pixel is
// above (below) neither neighbour along any direction. One read of the 8 neighbours for both.
struct Neighbourhood {
	vips::VImage lo, hi, peak, trough;
};
Neighbourhood neighbourhood(const vips::VImage &v)
{
	const vips::VImage padded = v.embed(1, 1, v.width() + 2, v.height() + 2, vips::VImage::option()->set("extend", VIPS_EXTEND_COPY));
	auto neighbour = [&](int dx, int dy) { return padded.crop(1 + dx, 1 + dy, v.width(), v.height()); };
	auto rank = [](const std::vector<vips::VImage> &in, int index) { return vips::VImage::bandrank(in, vips::VImage::option()->set("index", index)); };
	static constexpr int kDirections[4][2] = {{1, 0}, {0, 1}, {1, 1}, {1, -1}};
	std::vector<vips::VImage> highs, lows;
	for (const auto &d : kDirections) {
		const std::vector<vips::VImage> pair{neighbour(d[0], d[1]), neighbour(-d[0], -d[1])};
		highs.push_back(rank(pair, 1));
		lows.push_back(rank(pair, 0));
	}
	Neighbourhood n;
	n.peak = v - rank(highs, 0);
	n.trough = rank(lows, 3) - v;
	highs.push_back(v);
	lows.push_back(v);
	n.hi = rank(highs, 4);
	n.lo = rank(lows, 0);
	return n;
}

} // namespace

std::vector<double> deconvolution_kernel(const MergeBlur &blur, double noise, double signal, double amount, int radius)
{
	// W = H / (H^2 + lambda L^2) on an n x n grid of frequencies (H is real and even), then the
	// inverse DFT at the kernel's taps, tapered by a Hann window and scaled to sum to 1.
	const int n = 64;
	const double lambda = kRegularisation * std::pow(blur.noise * noise * blur.box * blur.box, 2) / signal / amount;
	std::vector<double> hx(n), laplacian(n);
	for (int k = 0; k < n; k++) {
		const double f = (k < n / 2 ? k : k - n) / static_cast<double>(n);
		hx[k] = response(blur, f);
		laplacian[k] = 4 * std::pow(std::sin(std::numbers::pi * f), 2);
	}
	std::vector<double> w(static_cast<std::size_t>(n) * n);
	for (int v = 0; v < n; v++)
		for (int u = 0; u < n; u++) {
			const double h = hx[u] * hx[v], l = laplacian[u] + laplacian[v];
			w[static_cast<std::size_t>(v) * n + u] = h / (h * h + lambda * l * l);
		}
	const int side = 2 * radius + 1;
	std::vector<double> kernel(static_cast<std::size_t>(side) * side);
	double total = 0;
	for (int y = -radius; y <= radius; y++)
		for (int x = -radius; x <= radius; x++) {
			double sum = 0;
			for (int v = 0; v < n; v++)
				for (int u = 0; u < n; u++)
					sum += w[static_cast<std::size_t>(v) * n + u] * std::cos(2 * std::numbers::pi * (u * x + v * y) / n);
			const double taper = 0.25 * (1 + std::cos(std::numbers::pi * x / (radius + 1))) * (1 + std::cos(std::numbers::pi * y / (radius + 1)));
			kernel[static_cast<std::size_t>(y + radius) * side + (x + radius)] = sum * taper;
			total += sum * taper;
		}
	for (double &k : kernel)
		k /= total;
	return kernel;
}

int sharpen_cache_tiles(int width, int threads)
{
	return 3 * ((width + kCacheTile - 1) / kCacheTile + 1) + 2 * threads;
}

std::uint64_t sharpen_cache_bytes(int width, int bands, int threads)
{
	return static_cast<std::uint64_t>(sharpen_cache_tiles(width, threads)) * kCacheTile * kCacheTile * bands * 4;
}

vips::VImage sharpen_values(const vips::VImage &image, int bands, const MergeBlur &blur, double noise, double signal,
	const SharpenOptions &o, int threads)
{
	if (!o.active() || bands <= 0)
		return image;
	// Every band goes through the cache, the counts too: a band read around it would compute the
	// reduction a second time. Persistent: the run writes the output in bands, each its own
	// evaluation, and libvips empties a cache when an evaluation ends; every band would then compute
	// again the rows its apron shares with the next (3.85x the reduction's pixels with 64-row bands).
	const vips::VImage cached = o.amount > 0 || o.unsharp != 0
		? image.tilecache(vips::VImage::option()
				  ->set("tile_width", kCacheTile)
				  ->set("tile_height", kCacheTile)
				  ->set("max_tiles", sharpen_cache_tiles(image.width(), threads))
				  ->set("threaded", true)
				  ->set("persistent", true))
		: image;
	vips::VImage values = cached.extract_band(0, vips::VImage::option()->set("n", bands));
	if (o.amount > 0) {
		const std::vector<double> k = deconvolution_kernel(blur, noise, signal, o.amount);
		const int side = 2 * kDeconvolutionRadius + 1;
		const vips::VImage mask = vips::VImage::new_matrix(side, side, const_cast<double *>(k.data()), static_cast<int>(k.size()));
		const vips::VImage sharp = values.conv(mask, vips::VImage::option()->set("precision", VIPS_PRECISION_FLOAT));
		const double threshold = kExtremumNoise * blur.noise * noise;
		const Neighbourhood n = neighbourhood(values);
		const vips::VImage lo = n.lo - kExtremumGain * positive(n.trough - threshold);
		const vips::VImage hi = n.hi + kExtremumGain * positive(n.peak - threshold);
		values = (sharp < lo).ifthenelse(lo, (sharp > hi).ifthenelse(hi, sharp));
	}
	if (o.unsharp != 0) {
		const vips::VImage blurred = values.gaussblur(o.unsharp_sigma, vips::VImage::option()->set("precision", VIPS_PRECISION_FLOAT));
		values = values + (values - blurred) * o.unsharp;
	}
	if (o.brightness != 1.0)
		values = values * o.brightness;
	values = values.cast(VIPS_FORMAT_FLOAT);
	return bands == image.bands() ? values
				      : values.bandjoin(cached.extract_band(bands, vips::VImage::option()->set("n", image.bands() - bands)));
}

} // namespace superstack
