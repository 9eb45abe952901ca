// sharpen -- undoing part of the blur a stack is known to have, and the simple finishing controls.
//
// A stacked image is the scene blurred by the frames' pixel integration (a box of one input pixel,
// S output pixels at scale S) and by the merge (drizzle: the drop, pixfrac x S output pixels; kernel:
// a Gaussian of kKernelBlur x `detail` input pixels; interpolate: none beyond the box, lanczos3 is
// flat in the band). The truth is the scene integrated over one output pixel, so the blur to undo is
// H = box(S) x merge / box(1). --sharpen applies the Wiener filter of H with a smoothness prior
// (|H|^2 + lambda |Laplacian|^2 in the denominator): lambda is the stack's noise power over the
// signal's Laplacian power (both measured from the frames, noise.hpp), so a noisy stack, or a scene
// with little fine detail, is sharpened less (the noise-aware stop), and `amount` divides it. The filter is a small
// convolution kernel (libvips conv, streaming with an apron of its radius); the result is then held
// within each pixel's 3x3 neighbourhood's range in the unsharpened image, widened only at a
// two-sided extremum: a pixel above (below) both its neighbours along one of the four directions
// may go beyond that range by twice its depth there (the least of the two steps, less 6x the
// merged image's noise). Fine detail (a grating, the spokes of a star chart, a star's peak) so
// regains its contrast, while beside an edge or a star, flat on one side, nothing overshoots: no
// ringing, no halos. Then the seed workflow's unsharp mask and brightness, for those who want them.
#pragma once

#include "superstack/reduce.hpp"

#include <vips/vips8>

#include <cstdint>
#include <string_view>
#include <vector>

namespace superstack {

struct SharpenOptions {
	double amount = 0;          // 0: no deconvolution; 1: auto; other: lambda divided by it
	double unsharp = 0;         // unsharp mask: out = in + unsharp x (in - gauss(in, unsharp_sigma))
	double unsharp_sigma = 1.0; // output pixels
	double brightness = 1.0;    // then every value times this
	bool active() const { return amount > 0 || unsharp != 0 || brightness != 1.0; }
};

// "auto" -> 1, "none" -> 0, a number > 0 -> itself. Throws Error(usage).
double parse_sharpen(std::string_view text);

// The blur a merge leaves, in output pixels, for a burst at scale `scale`, and its noise.
struct MergeBlur {
	double box = 2;      // the frames' pixel, S output px
	double drop = 0;     // drizzle's drop side, output px (0: none)
	double gaussian = 0; // sd of the kernel merge's effective blur, output px
	double noise = 1;    // the merge's noise gain: its output's noise over one frame's / sqrt(frames)
};
// Measured on a flat grey burst (16 frames of 320x240, scale 2, noise 2%; defaults): interpolate +
// median 1.07, drizzle 1.31 (pixfrac 0.5: the expected 4/3 of an area-weighted mean of about 4 drops
// per pixel), kernel 0.64 (its widened kernel where flat).
inline constexpr double kInterpolateNoise = 1.07;
inline constexpr double kDrizzleNoise = 1.31;
inline constexpr double kKernelNoise = 0.64;
// The kernel merge blurs more than its steering kernel's sd across an edge (`detail`) alone: its
// samples lie at scattered offsets (the nearest is often farther than that sd), the kernel is
// stretched along coherent structure and widened where the detail is lost in the noise. Its
// effective blur, from its unsharpened result against the truth (the cross spectrum over the
// truth's power, as a Gaussian beyond the frames' box; 16 frames at scale 2, true transforms), is
// 0.30 output px on the chart, about 0.35 on a star field, 0.37 on a smooth scene and 0.45 on the
// photograph, against the 0.30 (0.15 x 2) of `detail` alone. The model's sd is `detail` times this
// factor. Swept 1 to 1.5 with --sharpen auto: at 1.3 every scene gains (chart 25.57 -> 25.64 dB,
// smooth scene 43.05 -> 43.08, stars 59.80 -> 60.13, photograph 37.75 -> 37.95, its 1000x750 crop;
// 8 frames: chart +0.10, photograph +0.13); beyond 1.35 the smooth scene loses.
inline constexpr double kKernelBlur = 1.3;
MergeBlur merge_blur(Merge merge, double scale, double pixfrac, const RegressionOptions &regression);

// The deconvolution kernel (2 radius + 1 square, sums to 1) for that blur, with regularisation
//   lambda = kRegularisation x (blur.noise x noise)^2 x S^4 / signal / amount,
// the Wiener filter's noise-to-signal ratio for a signal whose spectrum falls as the Laplacian's
// inverse square: `noise` is the stack's noise sigma (one frame's over sqrt(frames)), blur.noise
// the merge's gain on it, `signal` the power of one frame's signal Laplacian (noise.hpp; at the
// frames' pixel scale, so S^4 brings it to the output's). Measured (16 frames, scale 2, true
// transforms; each merge's unsharpened result sharpened with lambda times 1/4 to 333): the best
// lambda per scene spans 130x (the chart the least, then the photograph, a smooth scene, and a star
// field, where sharpening mostly smooths the sky's noise); the signal power spans 670x the same way.
// With this constant the kernel and drizzle merges lose at most 0.52 dB against each scene's best
// lambda, interpolate 0.06 dB. With the noise alone (a constant signal), the least worst loss was 1.45 dB.
inline constexpr double kRegularisation = 0.32;
// The range limit's widening at a two-sided extremum: kExtremumGain x (depth - kExtremumNoise x
// the merged image's noise, blur.noise x noise). Measured with the previous lambda (the noise alone,
// from one frame) on the kernel merge (16 frames, scale 2, its unsharpened result sharpened each
// way), PSNR held within the 3x3 range / with no limit (halos along edges) / widened: the chart
// 22.64 / 25.20 / 24.98 dB; at 0.56x that lambda the chart 22.78 / 25.55 / 25.45, a smooth scene
// 40.81 / 42.17 / 42.14, a photograph 37.17 / 37.20 / 37.21. Gains 1 and 4 and thresholds 0 to 16
// did no better.
inline constexpr double kExtremumGain = 2.0;
inline constexpr double kExtremumNoise = 6.0;
inline constexpr int kDeconvolutionRadius = 6;
std::vector<double> deconvolution_kernel(const MergeBlur &blur, double noise, double signal, double amount,
	int radius = kDeconvolutionRadius);

// The first `bands` bands of `image` (float, working units) finished as `options` says; the others
// (counts) pass through. Lazy. The deconvolution and the range limit both read a neighbourhood, so
// the whole image passes through a persistent tile cache of three rows of kCacheTile tiles across
// it (the rows a strip of output and its aprons touch): the reduction is computed once, never per
// consumer, per apron or per output band. Its size, for the memory plan: sharpen_cache_bytes(),
// with every band of the image.
inline constexpr int kCacheTile = 128;
int sharpen_cache_tiles(int width, int threads);
std::uint64_t sharpen_cache_bytes(int width, int bands, int threads);
vips::VImage sharpen_values(const vips::VImage &image, int bands, const MergeBlur &blur, double noise, double signal,
	const SharpenOptions &options, int threads);

} // namespace superstack
