// score -- PSNR and SSIM in one streaming pass.
//
// Squared differences and the SSIM map of every compared channel are band-joined into one image
// and reduced once by vips stats, so a sequentially opened file is decoded exactly once. The SSIM
// map is zeroed outside the window-valid area (vips conv extends edges; those positions are not
// part of Wang's definition) and its sum divided by the valid count. All arithmetic is in double.
// Memory: a few tile rows per thread for the 11-tap separable blurs; nothing scales with image size.
#include "superstack/score.hpp"

#include "superstack/error.hpp"
#include "superstack/frame.hpp"

#include <fmt/core.h>

#include <cmath>
#include <exception>
#include <limits>
#include <string>

namespace superstack {

namespace {

using vips::VImage;

constexpr int window = 11;
constexpr double window_sigma = 1.5;
constexpr double c1 = 0.01 * 0.01, c2 = 0.03 * 0.03; // (K1 L)^2, (K2 L)^2 with L = 1


// Double in [0, 1] by the format's maximum, alpha (band 2 of 2, band 4 of 4) dropped.
VImage normalise(const VImage &image, const std::string &name)
{
	if (image.format() == VIPS_FORMAT_COMPLEX || image.format() == VIPS_FORMAT_DPCOMPLEX)
		throw_error(ExitCode::bad_input, "{}: complex images cannot be scored", name);
	int bands = image.bands();
	if (bands == 2 || bands == 4)
		bands--;
	if (bands != 1 && bands != 3)
		throw_error(ExitCode::bad_input, "{}: needs 1 or 3 bands (plus alpha), has {}", name, image.bands());
	return image.extract_band(0, VImage::option()->set("n", bands)).cast(VIPS_FORMAT_DOUBLE) *
	       (1.0 / format_full_scale(image.format()));
}

VImage luminance(const VImage &v)
{
	return v.bands() == 1 ? v : v[0] * 0.2126 + v[1] * 0.7152 + v[2] * 0.0722;
}

// The normalised 11-tap Gaussian, as a 1-D mask for vips convsep (scale 1, offset 0).
VImage gaussian_mask()
{
	double taps[window];
	double sum = 0;
	for (int i = 0; i < window; i++)
		sum += taps[i] = std::exp(-(i - window / 2) * (i - window / 2) / (2 * window_sigma * window_sigma));
	for (double &t : taps)
		t /= sum;
	return VImage::new_matrix(window, 1, taps, window);
}

double psnr(double mse)
{
	return mse > 0 ? 10 * std::log10(1 / mse) : std::numeric_limits<double>::infinity();
}

Score score(const VImage &image_in, const VImage &truth_in, int crop, const std::string &image_name,
	const std::string &truth_name)
{
	if (image_in.width() != truth_in.width() || image_in.height() != truth_in.height())
		throw_error(ExitCode::bad_input, "{} is {}x{} but {} is {}x{}: sizes must match", image_name,
			image_in.width(), image_in.height(), truth_name, truth_in.width(), truth_in.height());
	if (crop < 0)
		throw_error(ExitCode::usage, "crop must be >= 0 (got {})", crop);
	const int w = image_in.width() - 2 * crop, h = image_in.height() - 2 * crop;
	if (w < window || h < window)
		throw_error(ExitCode::usage, "cropping {} px from {}x{} leaves less than {}x{}", crop, image_in.width(),
			image_in.height(), window, window);

	VImage x = normalise(image_in, image_name), y = normalise(truth_in, truth_name);
	const bool rgb = x.bands() == 3 && y.bands() == 3;
	if (rgb) {
		x = x.bandjoin(luminance(x));
		y = y.bandjoin(luminance(y));
	} else {
		x = luminance(x);
		y = luminance(y);
	}
	if (crop > 0) {
		x = x.extract_area(crop, crop, w, h);
		y = y.extract_area(crop, crop, w, h);
	}

	const VImage mask = gaussian_mask();
	const auto blur = [&](const VImage &v) {
		return v.convsep(mask, VImage::option()->set("precision", VIPS_PRECISION_FLOAT));
	};
	const VImage mx = blur(x), my = blur(y);
	const VImage sxx = blur(x * x) - mx * mx, syy = blur(y * y) - my * my, sxy = blur(x * y) - mx * my;
	const VImage map = ((mx * my * 2 + c1) * (sxy * 2 + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2));
	const int r = window / 2;
	const VImage valid = map.extract_area(r, r, w - 2 * r, h - 2 * r).embed(r, r, w, h);
	const VImage diff = x - y;

	const int nb = x.bands();
	const VImage stats = (diff * diff).bandjoin(valid).stats();
	const double n_all = static_cast<double>(w) * h, n_valid = static_cast<double>(w - 2 * r) * (h - 2 * r);
	const auto sum = [&](int band) { return stats.getpoint(2, 1 + band)[0]; }; // column 2: sum
	std::vector<ChannelScore> channels;
	for (int b = 0; b < nb; b++)
		channels.push_back({psnr(sum(b) / n_all), sum(nb + b) / n_valid});

	Score s{channels.back().psnr, channels.back().ssim, {}};
	if (rgb)
		s.channels.assign(channels.begin(), channels.begin() + 3);
	return s;
}

VImage open(const std::filesystem::path &path)
{
	try {
		return VImage::new_from_file(path.c_str(), VImage::option()->set("access", VIPS_ACCESS_SEQUENTIAL));
	} catch (const vips::VError &) {
		throw_error(ExitCode::bad_input, "{}: cannot read image ({})", path.string(), vips_error_line());
	}
}

} // namespace

Score score_images(const std::filesystem::path &image, const std::filesystem::path &truth, int crop)
{
	const VImage a = open(image), b = open(truth);
	try {
		return score(a, b, crop, image.string(), truth.string());
	} catch (const vips::VError &) {
		// A file that opened but failed while decoding (truncated, corrupt).
		std::throw_with_nested(Error(ExitCode::bad_input,
			fmt::format("scoring {} against {}", image.string(), truth.string())));
	}
}

Score score_images(const vips::VImage &image, const vips::VImage &truth, int crop)
{
	return score(image, truth, crop, "image", "truth");
}

} // namespace superstack
