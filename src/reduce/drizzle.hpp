// drizzle -- a frame's own pixels dropped onto the output grid (Fruchter and Hook, 2002), free of
// libvips so tests can compare it with a brute-force version.
//
// Each input pixel, shrunk about its centre to `pixfrac` of its side, is mapped through the frame's
// transform onto the output grid. A projective map takes the square to a quadrilateral (lines stay
// lines), so the drop's image is exact for every motion model; its overlap with each output pixel
// square is exact too (the convex quadrilateral clipped by the square). The pixel adds value x
// overlap to that output pixel's value sum and overlap to its weight. Summing in the same order
// (rows of the frame, then columns) makes the result independent of how the output is tiled.
#pragma once

#include "superstack/geometry.hpp"
#include "superstack/transform.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>

namespace superstack::drizzle {

// The area of the convex polygon `p` (n vertices, either orientation) inside the square
// [x - 0.5, x + 0.5] x [y - 0.5, y + 0.5].
inline double overlap(const Point *p, int n, double x, double y)
{
	// Sutherland-Hodgman against the four sides; a convex polygon gains at most one vertex per side.
	std::array<Point, 8> a{}, b{};
	std::copy(p, p + n, a.begin());
	int count = n;
	const double bounds[4] = {x - 0.5, x + 0.5, y - 0.5, y + 0.5};
	for (int side = 0; side < 4 && count > 0; side++) {
		const bool vertical = side < 2, upper = side & 1;
		const double limit = bounds[side];
		auto inside = [&](const Point &q) {
			const double v = vertical ? q.x : q.y;
			return upper ? v <= limit : v >= limit;
		};
		int out = 0;
		for (int i = 0; i < count; i++) {
			const Point &c = a[i], &d = a[(i + 1) % count];
			const bool ci = inside(c), di = inside(d);
			if (ci)
				b[out++] = c;
			if (ci != di) {
				const double t = vertical ? (limit - c.x) / (d.x - c.x) : (limit - c.y) / (d.y - c.y);
				b[out++] = {c.x + t * (d.x - c.x), c.y + t * (d.y - c.y)};
			}
		}
		count = out;
		std::swap(a, b);
	}
	double twice = 0;
	for (int i = 0; i < count; i++) {
		const Point &c = a[i], &d = a[(i + 1) % count];
		twice += c.x * d.y - d.x * c.y;
	}
	return 0.5 * std::abs(twice);
}

// One block of a frame's pixels: `bands` floats per pixel, `stride` floats per row, pixel (i, j) of
// the block at frame coordinates (left + i, top + j). With `alpha`, the last band is a premultiplied
// alpha: the drop's weight is its overlap times alpha, and its colour bands are already premultiplied.
struct Block {
	const float *pixels = nullptr;
	int left = 0, top = 0, width = 0, height = 0;
	std::size_t stride = 0;
	int bands = 1;
	bool alpha = false;
};

// Drops every pixel of `block` through `map` (frame point (x, y) -> output Point) onto the output
// pixels of `tile`: each drop is the quadrilateral of its corners' images. For each output pixel p of
// the tile (row-major), value[p * colour + b] += overlap x v_b and weight[p] += overlap (x alpha).
// `colour` = bands less alpha.
template <typename Map>
void drop_block(const Block &block, Map map, double pixfrac, const Rect &tile, double *value, double *weight)
{
	const int colour = block.bands - (block.alpha ? 1 : 0);
	const double h = 0.5 * pixfrac;
	for (int j = 0; j < block.height; j++) {
		const float *row = block.pixels + static_cast<std::size_t>(j) * block.stride;
		const double fy = block.top + j;
		for (int i = 0; i < block.width; i++) {
			const float *px = row + static_cast<std::size_t>(i) * block.bands;
			const double alpha = block.alpha ? px[colour] : 1.0;
			if (!(alpha > 0))
				continue;
			const double fx = block.left + i;
			const Point q[4] = {map(fx - h, fy - h), map(fx + h, fy - h), map(fx + h, fy + h), map(fx - h, fy + h)};
			double x0 = q[0].x, x1 = q[0].x, y0 = q[0].y, y1 = q[0].y;
			for (const Point &c : q)
				x0 = std::min(x0, c.x), x1 = std::max(x1, c.x), y0 = std::min(y0, c.y), y1 = std::max(y1, c.y);
			// Output pixel X covers [X - 0.5, X + 0.5).
			const int ox0 = std::max(tile.left, static_cast<int>(std::floor(x0 + 0.5)));
			const int ox1 = std::min(tile.right() - 1, static_cast<int>(std::floor(x1 + 0.5)));
			const int oy0 = std::max(tile.top, static_cast<int>(std::floor(y0 + 0.5)));
			const int oy1 = std::min(tile.bottom() - 1, static_cast<int>(std::floor(y1 + 0.5)));
			for (int oy = oy0; oy <= oy1; oy++)
				for (int ox = ox0; ox <= ox1; ox++) {
					const double a = overlap(q, 4, ox, oy);
					if (a <= 0)
						continue;
					const std::size_t p = static_cast<std::size_t>(oy - tile.top) * tile.width + (ox - tile.left);
					weight[p] += a * alpha;
					for (int b = 0; b < colour; b++)
						value[p * colour + b] += a * px[b];
				}
		}
	}
}

// The same through a projective matrix (frame -> output).
inline void drop_block(const Block &block, const Matrix3 &frame_to_output, double pixfrac, const Rect &tile, double *value,
	double *weight)
{
	const auto &m = frame_to_output.rows();
	drop_block(block, [&m](double x, double y) {
		const double w = m[2][0] * x + m[2][1] * y + m[2][2];
		return Point{(m[0][0] * x + m[0][1] * y + m[0][2]) / w, (m[1][0] * x + m[1][1] * y + m[1][2]) / w};
	}, pixfrac, tile, value, weight);
}

} // namespace superstack::drizzle
