// lucas_kanade -- the residual shift between a reference patch and a frame patch, by Gauss-Newton
// on the window-weighted squared difference with a gain and an offset (exposure may differ).
//
// Model: F(x) = a R(x - s) + b, linearised as F = a R + b - g.s with g the mean of the two patches'
// gradients, a grad(R) and grad(F) (efficient second-order minimisation, Benhimane and Malis 2004):
// it converges in a few steps even when one patch is blurrier than the other (hand shake), where the
// reference's gradient alone over- or under-shoots. The caller re-samples F at the updated position
// each step; at the fixed point (s -> 0) the estimate does not depend on how the gradients are
// approximated, so it is free of the peak-fitting bias of correlation. Memory: 4 doubles per pixel.
#pragma once

#include "phase.hpp"

#include <array>
#include <vector>

namespace superstack::align {

class LucasKanade {
public:
	// `weight` (optional) multiplies the Hann window, e.g. to leave masked pixels out.
	LucasKanade(const Grey &reference, const std::vector<float> *weight);

	struct Step {
		double dx = 0, dy = 0; // F(x) ~ a R(x - d) + b
		double gain = 1;
		bool ok = false;       // false: degenerate (no texture, or a gain of the wrong sign)
	};
	// `gain` is the previous step's (1 for the first).
	Step step(const Grey &frame, double gain) const;

private:
	const Grey &reference_;
	std::vector<double> weight_; // window x mask, 0 on the border
};

} // namespace superstack::align
