// geometry -- the output grid and its mapping to the reference frame.
#include "superstack/geometry.hpp"

#include "superstack/error.hpp"

#include <algorithm>
#include <cmath>

namespace superstack {

Rect Rect::intersect(const Rect &o) const
{
	const int l = std::max(left, o.left), t = std::max(top, o.top);
	const int r = std::min(right(), o.right()), b = std::min(bottom(), o.bottom());
	return {l, t, std::max(0, r - l), std::max(0, b - t)};
}

OutputGeometry OutputGeometry::for_reference(int reference_width, int reference_height, double scale)
{
	if (!(scale >= 1.0) || !std::isfinite(scale))
		throw_error(ExitCode::usage, "--scale must be a number >= 1 (got {})", scale);
	OutputGeometry g;
	g.reference_width = reference_width;
	g.reference_height = reference_height;
	g.scale = scale;
	const double w = std::round(reference_width * scale), h = std::round(reference_height * scale);
	if (w > 10'000'000 || h > 10'000'000)
		throw_error(ExitCode::usage, "output of {:.0f}x{:.0f} pixels is too large", w, h);
	g.width = static_cast<int>(w);
	g.height = static_cast<int>(h);
	return g;
}

OutputGeometry OutputGeometry::cropped(const Rect &area) const
{
	OutputGeometry g = *this;
	g.left += area.left;
	g.top += area.top;
	g.width = area.width;
	g.height = area.height;
	return g;
}

Matrix3 OutputGeometry::output_to_reference() const
{
	const double s = 1.0 / scale, t = 0.5 / scale - 0.5;
	return Matrix3({{{s, 0, t + s * left}, {0, s, t + s * top}, {0, 0, 1}}});
}

} // namespace superstack
