// crop -- which window of the reference's output grid the stack fills (--crop).
//
//   reference  the reference frame's area (the whole grid); each pixel's statistics count the frames
//              that cover it, so the edges, where fewer frames reach, are noisier
//   common     the largest axis-aligned rectangle of output pixels that every kept frame covers
//   none       the union of every frame's area (the bounding box of the pixels any frame covers);
//              pixels no frame covers are marked by an alpha band in the outputs
//
// `common` exactly: a frame covers an output pixel when the pixel's sample point lies inside the
// frame (warp.hpp). Each frame's area in output coordinates is a convex quadrilateral (its edges are
// lines under an affine or projective map), so the pixels all frames cover form, row by row, one span
// [L(y), R(y)) whose ends are monotone functions of lines: the leftmost covered pixel over rows y0..y1
// is max(L(y0), L(y1)), the rightmost min(R(y0), R(y1)). A rectangle over rows y0..y1 is therefore
// covered exactly when it lies inside its first and last rows' spans, and the search over every pair
// of rows (every candidate height at every position) with exact row spans is O(rows^2 + rows x frames).
// Memory: two integers per output row.
#pragma once

#include "superstack/frame_map.hpp"
#include "superstack/geometry.hpp"
#include "superstack/transform.hpp"

#include <string_view>
#include <vector>

namespace superstack {

enum class Crop { common, reference, none };
Crop parse_crop(std::string_view text); // throws Error(usage)
std::string_view crop_name(Crop crop);

// Where a frame lands on an output grid: its output -> frame map and its size.
struct FrameArea {
	FrameMap output_to_frame;
	int width = 0, height = 0;
};

// Per row of `area`, the pixels [x0, x1) every frame covers (x1 <= x0: none). A frame with a
// displacement field counts only where it surely covers: its matrix's area shrunk by the field's reach.
struct RowSpan {
	int x0 = 0, x1 = 0;
	bool empty() const { return x1 <= x0; }
};
std::vector<RowSpan> common_spans(const std::vector<FrameArea> &frames, const Rect &area);

// The largest rectangle (by area; the first found of equals, top to bottom) inside `spans`, the row
// spans of a convex region starting at row area.top. Empty when no row has a pixel.
Rect largest_rectangle(const std::vector<RowSpan> &spans, const Rect &area);

// The bounding box of the pixels any frame covers (any integers: beyond the grid too); with a
// displacement field, of the frame's matrix area grown by the field's reach.
Rect union_bounds(const std::vector<FrameArea> &frames);

// The output geometry for `crop`, given the reference's full grid and the kept frames' areas on it.
// Throws Error(bad_input) when the kept frames have no pixel in common (`common`).
OutputGeometry crop_geometry(Crop crop, const OutputGeometry &full, const std::vector<FrameArea> &frames);

} // namespace superstack
