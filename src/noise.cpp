// noise -- pairs of frames, low-passed differences on a grid of blocks, one pooled robust sd; the
// reference's Laplacian power on the same grid.
#include "superstack/noise.hpp"

#include "superstack/geometry.hpp"
#include "superstack/regression.hpp"
#include "superstack/warp.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>

namespace superstack {

namespace {

constexpr double kClipMargin = 1.0 / 512; // of white: a colour value this near black or white is clipped

vips::VImage colour_of(const NoiseFrame &f)
{
	return f.working.extract_band(0, vips::VImage::option()->set("n", f.working.bands() - (f.alpha ? 1 : 0)));
}

// 1 where the pixel cannot be measured (a clipped colour band, transparent, masked), else 0; float.
vips::VImage unusable(const NoiseFrame &f, const std::optional<vips::VImage> &mask)
{
	const vips::VImage c = colour_of(f);
	vips::VImage bad = (c >= f.white * (1 - kClipMargin)) | (c <= f.white * kClipMargin);
	if (c.bands() > 1)
		bad = bad.bandbool(VIPS_OPERATION_BOOLEAN_OR);
	if (f.alpha)
		bad = bad | (f.working.extract_band(f.working.bands() - 1) < 0.999);
	if (mask)
		bad = bad | (*mask != 0.0);
	return (bad > 0.0).ifthenelse(1.0, 0.0).cast(VIPS_FORMAT_FLOAT);
}

// The chroma channels of the colour bands (regression.hpp): C - 1 bands, none for one band.
std::optional<vips::VImage> chroma_of(const vips::VImage &colour)
{
	const int c = colour.bands();
	if (c < 2)
		return std::nullopt;
	std::vector<double> m;
	for (int k = 1; k < c; k++)
		for (int b = 0; b < c; b++)
			m.push_back(chroma_weight(k, b, c));
	return colour.recomb(vips::VImage::new_matrix(c, c - 1, m.data(), static_cast<int>(m.size())));
}

vips::VImage low_pass(const vips::VImage &image)
{
	return image.gaussblur(kNoiseLowPass,
		vips::VImage::option()->set("min_ampl", kNoiseMinAmplitude)->set("precision", VIPS_PRECISION_FLOAT));
}

// Evenly spaced starts of `count` blocks of `block` in [margin, length - margin).
std::vector<int> block_starts(int length, int margin, int block)
{
	const int room = length - 2 * margin;
	const int count = std::min(kNoiseGrid, room / block);
	std::vector<int> starts;
	for (int k = 0; k < count; k++)
		starts.push_back(margin + (count > 1 ? static_cast<int>(std::lround(static_cast<double>(k) * (room - block) / (count - 1))) : 0));
	return starts;
}

// True when the rectangle's corners (a projective map keeps the convex frame area) map inside the
// frame, by the field's reach when the map has a displacement field.
bool inside_frame(const FrameMap &m, const Rect &r, int width, int height)
{
	const double x0 = r.left - 0.5, y0 = r.top - 0.5, x1 = r.left + r.width - 0.5, y1 = r.top + r.height - 0.5;
	const double in = m.frame_reach();
	for (const Point p : {Point{x0, y0}, Point{x1, y0}, Point{x0, y1}, Point{x1, y1}}) {
		const Point q = m.matrix().apply(p);
		if (!(q.x >= in && q.x <= width - 1 - in && q.y >= in && q.y <= height - 1 - in))
			return false;
	}
	return true;
}

} // namespace

double clipped_sigma(std::vector<float> magnitudes)
{
	if (magnitudes.empty())
		return 0;
	const auto mid = magnitudes.begin() + static_cast<std::ptrdiff_t>(magnitudes.size() / 2);
	std::nth_element(magnitudes.begin(), mid, magnitudes.end());
	double sigma = 1.4826 * *mid;
	// The variance of a normal variable kept within +-k sd is (1 - 2 k phi(k) / (2 Phi(k) - 1)) sd^2.
	const double k = kNoiseClip, phi = std::exp(-0.5 * k * k) / std::sqrt(2 * std::numbers::pi);
	const double kept_variance = 1 - 2 * k * phi / std::erf(k / std::sqrt(2.0));
	for (int i = 0; i < kNoiseClipIterations && sigma > 0; i++) {
		double sum = 0;
		std::size_t n = 0;
		for (const float m : magnitudes)
			if (m < k * sigma)
				sum += static_cast<double>(m) * m, n++;
		sigma = std::sqrt(sum / static_cast<double>(n) / kept_variance);
	}
	return sigma;
}

double signal_power(double laplacian_variance, double sigma)
{
	const double noise_part = kLaplacianNoiseGain * sigma * sigma;
	return std::max(laplacian_variance - noise_part, kMinSignal * noise_part);
}

double gaussian_noise_gain(double sigma)
{
	const vips::VImage g = vips::VImage::gaussmat(sigma, kNoiseMinAmplitude,
		vips::VImage::option()->set("precision", VIPS_PRECISION_FLOAT)->set("separable", true))
				       .cast(VIPS_FORMAT_DOUBLE)
				       .copy_memory();
	const auto *k = static_cast<const double *>(g.data());
	const std::size_t n = static_cast<std::size_t>(g.width()) * g.height();
	double sum = 0, squares = 0;
	for (std::size_t i = 0; i < n; i++)
		sum += k[i], squares += k[i] * k[i];
	const double one_axis = squares / (sum * sum);
	return one_axis * one_axis;
}

std::optional<NoiseEstimate> estimate_noise(const NoiseFrame &reference, const std::vector<NoiseFrame> &others,
	const std::optional<vips::VImage> &mask)
{
	if (others.empty())
		return std::nullopt; // the reference alone cannot tell its noise from its texture
	const int width = reference.working.width(), height = reference.working.height();
	// The low-pass's reach (its kernel's half width) plus lanczos3's, kept clear of every edge.
	const int reach = static_cast<int>(std::ceil(std::sqrt(-2 * std::log(kNoiseMinAmplitude)) * kNoiseLowPass)) + 3;
	const std::vector<int> xs = block_starts(width, reach, kNoiseBlock), ys = block_starts(height, reach, kNoiseBlock);

	const vips::VImage ref_value = colour_of(reference).bandmean();
	const std::optional<vips::VImage> ref_chroma = chroma_of(colour_of(reference));
	const vips::VImage ref_bad = unusable(reference, mask);
	const vips::VImage ref_laplacian = laplacian(ref_value);
	// The signal: the reference's Laplacian at every block of the grid, clipped or not; beside it,
	// whether an unusable pixel lies within the Laplacian's reach.
	// Summed here in order, not by libvips' threads: the same value whatever the thread count.
	const vips::VImage near_bad = ref_bad.conv(vips::VImage::new_matrixv(3, 3, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0),
		vips::VImage::option()->set("precision", VIPS_PRECISION_FLOAT));
	const vips::VImage signal_bands = ref_laplacian.bandjoin(near_bad).cast(VIPS_FORMAT_FLOAT);
	std::vector<vips::VImage> signal_blocks;
	for (const int y : ys)
		for (const int x : xs)
			signal_blocks.push_back(signal_bands.crop(x, y, kNoiseBlock, kNoiseBlock));
	if (signal_blocks.empty())
		return std::nullopt;
	const vips::VImage grid =
		vips::VImage::arrayjoin(signal_blocks, vips::VImage::option()->set("across", static_cast<int>(signal_blocks.size()))).copy_memory();
	const auto *l = static_cast<const float *>(grid.data());
	const std::size_t count = static_cast<std::size_t>(grid.width()) * grid.height();
	double sum = 0, squares = 0;
	for (std::size_t i = 0; i < count; i++)
		sum += l[2 * i], squares += static_cast<double>(l[2 * i]) * l[2 * i];
	const double mean = sum / static_cast<double>(count), laplacian_variance = squares / static_cast<double>(count) - mean * mean;
	// The reference's own noise at the pixel scale, from the same Laplacian samples where nothing
	// clipped, transparent or masked is within reach, as sharpness.hpp reads it (laplacian_noise of
	// their median absolute deviation): an upper bound. None from too few samples.
	std::vector<float> usable;
	for (std::size_t i = 0; i < count; i++)
		if (l[2 * i + 1] == 0.0f)
			usable.push_back(l[2 * i]);
	double pixel_scale = std::numeric_limits<double>::infinity();
	if (usable.size() >= kMinNoiseSamples) {
		const auto middle = usable.begin() + static_cast<std::ptrdiff_t>(usable.size() / 2);
		std::nth_element(usable.begin(), middle, usable.end());
		const float median = *middle;
		for (float &v : usable)
			v = std::abs(v - median);
		std::nth_element(usable.begin(), middle, usable.end());
		pixel_scale = laplacian_noise(*middle);
	}

	std::vector<float> deviations, chroma_deviations;
	NoiseEstimate e;
	const std::size_t pairs = std::min<std::size_t>(kNoisePairs, others.size());
	for (std::size_t p = 0; p < pairs; p++) {
		const NoiseFrame &f = others[p * others.size() / pairs];
		const int fw = f.working.width(), fh = f.working.height();
		std::vector<vips::VImage> blocks;
		const OutputGeometry grid_of_reference = OutputGeometry::for_reference(width, height, 1);
		const vips::VImage warped = warp_to_output(colour_of(f).bandmean(), f.reference_to_frame, grid_of_reference, Kernel::lanczos3);
		const vips::VImage warped_bad = warp_to_output(unusable(f, std::nullopt), f.reference_to_frame, grid_of_reference, Kernel::linear);
		// Band 0 the luminance's difference, 1 whether anything unusable is near, then the chroma's.
		std::vector<vips::VImage> differences{low_pass(ref_value - warped), low_pass(ref_bad + warped_bad)};
		if (ref_chroma)
			differences.push_back(low_pass(*ref_chroma - warp_to_output(*chroma_of(colour_of(f)), f.reference_to_frame, grid_of_reference, Kernel::lanczos3)));
		const vips::VImage both = vips::VImage::bandjoin(differences);
		const int stride = both.bands();
		for (const int y : ys)
			for (const int x : xs)
				if (inside_frame(f.reference_to_frame, {x - reach, y - reach, kNoiseBlock + 2 * reach, kNoiseBlock + 2 * reach}, fw, fh))
					blocks.push_back(both.crop(x, y, kNoiseBlock, kNoiseBlock));
		if (blocks.empty())
			continue;
		const vips::VImage samples = vips::VImage::arrayjoin(blocks, vips::VImage::option()->set("across", static_cast<int>(blocks.size())))
						     .cast(VIPS_FORMAT_FLOAT)
						     .copy_memory();
		const auto *v = static_cast<const float *>(samples.data());
		const std::size_t n = static_cast<std::size_t>(samples.width()) * samples.height();
		const std::size_t before = deviations.size();
		for (std::size_t i = 0; i < n; i++) {
			const float *sample = &v[i * static_cast<std::size_t>(stride)];
			if (sample[1] != 0.0f)
				continue;
			deviations.push_back(std::abs(sample[0]));
			for (int b = 2; b < stride; b++)
				chroma_deviations.push_back(std::abs(sample[b]));
		}
		if (deviations.size() > before)
			e.pairs++;
	}
	e.samples = deviations.size();
	if (e.samples < kMinNoiseSamples)
		return std::nullopt;
	e.sigma = clipped_sigma(deviations) / std::sqrt(2 * gaussian_noise_gain(kNoiseLowPass));
	e.chroma = ref_chroma ? clipped_sigma(chroma_deviations) / std::sqrt(2 * gaussian_noise_gain(kNoiseLowPass)) : e.sigma;
	e.fine = std::min(e.sigma, pixel_scale);
	e.signal = signal_power(laplacian_variance, e.fine);
	return e;
}

} // namespace superstack
