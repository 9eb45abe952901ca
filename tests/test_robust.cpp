// Robust and weighted statistics on synthetic bursts with a known truth.
//
// Ghosts: a textured patch crossing the scene in 6 of 16 frames. The robust statistics must give the
// static background in its path nearly as well as they do on the same burst without it (the
// object-free oracle: the same statistic, the same frames and noise, no patch); the mean must not (it
// averages the patch in). PSNR is measured against the truth over the patch's path where all 16
// frames cover the output: at the edges fewer frames cover, and a sample can lie at most about
// sqrt(N) sample standard deviations from the median of N, so sigma-clip at kappa 3 cannot reject
// anything among 8 or fewer. Weights: frames four times noisier count for 1/16.
#include "stack_fixtures.hpp"
#include "synth_fixtures.hpp"
#include "temp_dir.hpp"

#include "src/reduce/kernel_regression.hpp"
#include "superstack/score.hpp"
#include "superstack/stack.hpp"
#include "superstack/synth.hpp"
#include "superstack/transform.hpp"
#include "superstack/warp.hpp"

#include <doctest/doctest.h>
#include <fmt/core.h>

#include <cmath>
#include <functional>
#include <map>

using namespace superstack;
using namespace superstack::test;
namespace fs = std::filesystem;

namespace {

constexpr int kFrameWidth = 192, kFrameHeight = 144, kBorder = 16;

// A smooth scene at truth resolution (2x the frames): blurred noise around mid-grey in colour, so the
// stacks' error away from the patch is noise, not detail lost to resolution, and a ghost shows.
fs::path smooth_scene(const TempDir &dir)
{
	vips::VImage noise = vips::VImage::gaussnoise(2 * kFrameWidth, 2 * kFrameHeight,
		vips::VImage::option()->set("seed", 9)->set("mean", 0.0)->set("sigma", 1.0));
	vips::VImage scene = noise.gaussblur(6.0).linear(1.2, 0.5);
	scene = vips::VImage::bandjoin({scene, scene.flip(VIPS_DIRECTION_VERTICAL), scene.flip(VIPS_DIRECTION_HORIZONTAL)});
	const fs::path path = dir / "scene.tif";
	(scene.linear(65535.0, 0.0)).cast(VIPS_FORMAT_USHORT).tiffsave(path.c_str());
	return path;
}

// A burst of the smooth scene at scale 2 (frames of kFrameWidth x kFrameHeight) into dir/name.
SynthOptions smooth_burst(const TempDir &dir, const std::string &name, int frames, std::uint64_t seed, double noise)
{
	SynthOptions s;
	s.frames = frames;
	s.source = smooth_scene(dir);
	s.scale = 2;
	s.seed = seed;
	s.noise = noise;
	s.out_dir = dir / name;
	return s;
}

// Output pixels the patch covers in some frame (its rectangle grown by 3 frame pixels for the
// resampling kernel's reach), away from the border: the object's path.
std::vector<bool> path_mask(const SynthOptions &s, const TransformSet &truth, const OutputGeometry &g)
{
	std::vector<bool> mask(static_cast<std::size_t>(g.width) * g.height, false);
	for (int f = 0; f < s.frames; f++) {
		const auto place = moving_object_place(s, f, kFrameWidth, kFrameHeight);
		if (!place)
			continue;
		const Matrix3 m = output_to_frame(truth.frames[static_cast<std::size_t>(f)].matrix, g);
		for (int y = kBorder; y < g.height - kBorder; y++)
			for (int x = kBorder; x < g.width - kBorder; x++) {
				const Point p = m.apply({static_cast<double>(x), static_cast<double>(y)});
				if (p.x >= place->x0 - 3 && p.x < place->x0 + place->width + 3 && p.y >= place->y0 - 3 &&
					p.y < place->y0 + place->height + 3)
					mask[static_cast<std::size_t>(y) * g.width + x] = true;
			}
	}
	return mask;
}

// Output pixels every frame covers, a frame pixel in from its edges (for drizzle and kernel, whose
// coverage counts only the frames whose weights there reach a tenth: with a narrow kernel, 5 of 16
// frames on average, and all 16 at almost no pixel).
std::vector<bool> covered_by_all(const SynthOptions &s, const TransformSet &truth, const OutputGeometry &g)
{
	std::vector<bool> mask(static_cast<std::size_t>(g.width) * g.height, true);
	for (int f = 0; f < s.frames; f++) {
		const Matrix3 m = output_to_frame(truth.frames[static_cast<std::size_t>(f)].matrix, g);
		for (int y = 0; y < g.height; y++)
			for (int x = 0; x < g.width; x++) {
				const Point p = m.apply({static_cast<double>(x), static_cast<double>(y)});
				if (!(p.x >= 1 && p.x <= kFrameWidth - 2 && p.y >= 1 && p.y <= kFrameHeight - 2))
					mask[static_cast<std::size_t>(y) * g.width + x] = false;
			}
	}
	return mask;
}

// PSNR (peak 1) of `image` against `truth` over the masked pixels, all bands.
double masked_psnr(const std::vector<float> &image, const std::vector<float> &truth, const std::vector<bool> &mask, int bands)
{
	double sum = 0;
	std::size_t n = 0;
	for (std::size_t p = 0; p < mask.size(); p++)
		if (mask[p])
			for (int b = 0; b < bands; b++, n++) {
				const double d = image[p * bands + b] - truth[p * bands + b];
				sum += d * d;
			}
	return 10 * std::log10(1.0 / (sum / static_cast<double>(n)));
}

std::vector<float> load_unit(const fs::path &file)
{
	const vips::VImage image = vips::VImage::new_from_file(file.c_str());
	const double full = image.format() == VIPS_FORMAT_FLOAT ? 1.0 : 65535.0;
	return read_all(image.cast(VIPS_FORMAT_FLOAT).linear(1.0 / full, 0.0));
}

// For each statistic, the PSNR in the path without the patch and with it, for a patch of `fraction`
// of the frame. The burst without it is the same frames (same seed: same transforms and noise).
struct Ghosts {
	std::map<std::string, std::pair<double, double>> psnr; // statistic: without the patch, with it
	std::vector<bool> path;                                 // fully covered path pixels
	std::vector<float> rejects;                             // the reject map with the patch
	OutputGeometry geometry;
};

Ghosts measure_ghosts(const TempDir &dir, const SynthResult &clean, const SynthOptions &moving_options,
	const std::vector<Statistic> &statistics, const ClipOptions &clip, const std::string &name, Merge merge = Merge::interpolate,
	double robustness = RegressionOptions{}.robustness)
{
	NoProgress quiet;
	const SynthResult moving = synthesize(moving_options, quiet);
	auto stack = [&](const SynthResult &burst, const fs::path &out) {
		RunOptions o = burst_run_options(burst, out);
		o.statistics = statistics;
		o.clip = clip;
		o.merge = merge;
		o.regression.robustness = robustness;
		o.save.depth = Depth::f32;
		o.save_coverage = true;
		o.save_rejects = std::any_of(statistics.begin(), statistics.end(), rejects_samples);
		return run_stack(o, quiet);
	};
	Ghosts g;
	g.geometry = stack(clean, dir / (name + "-clean")).geometry;
	stack(moving, dir / (name + "-moving"));
	g.path = path_mask(moving_options, read_transforms(moving.transforms), g.geometry);
	const std::vector<float> coverage = load_unit(dir / (name + "-clean") / "coverage.tif"); // float: counts
	const std::vector<bool> all = covered_by_all(moving_options, read_transforms(moving.transforms), g.geometry);
	for (std::size_t p = 0; p < g.path.size(); p++)
		g.path[p] = g.path[p] && (merge == Merge::interpolate ? coverage[p] == static_cast<float>(moving_options.frames) : all[p]);
	const std::vector<float> truth = load_unit(clean.truth);
	for (Statistic s : statistics) {
		const std::string file = std::string(statistic_name(s)) + ".tif";
		g.psnr[std::string(statistic_name(s))] = {masked_psnr(load_unit(dir / (name + "-clean") / file), truth, g.path, 3),
			masked_psnr(load_unit(dir / (name + "-moving") / file), truth, g.path, 3)};
	}
	if (std::any_of(statistics.begin(), statistics.end(), rejects_samples))
		g.rejects = load_unit(dir / (name + "-moving") / "rejects.tif");
	return g;
}

// The mean's PSNR in the path `g` of the moving burst already on disk (measure_ghosts made it),
// stacked by `merge` with the robustness `robustness`.
double moving_mean_psnr(const TempDir &dir, const SynthOptions &moving, const fs::path &truth, const Ghosts &g, Merge merge,
	double robustness, const std::string &name)
{
	NoProgress quiet;
	RunOptions o;
	for (int f = 0; f < moving.frames; f++)
		o.inputs.push_back((moving.out_dir / fmt::format("frame_{:03}.tif", f)).string());
	o.out_dir = dir / name;
	o.transforms = moving.out_dir / "transforms.json";
	o.statistics = {Statistic::mean};
	o.merge = merge;
	o.regression.robustness = robustness;
	o.save.depth = Depth::f32;
	run_stack(o, quiet);
	return masked_psnr(load_unit(dir / name / "mean.tif"), load_unit(truth), g.path, 3);
}

void report(const Ghosts &g, const std::string &what)
{
	for (const auto &[name, p] : g.psnr)
		MESSAGE(fmt::format("{}: {:>10} {:.2f} dB in the path without the patch, {:.2f} dB with it ({:+.2f})", what, name,
			p.first, p.second, p.second - p.first));
}

// Run options for `burst` (its true transforms, out to dir/(name + "-out")) with frames first .. first +
// count - 1 painted: a square of `side` standing still in the scene at reference pixels (x0, y0), put
// in each frame where its transform puts that corner (to the nearest pixel), as `paint` makes it from
// the frame's pixels there (16-bit). The painted frames go to dir/name.
RunOptions painted_burst(const SynthResult &burst, const fs::path &dir, const std::string &name, int first, int count, int x0, int y0,
	int side, const std::function<vips::VImage(const vips::VImage &)> &paint)
{
	const TransformSet truth = read_transforms(burst.transforms);
	fs::create_directories(dir / name);
	RunOptions o = burst_run_options(burst, dir / (name + "-out"));
	for (int f = first; f < first + count; f++) {
		const std::size_t i = static_cast<std::size_t>(f);
		const Point at = truth.frames[i].matrix.apply({static_cast<double>(x0), static_cast<double>(y0)});
		const int x = static_cast<int>(std::lround(at.x)), y = static_cast<int>(std::lround(at.y));
		const fs::path file = dir / name / burst.frames[i].filename();
		const vips::VImage frame = vips::VImage::new_from_file(burst.frames[i].c_str());
		frame.insert(paint(frame.crop(x, y, side, side)), x, y).tiffsave(file.c_str());
		o.inputs[i] = file.string();
	}
	return o;
}

// Output pixels inside the square of `painted_burst` at scale 2, `in` output pixels in from its edges
// (its rounding to whole frame pixels moves it by up to 1).
std::vector<bool> inside_square(int x0, int y0, int side, int in)
{
	const int w = 2 * kFrameWidth;
	std::vector<bool> inside(static_cast<std::size_t>(w) * 2 * kFrameHeight, false);
	for (int y = 2 * y0 + in; y < 2 * (y0 + side) - in; y++)
		for (int x = 2 * x0 + in; x < 2 * (x0 + side) - in; x++)
			inside[static_cast<std::size_t>(y) * w + x] = true;
	return inside;
}

} // namespace

TEST_CASE("ghosts: median, sigma-clip and winsorized keep the background where a patch crossed 6 of 16 frames; mean does not")
{
	TempDir dir("ghosts");
	NoProgress quiet;
	const SynthOptions clean = smooth_burst(dir, "clean", 16, 4, 0.02);
	const SynthResult burst = synthesize(clean, quiet);
	SynthOptions moving = clean;
	moving.out_dir = dir / "moving";
	moving.moving_frames = 6;
	moving.moving_texture = true;

	// A patch of 2% of the frame (27 x 20 px) moving by more than its width (33 px) between its
	// appearances: every pixel of its path is under it in one frame of 16.
	moving.moving_object = 0.02;
	const std::vector<Statistic> all{Statistic::mean, Statistic::median, Statistic::sigma_clip, Statistic::winsorized};
	const Ghosts g = measure_ghosts(dir, burst, moving, all, ClipOptions{}, "apart");
	report(g, "apart");
	const auto in_path = std::count(g.path.begin(), g.path.end(), true);
	CHECK(in_path > g.geometry.width * g.geometry.height / 20); // the path is a real part of the image
	for (const char *robust : {"median", "sigma-clip", "winsorized"}) {
		CAPTURE(robust);
		CHECK(g.psnr.at(robust).second > g.psnr.at(robust).first - 1.0);
	}
	// The mean averages the patch in: far more than 1 dB lost.
	CHECK(g.psnr.at("mean").second < g.psnr.at("mean").first - 3.0);

	// The reject map: one band per rejecting statistic, more rejected in the path than elsewhere.
	for (int band = 0; band < 2; band++) {
		double inside = 0, outside = 0;
		std::size_t outside_n = 0;
		for (std::size_t p = 0; p < g.path.size(); p++) {
			const int x = static_cast<int>(p % g.geometry.width), y = static_cast<int>(p / g.geometry.width);
			if (g.path[p])
				inside += g.rejects[p * 2 + band];
			else if (x >= 40 && y >= 40 && x < g.geometry.width - 40 && y < g.geometry.height - 40)
				outside += g.rejects[p * 2 + band], outside_n++;
		}
		inside /= static_cast<double>(in_path);
		outside /= static_cast<double>(outside_n);
		MESSAGE(fmt::format("rejects band {}: {:.2f} samples per pixel in the path, {:.2f} elsewhere", band, inside, outside));
		CHECK(inside > outside + 0.3);
	}

	// A larger patch (5%, 43 x 32 px) whose places overlap: parts of its path are under it in two
	// frames. Two outliers in 16 inflate the plain standard deviation so much that sigma-clip at
	// kappa 3 keeps some (measured: -1.1 dB; reported, not asserted); winsorized sigma does not
	// inflate, and sigma-clip at kappa 2.5 rejects them.
	moving.moving_object = 0.05;
	const Ghosts overlap = measure_ghosts(dir, burst, moving, all, ClipOptions{}, "overlap");
	report(overlap, "overlap");
	for (const char *robust : {"median", "winsorized"}) {
		CAPTURE(robust);
		CHECK(overlap.psnr.at(robust).second > overlap.psnr.at(robust).first - 1.0);
	}
	CHECK(overlap.psnr.at("mean").second < overlap.psnr.at("mean").first - 3.0);
	ClipOptions lower;
	lower.kappa = 2.5;
	const Ghosts clipped = measure_ghosts(dir, burst, moving, {Statistic::sigma_clip}, lower, "kappa25");
	report(clipped, "overlap, kappa 2.5");
	CHECK(clipped.psnr.at("sigma-clip").second > clipped.psnr.at("sigma-clip").first - 1.0);
}

TEST_CASE("weighted: inverse noise variance weights find the noisy frames and beat the mean; sharpness weights find a blurred frame")
{
	TempDir dir("weighted");
	NoProgress quiet;
	const SynthResult a = synthesize(smooth_burst(dir, "quiet", 12, 7, 0.01), quiet);
	const SynthResult b = synthesize(smooth_burst(dir, "noisy", 12, 7, 0.04), quiet);
	// Frames 0-3 quiet, 4-11 four times noisier; the same transforms (the same seed).
	RunOptions o;
	for (int i = 0; i < 12; i++)
		o.inputs.push_back((i < 4 ? a : b).frames[static_cast<std::size_t>(i)].string());
	o.out_dir = dir / "out";
	o.transforms = a.transforms;
	o.statistics = {Statistic::mean, Statistic::weighted};
	o.weight = FrameWeight::noise;
	o.save.depth = Depth::f32;
	const RunResult r = run_stack(o, quiet);
	REQUIRE(r.weights.size() == 12);
	for (int i = 0; i < 12; i++) {
		CAPTURE(i);
		// 1 for the quiet frames, (0.01 / 0.04)^2 = 1/16 for the noisy ones, within the estimate's scatter.
		if (i < 4)
			CHECK(r.weights[static_cast<std::size_t>(i)] > 0.8);
		else
			CHECK(std::fabs(r.weights[static_cast<std::size_t>(i)] * 16 - 1) < 0.35);
	}
	const double mean = score_images(o.out_dir / "mean.tif", a.truth, kBorder).psnr;
	const double weighted = score_images(o.out_dir / "weighted.tif", a.truth, kBorder).psnr;
	MESSAGE(fmt::format("4 quiet and 8 noisy frames: mean {:.2f} dB, weighted by inverse noise variance {:.2f} dB", mean, weighted));
	// From the noise alone: sigma 0.0096 for the mean, 0.0047 for the weighted mean (6.2 dB); the
	// resampling's own error narrows that (measured 4.3 dB).
	CHECK(weighted > mean + 3.0);

	// Sharpness weights, on the detailed chart: frame 2 blurred weighs far less than the others.
	SynthOptions chart;
	chart.frames = 4;
	chart.width = 160, chart.height = 120;
	chart.noise = 0.01;
	chart.out_dir = dir / "chart";
	const SynthResult c = synthesize(chart, quiet);
	fs::create_directories(dir / "blur");
	const fs::path blurred = dir / "blur" / "frame_002.tif"; // matched to its transform by name
	vips::VImage::new_from_file(c.frames[2].c_str()).gaussblur(1.0).cast(VIPS_FORMAT_USHORT).tiffsave(blurred.c_str());
	RunOptions s = o;
	s.inputs = {c.frames[0].string(), c.frames[1].string(), blurred.string(), c.frames[3].string()};
	s.transforms = c.transforms;
	s.out_dir = dir / "out-sharpness";
	s.weight = FrameWeight::sharpness;
	const RunResult rs = run_stack(s, quiet);
	REQUIRE(rs.weights.size() == 4);
	MESSAGE(fmt::format("sharpness weights {:.3f} {:.3f} {:.3f} (blurred) {:.3f}", rs.weights[0], rs.weights[1], rs.weights[2], rs.weights[3]));
	CHECK(rs.weights[2] < 0.5 * std::min({rs.weights[0], rs.weights[1], rs.weights[3]}));
	CHECK(*std::max_element(rs.weights.begin(), rs.weights.end()) == 1.0);
}

TEST_CASE("ghosts: the kernel merge's and robust drizzle's robustness keep the background where a patch crossed 6 of 16 frames")
{
	TempDir dir("ghosts-kernel");
	NoProgress quiet;
	const SynthOptions clean = smooth_burst(dir, "clean", 16, 4, 0.02);
	const SynthResult burst = synthesize(clean, quiet);
	SynthOptions moving = clean;
	moving.out_dir = dir / "moving";
	moving.moving_frames = 6;
	moving.moving_texture = true;
	moving.moving_object = 0.05; // the larger patch, whose places overlap: two frames of 16 in parts
	const Ghosts g = measure_ghosts(dir, burst, moving, {Statistic::mean}, ClipOptions{}, "kernel", Merge::kernel);
	report(g, "kernel");
	CHECK(std::count(g.path.begin(), g.path.end(), true) > g.geometry.width * g.geometry.height / 20);
	// The robust kernel regression (its `mean`): within 1 dB of the burst without the patch (it is in
	// the reference frame too: the consensus, not the reference, decides).
	CHECK(g.psnr.at("mean").second > g.psnr.at("mean").first - 1.0);
	// Without robustness the patch shows (the same moving frames, already on disk).
	const double plain = moving_mean_psnr(dir, moving, burst.truth, g, Merge::kernel, 0.0, "plain");
	MESSAGE(fmt::format("kernel without robustness: {:.2f} dB in the path", plain));
	CHECK(plain < g.psnr.at("mean").first - 3.0);

	// Robust drizzle (the default for drizzle), on the same bursts: measured -0.24 dB with the patch
	// (42.68 -> 42.44 dB), and plain drizzle (robustness 0) 34.88 dB.
	const Ghosts d = measure_ghosts(dir, burst, moving, {Statistic::mean}, ClipOptions{}, "drizzle", Merge::drizzle);
	report(d, "robust drizzle");
	const auto in_path = std::count(d.path.begin(), d.path.end(), true);
	CHECK(in_path > d.geometry.width * d.geometry.height / 20); // the path is a real part of the image
	CHECK(d.psnr.at("mean").second > d.psnr.at("mean").first - 1.0);
	const double plain_drizzle = moving_mean_psnr(dir, moving, burst.truth, d, Merge::drizzle, 0.0, "plain-drizzle");
	MESSAGE(fmt::format("drizzle without robustness: {:.2f} dB in the path", plain_drizzle));
	CHECK(plain_drizzle < d.psnr.at("mean").first - 3.0);
}

TEST_CASE("even split: where exactly half the frames show a thing, the kernel merge and robust drizzle give the reference's half, not a blend")
{
	// The unit: two states (the middle gap beyond the tolerance and beyond either half's range), and
	// a continuous scatter, which is not.
	const float split[] = {0.10f, 0.11f, 0.50f, 0.52f}, scatter[] = {0.10f, 0.22f, 0.30f, 0.43f}, close[] = {0.10f, 0.11f, 0.12f, 0.13f};
	CHECK(regression::even_split(split, 4, 0.01, 3.0));
	CHECK_FALSE(regression::even_split(split, 4, 0.01, 0.0)); // robustness off
	CHECK_FALSE(regression::even_split(split, 4, 0.2, 3.0));  // within the noise
	CHECK_FALSE(regression::even_split(scatter, 4, 0.01, 3.0));
	CHECK_FALSE(regression::even_split(close, 4, 0.001, 3.0)); // evenly spaced: a scatter, however far
	CHECK(regression::even_split(close + 1, 2, 0.001, 3.0)); // two frames 10 spreads apart
	CHECK_FALSE(regression::even_split(close + 1, 2, 0.01, 3.0));

	// 8 frames of the smooth scene, shifted by up to 16 px (no rotation), and a square that stands
	// still in the scene: painted in each frame where the frame's transform puts the reference's
	// square (to the nearest pixel), in frames 0-3 (the reference among them) or in frames 4-7.
	TempDir dir("even-split");
	NoProgress quiet;
	SynthOptions clean = smooth_burst(dir, "clean", 8, 5, 0.01);
	clean.max_rotation = 0;
	const SynthResult burst = synthesize(clean, quiet);
	const int x0 = 60, y0 = 40, side = 60; // reference pixels
	const vips::VImage square = vips::VImage::black(side, side, vips::VImage::option()->set("bands", 3)).linear(1.0, 0.9 * 65535).cast(VIPS_FORMAT_USHORT);
	auto painted = [&](const std::string &name, int first, int count) {
		return painted_burst(burst, dir.path(), name, first, count, x0, y0, side, [&](const vips::VImage &) { return square; });
	};
	const RunOptions none = burst_run_options(burst, dir / "none-out"), all = painted("all", 0, 8), with_reference = painted("first", 0, 4),
			 without_reference = painted("last", 4, 4);
	const std::vector<bool> inside = inside_square(x0, y0, side, 6);
	for (Merge merge : {Merge::kernel, Merge::drizzle}) {
		CAPTURE(merge_name(merge));
		auto mean_of = [&](RunOptions o) {
			o.merge = merge;
			o.statistics = {Statistic::mean};
			o.save.depth = Depth::f32;
			o.out_dir += fmt::format("-{}", merge_name(merge));
			run_stack(o, quiet);
			return load_unit(o.out_dir / "mean.tif");
		};
		const std::vector<float> a = mean_of(all), n = mean_of(none), first = mean_of(with_reference), last = mean_of(without_reference);
		const double first_vs_all = masked_psnr(first, a, inside, 3), first_vs_none = masked_psnr(first, n, inside, 3);
		const double last_vs_none = masked_psnr(last, n, inside, 3), last_vs_all = masked_psnr(last, a, inside, 3);
		MESSAGE(fmt::format("{}: square in frames 0-3: {:.2f} dB from the painted burst's result, {:.2f} from the clean one's; "
				    "in frames 4-7: {:.2f} from the clean one's, {:.2f} from the painted one's",
			merge_name(merge), first_vs_all, first_vs_none, last_vs_none, last_vs_all));
		// The two states lie 8 dB apart here (the square's contrast, about 0.4); a blend of both would be
		// half that from either, 14 dB (measured so before the even split: 13.95-14.00).
		CHECK(first_vs_all > 35);
		CHECK(last_vs_none > 35);
		CHECK(first_vs_none < 15);
		CHECK(last_vs_all < 15);
	}
}

TEST_CASE("ghosts: a thing of another colour but the same luminance, crossing 6 of 16 frames, is left out by the kernel merge and robust drizzle")
{
	// The robustness compares the frames in the luminance and in the chroma (regression.hpp): a change
	// of colour alone must count as a change of brightness does. The ghost test's bursts (16 frames of
	// the smooth scene, noise 2%; the larger patch's places, crossing 6 frames), but where the patch
	// is, 0.15 is added to the frame's red band and taken from its green: the luminance is unchanged,
	// the colour is not. Measured with the luminance-only robustness (session 14), it was a ghost as
	// without robustness.
	TempDir dir("colour-ghost");
	NoProgress quiet;
	const SynthOptions clean = smooth_burst(dir, "clean", 16, 4, 0.02);
	const SynthResult burst = synthesize(clean, quiet);
	SynthOptions moving = clean; // for the patch's places only
	moving.moving_frames = 6;
	moving.moving_object = 0.05;
	fs::create_directories(dir / "tinted");
	RunOptions tinted = burst_run_options(burst, dir / "tinted-out");
	for (int f = 0; f < moving.frames; f++) {
		const auto place = moving_object_place(moving, f, kFrameWidth, kFrameHeight);
		if (!place)
			continue;
		const std::size_t i = static_cast<std::size_t>(f);
		const fs::path file = dir / "tinted" / burst.frames[i].filename();
		const vips::VImage frame = vips::VImage::new_from_file(burst.frames[i].c_str());
		const double shift = 0.15 * 65535;
		frame.insert(frame.crop(place->x0, place->y0, place->width, place->height).cast(VIPS_FORMAT_FLOAT).linear({1.0, 1.0, 1.0}, {shift, -shift, 0.0}).cast(VIPS_FORMAT_USHORT),
			     place->x0, place->y0)
			.tiffsave(file.c_str());
		tinted.inputs[i] = file.string();
	}
	const std::vector<float> truth = load_unit(burst.truth);
	const TransformSet transforms = read_transforms(burst.transforms);
	for (Merge merge : {Merge::kernel, Merge::drizzle}) {
		CAPTURE(merge_name(merge));
		auto mean_of = [&](RunOptions o, const std::string &name, double robustness) {
			o.merge = merge;
			o.regression.robustness = robustness;
			o.statistics = {Statistic::mean};
			o.save.depth = Depth::f32;
			o.out_dir = dir / fmt::format("{}-{}", name, merge_name(merge));
			const RunResult r = run_stack(o, quiet);
			return std::make_pair(load_unit(o.out_dir / "mean.tif"), r.geometry);
		};
		const auto [without, geometry] = mean_of(burst_run_options(burst, dir / "x"), "clean", RegressionOptions{}.robustness);
		std::vector<bool> path = path_mask(moving, transforms, geometry);
		const std::vector<bool> all = covered_by_all(moving, transforms, geometry);
		for (std::size_t p = 0; p < path.size(); p++)
			path[p] = path[p] && all[p];
		CHECK(std::count(path.begin(), path.end(), true) > geometry.width * geometry.height / 20);
		const double clean_psnr = masked_psnr(without, truth, path, 3);
		const double with = masked_psnr(mean_of(tinted, "tinted", RegressionOptions{}.robustness).first, truth, path, 3);
		const double plain = masked_psnr(mean_of(tinted, "plain", 0.0).first, truth, path, 3);
		MESSAGE(fmt::format("{}: {:.2f} dB in the path without the tint, {:.2f} with it ({:+.2f}); without robustness {:.2f}",
			merge_name(merge), clean_psnr, with, with - clean_psnr, plain));
		CHECK(with > clean_psnr - 1.0);
		CHECK(plain < clean_psnr - 3.0); // the tint is a ghost where nothing leaves it out
	}
}
