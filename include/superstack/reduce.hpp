// reduce -- the streaming reducer: a lazy libvips image whose every pixel is a statistic of the
// aligned samples of all frames covering it.
//
// For each output tile the reducer visits, in frame order, only the frames whose footprint touches
// it, pulls their warped pixels for the overlap, keeps the samples that the frame really covers, and
// reduces. Output bands: for each requested statistic, C float bands in working units; then, when
// asked, one band holding the per-pixel sample count. A pixel no frame covers is 0 with count 0.
// Results do not depend on tile size or thread count: each pixel's samples enter in frame order.
#pragma once

#include "superstack/budget.hpp"
#include "superstack/geometry.hpp"
#include "superstack/transform.hpp"

#include <vips/vips8>

#include <string_view>
#include <vector>

namespace superstack {

enum class Statistic { mean, median };

Statistic parse_statistic(std::string_view name); // throws Error(usage)
std::string_view statistic_name(Statistic statistic);
bool needs_all_samples(Statistic statistic);

// What the reducer knows of one frame for any output tile: its transform and footprint, its pixels
// as a warp onto the output grid, and its own unwarped pixels (for merges that read them directly).
struct StackFrame {
	vips::VImage working;      // the frame in its own geometry (working layout, see frame.hpp)
	vips::VImage warped;       // `working` resampled onto the output grid
	Matrix3 output_to_frame;   // output pixel -> frame pixel coordinates
	int width = 0, height = 0; // of the frame
	bool alpha = false;        // last band of `working`/`warped` is premultiplied alpha
	Rect footprint;            // output pixels this frame can cover
};

struct ReduceSpec {
	OutputGeometry geometry;
	int colour_bands = 1;
	std::vector<Statistic> statistics;
	bool coverage = false;     // append the sample-count band
	MemoryPlan plan;
};

// The reduced image (float, lazy). `frames` must outlive nothing: the image keeps what it needs.
vips::VImage reduce_stack(std::vector<StackFrame> frames, const ReduceSpec &spec);

} // namespace superstack
