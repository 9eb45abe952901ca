// sharpness -- how sharp a frame is, corrected for its noise, from the frame itself.
//
// The variance of the 4-neighbour Laplacian grows with detail and with noise. The noise part is
// estimated from the same Laplacian by its median absolute deviation (robust: most of an image is
// smooth), and white noise of sigma adds 20 sigma^2 to that variance; the difference is the
// sharpness. No per-camera calibration. One streaming pass (libvips conv and hist_find on a
// 16-bit quantised Laplacian); memory: libvips' tile buffers and a 65536-bin histogram.
#pragma once

#include <vips/vips8>

namespace superstack {

// The 4-neighbour Laplacian (0 1 0, 1 -4 1, 0 1 0) of a 1-band image, float, lazy. White noise of
// sigma comes out of it with variance kLaplacianNoiseGain sigma^2 (16 + 4 x 1).
inline constexpr double kLaplacianNoiseGain = 20;
vips::VImage laplacian(const vips::VImage &image);

struct Sharpness {
	double sharpness = 0; // Laplacian variance less its noise part (working units squared)
	double noise = 0;     // estimated noise sigma of the image (working units)
	double variance = 0;  // the Laplacian's variance itself: sharpness + that noise part, or less
};

// `luminance`: 1 band, float, [0, 1].
Sharpness measure_sharpness(const vips::VImage &luminance);

} // namespace superstack
