// regression -- the parameters of the `kernel` merge (src/reduce/kernel_regression.hpp has the
// definitions; README.md shows them).
#pragma once

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
	// The noise sigma of the frames' luminance (mean of the colour bands), working units; run measures
	// it on the reference frame.
	double noise = 0.01;
};

} // namespace superstack
