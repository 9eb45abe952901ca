// Drizzle: the exact overlap of a drop with an output pixel against known areas, one frame's drops
// against a brute-force version that measures each overlap by sampling, the reducer's drizzle
// against plain copies, and --save-weights against weight sums known exactly. (The targets on a
// synthetic burst, robust drizzle against plain drizzle there and against a brute-force version:
// test_kernel_merge.cpp; robust drizzle's ghosts: test_robust.cpp.)
#include "stack_fixtures.hpp"
#include "temp_dir.hpp"

#include "src/reduce/drizzle.hpp"

#include "superstack/error.hpp"
#include "superstack/stack.hpp"

#include <doctest/doctest.h>
#include <fmt/core.h>

#include <cmath>
#include <random>

using namespace superstack;
using namespace superstack::test;
namespace fs = std::filesystem;

TEST_CASE("drizzle: the overlap of a polygon with a pixel square is its exact area")
{
	auto square = [](double cx, double cy, double side) {
		const double h = side / 2;
		return std::array<Point, 4>{Point{cx - h, cy - h}, Point{cx + h, cy - h}, Point{cx + h, cy + h}, Point{cx - h, cy + h}};
	};
	CHECK(drizzle::overlap(square(3, 4, 1).data(), 4, 3, 4) == doctest::Approx(1.0).epsilon(1e-12));
	CHECK(drizzle::overlap(square(3.5, 4.25, 1).data(), 4, 3, 4) == doctest::Approx(0.5 * 0.75).epsilon(1e-12));
	CHECK(drizzle::overlap(square(3, 4, 0.4).data(), 4, 3, 4) == doctest::Approx(0.16).epsilon(1e-12));
	CHECK(drizzle::overlap(square(5, 4, 1).data(), 4, 3, 4) == 0.0);
	// A diamond (the unit square turned 45 degrees) centred on a pixel corner: a quarter of it.
	const double r = std::sqrt(0.5);
	const Point diamond[4] = {{2.5 + r, 3.5}, {2.5, 3.5 + r}, {2.5 - r, 3.5}, {2.5, 3.5 - r}};
	CHECK(drizzle::overlap(diamond, 4, 3, 4) == doctest::Approx(0.25).epsilon(1e-12));
	// Orientation does not matter.
	const Point reversed[4] = {diamond[3], diamond[2], diamond[1], diamond[0]};
	CHECK(drizzle::overlap(reversed, 4, 3, 4) == doctest::Approx(0.25).epsilon(1e-12));
}

TEST_CASE("drizzle: one frame's drops match a brute-force sampling of every overlap")
{
	std::mt19937 rng(7);
	std::uniform_real_distribution<double> u(-1, 1);
	const int w = 9, h = 7, bands = 2;
	std::vector<float> pixels(static_cast<std::size_t>(w) * h * bands);
	for (auto &v : pixels)
		v = static_cast<float>(0.5 + 0.5 * u(rng));
	for (const double pixfrac : {0.5, 0.8}) {
		for (int trial = 0; trial < 3; trial++) {
			// Frame -> output: a similarity at scale 2, or a mild homography.
			Matrix3 m = Matrix3::similarity(10 * u(rng), 2.0, {4, 3}, 6 + u(rng), 5 + u(rng));
			if (trial == 2)
				m = Matrix3({{{2.0, 0.1, 6.3}, {-0.05, 1.9, 5.2}, {0.004, -0.003, 1}}}) ;
			CAPTURE(pixfrac);
			CAPTURE(trial);
			const Rect tile{0, 0, 30, 26};
			const std::size_t px = static_cast<std::size_t>(tile.width) * tile.height;
			std::vector<double> value(px * bands, 0.0), weight(px, 0.0);
			drizzle::Block b;
			b.pixels = pixels.data(), b.width = w, b.height = h, b.stride = static_cast<std::size_t>(w) * bands, b.bands = bands;
			drizzle::drop_block(b, m, pixfrac, tile, value.data(), weight.data());
			// Brute force: sample each output pixel on a 160 x 160 grid, map each sample back into the
			// frame, and credit the input pixel whose drop (an axis-aligned square there) holds it.
			const Matrix3 back = m.inverse();
			constexpr int n = 160;
			double worst = 0, total = 0;
			for (int y = 0; y < tile.height; y++)
				for (int x = 0; x < tile.width; x++) {
					double bw = 0, bv[bands] = {};
					for (int j = 0; j < n; j++)
						for (int i = 0; i < n; i++) {
							const Point f = back.apply({x - 0.5 + (i + 0.5) / n, y - 0.5 + (j + 0.5) / n});
							const int fi = static_cast<int>(std::lround(f.x)), fj = static_cast<int>(std::lround(f.y));
							if (fi < 0 || fj < 0 || fi >= w || fj >= h)
								continue;
							if (std::abs(f.x - fi) > pixfrac / 2 || std::abs(f.y - fj) > pixfrac / 2)
								continue;
							bw += 1.0 / (n * n);
							for (int k = 0; k < bands; k++)
								bv[k] += pixels[(static_cast<std::size_t>(fj) * w + fi) * bands + k] / (n * n);
						}
					const std::size_t p = static_cast<std::size_t>(y) * tile.width + x;
					worst = std::max(worst, std::abs(weight[p] - bw));
					for (int k = 0; k < bands; k++)
						worst = std::max(worst, std::abs(value[p * bands + k] - bv[k]));
					total += weight[p];
				}
			CHECK(worst < 0.01); // sampling at 1/160 px: edges cost up to about 4 x 1/160 of a pixel
			CHECK(total > 0.5 * w * h * pixfrac * pixfrac * 4); // most drops landed in the tile
		}
	}
}

TEST_CASE("drizzle: pixfrac 1 on the identity copies the frames; a drop below a tenth of a pixel gives no sample")
{
	// Scale 1, identity transforms, pixfrac 1: each drop is exactly its output pixel.
	std::mt19937 rng(3);
	const OutputGeometry g = OutputGeometry::for_reference(23, 17, 1.0);
	std::vector<MemoryFrame> memory{random_frame(rng, 23, 17, 3, false, 0, 0), random_frame(rng, 23, 17, 3, false, 0, 0)};
	std::vector<StackFrame> frames;
	for (const auto &m : memory)
		frames.push_back(to_stack_frame(m, g));
	ReduceSpec spec;
	spec.geometry = g;
	spec.colour_bands = 3;
	spec.statistics = {Statistic::mean, Statistic::median};
	spec.merge = Merge::drizzle;
	spec.pixfrac = 1.0;
	spec.coverage = true;
	BudgetRequest request;
	request.memory_bytes = 64ull << 20;
	request.frames = 2;
	describe_reduction(spec, request);
	request.output_width = g.width;
	spec.plan = plan_memory(request);
	const vips::VImage out = reduce_stack(frames, spec);
	std::size_t bytes = 0;
	float *mem = static_cast<float *>(out.write_to_memory(&bytes));
	double worst = 0;
	for (int y = 0; y < g.height; y++)
		for (int x = 0; x < g.width; x++)
			for (int b = 0; b < 3; b++) {
				const float *o = mem + (static_cast<std::size_t>(y) * g.width + x) * out.bands();
				const double mean = 0.5 * (memory[0].value(x, y, b) + memory[1].value(x, y, b));
				worst = std::max({worst, std::abs(o[b] - mean), std::abs(o[3 + b] - mean)});
				CHECK(o[6] == 2.0f);
			}
	g_free(mem);
	CHECK(worst < 1e-6);

	// One frame at scale 2, pixfrac 0.3: each drop (0.6 output px) covers 0.09 of each of the four
	// output pixels around its centre, below the tenth a sample needs: no pixel has a sample
	// (coverage 0), and every statistic falls back to the drizzled mean, the input pixel itself.
	{
		const OutputGeometry g2 = OutputGeometry::for_reference(23, 17, 2.0);
		std::vector<StackFrame> one{to_stack_frame(memory[0], g2)};
		one[0].output_to_frame = output_to_frame(Matrix3::identity(), g2);
		one[0].footprint = frame_footprint(one[0].output_to_frame, 23, 17, g2);
		ReduceSpec sparse = spec;
		sparse.geometry = g2;
		sparse.pixfrac = 0.3;
		const vips::VImage o2 = reduce_stack(one, sparse);
		float *m2 = static_cast<float *>(o2.write_to_memory(&bytes));
		double off = 0;
		int uncovered = 0;
		for (int y = 0; y < g2.height; y++)
			for (int x = 0; x < g2.width; x++) {
				const float *o = m2 + (static_cast<std::size_t>(y) * g2.width + x) * o2.bands();
				uncovered += o[6] == 0.0f;
				for (int b = 0; b < 3; b++)
					off = std::max({off, static_cast<double>(std::abs(o[b] - memory[0].value(x / 2, y / 2, b))),
						static_cast<double>(std::abs(o[3 + b] - memory[0].value(x / 2, y / 2, b)))});
			}
		g_free(m2);
		CHECK(uncovered == g2.width * g2.height);
		CHECK(off < 1e-6);
	}
}

TEST_CASE("--save-weights: weights.tif is the drizzle weight sum, known exactly for whole and shifted frames")
{
	// Three 40 x 30 RGB frames of one random scene: two on the reference, the third shifted by one
	// frame pixel (its content too, so every frame agrees with the consensus: robustness 1).
	TempDir dir("weights");
	std::mt19937 rng(17);
	const int w = 40, h = 30;
	const MemoryFrame scene = random_frame(rng, w + 1, h, 3, false, 0, 0);
	TransformSet set;
	RunOptions o;
	for (int i = 0; i < 3; i++) {
		const int shift = i == 2 ? 1 : 0; // reference (x, y) -> frame (x + 1, y)
		std::vector<float> pixels;
		for (int y = 0; y < h; y++)
			for (int x = 0; x < w; x++)
				for (int b = 0; b < 3; b++)
					pixels.push_back(scene.value(x + 1 - shift, y, b));
		const std::string name = fmt::format("f{}.tif", i);
		(image_from(pixels, w, h, 3, VIPS_FORMAT_FLOAT) * 65535.0).round(VIPS_OPERATION_ROUND_RINT).cast(VIPS_FORMAT_USHORT)
			.copy(vips::VImage::option()->set("interpretation", VIPS_INTERPRETATION_RGB16))
			.tiffsave((dir / name).c_str());
		set.frames.push_back({name, Matrix3::translation(shift, 0)});
		o.inputs.push_back((dir / name).string());
	}
	write_transforms(dir / "t.json", set);
	o.transforms = dir / "t.json";
	o.statistics = {Statistic::mean};
	o.merge = Merge::drizzle;
	o.normalize = Normalize::none;
	o.linear = LinearLight::off;
	o.save_weights = true;
	NoProgress quiet;
	// At scale 2 a frame pixel's drop at pixfrac 1 is exactly its 2 x 2 output pixels (weight 1 each);
	// at pixfrac 0.5 it is one output pixel's area across the corner of four (0.25 each). The shifted
	// frame does not reach the last reference column (output columns 78 and 79).
	for (const double pixfrac : {1.0, 0.5}) {
		CAPTURE(pixfrac);
		o.pixfrac = pixfrac;
		o.out_dir = dir / fmt::format("out{}", pixfrac);
		run_stack(o, quiet);
		const vips::VImage weights = vips::VImage::new_from_file((o.out_dir / "weights.tif").c_str());
		REQUIRE(weights.format() == VIPS_FORMAT_FLOAT);
		REQUIRE(weights.bands() == 1);
		REQUIRE(weights.width() == 2 * w);
		const std::vector<float> got = read_all(weights);
		const double each = pixfrac * pixfrac;
		double worst = 0;
		for (int y = 0; y < 2 * h; y++)
			for (int x = 0; x < 2 * w; x++)
				worst = std::max(worst, std::abs(got[static_cast<std::size_t>(y) * 2 * w + x] - each * (x >= 2 * w - 2 ? 2 : 3)));
		CHECK(worst < 1e-6);
	}
	// The other outputs do not change with --save-weights (16-bit: rounded the same way).
	o.save_weights = false;
	const fs::path with = o.out_dir;
	o.out_dir = dir / "without";
	run_stack(o, quiet);
	const vips::VImage a = vips::VImage::new_from_file((with / "mean.tif").c_str());
	const vips::VImage b = vips::VImage::new_from_file((o.out_dir / "mean.tif").c_str());
	CHECK(a.format() == VIPS_FORMAT_USHORT);
	CHECK(b.format() == VIPS_FORMAT_USHORT);
	CHECK(read_all(a.cast(VIPS_FORMAT_FLOAT)) == read_all(b.cast(VIPS_FORMAT_FLOAT)));
	CHECK_FALSE(fs::exists(o.out_dir / "weights.tif"));
	// interpolate has no weights.
	o.save_weights = true;
	o.merge = Merge::interpolate;
	CHECK_THROWS_AS(run_stack(o, quiet), Error);
}
