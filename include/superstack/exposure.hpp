// exposure -- how much brighter or darker each frame is than the reference, and its lazy correction.
//
// Model: frame = gain x reference + offset (the same for every colour band), in working units (linear
// light when --linear is on), over the part of the scene both frames see. Estimated on proxies (each
// image box-shrunk by libvips to at most kExposureProxySide px, then lightly blurred so that resampling
// the frame's proxy onto the reference's is nearly exact): one pair of values per reference proxy
// pixel that the frame covers, leaving out any proxy pixel with a clipped (near 0 or 1), masked or
// transparent pixel behind it. The fit is robust (fit_exposure). The correction, (frame - offset) /
// gain, is one libvips `linear` on the frame before warping: lazy, per pixel, so streaming and
// bit-identical results across threads and tilings hold.
// Memory: two proxies of at most kExposureProxySide^2 floats (and their flags) at a time.
#pragma once

#include "superstack/frame_map.hpp"
#include "superstack/transform.hpp"

#include <vips/vips8>

#include <optional>
#include <string_view>
#include <vector>

namespace superstack {

enum class Normalize { none, gain, gain_offset };
Normalize parse_normalize(std::string_view text); // throws Error(usage)
std::string_view normalize_name(Normalize normalize);

inline constexpr int kExposureProxySide = 512;
inline constexpr int kMinExposurePairs = 64; // fewer usable proxy pixels: no estimate (gain 1)

struct ExposureFit {
	double gain = 1, offset = 0; // frame = gain x reference + offset
	int pairs = 0;               // proxy pixel pairs measured
	int inliers = 0;             // pairs that carry weight in the final fit
};

// The robust fit of frame ~ gain x reference (+ offset) over pairs (reference[i], frame[i]): a
// resistant start (the median of ratios; with an offset, Tukey's resistant line through the medians
// of the lower and upper thirds), then iteratively reweighted least squares with Tukey's biweight
// (c = 4.685 robust sigmas, the sigma from the MAD of the residuals) until the fit settles. Pairs
// far from the line (a moving subject, a changed highlight) get weight 0. Nothing when fewer than
// kMinExposurePairs pairs, or when no pair has a reference value above 0.01 (no scale to fit).
std::optional<ExposureFit> fit_exposure(const std::vector<float> &reference, const std::vector<float> &frame, bool with_offset);

// A frame as the estimate sees it: working pixels (premultiplied alpha as the last band when `alpha`).
struct ExposureImage {
	vips::VImage working;
	bool alpha = false;
};

// The proxy of the reference: its luminance and where it cannot be used (clipped, transparent, or
// under `mask`, 1 band uchar non-zero = masked, the reference's size). Made once, in memory.
struct ExposureProxy {
	int shrink = 1;            // proxy pixel p covers image pixels [shrink p, shrink p + shrink)
	int width = 0, height = 0;
	std::vector<float> value;  // luminance, blurred
	std::vector<float> bad;    // > 0: not usable
};
ExposureProxy exposure_proxy(const ExposureImage &image, const std::optional<vips::VImage> &mask);

// Estimates the frame's exposure relative to the reference whose proxy is `reference`, through the
// frame's transform (reference input pixels -> frame input pixels: its map onto the reference's own
// grid, with its displacement field if it has one). Nothing when they share too little usable area.
std::optional<ExposureFit> estimate_exposure(const ExposureProxy &reference, const ExposureImage &frame,
	const FrameMap &reference_to_frame, bool with_offset);

// (frame - offset) / gain on the colour bands (premultiplied: colour / gain - alpha x offset / gain),
// alpha kept. Lazy; float, MULTIBAND like the working layout.
vips::VImage normalize_exposure(const vips::VImage &working, bool alpha, const ExposureFit &fit);

} // namespace superstack
