// align -- every frame registered directly to the reference (never chained), at subpixel precision.
//
// Per frame: a coarse similarity on small proxies (Fourier-Mellin for rotation and scale, then phase
// correlation for the shift: robust to large shifts, rotations, zoom and exposure changes), then a
// refinement from a grid of local patches on a pyramid ending at full resolution (each patch read on
// demand, iterated phase correlation until its residual shift vanishes), then a robust fit of the
// chosen motion model (RANSAC, then iteratively reweighted least squares), so patches on moving
// objects or in masked areas drop out. Frames that do not fit are rejected with a reason.
// Memory: two proxies and a patch cache per worker (about 30 MB); frames are read from the spool.
#pragma once

#include "superstack/progress.hpp"
#include "superstack/transform.hpp"

#include <vips/vips8>

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace superstack {

enum class MotionModel { none, translation, euclidean, similarity, affine, homography };

MotionModel parse_motion_model(std::string_view name); // throws Error(usage)
std::string_view motion_model_name(MotionModel model);

enum class AlignFailure { skip, fail };
AlignFailure parse_align_failure(std::string_view name); // throws Error(usage)

// The result for one frame: the transform (reference input pixels -> frame input pixels) and how well
// it is supported. `ok` false means rejected; `reason` says why in a few words.
struct FrameAlignment {
	Matrix3 matrix;
	MotionModel model = MotionModel::none;
	int patches = 0;        // local patches measured
	int inliers = 0;        // patches that agree with the fit
	double residual_rms = 0; // of the inliers, in input pixels
	bool ok = true;
	std::string reason;
	// With AlignOptions::local_grid: what the matrix leaves, as a field, and how well it predicts
	// patches it was not fitted to. No field when the frame had too few patches for one, or when it
	// does not predict them clearly better than the matrix alone (the report still says how well).
	std::optional<DisplacementField> displacement;
	int local_patches = 0;             // textured patches that judged it (0: not fitted)
	double local_residual_rms = 0;     // their RMS distance from the field fitted without them, input pixels
	double matrix_residual_rms = 0;    // the same patches' RMS distance from the matrix alone
};

struct AlignOptions {
	MotionModel model = MotionModel::homography;
	int threads = 1;
	// Rejection limits: the RMS of the inlier patches' residuals after the fit, in input pixels, and
	// the fewest patches that must agree on one transform. Real handheld scenes with depth, lens
	// distortion or moving subjects leave 0.2 to 1.2 px that no global model removes (measured on the
	// bursts in ../shared): 2 px keeps those frames and still rejects a wrong fit.
	double max_residual = 2.0;
	int min_inliers = 8;
	// > 0: also a displacement field per frame (what the matrix leaves: parallax, lens distortion,
	// rolling shutter), with about this many nodes along the reference's longer side, at least 16 px
	// apart (estimate_local() in src/align/align.cpp, the fit in src/align/field.hpp).
	int local_grid = 0;
	// Resuming: frames whose alignment is known already (by index; empty or nothing: aligned here).
	std::vector<std::optional<FrameAlignment>> known;
	// Called as each frame's alignment is made (not for known ones), one call at a time: to save it.
	std::function<void(std::size_t index, const FrameAlignment &alignment)> on_aligned;
};


// A frame as the aligner sees it: luminance-able working pixels (frame.hpp's layout).
struct AlignFrame {
	vips::VImage working;
	bool alpha = false;
	std::string name; // for messages
};

// Aligns every frame to frames[reference]. `mask` (optional, 1 band uchar, the reference's size,
// non-zero = masked) marks reference pixels to ignore. The reference itself gets the identity.
std::vector<FrameAlignment> align_frames(const std::vector<AlignFrame> &frames, int reference,
	const std::optional<vips::VImage> &mask, const AlignOptions &options, Progress &progress);

// The RMS distance between two mappings over a grid covering a width x height frame (in its pixels).
double mapping_rms(const Matrix3 &a, const Matrix3 &b, int width, int height, int grid = 16);

} // namespace superstack
