// Frame selection: frames blurred by a Gaussian of sigma 1.5 px rank last by noise-compensated sharpness
// at noise 1% and 3%, and `run --reject-blurry` drops exactly them (never the reference), saying so in
// the report.
#include "synth_fixtures.hpp"
#include "temp_dir.hpp"

#include "superstack/error.hpp"
#include "superstack/selection.hpp"
#include "superstack/stack.hpp"
#include "superstack/synth.hpp"

#include <doctest/doctest.h>
#include <fmt/core.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cstdlib>
#include <limits>
#include <map>

using namespace superstack;
using namespace superstack::test;
namespace fs = std::filesystem;

namespace {

const std::vector<int> kBlurred{3, 7, 10};

SynthOptions shaken_burst(const TempDir &dir, double noise)
{
	SynthOptions s = burst_options(dir / fmt::format("burst-{}", noise), 12, 320, 240, noise, 11);
	s.blurred_frames = kBlurred;
	s.blur_sigma = 1.5;
	return s;
}

// The real handheld still life in ../shared (or $SUPERSTACK_SHARED); the tests that read it skip,
// saying so, when it is absent.
fs::path still_life()
{
	const char *shared = std::getenv("SUPERSTACK_SHARED");
	return fs::path(shared ? shared : "../shared") / "data" / "bursts" / "lowlight_stilllife_8f";
}

std::vector<std::string> names(const std::vector<fs::path> &files)
{
	std::vector<std::string> out;
	for (const auto &f : files)
		out.push_back(f.string());
	return out;
}

} // namespace

TEST_CASE("selection: 3 frames blurred by sigma 1.5 px rank last at noise 1% and 3%; --reject-blurry drops exactly them")
{
	TempDir dir("selection");
	NoProgress quiet;
	for (double noise : {0.01, 0.03}) {
		CAPTURE(noise);
		const SynthResult burst = synthesize(shaken_burst(dir, noise), quiet);
		const std::vector<FrameCheck> checks = check_frames(names(burst.frames), 2, quiet);
		REQUIRE(checks.size() == 12);
		std::vector<int> blurred_ranks;
		double sharpest_blurred = 0, least_sharp = 1e9, noise_low = 1e9, noise_high = 0;
		for (int i = 0; i < 12; i++) {
			const bool blurred = std::find(kBlurred.begin(), kBlurred.end(), i) != kBlurred.end();
			if (blurred) {
				blurred_ranks.push_back(checks[i].rank);
				sharpest_blurred = std::max(sharpest_blurred, checks[i].measure.sharpness);
			} else {
				least_sharp = std::min(least_sharp, checks[i].measure.sharpness);
				noise_low = std::min(noise_low, checks[i].measure.noise);
				noise_high = std::max(noise_high, checks[i].measure.noise);
			}
		}
		MESSAGE(fmt::format("noise {}: blurred frames rank {}; sharpness of the sharpest blurred {:.4g}, of the least sharp "
				    "other {:.4g}; noise estimates {:.4f} to {:.4f}",
			noise, blurred_ranks, sharpest_blurred, least_sharp, noise_low, noise_high));
		std::sort(blurred_ranks.begin(), blurred_ranks.end());
		CHECK(blurred_ranks == std::vector<int>{10, 11, 12});
	}
	// run --reject-blurry 0.25: floor(0.25 x 12) = 3 dropped, exactly the blurred ones.
	const SynthResult burst = synthesize(shaken_burst(dir, 0.01), quiet);
	RunOptions o;
	o.inputs = names(burst.frames);
	o.out_dir = dir / "out";
	o.transforms = burst.transforms;
	o.statistics = {Statistic::mean};
	o.selection.reject_fraction = 0.25;
	const RunResult r = run_stack(o, quiet);
	CHECK(r.frames == 9);
	REQUIRE(r.dropped.size() == 3);
	for (std::size_t k = 0; k < 3; k++)
		CHECK(r.dropped[k] == burst.frames[kBlurred[k]]);
	const TransformSet report = read_transforms(r.report);
	for (int i = 0; i < 12; i++) {
		CAPTURE(i);
		const auto &s = report.frames[i].stacking;
		REQUIRE(s);
		CHECK(s->sharpness.has_value());
		const bool blurred = std::find(kBlurred.begin(), kBlurred.end(), i) != kBlurred.end();
		CHECK(s->dropped.has_value() == blurred);
		if (blurred)
			CHECK(s->dropped->find("--reject-blurry") != std::string::npos);
	}
	// --min-sharpness between the blurred and the sharp frames drops the same three.
	std::vector<double> sharp;
	for (const auto &f : report.frames)
		sharp.push_back(*f.stacking->sharpness);
	double blurred_max = 0, sharp_min = 1e9;
	for (int i = 0; i < 12; i++) {
		if (std::find(kBlurred.begin(), kBlurred.end(), i) != kBlurred.end())
			blurred_max = std::max(blurred_max, sharp[i]);
		else
			sharp_min = std::min(sharp_min, sharp[i]);
	}
	RunOptions m = o;
	m.out_dir = dir / "out-min";
	m.selection = {};
	m.selection.min_sharpness = 0.5 * (blurred_max + sharp_min);
	CHECK(run_stack(m, quiet).dropped == r.dropped);
}

TEST_CASE("selection: the reference is never dropped; the fraction counts the frames alignment kept")
{
	std::vector<Sharpness> measured{{0.1, 0.01}, {0.5, 0.01}, {0.3, 0.01}, {0.2, 0.01}, {0.4, 0.01}};
	CHECK(sharpness_ranks(measured) == std::vector<int>{5, 1, 3, 4, 2});
	SelectionOptions o;
	o.reject_fraction = 0.4; // floor(0.4 x 5) = 2
	auto dropped = [&](int reference, std::vector<bool> candidate) {
		std::vector<int> out;
		for (const Dropped &d : select_frames(measured, candidate, reference, o))
			out.push_back(d.index);
		return out;
	};
	CHECK(dropped(1, std::vector<bool>(5, true)) == std::vector<int>{0, 3});
	CHECK(dropped(0, std::vector<bool>(5, true)) == std::vector<int>{2, 3}); // frame 0 is the reference: the next goes
	CHECK(dropped(1, {true, true, true, false, true}) == std::vector<int>{0}); // floor(0.4 x 4) = 1
	o.reject_fraction = 0;
	o.min_sharpness = 0.35;
	CHECK(dropped(1, std::vector<bool>(5, true)) == std::vector<int>{0, 2, 3});
	o.reject_fraction = 1.0;
	CHECK_THROWS_AS(check_selection_options(o), Error);
}

TEST_CASE("selection: check's figures are run's whatever the exposure; --min-sharpness read from check drops exactly the blurred frame")
{
	// 8-bit JPEG frames (run stacks them in linear light) whose exposure varies by up to 40%, one
	// blurred by 1.5 px. Before, run measured the frames as stacked (exposure-normalized, in linear
	// light) and check as decoded: the figures differed (2x on the still life), so a threshold read
	// from check dropped sharp frames; and check, by absolute figures, ranked the darkest frames with
	// the blurred one (0.45x the others).
	TempDir dir("selection-exposure");
	NoProgress quiet;
	SynthOptions s = burst_options(dir / "burst", 8, 320, 240, 0.01, 3);
	s.exposure_variation = 0.4;
	s.blurred_frames = {3};
	s.blur_sigma = 1.5;
	s.jpeg = true;
	const SynthResult burst = synthesize(s, quiet);
	REQUIRE(burst.jpeg_frames.size() == 8);
	const std::vector<FrameCheck> checks = check_frames(names(burst.jpeg_frames), 2, quiet);
	REQUIRE(checks.size() == 8);
	std::map<std::string, double> checked;
	double blurred = 0, least = 1e9, most = 0;
	for (const FrameCheck &c : checks) {
		const std::string name = fs::path(c.file).filename().string();
		checked[name] = c.measure.sharpness;
		CAPTURE(name);
		if (name == "frame_003.jpg") {
			CHECK(c.rank == 8);
			blurred = c.measure.sharpness;
		} else {
			least = std::min(least, c.measure.sharpness);
			most = std::max(most, c.measure.sharpness);
		}
	}
	MESSAGE(fmt::format("exposure +-40%: blurred {:.4g}, the others {:.4g} to {:.4g}", blurred, least, most));
	CHECK(blurred < 0.4 * least);
	CHECK(least > 0.8 * most);
	RunOptions o;
	o.inputs = names(burst.jpeg_frames);
	o.out_dir = dir / "out";
	o.statistics = {Statistic::mean};
	o.selection.min_sharpness = 0.5 * (blurred + least);
	const RunResult r = run_stack(o, quiet);
	REQUIRE(r.dropped.size() == 1);
	CHECK(r.dropped[0] == burst.jpeg_frames[3]);
	CHECK(r.frames == 7);
	const TransformSet report = read_transforms(r.report);
	REQUIRE(report.frames.size() == 8);
	for (const auto &f : report.frames) {
		const std::string name = fs::path(f.file).filename().string();
		CAPTURE(name);
		REQUIRE(f.stacking);
		REQUIRE(f.stacking->sharpness);
		CHECK(*f.stacking->sharpness == doctest::Approx(checked.at(name)).epsilon(1e-6));
	}
}

TEST_CASE("select_misaligned: against the burst's lower quartile and above 0.3 px; never the reference; 0 is off")
{
	using R = std::optional<double>;
	auto indices = [](const std::vector<Dropped> &d) {
		std::vector<int> out;
		for (const Dropped &x : d)
			out.push_back(x.index);
		return out;
	};
	// The still life's residuals (README): the four frames from the other viewpoint go.
	const std::vector<R> still_life{0.0, 0.1618, 0.1577, 0.1724, 0.5898, 0.9334, 0.4902, 0.7874};
	const std::vector<Dropped> d = select_misaligned(still_life, 0, 2.5);
	CHECK(indices(d) == std::vector<int>{4, 5, 6, 7});
	REQUIRE(!d.empty());
	CHECK(d[0].reason.find("misaligned: its fit leaves 0.59 px") != std::string::npos);
	CHECK(d[0].reason.find("(0.16 px; --reject-misaligned 2.5)") != std::string::npos);
	CHECK(select_misaligned(still_life, 0, 0).empty());
	CHECK(indices(select_misaligned(still_life, 0, 4)) == std::vector<int>{5, 7}); // 0.93 and 0.79 > 4 x 0.16
	// The reference is never dropped, whatever is written for it; a frame without a residual is
	// neither judged nor a judge.
	CHECK(indices(select_misaligned({0.9, 0.1, 0.12, R{}, 0.11}, 0, 2.5)).empty());
	CHECK(indices(select_misaligned({0.0, 0.1, 0.12, R{}, 0.11, 0.6}, 0, 2.5)) == std::vector<int>{5});
	// Below the floor, kept whatever the ratio (a sharp synthetic burst: 0.03 against 0.25).
	CHECK(select_misaligned({0.0, 0.03, 0.03, 0.03, 0.25}, 0, 2.5).empty());
	// One frame that fits well does not condemn a burst that fits badly: the lower quartile of
	// 0.1, 0.8, 0.8, 0.85, 0.9 is 0.8.
	CHECK(select_misaligned({0.0, 0.1, 0.8, 0.8, 0.9, 0.85}, 0, 2.5).empty());
	// One other frame is no burst to judge by.
	CHECK(select_misaligned({0.0, 5.0}, 0, 2.5).empty());
	CHECK(indices(select_misaligned({0.0, 0.2, 5.0}, 0, 2.5)) == std::vector<int>{2});
	// The reference need not be the first.
	CHECK(indices(select_misaligned({0.2, 0.2, 0.0, 0.9, 0.21}, 2, 2.5)) == std::vector<int>{3});
	// The option's range.
	SelectionOptions o;
	CHECK(o.reject_misaligned == 2.5);
	for (double bad : {0.5, -1.0, std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity()}) {
		o.reject_misaligned = bad;
		CHECK_THROWS_AS(check_selection_options(o), Error);
	}
	for (double good : {0.0, 1.0, 2.5, 10.0}) {
		o.reject_misaligned = good;
		CHECK_NOTHROW(check_selection_options(o));
	}
}

TEST_CASE("run: frames that bend where the rest are rigid are left out by default, and --reject-misaligned 0 keeps them")
{
	// Six rigid frames and two of the same scene and motion that also bend by up to 2 px (synth
	// --local-motion; the same seed): what a matrix cannot follow, like a handheld frame taken from
	// another place. superstack aligns them itself.
	TempDir dir("misaligned");
	NoProgress quiet;
	SynthOptions s = burst_options(dir / "rigid", 8, 320, 240, 0.01, 3);
	const SynthResult rigid = synthesize(s, quiet);
	s.local_motion = 2;
	s.out_dir = dir / "bent";
	const SynthResult bent = synthesize(s, quiet);
	RunOptions o;
	for (int i = 0; i < 8; i++)
		o.inputs.push_back((i < 6 ? rigid.frames[i] : bent.frames[i]).string());
	o.out_dir = dir / "out";
	o.statistics = {Statistic::mean};
	const RunResult r = run_stack(o, quiet);
	const TransformSet report = read_transforms(r.report);
	std::vector<std::string> residuals;
	for (const auto &f : report.frames)
		residuals.push_back(f.report ? fmt::format("{:.3f}", f.report->residual_rms) : "-");
	MESSAGE(fmt::format("residuals {}", fmt::join(residuals, " ")));
	CHECK(r.frames == 6);
	REQUIRE(r.dropped.size() == 2);
	CHECK(r.dropped[0] == bent.frames[6]);
	CHECK(r.dropped[1] == bent.frames[7]);
	for (int i = 6; i < 8; i++) {
		REQUIRE(report.frames[i].stacking);
		REQUIRE(report.frames[i].stacking->dropped);
		CHECK(report.frames[i].stacking->dropped->find("misaligned") != std::string::npos);
	}
	// The same as stacking the six rigid frames alone, bit for bit.
	RunOptions six = o;
	six.inputs.resize(6);
	six.out_dir = dir / "six";
	run_stack(six, quiet);
	CHECK(same_bytes(o.out_dir / "mean.tif", six.out_dir / "mean.tif"));
	RunOptions all = o;
	all.out_dir = dir / "all";
	all.selection.reject_misaligned = 0;
	CHECK(run_stack(all, quiet).frames == 8);
}

TEST_CASE("run: on the real still life in ../shared the four frames from the other viewpoint are left out by default")
{
	// 5-8.jpg were taken closer, from a little higher (a thing inside the mug shows past its rim in
	// them, hidden in 1-4.jpg), and 6.jpg and 8.jpg are smeared by shake; the homography leaves
	// 0.49-0.93 px on them against 0.16-0.17 on 2-4.jpg. Stacked, they soften the result and half of
	// that thing shows in the median. Default run: the same files as stacking 1-4.jpg alone.
	const fs::path burst = still_life();
	if (!fs::is_directory(burst)) {
		MESSAGE("skipping: " << burst.string() << " is absent");
		return;
	}
	TempDir dir("misaligned-still-life");
	NoProgress quiet;
	RunOptions o;
	for (int i = 1; i <= 8; i++)
		o.inputs.push_back((burst / fmt::format("{}.jpg", i)).string());
	o.out_dir = dir / "all";
	const RunResult r = run_stack(o, quiet);
	REQUIRE(r.dropped.size() == 4);
	for (int k = 0; k < 4; k++)
		CHECK(r.dropped[k].filename().string() == fmt::format("{}.jpg", k + 5));
	RunOptions four = o;
	four.inputs.resize(4);
	four.out_dir = dir / "four";
	run_stack(four, quiet);
	for (const char *name : {"mean.tif", "median.tif"}) {
		CAPTURE(name);
		CHECK(same_bytes(o.out_dir / name, four.out_dir / name));
	}
}

TEST_CASE("selection: on the real handheld still life in ../shared, the two frames smeared by shake rank last, clearly")
{
	// 6.jpg is smeared by about 14 px of shake (its blur against the reference, README), 8.jpg less;
	// the other six are sharp to the eye. At the frames' own pixels the phone's JPEG noise and
	// denoising decide the Laplacian: the single-octave measure ranked 6.jpg last by 3% and 8.jpg 6th.
	const fs::path burst = still_life();
	if (!fs::is_directory(burst)) {
		MESSAGE("skipping: " << burst.string() << " is absent");
		return;
	}
	NoProgress quiet;
	const std::vector<FrameCheck> checks = check_frames({burst.string()}, 2, quiet);
	REQUIRE(checks.size() == 8);
	double smeared = 0, sharp = 1e9;
	for (const FrameCheck &c : checks) {
		const std::string name = fs::path(c.file).filename().string();
		const bool shaken = name == "6.jpg" || name == "8.jpg";
		CAPTURE(name);
		if (shaken) {
			CHECK(c.rank >= 7);
			smeared = std::max(smeared, c.measure.sharpness);
		} else {
			sharp = std::min(sharp, c.measure.sharpness);
		}
	}
	// Measured (2026-12-07, relative to brightness): the smeared frames 0.0337 and 0.0342, the others
	// 0.0464 to 0.0565 (absolute, before: 0.00393 and 0.00419 against 0.00561 to 0.00631).
	MESSAGE(fmt::format("still life: the sharper smeared frame {:.4g}, the least sharp other {:.4g} ({:.3f}x)", smeared, sharp, smeared / sharp));
	CHECK(smeared < 0.8 * sharp);
}
