// --mask-reduce: under the mask a moving subject comes from the reference alone; everywhere else the
// stack is bit-identical to the same run without it.
#include "stack_fixtures.hpp"
#include "temp_dir.hpp"

#include "superstack/stack.hpp"
#include "superstack/synth.hpp"

#include <doctest/doctest.h>
#include <fmt/core.h>

#include <cmath>

using namespace superstack;
using namespace superstack::test;
namespace fs = std::filesystem;

TEST_CASE("mask-reduce: the masked subject is the reference's alone; unmasked pixels are unchanged to the bit")
{
	TempDir dir("mask-reduce");
	NoProgress quiet;
	SynthOptions s;
	s.frames = 8;
	s.width = 160, s.height = 120;
	s.noise = 0.01;
	s.moving_object = 0.04;
	s.moving_texture = true;
	s.out_dir = dir / "burst";
	const SynthResult burst = synthesize(s, quiet);
	// The mask: the subject's place in the reference, grown by 2 px.
	const ObjectPlace place = *moving_object_place(s, 0, s.width, s.height);
	const int x0 = static_cast<int>(std::floor(place.x0)) - 2, y0 = static_cast<int>(std::floor(place.y0)) - 2;
	const int x1 = static_cast<int>(std::ceil(place.x0 + place.width)) + 2, y1 = static_cast<int>(std::ceil(place.y0 + place.height)) + 2;
	const vips::VImage xyz = vips::VImage::xyz(s.width, s.height);
	const vips::VImage x = xyz.extract_band(0), y = xyz.extract_band(1);
	((x >= x0) & (x < x1) & (y >= y0) & (y < y1)).pngsave((dir / "mask.png").c_str());

	auto run = [&](bool reduce, bool reference_only, const std::string &name) {
		RunOptions o;
		for (const auto &f : burst.frames)
			o.inputs.push_back(f.string());
		if (reference_only)
			o.inputs = {burst.frames[0].string()};
		o.out_dir = dir / name;
		o.transforms = burst.transforms;
		o.mask = dir / "mask.png";
		o.mask_reduce = reduce;
		o.statistics = {Statistic::mean, Statistic::median};
		o.save.depth = Depth::f32;
		run_stack(o, quiet);
		return std::pair{read_all(vips::VImage::new_from_file((o.out_dir / "mean.tif").c_str())),
			read_all(vips::VImage::new_from_file((o.out_dir / "median.tif").c_str()))};
	};
	const auto plain = run(false, false, "plain"), masked = run(true, false, "masked"), alone = run(false, true, "alone");
	// Output pixel X (scale 2) samples reference (X + 0.5) / 2 - 0.5: masked when that pixel's nearest
	// reference pixel is. Compare away from the mask's edge (2 output px).
	const int w = 2 * s.width, h = 2 * s.height;
	int inside = 0, outside = 0;
	double inside_diff = 0, outside_diff = 0, subject_gone = 0;
	for (int oy = 0; oy < h; oy++)
		for (int ox = 0; ox < w; ox++) {
			const double rx = (ox + 0.5) / 2 - 0.5, ry = (oy + 0.5) / 2 - 0.5;
			const bool in = rx >= x0 + 0.5 && rx <= x1 - 1.5 && ry >= y0 + 0.5 && ry <= y1 - 1.5;
			const bool out = rx < x0 - 1.5 || rx > x1 + 0.5 || ry < y0 - 1.5 || ry > y1 + 0.5;
			for (int b = 0; b < 3; b++) {
				const std::size_t i = (static_cast<std::size_t>(oy) * w + ox) * 3 + b;
				if (in) {
					inside++;
					inside_diff = std::max({inside_diff, static_cast<double>(std::fabs(masked.first[i] - alone.first[i])),
						static_cast<double>(std::fabs(masked.second[i] - alone.second[i]))});
					subject_gone = std::max(subject_gone, static_cast<double>(std::fabs(plain.second[i] - alone.second[i])));
				} else if (out) {
					outside++;
					outside_diff = std::max({outside_diff, static_cast<double>(std::fabs(masked.first[i] - plain.first[i])),
						static_cast<double>(std::fabs(masked.second[i] - plain.second[i]))});
				}
			}
		}
	MESSAGE(fmt::format("{} masked and {} unmasked samples compared; without --mask-reduce the median under the mask "
			    "differs from the reference by up to {:.3f}",
		inside, outside, subject_gone));
	CHECK(inside > 1000);
	CHECK(outside > 100000);
	CHECK(inside_diff == 0);
	CHECK(outside_diff == 0);
	CHECK(subject_gone > 0.2); // the stack without it loses the subject: the case --mask-reduce is for
}
