// field -- a displacement field fitted to local patch measurements: what a frame's matrix leaves
// (parallax, lens distortion, rolling shutter, a subject that bends), on the grid of transform.hpp's
// DisplacementField.
//
// Each measurement says: near reference point c the field is about r, with an information matrix W
// (2x2, symmetric, >= 0: the patch's structure tensor over the noise, so a lone edge fixes only the
// displacement across it). Outliers are left out first by the normalised median test against their
// neighbours (a patch that locked onto the wrong period of a texture is off by pixels, and would
// drag a least-squares start too far for the reweighting to recover). The field D (the node values,
// bilinear between nodes) minimises
//   sum_i rho(|B_i D - r_i|_W_i) + smoothness x (bending energy of D + 1/100 of its membrane energy) + tiny |D|^2
// (B_i: the bilinear weights at c_i; rho: Cauchy's, by iteratively reweighted least squares, so a
// moving object's or an occlusion's patches lose their pull; the tiny ridge keeps nodes no patch
// sees at 0: the matrix alone). Each reweighting solves the sparse normal equations by conjugate
// gradients (deterministic, in a fixed order). Memory: a few vectors of 2 x nodes doubles and the
// measurements.
#pragma once

#include "superstack/transform.hpp"

#include <array>
#include <vector>

namespace superstack::align {

struct FieldMeasurement {
	Point at;                            // reference coordinates
	Point shift;                         // the displacement measured there, reference pixels
	std::array<double, 3> information{}; // W: xx, xy, yy (1 / px^2)
};

struct FieldOptions {
	double smoothness = 1.0; // weight of a 1 px second difference between nodes, in data units (1 / px^2)
	double scale = 1.0;      // Cauchy's scale: a residual of this many Mahalanobis units counts half
	int reweightings = 6;
	double median_threshold = 2.0; // the normalised median test's (below), and its noise allowance in px
	double median_epsilon = 0.1;
};

// The field on `grid`'s nodes (grid.left, top, spacing, columns, rows; dx and dy are filled) and each
// measurement's final weight (0..1: Cauchy's, of its residual).
DisplacementField fit_field(const DisplacementField &grid, const std::vector<FieldMeasurement> &measurements,
	const FieldOptions &options, std::vector<double> *weights = nullptr);

} // namespace superstack::align
