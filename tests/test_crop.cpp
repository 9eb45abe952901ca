// Crop: the largest rectangle every frame covers against a brute-force search on the pixel grid, the
// union's bounds likewise, and runs in each mode (sizes, alpha where nothing covers, coverage).
#include "stack_fixtures.hpp"
#include "synth_fixtures.hpp"
#include "temp_dir.hpp"

#include "superstack/crop.hpp"
#include "superstack/stack.hpp"
#include "superstack/synth.hpp"
#include "superstack/warp.hpp"

#include <doctest/doctest.h>
#include <fmt/core.h>

#include <random>

using namespace superstack;
using namespace superstack::test;
namespace fs = std::filesystem;

namespace {

// Random frames on the grid of a 40 x 30 reference at scale 1.5: similarities, and some homographies.
std::vector<FrameArea> random_areas(std::mt19937 &rng, const OutputGeometry &g, int n, bool projective)
{
	std::uniform_real_distribution<double> u(-1, 1);
	std::vector<FrameArea> areas{{output_to_frame(Matrix3::identity(), g), 40, 30}};
	for (int i = 1; i < n; i++) {
		Matrix3 m = Matrix3::similarity(8 * u(rng), 1 + 0.05 * u(rng), {20, 15}, 6 * u(rng), 5 * u(rng));
		if (projective)
			m = Matrix3({{{1, 0, 0}, {0, 1, 0}, {0.002 * u(rng), 0.002 * u(rng), 1}}}) * m;
		areas.push_back({output_to_frame(m, g), 40 + i % 3, 30 - i % 2});
	}
	return areas;
}

bool covered_by_all(const std::vector<FrameArea> &areas, int x, int y)
{
	for (const auto &a : areas)
		if (!frame_covers(a.output_to_frame, a.width, a.height, x, y))
			return false;
	return true;
}

} // namespace

TEST_CASE("crop common: the largest covered rectangle equals a brute-force search over every rectangle of the grid")
{
	std::mt19937 rng(17);
	const OutputGeometry g = OutputGeometry::for_reference(40, 30, 1.5);
	const int w = g.width, h = g.height;
	int checked = 0;
	for (int trial = 0; trial < 24; trial++) {
		CAPTURE(trial);
		const auto areas = random_areas(rng, g, 2 + trial % 5, trial % 3 == 2);
		// Brute force: every rectangle, its covered count from a summed-area table.
		std::vector<int> sum((w + 1) * (h + 1), 0);
		for (int y = 0; y < h; y++)
			for (int x = 0; x < w; x++)
				sum[(y + 1) * (w + 1) + x + 1] = covered_by_all(areas, x, y) + sum[y * (w + 1) + x + 1] +
					sum[(y + 1) * (w + 1) + x] - sum[y * (w + 1) + x];
		long long best = 0;
		for (int y0 = 0; y0 < h; y0++)
			for (int y1 = y0 + 1; y1 <= h; y1++)
				for (int x0 = 0; x0 < w; x0++)
					for (int x1 = x0 + 1; x1 <= w; x1++) {
						const int area = (x1 - x0) * (y1 - y0);
						if (area <= best)
							continue;
						const int in = sum[y1 * (w + 1) + x1] - sum[y0 * (w + 1) + x1] - sum[y1 * (w + 1) + x0] + sum[y0 * (w + 1) + x0];
						if (in == area)
							best = area;
					}
		const Rect r = crop_geometry(Crop::common, g, areas).bounds();
		const OutputGeometry cropped = crop_geometry(Crop::common, g, areas);
		CHECK(static_cast<long long>(r.width) * r.height == best);
		// And every pixel of it is covered by every frame.
		int uncovered = 0;
		for (int y = 0; y < cropped.height; y++)
			for (int x = 0; x < cropped.width; x++)
				uncovered += !covered_by_all(areas, x + cropped.left, y + cropped.top);
		CHECK(uncovered == 0);
		checked++;
	}
	CHECK(checked == 24);
}

TEST_CASE("crop none: the union's bounds are the bounding box of every pixel some frame covers")
{
	std::mt19937 rng(23);
	const OutputGeometry g = OutputGeometry::for_reference(40, 30, 1.5);
	for (int trial = 0; trial < 12; trial++) {
		CAPTURE(trial);
		const auto areas = random_areas(rng, g, 2 + trial % 4, trial % 2 == 1);
		int l = 1 << 20, t = l, r = -l, b = -l;
		for (int y = -40; y < g.height + 40; y++)
			for (int x = -40; x < g.width + 40; x++)
				for (const auto &a : areas)
					if (frame_covers(a.output_to_frame, a.width, a.height, x, y)) {
						l = std::min(l, x), r = std::max(r, x + 1), t = std::min(t, y), b = std::max(b, y + 1);
						break;
					}
		CHECK(union_bounds(areas) == Rect{l, t, r - l, b - t});
	}
}

TEST_CASE("crop: runs in every mode -- sizes, full coverage for common, alpha exactly where nothing covers for none")
{
	TempDir dir("crop");
	NoProgress quiet;
	SynthOptions s;
	s.frames = 5;
	s.width = 120, s.height = 90;
	s.max_shift = 8;
	s.max_rotation = 3;
	s.noise = 0.01;
	s.out_dir = dir / "burst";
	const SynthResult burst = synthesize(s, quiet);
	auto run = [&](Crop crop) {
		RunOptions o = burst_run_options(burst, dir / fmt::format("out-{}", crop_name(crop)));
		o.statistics = {Statistic::mean, Statistic::median};
		o.save_coverage = true;
		o.crop = crop;
		return run_stack(o, quiet);
	};
	const RunResult reference = run(Crop::reference), common = run(Crop::common), none = run(Crop::none);
	CHECK(reference.geometry.width == 240);
	CHECK(reference.geometry.height == 180);
	auto image = [&](const RunResult &r, const char *name) {
		return vips::VImage::new_from_file((r.outputs.front().parent_path() / name).c_str());
	};
	// common: inside the reference's grid, every pixel covered by all 5 frames, and the same values as
	// the reference crop's over that window (the same samples).
	const OutputGeometry &c = common.geometry;
	MESSAGE(fmt::format("common {}x{} at ({}, {}); none {}x{} at ({}, {})", c.width, c.height, c.left, c.top, none.geometry.width,
		none.geometry.height, none.geometry.left, none.geometry.top));
	CHECK(c.left >= 0);
	CHECK(c.top >= 0);
	CHECK(c.width * c.height < 240 * 180);
	CHECK(c.width * c.height > 180 * 130);
	CHECK(image(common, "coverage.tif").min() == 5);
	CHECK(image(common, "mean.tif").bands() == 3);
	const vips::VImage window = image(reference, "mean.tif").extract_area(c.left, c.top, c.width, c.height);
	CHECK((window - image(common, "mean.tif")).abs().max() == 0);
	// none: holds the reference's area and more, an alpha band, 0 exactly where the count is 0.
	const OutputGeometry &n = none.geometry;
	CHECK(n.left <= 0);
	CHECK(n.top <= 0);
	CHECK(n.left + n.width >= 240);
	CHECK(n.top + n.height >= 180);
	CHECK(n.width * n.height > 240 * 180);
	const vips::VImage mean = image(none, "mean.tif"), count = image(none, "coverage.tif");
	REQUIRE(mean.bands() == 4);
	CHECK(count.width() == n.width);
	CHECK(count.min() == 0);
	CHECK(((mean.extract_band(3) == 0) != (count == 0)).max() == 0);
	CHECK(((mean.extract_band(3) == 65535) != (count > 0)).max() == 0);
	// The reference's window of it holds the reference crop's pixels.
	const vips::VImage inner = mean.extract_area(-n.left, -n.top, 240, 180).extract_band(0, vips::VImage::option()->set("n", 3));
	CHECK((inner - image(reference, "mean.tif")).abs().max() == 0);
}
