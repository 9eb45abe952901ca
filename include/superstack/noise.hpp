// noise -- the frames' noise sigma and their signal's detail, measured from the frames against each
// other.
//
// One frame cannot tell fine texture from noise: the single-frame estimate (sharpness.hpp, the
// median absolute Laplacian) reads a photograph's texture at its pixel scale as noise, 4.7x the
// true sigma on the 6 MP bench photograph, 1.8x on the chart, 1.4x on a smooth scene. Two aligned
// frames of a static scene differ by their noise, by their misalignment, and by their different
// sampling of detail finer than a pixel (aliasing). Low-passed well below their Nyquist frequency
// (a Gaussian of sd kNoiseLowPass frame pixels), the last two almost vanish while the noise passes
// with a known gain (the kernel's sum of squares; the warp's lanczos3 is transparent that low). So
//   sigma = clipped_sigma(LP(reference - warped frame)) / sqrt(2 gain),
// pooled over up to kNoisePairs frames paired with the reference; the same of the chroma channels
// (regression.hpp), their differences pooled, for the robustness's colour test. Against the truth (the same
// statistic of the reference less the truth on its pixels; 16-frame bursts at scale 2): 1.21x on
// the photograph, 1.17x on the chart (640x480, noise 1%), 0.99x on a smooth scene (2%), 1.01x on a
// star field; tested on the chart and on a flat scene half clipped to white.
//
// The noise at the pixel scale, for the sharpening (sharpen.hpp), which acts at the finest
// frequencies: the low-passed sigma above is the noise there only when it is white. A camera's noise
// is not: demosaicing, denoising and JPEG leave blotches of a few pixels and take out most of the
// finest noise (the handheld still life in ../shared, 1.jpg-4.jpg: sigma 0.032 low-passed, 0.003 at the pixel
// scale). The reference's own finest Laplacian bounds the noise there from above (its median
// absolute value over the samples, read as white noise: texture only adds to it), as the low-passed
// pairs bound it where noise is white (misalignment and aliasing only add to them): `fine` is the
// smaller of the two. On white noise it is `sigma` wherever the scene has texture.
//
// The signal's detail, for the sharpening's regularisation (sharpen.hpp): the power of the
// reference luminance's 4-neighbour Laplacian over the same samples, less what the noise at the pixel
// scale gives it (kLaplacianNoiseGain fine^2), at least kMinSignal of that.
//
// Samples: blocks of kNoiseBlock^2 reference pixels on an even grid of at most kNoiseGrid^2, each
// wholly inside both frames with the low-pass's reach; a pixel is left out when a clipped (a colour
// band within 1/512 of black or of the frame's white), transparent or masked pixel lies within the
// low-pass's reach in either frame. Cost: the reference and up to kNoisePairs frames read at those
// blocks only (at most a quarter of a megapixel each, whatever the frame size). Memory: one pair's
// samples at a time (2 floats each) and the pooled differences (1 float each): 6 MB at most.
#pragma once

#include "superstack/sharpness.hpp"
#include "superstack/frame_map.hpp"
#include "superstack/transform.hpp"

#include <vips/vips8>

#include <cstddef>
#include <optional>
#include <vector>

namespace superstack {

inline constexpr double kNoiseLowPass = 3.0;       // sd, frame pixels
inline constexpr int kNoisePairs = 4;              // frames paired with the reference, spread over the stack
inline constexpr int kNoiseBlock = 64;             // sample block side, reference pixels
inline constexpr int kNoiseGrid = 8;               // at most kNoiseGrid x kNoiseGrid blocks per pair
inline constexpr std::size_t kMinNoiseSamples = 1024; // fewer usable samples: no estimate

// A frame as the estimate sees it: working pixels (premultiplied alpha as the last band when
// `alpha`), its transform (reference input pixels -> its input pixels: the map onto the reference's
// own grid, scale 1, with its displacement field if it has one), and the working value its sensor's
// white became (1, or (1 - offset) / gain after exposure normalisation).
struct NoiseFrame {
	vips::VImage working;
	bool alpha = false;
	FrameMap reference_to_frame;
	double white = 1;
};

struct NoiseEstimate {
	double sigma = 0;        // of one frame's luminance (the mean of its colour bands), working units
	double chroma = 0;       // the same of each of its chroma channels (regression.hpp; sigma for one band)
	double fine = 0;         // the same at the pixel scale (above): min(sigma, the reference's Laplacian's)
	double signal = 0;       // the power of its signal's Laplacian (signal_power with `fine`), working units squared
	int pairs = 0;           // frames paired with the reference that gave samples
	std::size_t samples = 0; // reference pixels measured, over all pairs
};

// The noise sigma of the frames' luminance, from `reference` against up to kNoisePairs of `others`
// (evenly spaced through the list). `mask` (1 band uchar, non-zero = masked, the reference's size)
// leaves pixels out. Nothing when fewer than kMinNoiseSamples samples are usable (no other frame,
// too little overlap). Deterministic: the same value whatever the thread count.
std::optional<NoiseEstimate> estimate_noise(const NoiseFrame &reference, const std::vector<NoiseFrame> &others,
	const std::optional<vips::VImage> &mask);

// The sd of zero-mean normal samples from their magnitudes, robust to a large share of gross
// outliers (a moving object fills its own place in one frame and another in the other): from the
// median (1.4826 x), then kNoiseClipIterations times the root mean square of the magnitudes below
// kNoiseClip x the last sd, corrected for that truncation.
inline constexpr double kNoiseClip = 3.0;
inline constexpr int kNoiseClipIterations = 10;
double clipped_sigma(std::vector<float> magnitudes);

// The power of the signal's 4-neighbour Laplacian from the image's (`laplacian_variance`) and its
// noise sigma: less the noise's share, kLaplacianNoiseGain sigma^2 (sharpness.hpp), and at least
// kMinSignal of that share (a featureless scene: no detail to find).
inline constexpr double kMinSignal = 1.0 / 16;
double signal_power(double laplacian_variance, double sigma);

// The noise gain of libvips' gaussblur at this sd (precision float, min_ampl kNoiseMinAmplitude):
// the sum of its 2-D kernel's squared weights, the weights summing to 1.
inline constexpr double kNoiseMinAmplitude = 0.001;
double gaussian_noise_gain(double sigma);

} // namespace superstack
