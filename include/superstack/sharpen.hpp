// sharpen -- undoing part of the blur a stack is known to have, and the simple finishing controls.
//
// A stacked image is the scene blurred by the frames' pixel integration (a box of one input pixel,
// S output pixels at scale S) and by the merge (drizzle: the drop, pixfrac x S output pixels; kernel:
// a Gaussian of about 2 x `detail` input pixels, measured; interpolate: none beyond the box, lanczos3
// is flat in the band). The truth is the scene integrated over one output pixel, so the blur to undo is
// H = box(S) x merge / box(1). --sharpen applies the Wiener filter of H with a smoothness prior
// (|H|^2 + lambda |Laplacian|^2 in the denominator): lambda grows with the stack's noise, so a noisy
// stack is sharpened less (the noise-aware stop), and `amount` divides it. The filter is a small
// convolution kernel (libvips conv, streaming with an apron of its radius); the result is then held
// within each pixel's 3x3 neighbourhood's range in the unsharpened image, widened only at a
// two-sided extremum: a pixel above (below) both its neighbours along one of the four directions
// may go beyond that range by twice its depth there (the least of the two steps, less 6x the
// regularised noise). Fine detail (a grating, the spokes of a star chart, a star's peak) so
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

// The blur a merge leaves, in output pixels, for a burst at scale `scale`, and how strongly its
// noise is regularised.
struct MergeBlur {
	double box = 2;      // the frames' pixel, S output px
	double drop = 0;     // drizzle's drop side, output px (0: none)
	double gaussian = 0; // sd of the kernel merge's effective blur, output px
	double noise = 1;    // the merged image's noise over the stack's noise estimate
};
// Measured on the chart and a photograph (16 frames, scale 2, noise 1%, every setting swept, the
// one best on both kept): the kernel merge blurs like a Gaussian of twice its kernel's sd (each
// output pixel is a fit to the few samples nearest it, wherever they fall), and it averages more
// samples per output pixel than drizzle or interpolation, so its noise is lower. The noise estimate
// itself reads fine texture as noise (1.8x the true noise on the chart, 4.6x on the photograph),
// so every merge's factor is below 1.
inline constexpr double kKernelBlurOverDetail = 2.0;
inline constexpr double kKernelNoise = 0.25;
inline constexpr double kWarpNoise = 0.6; // interpolate and drizzle
MergeBlur merge_blur(Merge merge, double scale, double pixfrac, const RegressionOptions &regression);

// The deconvolution kernel (2 radius + 1 square, sums to 1) for that blur, with regularisation
// lambda = (blur.noise x noise / kSignalLaplacian)^2 / amount; `noise` is the stack's noise sigma
// (one frame's over sqrt(frames)).
inline constexpr double kSignalLaplacian = 0.09;
// The range limit's widening at a two-sided extremum: kExtremumGain x (depth - kExtremumNoise x
// the regularised noise). Measured (unsharpened merges sharpened each way): the chart's kernel
// 22.85 dB held within the 3x3 range, 24.38 with no limit (halos), 25.48 with this; the photograph's
// 37.78, 37.44, 37.78.
inline constexpr double kExtremumGain = 2.0;
inline constexpr double kExtremumNoise = 6.0;
inline constexpr int kDeconvolutionRadius = 6;
std::vector<double> deconvolution_kernel(const MergeBlur &blur, double noise, double amount, int radius = kDeconvolutionRadius);

// The first `bands` bands of `image` (float, working units) finished as `options` says; the others
// (counts) pass through. Lazy. The deconvolution and the range limit both read a neighbourhood, so
// the whole image passes through a persistent tile cache of three rows of kCacheTile tiles across
// it (the rows a strip of output and its aprons touch): the reduction is computed once, never per
// consumer, per apron or per output band. Its size, for the memory plan: sharpen_cache_bytes(),
// with every band of the image.
inline constexpr int kCacheTile = 128;
int sharpen_cache_tiles(int width, int threads);
std::uint64_t sharpen_cache_bytes(int width, int bands, int threads);
vips::VImage sharpen_values(const vips::VImage &image, int bands, const MergeBlur &blur, double noise, const SharpenOptions &options,
	int threads);

} // namespace superstack
