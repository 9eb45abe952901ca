// regression -- the parameters of the `kernel` merge (src/reduce/kernel_regression.hpp has the
// definitions; README.md shows them).
#pragma once

#include <cmath>

namespace superstack {

struct RegressionOptions {
	// The steering kernel, in reference pixels.
	double detail = 0.15;   // sd across an edge
	double stretch = 2.0;   // along a one-directional edge the sd is up to this many times longer
	double denoise = 3.0;   // where there is no detail: a round kernel of sd detail x denoise
	double flat_snr = 0.25; // local detail (regression::curvature_detail, over the noise sigma) below
	double edge_snr = 1.0;  // which the area is flat, and above which it is detail (between: blended)
	// A frame counts fully where its local mean is within this many expected spreads of the
	// consensus, and less beyond (0: every frame counts everywhere).
	double robustness = 3.0;
	// The noise sigma of the frames' luminance (mean of the colour bands) and of each of their chroma
	// channels (below), working units; run measures both from the frames against each other.
	double noise = 0.01;
	double chroma_noise = 0.01;
	// The noise sigma of channel `ch` (below): 0 the luminance, else a chroma channel.
	double channel_noise(int ch) const { return ch == 0 ? noise : chroma_noise; }
};

// The channels the robustness compares frames in (src/reduce/kernel_regression.hpp): the luminance,
// the mean of the C colour bands, and C - 1 chroma channels, the Helmert contrasts of the bands
//   chroma_k = sum over b of chroma_weight(k, b, C) v_b = (v_0 + ... + v_(k-1) - k v_k) / sqrt(k (k + 1) C),
// 1 <= k < C, scaled so that noise of one sd in every band, independent between bands, has the
// luminance's sd in each. They are orthogonal to the luminance and to each other: a thing of
// another colour but the same luminance as what it covers moves the chroma and not the luminance.
inline double chroma_weight(int k, int b, int bands)
{
	const double scale = 1.0 / std::sqrt(static_cast<double>(k) * (k + 1) * bands);
	return b < k ? scale : b == k ? -k * scale : 0.0;
}

} // namespace superstack
