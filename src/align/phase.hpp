// phase -- the shift between two equal-size patches, by phase correlation with subpixel peak fitting.
//
// Both patches have their (window-weighted) mean removed and are tapered by a window (Hann, times an
// optional per-pixel weight such as a mask), transformed (fft.hpp), and their normalised cross-power
// spectrum is weighted by a Gaussian low-pass (noise and aliasing live in the highest frequencies;
// pure phase correlation would weigh them as much as the signal) before the inverse transform. The
// peak is refined by a Gaussian (else a parabola) through its neighbours along each axis. Gain and
// offset differences between the patches do not matter. Memory: a few complex copies of the patch.
#pragma once

#include <vips/vips8>

#include <cmath>
#include <numbers>
#include <vector>

namespace superstack::align {

struct Grey {
	int width = 0, height = 0;
	std::vector<float> pixels; // row-major
	float at(int x, int y) const { return pixels[static_cast<std::size_t>(y) * width + x]; }
};

// Band 0 of `image`, computed and copied into a Grey; and a Grey seen as a 1-band float image
// (borrowing its pixels: the Grey must outlive the image's use).
Grey grey_of(const vips::VImage &image);
vips::VImage image_of(const Grey &grey);

// The Hann window's weight at sample i of n (0 at the ends, 1 in the middle), the taper every
// patch comparison here uses.
inline double hann(int i, int n)
{
	return 0.5 - 0.5 * std::cos(2 * std::numbers::pi * (i + 0.5) / n);
}

// hann(i, n) for i = 0 .. n - 1: a 2-D window is the product of two of these (n cosines, not n^2).
inline std::vector<double> hann_window(int n)
{
	std::vector<double> w(static_cast<std::size_t>(n));
	for (int i = 0; i < n; i++)
		w[static_cast<std::size_t>(i)] = hann(i, n);
	return w;
}

struct Shift {
	double dx = 0, dy = 0;
	double peak = 0; // correlation at the peak, 1 for identical patches (up to the shift)
};

struct PhaseOptions {
	double cutoff = 0.25;   // Gaussian low-pass sigma, cycles per pixel (0: none)
	bool window_x = true, window_y = true;
};

// The shift d with b(x) ~ a(x - d), in pixels, |d| below half the patch. `weight` (optional, the
// patches' size) multiplies the window.
Shift phase_correlate(const Grey &a, const Grey &b, const PhaseOptions &options = {},
	const std::vector<float> *weight = nullptr);

// Normalised cross-correlation of two patches under the same window as phase_correlate.
double window_ncc(const Grey &a, const Grey &b, const std::vector<float> *weight = nullptr);

} // namespace superstack::align
