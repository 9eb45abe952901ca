// geometry -- the output grid: its size, and where each output pixel sits in the reference frame.
//
// The reference's full grid at scale S has round(S w) x round(S h) pixels; its pixel (X, Y) sits at
// reference coordinates ((X+0.5)/S-0.5, (Y+0.5)/S-0.5). The output is a window of that grid (the whole
// of it unless cropped, see crop.hpp): output pixel (x, y) is grid pixel (x + left, y + top), and the
// window may reach beyond the reference (negative left or top: --crop none).
// Kept explicit (not implied by an image's size) so a reduction can be split into output bands.
#pragma once

#include "superstack/transform.hpp"

namespace superstack {

struct Rect {
	int left = 0, top = 0, width = 0, height = 0;
	int right() const { return left + width; }
	int bottom() const { return top + height; }
	bool empty() const { return width <= 0 || height <= 0; }
	Rect intersect(const Rect &o) const;
	bool operator==(const Rect &) const = default;
};

struct OutputGeometry {
	int reference_width = 0, reference_height = 0;
	double scale = 1;
	int left = 0, top = 0;     // the output's origin in the reference's full grid
	int width = 0, height = 0; // the output's size


	// The grid for a reference of this size at this scale (size rounded to the nearest pixel).
	static OutputGeometry for_reference(int reference_width, int reference_height, double scale);

	// The window `area` of this output (in its pixel coordinates) as an output of its own.
	OutputGeometry cropped(const Rect &area) const;

	// Maps output pixel coordinates to reference input pixel coordinates.
	Matrix3 output_to_reference() const;
	Rect bounds() const { return {0, 0, width, height}; }
};

} // namespace superstack
