// tca -- transverse chromatic aberration: a lens images red and blue slightly magnified (and shifted)
// against green, so edges away from the centre get colour fringes that grow with the radius.
//
// Estimated once, on the reference frame, by aligning its red and its blue channel to its green one
// (align.hpp: patch tracking and a robust fit, here of a similarity at most; a lens gives a scale
// about its axis and a shift). The aberration is the lens's, fixed to the sensor, so the same
// correction holds for every frame: a frame's band c is sampled through that channel's matrix after
// the frame's own (warp.hpp), which folds the correction into the one resampling of each band.
// Memory: that of aligning one frame (align.hpp).
#pragma once

#include "superstack/progress.hpp"
#include "superstack/transform.hpp"

#include <vips/vips8>

#include <optional>
#include <string>

namespace superstack {

struct TcaEstimate {
	std::optional<ChannelTransforms> channels; // nothing when a channel could not be aligned
	std::string reason;                         // why not
};

// From `working` (the reference frame in the working layout: 3 colour bands, then alpha when
// `alpha`), and the alignment mask (optional, as align_frames takes it).
TcaEstimate estimate_tca(const vips::VImage &working, bool alpha, const std::optional<vips::VImage> &mask, int threads,
	Progress &progress);

// The displacement a channel matrix gives at the corners of a width x height frame: the largest, in px.
double corner_displacement(const Matrix3 &channel, int width, int height);

} // namespace superstack
