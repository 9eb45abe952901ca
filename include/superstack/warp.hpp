// warp -- one resampling from a frame onto the output grid: the upscale and the frame's transform
// composed into a single matrix, evaluated lazily by libvips (vips_affine, or vips_mapim for a
// projective matrix) with the chosen kernel.
//
// Also the footprint (which output pixels a frame can cover) and the coverage test the reducer uses:
// an output pixel is covered by a frame when its sample point lies inside the frame's pixel area
// [-0.5, w-0.5) x [-0.5, h-0.5). Pixels beyond the edge are extended by copy for the kernel's reach
// only; they never count as samples.
#pragma once

#include "superstack/frame_map.hpp"
#include "superstack/geometry.hpp"
#include "superstack/transform.hpp"

#include <vips/vips8>

#include <optional>
#include <string_view>
#include <utility>

namespace superstack {

enum class Kernel { nearest, linear, cubic, lanczos3 };

Kernel parse_kernel(std::string_view name); // throws Error(usage)
std::string_view kernel_name(Kernel kernel);

// The matrix from output pixel coordinates to `frame` input pixel coordinates, given the frame's
// transform (reference -> frame) from the transforms file.
Matrix3 output_to_frame(const Matrix3 &reference_to_frame, const OutputGeometry &geometry);

// `frame` (float) resampled onto the output grid: pixel (X, Y) is the frame sampled at
// output_to_frame.apply(X, Y). Lazy; the size of `geometry`. With `tca` (a lens's chromatic
// aberration, tca.hpp) and at least 3 bands, band 0 (red) is sampled at tca->red of that point and
// band 2 (blue) at tca->blue of it instead: every band is still resampled once. With a displacement
// field the sample points are an index image computed per tile (the field's grid read bilinearly by
// libvips, exactly FrameMap::apply up to float rounding of the coordinates).
vips::VImage warp_to_output(const vips::VImage &frame, const FrameMap &output_to_frame,
	const OutputGeometry &geometry, Kernel kernel, const std::optional<ChannelTransforms> &tca = std::nullopt);

// The same onto any grid of `width` x `height` pixels (proxies, masks): pixel (X, Y) is `image` sampled
// at grid_to_image * (X, Y, 1).
vips::VImage warp_to_grid(const vips::VImage &image, const Matrix3 &grid_to_image, int width, int height, Kernel kernel);

// `image` resampled onto a grid of `width` x `height` through a displacement field: pixel X samples
// `image` at after(p + d(p)), p = before(X) (before: grid -> reference, after: reference -> image).
vips::VImage warp_displaced(const vips::VImage &image, const Matrix3 &before, const DisplacementField &field, const Matrix3 &after,
	int width, int height, Kernel kernel);

// The 2-band image of points `points` (2 bands, double) through the projective matrix m. Lazy.
vips::VImage map_points(const vips::VImage &points, const Matrix3 &m);

// The field's displacement (2 bands, double) at each pixel's reference point of `points` (2 bands,
// double): its grid read by libvips' bilinear interpolator at the clamped grid coordinates, which is
// DisplacementField::at() up to rounding. Lazy; the grid is copied into the image.
vips::VImage displacement_at(const vips::VImage &points, const DisplacementField &field);

// True when output pixel (x, y) maps inside a frame of `width` x `height` (shrunk by `inset` frame
// pixels on every side: a negative inset grows it).
inline bool frame_covers(const Matrix3 &m, int width, int height, double x, double y, double inset = 0)
{
	const Point p = m.apply({x, y});
	return p.x >= -0.5 + inset && p.x < width - 0.5 - inset && p.y >= -0.5 + inset && p.y < height - 0.5 - inset;
}

inline bool frame_covers(const FrameMap &m, int width, int height, double x, double y)
{
	if (m.rigid())
		return frame_covers(m.matrix(), width, height, x, y);
	const Point p = m.apply({x, y});
	return p.x >= -0.5 && p.x < width - 0.5 && p.y >= -0.5 && p.y < height - 0.5;
}

// The pixels [x0, x1) of row y, within [left, right), whose sample point falls inside a frame of
// `width` x `height` through `m` (output -> frame): the same as frame_covers() pixel by pixel. A frame's
// covered part of a row is one interval (the frame's area is convex and a projective map keeps lines);
// for an affine `m` it is found from the half-plane limits in O(1), then settled with the exact test.
// `affine` is m.is_affine(), passed in so callers test it once, not per row. With `inset`, the frame
// is shrunk by that many frame pixels on every side (grown, when negative), as in frame_covers().
std::pair<int, int> covered_span(const Matrix3 &m, int width, int height, bool affine, int y, int left, int right,
	double inset = 0);

// The same through a frame's map. With a displacement field the covered part of a row need not be one
// interval (a wavy frame edge along the row): the span is then a superset (the matrix's span for the
// frame grown by the field's reach) and each pixel in it must still pass frame_covers().
std::pair<int, int> covered_span(const FrameMap &m, int width, int height, int y, int left, int right);

// The rectangle of grid pixels (any integers, not clipped) holding every pixel the frame can cover,
// with a pixel of slack for rounding (and the field's reach); frame_footprint() is it clipped to the
// output.
Rect frame_extent(const Matrix3 &output_to_frame, int width, int height);
Rect frame_extent(const FrameMap &output_to_frame, int width, int height);

// The output rectangle holding every pixel the frame can cover (clipped to the output).
Rect frame_footprint(const FrameMap &output_to_frame, int width, int height, const OutputGeometry &geometry);

} // namespace superstack
