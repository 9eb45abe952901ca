// warp -- compose scale and transform, then resample once with libvips.
#include "superstack/warp.hpp"

#include "superstack/error.hpp"
#include "superstack/lanczos.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

namespace superstack {

Kernel parse_kernel(std::string_view name)
{
	if (name == "nearest") return Kernel::nearest;
	if (name == "linear") return Kernel::linear;
	if (name == "cubic") return Kernel::cubic;
	if (name == "lanczos3") return Kernel::lanczos3;
	throw_error(ExitCode::usage, "--kernel must be nearest, linear, cubic or lanczos3 (got '{}')", name);
}

std::string_view kernel_name(Kernel kernel)
{
	switch (kernel) {
	case Kernel::nearest: return "nearest";
	case Kernel::linear: return "linear";
	case Kernel::cubic: return "cubic";
	case Kernel::lanczos3: return "lanczos3";
	}
	return "?";
}

Matrix3 output_to_frame(const Matrix3 &reference_to_frame, const OutputGeometry &geometry)
{
	return (reference_to_frame * geometry.output_to_reference()).normalised();
}

namespace {

vips::VInterpolate interpolator(Kernel kernel)
{
	switch (kernel) {
	case Kernel::nearest: return vips::VInterpolate::new_from_name("nearest");
	case Kernel::linear: return vips::VInterpolate::new_from_name("bilinear");
	case Kernel::cubic: return vips::VInterpolate::new_from_name("bicubic");
	case Kernel::lanczos3: return lanczos3_interpolator();
	}
	throw_error(ExitCode::usage, "unknown kernel");
}

// libvips' nearest takes floor(x); with pixel centres at integers, the nearest pixel is floor(x + 0.5).
double nearest_bias(Kernel kernel)
{
	return kernel == Kernel::nearest ? 0.5 : 0.0;
}

} // namespace

vips::VImage warp_to_output(const vips::VImage &frame, const Matrix3 &m, const OutputGeometry &g, Kernel kernel,
	const std::optional<ChannelTransforms> &tca)
{
	if (!tca || frame.bands() < 3)
		return warp_to_grid(frame, m, g.width, g.height, kernel);
	auto band = [&](int first, int n, const Matrix3 &through) {
		return warp_to_grid(frame.extract_band(first, vips::VImage::option()->set("n", n)), through, g.width, g.height, kernel);
	};
	std::vector<vips::VImage> bands{band(0, 1, (tca->red * m).normalised()), band(1, 1, m), band(2, 1, (tca->blue * m).normalised())};
	if (frame.bands() > 3)
		bands.push_back(band(3, frame.bands() - 3, m));
	return vips::VImage::bandjoin(bands);
}

vips::VImage warp_to_grid(const vips::VImage &frame, const Matrix3 &m, int width, int height, Kernel kernel)
{
	const double bias = nearest_bias(kernel);
	if (m.is_affine()) {
		// vips_affine samples input (ia*X + ib*Y - idx, ic*X + id*Y - idy), integers at pixel centres,
		// for the forward matrix [a b; c d] whose inverse is [ia ib; ic id].
		const Matrix3 linear({{{m(0, 0), m(0, 1), 0}, {m(1, 0), m(1, 1), 0}, {0, 0, 1}}});
		const Matrix3 forward = linear.inverse();
		return frame.affine({forward(0, 0), forward(0, 1), forward(1, 0), forward(1, 1)},
			vips::VImage::option()
				->set("interpolate", interpolator(kernel))
				->set("oarea", std::vector<int>{0, 0, width, height})
				->set("idx", -(m(0, 2) + bias))
				->set("idy", -(m(1, 2) + bias))
				->set("odx", 0.0)
				->set("ody", 0.0)
				->set("extend", VIPS_EXTEND_COPY)
				->set("premultiplied", true)); // never premultiply by a guessed alpha
	}
	// Projective: an index image of sample coordinates, computed lazily per tile.
	vips::VImage xy = vips::VImage::xyz(width, height).cast(VIPS_FORMAT_DOUBLE);
	vips::VImage xyw = xy.bandjoin_const({1.0});
	const auto &r = m.rows();
	vips::VImage matrix = vips::VImage::new_matrixv(3, 3, r[0][0], r[0][1], r[0][2], r[1][0], r[1][1], r[1][2],
		r[2][0], r[2][1], r[2][2]);
	vips::VImage mapped = xyw.recomb(matrix);
	vips::VImage w = mapped.extract_band(2);
	vips::VImage index = (mapped.extract_band(0, vips::VImage::option()->set("n", 2)) / w + bias)
				     .cast(VIPS_FORMAT_FLOAT);
	return frame.mapim(index, vips::VImage::option()
					  ->set("interpolate", interpolator(kernel))
					  ->set("extend", VIPS_EXTEND_COPY)
					  ->set("premultiplied", true));
}

std::pair<int, int> covered_span(const Matrix3 &m, int width, int height, bool affine, int y, int left, int right)
{
	auto covers = [&](int x) { return frame_covers(m, width, height, x, y); };
	if (!affine) {
		int x0 = left;
		while (x0 < right && !covers(x0))
			x0++;
		int x1 = x0;
		while (x1 < right && covers(x1))
			x1++;
		return {x0, x1};
	}
	// p(x) = a x + b along the row, for each frame axis; keep -0.5 <= p < size - 0.5.
	double lo = left, hi = right;
	const double limits[2][3] = {{m(0, 0), m(0, 1) * y + m(0, 2), static_cast<double>(width)},
		{m(1, 0), m(1, 1) * y + m(1, 2), static_cast<double>(height)}};
	for (const auto &[a, b, size] : limits) {
		if (a == 0.0) {
			if (!(b >= -0.5 && b < size - 0.5))
				return {left, left};
			continue;
		}
		const double t0 = (-0.5 - b) / a, t1 = (size - 0.5 - b) / a;
		lo = std::max(lo, std::min(t0, t1));
		hi = std::min(hi, std::max(t0, t1));
	}
	if (!(lo < hi))
		return {left, left};
	int x0 = std::clamp(static_cast<int>(std::ceil(lo)), left, right);
	int x1 = std::clamp(static_cast<int>(std::ceil(hi)), left, right);
	// Settle the ends with the exact test (rounding in the division can move them by one).
	while (x0 > left && covers(x0 - 1))
		x0--;
	while (x0 < x1 && !covers(x0))
		x0++;
	while (x1 < right && covers(x1))
		x1++;
	while (x1 > x0 && !covers(x1 - 1))
		x1--;
	return {x0, x1};
}

Rect frame_extent(const Matrix3 &output_to_frame, int width, int height)
{
	const Matrix3 to_output = output_to_frame.inverse();
	double x0 = std::numeric_limits<double>::max(), y0 = x0, x1 = -x0, y1 = -x0;
	const double xs[] = {-0.5, width - 0.5}, ys[] = {-0.5, height - 0.5};
	for (double x : xs)
		for (double y : ys) {
			const Point p = to_output.apply({x, y});
			x0 = std::min(x0, p.x), x1 = std::max(x1, p.x);
			y0 = std::min(y0, p.y), y1 = std::max(y1, p.y);
		}
	// One pixel of slack for rounding; the per-pixel coverage test is exact.
	const double lim = 1e8;
	const int l = static_cast<int>(std::floor(std::clamp(x0, -lim, lim))) - 1;
	const int t = static_cast<int>(std::floor(std::clamp(y0, -lim, lim))) - 1;
	const int r = static_cast<int>(std::ceil(std::clamp(x1, -lim, lim))) + 2;
	const int b = static_cast<int>(std::ceil(std::clamp(y1, -lim, lim))) + 2;
	return Rect{l, t, r - l, b - t};
}

Rect frame_footprint(const Matrix3 &output_to_frame, int width, int height, const OutputGeometry &g)
{
	return frame_extent(output_to_frame, width, height).intersect(g.bounds());
}

} // namespace superstack
