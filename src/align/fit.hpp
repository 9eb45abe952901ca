// fit -- a motion model fitted to point correspondences: exact least squares, and a robust fit
// (RANSAC for the consensus set, then iteratively reweighted least squares with Tukey's biweight).
//
// Coordinates are centred and scaled before fitting (the same scale on both sides, so a similarity
// stays a similarity) for conditioning. Deterministic: RANSAC draws from a seeded generator.
// Memory: a few vectors the size of the correspondence list.
#pragma once

#include "superstack/align.hpp"
#include "superstack/transform.hpp"

#include <cstdint>
#include <optional>
#include <vector>

namespace superstack::align {

struct Correspondence {
	Point ref, frame; // the same scene point in reference and frame input pixel coordinates
};

// The number of correspondences that determine the model (1, 2, 2, 3, 4).
int minimal_points(MotionModel model);

// Weighted least squares (weights may be empty: all 1). Homographies minimise the transfer error
// (Gauss-Newton from the linear DLT solution). Nothing when the points do not determine the model.
std::optional<Matrix3> fit_least_squares(MotionModel model, const std::vector<Correspondence> &points,
	const std::vector<double> &weights = {});

// Distance in frame pixels between m(ref) and frame.
double transfer_error(const Matrix3 &m, const Correspondence &c);

struct RobustOptions {
	double threshold = 2.0;     // RANSAC inlier distance, frame pixels
	double min_sigma = 0.02;    // floor of the residual scale used by the reweighting, frame pixels
	int iterations = 500;       // RANSAC samples
	std::uint64_t seed = 1;
};

struct RobustFit {
	Matrix3 matrix;
	std::vector<bool> inlier;
	std::vector<double> residual;
	int inliers = 0;
	double rms = 0;             // of the inliers' residuals
	bool ok = false;            // false: too few points, or no sample determined the model
};

RobustFit fit_robust(MotionModel model, const std::vector<Correspondence> &points, const RobustOptions &options);

// The simplest model, up to `most_general`, that explains the correspondences about as well as the
// most general one. Each model gets its own robust fit (so none is judged on the inliers another
// chose: a homography's inliers include the few points it bent to reach), scored on every point by a
// truncated chi-square (the squared residual over the per-axis noise variance of `fit`, capped at the
// 99% point, so an outlier costs the same to every model) plus ln(n) per parameter (BIC). Extra
// parameters that only follow noise or a few contaminated patches cost precision far from the
// patches (measured: with a moving object or a mask leaving part of the frame without patches, a
// homography fitted to a similarity motion missed by 0.09 px at the corners, the similarity by 0.02).
std::pair<MotionModel, RobustFit> simplest_sufficient(MotionModel most_general, const std::vector<Correspondence> &points,
	const RobustFit &fit, const RobustOptions &options);

} // namespace superstack::align
