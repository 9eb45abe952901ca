// sharpness -- how sharp a frame is, corrected for its noise, from the frame itself.
//
// The variance of the 4-neighbour Laplacian grows with detail and with noise. At the frame's own
// pixels it is mostly noise, and what a camera's processing (JPEG, denoising) did to it: on a real
// handheld burst a frame smeared by 14 px of shake measured as sharp as the sharpest frame there. So
// it is measured over four octaves, the frame box-averaged over 1, 2, 4 and 8 px, where shake and defocus
// still show and noise fades (by 4x in variance per octave). The noise is estimated from the finest
// Laplacian by its median absolute deviation (robust: most of an image is smooth); white noise of
// sigma adds 20 sigma^2 / 4^k to octave k's variance. The sharpness is the mean over the octaves of
// each variance less that part, over the frame's mean luminance squared: relative to its brightness,
// so that a frame exposed darker (a phone's burst changes exposure) does not rank as blurrier, and
// `check`, which sees each frame alone, and `run` give one frame the same figure. No per-camera
// calibration. One streaming pass (libvips convsep for
// the boxes, conv for Laplacians with taps 2^k apart, one hist_find on the octaves' 16-bit quantised
// Laplacians as bands of one image); memory: libvips' tile buffers and a 65536-bin histogram per
// octave.
#pragma once

#include <vips/vips8>

namespace superstack {

// The 4-neighbour Laplacian (0 1 0, 1 -4 1, 0 1 0) of a 1-band image, float, lazy. White noise of
// sigma comes out of it with variance kLaplacianNoiseGain sigma^2 (16 + 4 x 1).
inline constexpr double kLaplacianNoiseGain = 20;
vips::VImage laplacian(const vips::VImage &image);

// The white noise sigma that a 4-neighbour Laplacian's median absolute deviation (from its median)
// says: 1.4826 x mad / sqrt(kLaplacianNoiseGain). Texture only adds to it: an upper bound.
double laplacian_noise(double laplacian_mad);

inline constexpr int kSharpnessOctaves = 4; // the frame box-averaged over 1, 2, 4, 8 px (fewer while under 16 px a side when shrunk so)

// The least mean luminance the sharpness is taken relative to (a black frame's sharpness is its
// detail over this squared, not a ratio of noise over nothing).
inline constexpr double kMinSharpnessMean = 1e-3;

struct Sharpness {
	double sharpness = 0; // the octaves' Laplacian variance less its noise part, their mean, over mean^2 (no unit)
	double noise = 0;     // estimated noise sigma of the image (working units)
	double variance = 0;  // the finest Laplacian's variance itself (detail and 20 sigma^2 of noise)
	double mean = 0;      // the mean luminance (working units)
};

// `luminance`: 1 band, float, [0, 1].
Sharpness measure_sharpness(const vips::VImage &luminance);

} // namespace superstack
