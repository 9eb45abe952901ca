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

vips::VImage map_points(const vips::VImage &points, const Matrix3 &m)
{
	const auto &r = m.rows();
	vips::VImage matrix = vips::VImage::new_matrixv(3, 3, r[0][0], r[0][1], r[0][2], r[1][0], r[1][1], r[1][2],
		r[2][0], r[2][1], r[2][2]);
	vips::VImage mapped = points.bandjoin_const({1.0}).recomb(matrix);
	return mapped.extract_band(0, vips::VImage::option()->set("n", 2)) / mapped.extract_band(2);
}

vips::VImage displacement_at(const vips::VImage &points, const DisplacementField &f)
{
	vips::VImage u = (points.extract_band(0) - f.left) / f.spacing, v = (points.extract_band(1) - f.top) / f.spacing;
	auto clamp = [](const vips::VImage &a, double hi) { return (a < 0).ifthenelse(0.0, (a > hi).ifthenelse(hi, a)); };
	u = clamp(u, f.columns - 1.0), v = clamp(v, f.rows - 1.0);
	std::vector<double> nodes;
	nodes.reserve(f.dx.size() * 2);
	for (std::size_t k = 0; k < f.dx.size(); k++)
		nodes.push_back(f.dx[k]), nodes.push_back(f.dy[k]);
	// Copied into an image of its own: `nodes` and the field may be gone before the image is computed.
	VipsImage *copy = vips_image_new_from_memory_copy(nodes.data(), nodes.size() * sizeof(double), f.columns, f.rows, 2, VIPS_FORMAT_DOUBLE);
	if (!copy)
		throw_error(ExitCode::processing, "displacement field: {}", vips_error_buffer());
	const vips::VImage grid(copy, vips::STEAL);
	return grid.mapim(u.bandjoin(v), vips::VImage::option()
					 ->set("interpolate", vips::VInterpolate::new_from_name("bilinear"))
					 ->set("extend", VIPS_EXTEND_COPY));
}

namespace {

vips::VImage sample_at(const vips::VImage &frame, const vips::VImage &coordinates, Kernel kernel)
{
	return frame.mapim((coordinates + nearest_bias(kernel)).cast(VIPS_FORMAT_FLOAT), vips::VImage::option()
										  ->set("interpolate", interpolator(kernel))
										  ->set("extend", VIPS_EXTEND_COPY)
										  ->set("premultiplied", true));
}

} // namespace

vips::VImage warp_to_output(const vips::VImage &frame, const FrameMap &map, const OutputGeometry &g, Kernel kernel,
	const std::optional<ChannelTransforms> &tca)
{
	// Every band through `through` after the map's own matrix (or its reference -> frame one, with a field).
	auto warp_band = [&](const vips::VImage &bands, const Matrix3 &through) {
		if (map.rigid())
			return warp_to_grid(bands, (through * map.matrix()).normalised(), g.width, g.height, kernel);
		return warp_displaced(bands, map.output_to_reference(), *map.field(), through * map.reference_to_frame(), g.width, g.height,
			kernel);
	};
	if (!tca || frame.bands() < 3)
		return warp_band(frame, Matrix3::identity());
	auto band = [&](int first, int n, const Matrix3 &through) {
		return warp_band(frame.extract_band(first, vips::VImage::option()->set("n", n)), through);
	};
	std::vector<vips::VImage> bands{band(0, 1, tca->red), band(1, 1, Matrix3::identity()), band(2, 1, tca->blue)};
	if (frame.bands() > 3)
		bands.push_back(band(3, frame.bands() - 3, Matrix3::identity()));
	return vips::VImage::bandjoin(bands);
}

vips::VImage warp_displaced(const vips::VImage &image, const Matrix3 &before, const DisplacementField &field, const Matrix3 &after,
	int width, int height, Kernel kernel)
{
	const vips::VImage p = map_points(vips::VImage::xyz(width, height).cast(VIPS_FORMAT_DOUBLE), before);
	return sample_at(image, map_points(p + displacement_at(p, field), after), kernel);
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
	return sample_at(frame, map_points(vips::VImage::xyz(width, height).cast(VIPS_FORMAT_DOUBLE), m), kernel);
}

std::pair<int, int> covered_span(const Matrix3 &m, int width, int height, bool affine, int y, int left, int right, double inset)
{
	auto covers = [&](int x) { return frame_covers(m, width, height, x, y, inset); };
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
	const double low = -0.5 + inset;
	for (const auto &[a, b, size] : limits) {
		const double high = size - 0.5 - inset;
		if (a == 0.0) {
			if (!(b >= low && b < high))
				return {left, left};
			continue;
		}
		const double t0 = (low - b) / a, t1 = (high - b) / a;
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

std::pair<int, int> covered_span(const FrameMap &m, int width, int height, int y, int left, int right)
{
	const Matrix3 &matrix = m.matrix();
	const bool affine = matrix.is_affine();
	if (m.rigid())
		return covered_span(matrix, width, height, affine, y, left, right);
	// Every pixel the field can bring inside is within its frame reach of the frame for the matrix alone.
	return covered_span(matrix, width, height, affine, y, left, right, -(m.frame_reach() + 1e-6));
}

Rect frame_extent(const FrameMap &m, int width, int height)
{
	const Rect e = frame_extent(m.matrix(), width, height);
	if (m.rigid())
		return e;
	const int grow = static_cast<int>(std::ceil(m.reach())) + 1;
	return Rect{e.left - grow, e.top - grow, e.width + 2 * grow, e.height + 2 * grow};
}

Rect frame_footprint(const FrameMap &output_to_frame, int width, int height, const OutputGeometry &g)
{
	return frame_extent(output_to_frame, width, height).intersect(g.bounds());
}

} // namespace superstack
