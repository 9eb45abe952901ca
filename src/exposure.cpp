// exposure -- proxies of the reference and each frame, paired through the frame's transform, and a
// robust line through the pairs.
#include "superstack/exposure.hpp"

#include "superstack/error.hpp"
#include "superstack/frame.hpp"
#include "superstack/geometry.hpp"
#include "superstack/spool.hpp"
#include "superstack/warp.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace superstack {

namespace {

constexpr double kClipHigh = 0.995; // a colour value at or above it is clipped (and at or below 0)
constexpr double kProxyBlur = 1.0;  // sigma of the proxies' blur, proxy pixels
constexpr int kBadReach = 3;        // the blur's reach: a bad proxy pixel spoils its neighbours this far
constexpr int kEdgeMargin = 3;      // proxy pixels the frame's sample point keeps from its proxy's edge (lanczos3)
constexpr double kTukey = 4.685;    // biweight constant, in robust sigmas (95% efficiency for normal noise)
constexpr int kMaxIterations = 50;

double median_of(std::vector<double> v)
{
	const auto mid = v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2);
	std::nth_element(v.begin(), mid, v.end());
	if (v.size() % 2)
		return *mid;
	return 0.5 * (*mid + *std::max_element(v.begin(), mid));
}

std::vector<float> floats_of(const vips::VImage &image)
{
	const vips::VImage memory = image.cast(VIPS_FORMAT_FLOAT).copy_memory();
	const auto *p = static_cast<const float *>(memory.data());
	return std::vector<float>(p, p + static_cast<std::size_t>(memory.width()) * memory.height() * memory.bands());
}

int shrink_for(int width, int height)
{
	return std::max(1, (std::max(width, height) + kExposureProxySide - 1) / kExposureProxySide);
}

// Luminance and "bad" proxies (in memory), the bad flag spread by the blur's reach.
std::pair<vips::VImage, vips::VImage> proxies(const ExposureImage &image, const std::optional<vips::VImage> &mask, int k)
{
	const vips::VImage &w = image.working;
	const int colour = w.bands() - (image.alpha ? 1 : 0);
	const vips::VImage c = w.extract_band(0, vips::VImage::option()->set("n", colour));
	vips::VImage bad = (c >= kClipHigh) | (c <= 0.0);
	if (colour > 1)
		bad = bad.bandbool(VIPS_OPERATION_BOOLEAN_OR);
	if (image.alpha)
		bad = bad | (w.extract_band(colour) < 0.999);
	if (mask)
		bad = bad | (*mask != 0.0);
	const int pw = std::max(1, w.width() / k), ph = std::max(1, w.height() / k);
	vips::VImage both = vips::VImage::bandjoin({working_luminance(w, image.alpha), bad.cast(VIPS_FORMAT_FLOAT)})
				    .extract_area(0, 0, std::min(w.width(), pw * k), std::min(w.height(), ph * k));
	both = shrink_spooled(both, k).copy_memory();
	const vips::VImage value =
		both.extract_band(0).gaussblur(kProxyBlur, vips::VImage::option()->set("precision", VIPS_PRECISION_FLOAT)).copy_memory();
	const int side = 2 * kBadReach + 1;
	if (value.width() < side || value.height() < side) // too small to measure: every pixel unusable
		return {value, (value * 0.0 + 1.0).cast(VIPS_FORMAT_FLOAT).copy_memory()};
	const vips::VImage spread = (both.extract_band(1) > 0.0).rank(side, side, side * side - 1).cast(VIPS_FORMAT_FLOAT).copy_memory();
	return {value, spread};
}

// The frame's pixels the estimate reads: all of it, or, when the reference's footprint in it (with a
// margin for the blur and the resampling kernel) is under a quarter of it, that footprint alone (a
// frame far larger than the reference: its proxy is then made at the footprint's scale, keeping the
// reference's detail, in a time that does not grow with the rest of the frame).
Rect part_under_reference(const ExposureProxy &reference, const ExposureImage &frame, const Matrix3 &reference_to_frame,
	double field_reach)
{
	const Rect whole{0, 0, frame.working.width(), frame.working.height()};
	const double rw = static_cast<double>(reference.width) * reference.shrink;
	const double rh = static_cast<double>(reference.height) * reference.shrink;
	double x0 = 1e300, y0 = 1e300, x1 = -1e300, y1 = -1e300;
	for (const Point c : {Point{0, 0}, Point{rw, 0}, Point{0, rh}, Point{rw, rh}, Point{rw / 2, rh / 2}}) {
		const Point q = reference_to_frame.apply(c);
		x0 = std::min(x0, q.x), x1 = std::max(x1, q.x), y0 = std::min(y0, q.y), y1 = std::max(y1, q.y);
	}
	if (!(x0 > -1e9 && x1 < 1e9 && y0 > -1e9 && y1 < 1e9))
		return whole;
	const double margin = 0.05 * std::max(x1 - x0, y1 - y0) + 16 + field_reach;
	const Rect footprint = Rect{static_cast<int>(std::floor(x0 - margin)), static_cast<int>(std::floor(y0 - margin)),
		static_cast<int>(std::ceil(x1 - x0 + 2 * margin)), static_cast<int>(std::ceil(y1 - y0 + 2 * margin))}
				       .intersect(whole);
	if (footprint.empty() || 4.0 * footprint.width * footprint.height >= static_cast<double>(whole.width) * whole.height)
		return whole;
	return footprint;
}

} // namespace

Normalize parse_normalize(std::string_view text)
{
	if (text == "none") return Normalize::none;
	if (text == "gain") return Normalize::gain;
	if (text == "gain-offset") return Normalize::gain_offset;
	throw_error(ExitCode::usage, "--normalize must be none, gain or gain-offset (got '{}')", text);
}

std::string_view normalize_name(Normalize normalize)
{
	switch (normalize) {
	case Normalize::none: return "none";
	case Normalize::gain: return "gain";
	case Normalize::gain_offset: return "gain-offset";
	}
	return "?";
}

std::optional<ExposureFit> fit_exposure(const std::vector<float> &reference, const std::vector<float> &frame, bool with_offset)
{
	const std::size_t n = std::min(reference.size(), frame.size());
	if (n < static_cast<std::size_t>(kMinExposurePairs))
		return std::nullopt;
	double gain = 1, offset = 0;
	if (!with_offset) {
		std::vector<double> ratios;
		for (std::size_t i = 0; i < n; i++)
			if (reference[i] > 0.01)
				ratios.push_back(static_cast<double>(frame[i]) / reference[i]);
		if (ratios.size() < static_cast<std::size_t>(kMinExposurePairs))
			return std::nullopt;
		gain = median_of(std::move(ratios));
	} else {
		// Tukey's resistant line: the slope through the (median r, median f) of the lower and upper
		// thirds by r, the offset the median residual.
		std::vector<std::size_t> order(n);
		for (std::size_t i = 0; i < n; i++)
			order[i] = i;
		std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return reference[a] < reference[b]; });
		auto third = [&](std::size_t from, std::size_t to) {
			std::vector<double> r, f;
			for (std::size_t i = from; i < to; i++)
				r.push_back(reference[order[i]]), f.push_back(frame[order[i]]);
			return std::pair{median_of(std::move(r)), median_of(std::move(f))};
		};
		const auto [r1, f1] = third(0, n / 3);
		const auto [r3, f3] = third(n - n / 3, n);
		if (!(r3 - r1 > 0.01))
			return std::nullopt;
		gain = (f3 - f1) / (r3 - r1);
		std::vector<double> residuals(n);
		for (std::size_t i = 0; i < n; i++)
			residuals[i] = frame[i] - gain * reference[i];
		offset = median_of(std::move(residuals));
	}
	ExposureFit fit;
	fit.pairs = static_cast<int>(n);
	std::vector<double> residual(n), magnitude(n);
	for (int iteration = 0; iteration < kMaxIterations; iteration++) {
		for (std::size_t i = 0; i < n; i++) {
			residual[i] = frame[i] - (gain * reference[i] + offset);
			magnitude[i] = std::fabs(residual[i]);
		}
		const double c = kTukey * std::max(1.4826 * median_of(magnitude), 1e-7);
		double sw = 0, swr = 0, swf = 0, swrr = 0, swrf = 0;
		int inliers = 0;
		for (std::size_t i = 0; i < n; i++) {
			const double u = residual[i] / c;
			if (std::fabs(u) >= 1)
				continue;
			const double w = (1 - u * u) * (1 - u * u);
			const double r = reference[i], f = frame[i];
			sw += w, swr += w * r, swf += w * f, swrr += w * r * r, swrf += w * r * f;
			inliers++;
		}
		double next_gain = gain, next_offset = offset;
		if (!with_offset) {
			if (!(swrr > 0))
				break;
			next_gain = swrf / swrr;
		} else {
			const double det = sw * swrr - swr * swr;
			if (!(det > 1e-12 * sw * swrr))
				break;
			next_gain = (sw * swrf - swr * swf) / det;
			next_offset = (swf - next_gain * swr) / sw;
		}
		fit.inliers = inliers;
		const bool settled = std::fabs(next_gain - gain) < 1e-9 && std::fabs(next_offset - offset) < 1e-9;
		gain = next_gain, offset = next_offset;
		if (settled)
			break;
	}
	if (!(gain > 0) || !std::isfinite(gain) || !std::isfinite(offset))
		return std::nullopt;
	fit.gain = gain;
	fit.offset = offset;
	return fit;
}

ExposureProxy exposure_proxy(const ExposureImage &image, const std::optional<vips::VImage> &mask)
{
	ExposureProxy proxy;
	proxy.shrink = shrink_for(image.working.width(), image.working.height());
	const auto [value, bad] = proxies(image, mask, proxy.shrink);
	proxy.width = value.width();
	proxy.height = value.height();
	proxy.value = floats_of(value);
	proxy.bad = floats_of(bad);
	return proxy;
}

std::optional<ExposureFit> estimate_exposure(const ExposureProxy &reference, const ExposureImage &frame,
	const FrameMap &map, bool with_offset)
{
	const Matrix3 &reference_to_frame = map.matrix();
	// Reference proxy pixel p sits at reference pixel k_r p + (k_r - 1) / 2.
	const double kr = reference.shrink;
	const Matrix3 from_proxy({{{kr, 0, (kr - 1) / 2}, {0, kr, (kr - 1) / 2}, {0, 0, 1}}});
	const Rect area = part_under_reference(reference, frame, reference_to_frame, map.frame_reach());
	const ExposureImage part = area.width == frame.working.width() && area.height == frame.working.height()
		? frame
		: ExposureImage{frame.working.extract_area(area.left, area.top, area.width, area.height), frame.alpha};
	const int k = shrink_for(area.width, area.height);
	const auto [value, bad] = proxies(part, std::nullopt, k);
	// Frame pixel x sits at proxy pixel (x - left - (k - 1) / 2) / k.
	const Matrix3 to_proxy({{{1.0 / k, 0, -(k - 1) / (2.0 * k) - area.left / static_cast<double>(k)},
		{0, 1.0 / k, -(k - 1) / (2.0 * k) - area.top / static_cast<double>(k)}, {0, 0, 1}}});
	const Matrix3 m = (to_proxy * reference_to_frame * from_proxy).normalised();
	// Reference proxy pixel -> frame proxy pixel, through the field when there is one.
	const DisplacementField *field = map.field();
	const Matrix3 after = (to_proxy * reference_to_frame).normalised();
	auto warp = [&](const vips::VImage &image, Kernel kernel) {
		return floats_of(field ? warp_displaced(image, from_proxy, *field, after, reference.width, reference.height, kernel)
				       : warp_to_grid(image, m, reference.width, reference.height, kernel));
	};
	const std::vector<float> warped = warp(value, Kernel::lanczos3);
	const std::vector<float> warped_bad = warp(bad, Kernel::linear);
	std::vector<float> r, f;
	for (int y = 0; y < reference.height; y++)
		for (int x = 0; x < reference.width; x++) {
			const std::size_t i = static_cast<std::size_t>(y) * reference.width + x;
			Point q = m.apply({static_cast<double>(x), static_cast<double>(y)});
			if (field) {
				const Point p = from_proxy.apply({static_cast<double>(x), static_cast<double>(y)}), d = field->at(p);
				q = after.apply({p.x + d.x, p.y + d.y});
			}
			if (!(q.x >= kEdgeMargin && q.x <= value.width() - 1 - kEdgeMargin && q.y >= kEdgeMargin &&
				    q.y <= value.height() - 1 - kEdgeMargin))
				continue;
			if (reference.bad[i] > 0 || warped_bad[i] > 1e-6f)
				continue;
			r.push_back(reference.value[i]);
			f.push_back(warped[i]);
		}
	return fit_exposure(r, f, with_offset);
}

vips::VImage normalize_exposure(const vips::VImage &working, bool alpha, const ExposureFit &fit)
{
	if (fit.gain == 1 && fit.offset == 0)
		return working;
	const double scale = 1 / fit.gain, shift = -fit.offset / fit.gain;
	const auto layout = vips::VImage::option()->set("interpretation", VIPS_INTERPRETATION_MULTIBAND);
	if (!alpha)
		return working.linear(scale, shift).cast(VIPS_FORMAT_FLOAT).copy(layout);
	const int colour = working.bands() - 1;
	const vips::VImage a = working.extract_band(colour);
	const vips::VImage c = working.extract_band(0, vips::VImage::option()->set("n", colour)).linear(scale, 0.0) + a.linear(shift, 0.0);
	return vips::VImage::bandjoin({c, a}).cast(VIPS_FORMAT_FLOAT).copy(layout);
}

} // namespace superstack
