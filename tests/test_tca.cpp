// Chromatic aberration: measured on a synthetic burst whose red and blue bands are magnified against
// green (the 1.0008 and 0.9993 about the centre), against the true magnifications; and the
// fringe that is left in the stack after the correction, measured by the same estimator on the result.
#include "temp_dir.hpp"

#include "superstack/stack.hpp"
#include "superstack/synth.hpp"
#include "superstack/tca.hpp"
#include "superstack/transform.hpp"

#include <doctest/doctest.h>
#include <fmt/core.h>

#include <algorithm>
#include <cmath>

using namespace superstack;
using namespace superstack::test;
namespace fs = std::filesystem;

namespace {

// The largest distance, over the frame's four corners, between two channel mappings.
double corner_error(const Matrix3 &a, const Matrix3 &b, int width, int height)
{
	double most = 0;
	for (const Point p : {Point{0, 0}, Point{width - 1.0, 0}, Point{0, height - 1.0}, Point{width - 1.0, height - 1.0}}) {
		const Point pa = a.apply(p), pb = b.apply(p);
		most = std::max(most, std::hypot(pa.x - pb.x, pa.y - pb.y));
	}
	return most;
}

// The chromatic aberration left in a stacked 16-bit RGB result, as the estimator sees it.
ChannelTransforms fringe_of(const fs::path &image)
{
	NoProgress quiet;
	const vips::VImage working = vips::VImage::new_from_file(image.c_str()).cast(VIPS_FORMAT_FLOAT) * (1.0 / 65535);
	const TcaEstimate e = estimate_tca(working, false, std::nullopt, 2, quiet);
	REQUIRE(e.channels);
	return *e.channels;
}

} // namespace

TEST_CASE("tca: red and blue magnifications measured to a hundredth of a pixel; the stack keeps no fringe")
{
	TempDir dir("tca");
	NoProgress quiet;
	SynthOptions s;
	s.out_dir = dir / "burst";
	s.frames = 4;
	s.noise = 0.01;
	s.max_shift = 20;
	s.max_rotation = 2;
	s.tca_red = 1.0008;
	s.tca_blue = 0.9993;
	s.seed = 4;
	const SynthResult burst = synthesize(s, quiet);
	const TransformSet truth = read_transforms(burst.transforms);
	REQUIRE(truth.tca);
	// What is to be corrected: 0.32 and 0.28 px at the corners.
	const Matrix3 none = Matrix3::identity();
	CHECK(corner_error(truth.tca->red, none, 640, 480) == doctest::Approx(0.0008 * std::hypot(319.5, 239.5)).epsilon(1e-6));

	AlignRunOptions a;
	for (const auto &f : burst.frames)
		a.inputs.push_back(f.string());
	a.output = dir / "t.json";
	a.tca = true;
	const AlignRunResult aligned = align_stack(a, quiet);
	REQUIRE(aligned.transforms.tca);
	const double red = corner_error(aligned.transforms.tca->red, truth.tca->red, 640, 480);
	const double blue = corner_error(aligned.transforms.tca->blue, truth.tca->blue, 640, 480);
	MESSAGE(fmt::format("tca estimate: red {:.4f} px, blue {:.4f} px from the truth at the corners", red, blue));
	CHECK(red < 0.05);
	CHECK(blue < 0.05);
	// Written to the report and read back.
	const TransformSet report = read_transforms(dir / "t.json");
	REQUIRE(report.tca);
	CHECK(corner_error(report.tca->red, aligned.transforms.tca->red, 640, 480) < 1e-9);

	// The stack, at scale 1 (the frame's own pixels), with and without the correction.
	auto stack = [&](bool tca, const std::string &name) {
		RunOptions o;
		o.inputs = a.inputs;
		o.out_dir = dir / name;
		o.transforms = dir / "t.json";
		o.statistics = {Statistic::mean};
		o.scale = 1;
		if (!tca) {
			TransformSet plain = report;
			plain.tca.reset();
			write_transforms(dir / "plain.json", plain);
			o.transforms = dir / "plain.json";
		}
		run_stack(o, quiet);
		return fringe_of(dir / name / "mean.tif");
	};
	const ChannelTransforms before = stack(false, "plain"), after = stack(true, "corrected");
	const double fringe_before = std::max(corner_error(before.red, none, 640, 480), corner_error(before.blue, none, 640, 480));
	const double fringe_after = std::max(corner_error(after.red, none, 640, 480), corner_error(after.blue, none, 640, 480));
	MESSAGE(fmt::format("fringe at the corners of the stack: {:.4f} px uncorrected, {:.4f} px corrected", fringe_before,
		fringe_after));
	CHECK(fringe_before > 0.25);
	CHECK(fringe_after < 0.1);
}
