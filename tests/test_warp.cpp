// The warp's conventions against analytic results: pixel centres at integers, the output grid at
// ((X+0.5)/S-0.5), one resampling, and the projective path agreeing with the affine one.
#include "stack_fixtures.hpp"
#include "superstack/lanczos.hpp"
#include "superstack/warp.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <vector>

using namespace superstack;

namespace {

// f(x, y) = a x + b y + c as a float image: bilinear interpolation reproduces it exactly.
vips::VImage ramp(int w, int h, double a, double b, double c)
{
	vips::VImage xy = vips::VImage::xyz(w, h).cast(VIPS_FORMAT_FLOAT);
	return (xy.extract_band(0) * a + xy.extract_band(1) * b + c).cast(VIPS_FORMAT_FLOAT);
}

std::vector<float> pixels(const vips::VImage &image)
{
	vips::VImage m = image.copy_memory();
	const auto *p = static_cast<const float *>(m.data());
	return {p, p + static_cast<std::size_t>(m.width()) * m.height() * m.bands()};
}

} // namespace

TEST_CASE("output grid: pixel X at scale S sits at reference (X+0.5)/S-0.5")
{
	const OutputGeometry g = OutputGeometry::for_reference(100, 50, 2.0);
	CHECK(g.width == 200);
	CHECK(g.height == 100);
	const Point p = g.output_to_reference().apply({0, 0});
	CHECK(p.x == doctest::Approx(-0.25));
	CHECK(g.output_to_reference().apply({199, 99}).x == doctest::Approx(99.25));
	const OutputGeometry g3 = OutputGeometry::for_reference(10, 10, 1.5);
	CHECK(g3.width == 15);
}

TEST_CASE("linear warp of a ramp is exact: translation, scale and rotation land where the matrix says")
{
	const int w = 64, h = 48;
	const double a = 0.013, b = -0.007, c = 0.5;
	const vips::VImage frame = ramp(w, h, a, b, c);
	for (double s : {1.0, 2.0, 3.0}) {
		const OutputGeometry g = OutputGeometry::for_reference(w, h, s);
		const Matrix3 ref_to_frame = Matrix3::similarity(1.5, 1.01, {w / 2.0, h / 2.0}, 2.3, -1.7);
		const Matrix3 m = output_to_frame(ref_to_frame, g);
		const auto out = pixels(warp_to_output(frame, m, g, Kernel::linear));
		int checked = 0;
		double worst = 0;
		for (int y = 0; y < g.height; y++)
			for (int x = 0; x < g.width; x++) {
				const Point p = m.apply({static_cast<double>(x), static_cast<double>(y)});
				if (p.x < 1 || p.y < 1 || p.x > w - 2 || p.y > h - 2)
					continue; // away from the edge, where extension bends the ramp
				worst = std::max(worst, std::fabs(out[static_cast<std::size_t>(y) * g.width + x] - (a * p.x + b * p.y + c)));
				checked++;
			}
		CAPTURE(s);
		CHECK(checked > w * h / 2);
		// libvips' bilinear uses 1/VIPS_TRANSFORM_SCALE subpixel steps; float samples.
		CHECK(worst < 2e-4);
	}
}

TEST_CASE("lanczos3 kernel: interpolates at integers, keeps constants, and follows a smooth ramp")
{
	CHECK(lanczos3(0) == 1.0);
	CHECK(std::fabs(lanczos3(1)) < 1e-12);
	CHECK(std::fabs(lanczos3(2.5)) > 0.0);
	CHECK(lanczos3(3.0) == 0.0);
	const int w = 40, h = 30;
	const OutputGeometry g = OutputGeometry::for_reference(w, h, 2.0);
	const Matrix3 m = output_to_frame(Matrix3::translation(0.37, -0.21), g);
	const auto flat = pixels(warp_to_output(vips::VImage::black(w, h).cast(VIPS_FORMAT_FLOAT) + 0.6, m, g, Kernel::lanczos3));
	for (float v : flat)
		REQUIRE(std::fabs(v - 0.6f) < 1e-6);
	const double a = 0.01, b = 0.004;
	const auto out = pixels(warp_to_output(ramp(w, h, a, b, 0.2), m, g, Kernel::lanczos3));
	double worst = 0;
	for (int y = 0; y < g.height; y++)
		for (int x = 0; x < g.width; x++) {
			const Point p = m.apply({static_cast<double>(x), static_cast<double>(y)});
			if (p.x < 4 || p.y < 4 || p.x > w - 5 || p.y > h - 5)
				continue;
			worst = std::max(worst, std::fabs(out[static_cast<std::size_t>(y) * g.width + x] - (a * p.x + b * p.y + 0.2)));
		}
	// A half-pixel error in the convention would be 0.5 * a = 5e-3.
	CHECK(worst < 5e-4);
}

TEST_CASE("lanczos3_at, the aligner's inline stencil, is the normalised Lanczos-3 sum at any place, for 1 and 2 bands")
{
	// Brute force in double: sum over the 6x6 pixels about (x, y) of L(x - i) L(y - j) v(i, j), each
	// axis's weights normalised to sum to 1, against the vectorised float stencil on random pixels.
	const int w = 23, h = 17;
	std::vector<float> data(static_cast<std::size_t>(w) * h * 2);
	std::uint32_t state = 12345;
	for (float &v : data) {
		state = state * 1664525u + 1013904223u;
		v = static_cast<float>(state >> 8) / 16777216.0f;
	}
	const LanczosWeights &weights = lanczos3_weights();
	double worst[2] = {0, 0}, worst_alpha = 0;
	int checked = 0;
	for (int s = 0; s < 400; s++) {
		state = state * 1664525u + 1013904223u;
		const double x = 2 + (w - 6) * (static_cast<double>(state >> 8) / 16777216.0);
		state = state * 1664525u + 1013904223u;
		const double y = 2 + (h - 6) * (static_cast<double>(state >> 8) / 16777216.0);
		const int ix = static_cast<int>(std::floor(x)), iy = static_cast<int>(std::floor(y));
		double truth[2] = {0, 0}, sx = 0, sy = 0;
		for (int k = -2; k <= 3; k++)
			sx += lanczos3(x - (ix + k)), sy += lanczos3(y - (iy + k));
		for (int j = -2; j <= 3; j++)
			for (int i = -2; i <= 3; i++) {
				const double weight = lanczos3(x - (ix + i)) * lanczos3(y - (iy + j)) / (sx * sy);
				const std::size_t at = static_cast<std::size_t>(iy + j) * w + ix + i;
				truth[0] += weight * data[at];
				truth[1] += weight * data[2 * at + 1];
			}
		float one = 0, two[2] = {0, 0};
		lanczos3_at<1>(weights, data.data(), w, x, y, &one);
		lanczos3_at<2>(weights, data.data(), 2 * static_cast<std::size_t>(w), x, y, two);
		// The 2-band buffer's band 0 at pixel p is data[2p]: its own brute force.
		double truth_band0 = 0;
		for (int j = -2; j <= 3; j++)
			for (int i = -2; i <= 3; i++)
				truth_band0 += lanczos3(x - (ix + i)) * lanczos3(y - (iy + j)) / (sx * sy) *
					data[2 * (static_cast<std::size_t>(iy + j) * w + ix + i)];
		worst[0] = std::max(worst[0], std::fabs(one - truth[0]));
		worst[1] = std::max(worst[1], std::fabs(two[0] - truth_band0));
		worst_alpha = std::max(worst_alpha, std::fabs(two[1] - truth[1]));
		checked++;
	}
	CHECK(checked == 400);
	// The table's 1/1024 px steps move a weight by up to about 1.6e-3 of its slope; a tap in the wrong
	// place or a band mixed up errs by ~0.1 on these values.
	CHECK(worst[0] < 2e-3);
	CHECK(worst[1] < 2e-3);
	CHECK(worst_alpha < 2e-3);
	// And the same floats, up to summation order, as the libvips interpolator the warps use.
	const vips::VImage image = test::image_from(std::vector<float>(data.begin(), data.begin() + w * h), w, h, 1, VIPS_FORMAT_FLOAT);
	const OutputGeometry g = OutputGeometry::for_reference(w, h, 1.0);
	const Matrix3 shift = Matrix3::translation(0.3125, -0.4375);
	const auto warped = pixels(warp_to_output(image, shift, g, Kernel::lanczos3));
	double worst_warp = 0;
	for (int y = 3; y < h - 4; y++)
		for (int x = 3; x < w - 4; x++) {
			float v = 0;
			const Point p = shift.apply({static_cast<double>(x), static_cast<double>(y)});
			lanczos3_at<1>(weights, data.data(), w, p.x, p.y, &v);
			worst_warp = std::max(worst_warp, static_cast<double>(std::fabs(v - warped[static_cast<std::size_t>(y) * w + x])));
		}
	CHECK(worst_warp < 1e-6);
}

TEST_CASE("nearest picks the nearest pixel centre")
{
	std::vector<float> data{0, 1, 2, 3, 4, 5, 6, 7};
	vips::VImage row = test::image_from(data, 8, 1, 1, VIPS_FORMAT_FLOAT);
	const OutputGeometry g = OutputGeometry::for_reference(8, 1, 1.0);
	// Shift by +0.4: output x samples x + 0.4 -> nearest centre x. By +0.6: x + 1.
	auto a = pixels(warp_to_output(row, Matrix3::translation(0.4, 0), g, Kernel::nearest));
	auto b = pixels(warp_to_output(row, Matrix3::translation(0.6, 0), g, Kernel::nearest));
	for (int x = 0; x < 6; x++) {
		CHECK(a[x] == static_cast<float>(x));
		CHECK(b[x] == static_cast<float>(x + 1));
	}
}

TEST_CASE("projective warp agrees with the affine path on an affine matrix, and follows a homography")
{
	const int w = 48, h = 40;
	const vips::VImage frame = ramp(w, h, 0.01, 0.02, 0.1);
	const OutputGeometry g = OutputGeometry::for_reference(w, h, 2.0);
	const Matrix3 affine = output_to_frame(Matrix3::similarity(-2.0, 1.0, {24, 20}, 1.25, 0.5), g);
	// The same matrix with a negligible perspective term forces the mapim path.
	Matrix3::Rows rows = affine.rows();
	rows[2][0] = 1e-11;
	const Matrix3 projective(rows);
	REQUIRE_FALSE(projective.is_affine());
	const auto a = pixels(warp_to_output(frame, affine, g, Kernel::linear));
	const auto p = pixels(warp_to_output(frame, projective, g, Kernel::linear));
	double worst = 0;
	int compared = 0;
	for (int y = 0; y < g.height; y++)
		for (int x = 0; x < g.width; x++) {
			// Outside the frame the two paths extend differently; those pixels are never samples.
			const Point q = affine.apply({static_cast<double>(x), static_cast<double>(y)});
			if (q.x < 1 || q.y < 1 || q.x > w - 2 || q.y > h - 2)
				continue;
			const std::size_t i = static_cast<std::size_t>(y) * g.width + x;
			worst = std::max(worst, static_cast<double>(std::fabs(a[i] - p[i])));
			compared++;
		}
	CHECK(compared > w * h);
	CHECK(worst < 1e-3);

	const Matrix3 homography(Matrix3::Rows{{{1.0, 0.02, 1.0}, {0.01, 1.0, -0.5}, {2e-4, -1e-4, 1.0}}});
	const Matrix3 m = output_to_frame(homography, g);
	const auto out = pixels(warp_to_output(frame, m, g, Kernel::linear));
	double worst_h = 0;
	for (int y = 0; y < g.height; y++)
		for (int x = 0; x < g.width; x++) {
			const Point q = m.apply({static_cast<double>(x), static_cast<double>(y)});
			if (q.x < 1 || q.y < 1 || q.x > w - 2 || q.y > h - 2)
				continue;
			worst_h = std::max(worst_h, std::fabs(out[static_cast<std::size_t>(y) * g.width + x] - (0.01 * q.x + 0.02 * q.y + 0.1)));
		}
	CHECK(worst_h < 1e-3);
}

TEST_CASE("footprint holds every covered pixel")
{
	const OutputGeometry g = OutputGeometry::for_reference(50, 40, 2.0);
	const Matrix3 m = output_to_frame(Matrix3::similarity(7.0, 1.0, {25, 20}, 6.3, -4.1), g);
	const Rect fp = frame_footprint(m, 50, 40, g);
	int covered = 0;
	for (int y = 0; y < g.height; y++)
		for (int x = 0; x < g.width; x++)
			if (frame_covers(m, 50, 40, x, y)) {
				covered++;
				CHECK(x >= fp.left);
				CHECK(x < fp.right());
				CHECK(y >= fp.top);
				CHECK(y < fp.bottom());
			}
	CHECK(covered > 0);
	CHECK(fp.width < g.width + 1);
}

TEST_CASE("lanczos3 on 3 and 4 bands equals the 1-band path band by band")
{
	const int w = 37, h = 29;
	const OutputGeometry g = OutputGeometry::for_reference(w, h, 2.0);
	const Matrix3 m = output_to_frame(Matrix3::similarity(3.0, 1.02, {18, 14}, 0.37, -0.61), g);
	std::vector<vips::VImage> planes;
	for (int b = 0; b < 4; b++)
		planes.push_back(vips::VImage::gaussnoise(w, h, vips::VImage::option()->set("seed", 40 + b)
							->set("mean", 0.5)->set("sigma", 0.2))
					 .cast(VIPS_FORMAT_FLOAT));
	for (int bands : {3, 4}) {
		std::vector<vips::VImage> use(planes.begin(), planes.begin() + bands);
		const vips::VImage joined = vips::VImage::bandjoin(use).copy(
			vips::VImage::option()->set("interpretation", VIPS_INTERPRETATION_MULTIBAND));
		const auto all = pixels(warp_to_output(joined, m, g, Kernel::lanczos3));
		double worst = 0;
		for (int b = 0; b < bands; b++) {
			const auto one = pixels(warp_to_output(planes[b], m, g, Kernel::lanczos3));
			for (std::size_t i = 0; i < one.size(); i++)
				worst = std::max(worst, static_cast<double>(std::fabs(all[i * bands + b] - one[i])));
		}
		CAPTURE(bands);
		CHECK(worst < 1e-6);
	}
}
