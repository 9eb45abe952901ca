// kernel_regression -- the pieces of the `kernel` merge, free of libvips so tests can check them
// against brute-force versions (after Takeda et al. 2007 and Wronski et al. 2019).
//
// Every frame's own pixels are samples at known places of the output grid (their centres mapped
// through the frame's transform). An output pixel x is the weighted mean of the samples near it:
//   value(x) = sum_f R_f(x) sum_p w_x(p) c_p  /  sum_f R_f(x) sum_p w_x(p)
// with w_x(p) = exp(-Q/2), Q = d^T K(x)^-1 d, d the sample's offset from x in reference pixels, and
// the kernel truncated at Q <= kCutoff (three of its standard deviations): samples beyond weigh nothing.
//
// K(x), the steering kernel, follows the local structure of the consensus image (the median over
// frames of their smooth local means of the luminance, below): narrow across an edge (`detail`),
// stretched along it by up to `stretch` as the structure is more one-directional, and wide and round
// (`detail` x `denoise`) where its curvature is lost in its noise. R_f(x), the robustness of frame f
// at x, compares the frame's smooth local means with the consensus, in the luminance and in each
// chroma channel (regression.hpp; the consensus there is the median of those), in units of the
// difference's expected spread (noise of both, plus what a small misalignment makes of the local
// gradient, plus a share of the local detail), in the channel where the frame is furthest: up to
// `robustness` spreads it is 1, beyond it falls as a Gaussian; then the minimum over a 5x5 window,
// so a moving object's edges go with it. Against the consensus rather than the reference frame:
// superstack stacks a static scene, so a thing in fewer than half the frames is not the scene even
// when the reference shows it; in exactly half, the reference decides (even_split, below).
#pragma once

#include "superstack/regression.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>

namespace superstack::regression {

inline constexpr double kCutoff = 9.0;       // Q beyond which a sample weighs nothing: 3 sd
inline constexpr double kMinWeight = 0.1;    // a frame's weights at x below this: no sample from it there
inline constexpr double kConsensusSd = 0.5;  // sd (reference px) of the round kernel of the local means
inline constexpr double kMisalignment = 0.1; // px of residual misalignment the robustness tolerates
inline constexpr double kAliasing = 0.5;     // and this fraction of the local detail (sampling differences)
inline constexpr int kApron = 3;             // output px around a tile the consensus needs
inline constexpr int kMinRadius = 2;         // robustness: minimum over (2 r + 1)^2 output pixels

// A frame's local statistics at an output pixel, for C colour bands: its noise factor, and per channel
// (the luminance, then C - 1 chroma channels: regression.hpp) its local mean and the local variance
// of its samples. The luminance's mean first, so that one test of slot 0 says whether there is any.
inline constexpr int local_stride(int bands) { return 2 * bands + 1; }
inline constexpr int kNoiseFactorSlot = 1;
inline constexpr int mean_slot(int channel) { return channel == 0 ? 0 : 1 + 2 * channel; }
inline constexpr int variance_slot(int channel) { return 2 + 2 * channel; }

// Flat or detail, for the steering kernel: how curved the consensus is. Its second differences
// (hxx, hyy, hxy over one output pixel, scaled to reference pixels) give a curvature energy
// hxx^2 + 2 hxy^2 + hyy^2, averaged over (2 kCurvatureRadius + 1)^2 output pixels; less
// kCurvatureNoise times what the consensus's own noise gives there (noise^2 x its variance factor x
// scale^4), as a standard deviation, it is the `detail` steer() weighs against the noise.
// Why curvature of the consensus: the frames' local spread less one frame's noise (what it replaced)
// cannot see texture below a frame's noise that the stack resolves (16 frames: a quarter of it), and
// took a photograph's low-contrast texture for flat (34.13 dB on a 16-frame burst of one, against
// 34.77 with no widening at all; 34.65 now); a gradient counts ramps, where the local linear fit is
// exact and widening costs nothing (the ghost test's smooth scene lost 3 dB that way). A 3x3 average
// took noise spikes for detail (a flat grey burst, noise 2%: 47.3 dB against 52.3); 5x5 with 5x the
// noise level: 52.1.
inline constexpr int kCurvatureRadius = 2;   // the curvature energy's average: (2 r + 1)^2 output px
inline constexpr double kCurvatureNoise = 5; // noise-only energy counted as flat, in its expected units
static_assert(kApron >= kCurvatureRadius + 1, "the curvature needs the consensus one pixel beyond its window");

// The curvature energy at c from its eight neighbours (l r: x -+ 1, u d: y -+ 1), per output px^4.
inline double curvature_energy(double c, double l, double r, double u, double d, double ul, double ur, double dl, double dr)
{
	const double hxx = r - 2 * c + l, hyy = d - 2 * c + u, hxy = 0.25 * (dr - ur - dl + ul);
	return hxx * hxx + 2 * hxy * hxy + hyy * hyy;
}

// The detail from the window's mean curvature energy and mean consensus variance factor.
inline double curvature_detail(double energy, double variance_factor, double noise, double scale)
{
	const double per_reference_px4 = scale * scale * scale * scale;
	return std::sqrt(std::max(0.0, (energy - kCurvatureNoise * noise * noise * variance_factor) * per_reference_px4));
}

// The inverse of a 2x2 covariance, in reference pixels^-2, and how far it reaches (3 x its largest
// standard deviation, reference pixels).
struct Kernel {
	double ixx = 1, ixy = 0, iyy = 1;
	double reach = 3;
	double form(double dx, double dy) const { return ixx * dx * dx + 2 * ixy * dx * dy + iyy * dy * dy; }
	// The truncated Gaussian weight of an offset (reference pixels).
	double weight(double dx, double dy) const
	{
		const double q = form(dx, dy);
		return q <= kCutoff ? std::exp(-0.5 * q) : 0.0;
	}
};

inline Kernel round_kernel(double sd)
{
	const double i = 1.0 / (sd * sd);
	return {i, 0, i, 3 * sd};
}

// The steering kernel from the structure tensor (gxx, gxy, gyy: local means of gx^2, gx gy, gy^2,
// gradients per reference pixel) for its direction and coherence, and the local detail (the
// standard deviation of the samples less the noise's) for how far it may widen.
inline Kernel steer(double gxx, double gxy, double gyy, double detail, const RegressionOptions &s)
{
	const double half_trace = 0.5 * (gxx + gyy);
	const double root = std::sqrt(std::max(0.0, 0.25 * (gxx - gyy) * (gxx - gyy) + gxy * gxy));
	const double l1 = half_trace + root, l2 = std::max(0.0, half_trace - root);
	// The eigenvector of l1: the dominant gradient direction (across the edge).
	double ex = 1, ey = 0;
	if (root > 0) {
		if (gxx >= gyy)
			ex = l1 - gyy, ey = gxy;
		else
			ex = gxy, ey = l1 - gxx;
		const double n = std::hypot(ex, ey);
		ex /= n, ey /= n;
	}
	const double coherence = l1 + l2 > 0 ? (l1 - l2) / (l1 + l2) : 0.0;
	const double snr = detail / std::max(s.noise, 1e-6);
	const double flat = std::clamp((s.edge_snr - snr) / (s.edge_snr - s.flat_snr), 0.0, 1.0);
	const double round = s.detail * s.denoise;
	const double across = (1 - flat) * s.detail + flat * round;
	const double along = (1 - flat) * s.detail * (1 + (s.stretch - 1) * coherence) + flat * round;
	const double a = 1.0 / (across * across), b = 1.0 / (along * along);
	// K^-1 = a e e^T + b f f^T, f the edge direction (-ey, ex).
	return {a * ex * ex + b * ey * ey, (a - b) * ex * ey, a * ey * ey + b * ex * ex, 3 * std::max(across, along)};
}

// The local linear fit (Takeda's order 1) at the output pixel from its weighted moments: the samples'
// weight s0, their weighted offsets (sx, sy) and second moments (sxx, sxy, syy), the values' weighted
// sum sc and its first moments (scx, scy); offsets in reference pixels from the pixel. The fit is
// the weighted mean corrected by the local slope for the samples' centroid being off the pixel:
// mean - slope . centroid, the slope from the centred moments with a ridge of kRidge px^2 (so a
// degenerate spread of offsets -- samples on a line, or one -- gives the plain weighted mean).
inline constexpr double kRidge = 1e-3;

inline double local_linear(double s0, double sx, double sy, double sxx, double sxy, double syy, double sc, double scx, double scy)
{
	const double mx = sx / s0, my = sy / s0, mean = sc / s0;
	const double cxx = sxx / s0 - mx * mx + kRidge, cxy = sxy / s0 - mx * my, cyy = syy / s0 - my * my + kRidge;
	const double kx = scx / s0 - mx * mean, ky = scy / s0 - my * mean;
	const double det = cxx * cyy - cxy * cxy;
	if (!(det > 0))
		return mean;
	const double bx = (cyy * kx - cxy * ky) / det, by = (cxx * ky - cxy * kx) / det;
	return mean - (bx * mx + by * my);
}

// Whether m local means, sorted, m even, split evenly into two states rather than scatter about one:
// the two middle ones lie further apart than `tolerance` spreads (of a frame's local mean about
// another's), and further than either half's own range, so that a continuous scatter (a texture the
// frames sample differently, aliased) is not taken for two states. build_consensus then takes the
// reference frame's half. tolerance 0: robustness off, never.
inline bool even_split(const float *sorted, std::uint32_t m, double spread, double tolerance)
{
	const double below = sorted[m / 2 - 1], above = sorted[m / 2], gap = above - below;
	return tolerance > 0 && gap > tolerance * spread && gap > below - sorted[0] && gap > sorted[m - 1] - above;
}

// The robustness of a sample z spreads from the consensus: 1 up to `tolerance`, then a Gaussian fall.
// tolerance 0: robustness off (always 1).
inline double robustness(double z, double tolerance)
{
	if (tolerance <= 0 || z <= tolerance)
		return 1.0;
	const double e = z - tolerance;
	return std::exp(-0.5 * e * e);
}

} // namespace superstack::regression
