// run_stack through real files: formats and band layouts against the oracle, and bit-identical
// results whatever the thread count or memory limit.
#include "stack_fixtures.hpp"
#include "temp_dir.hpp"

#include "superstack/frame.hpp"
#include "superstack/stack.hpp"
#include "superstack/transform.hpp"

#include <doctest/doctest.h>

#include <fmt/core.h>

#include <cmath>
#include <fstream>
#include <functional>
#include <iterator>

using namespace superstack;
using namespace superstack::test;

namespace superstack::test {
bool same_bytes(const std::filesystem::path &a, const std::filesystem::path &b)
{
	std::ifstream fa(a, std::ios::binary), fb(b, std::ios::binary);
	std::string sa((std::istreambuf_iterator<char>(fa)), {}), sb((std::istreambuf_iterator<char>(fb)), {});
	return !sa.empty() && sa == sb;
}
} // namespace superstack::test

namespace {

std::vector<float> load_floats(const std::filesystem::path &file)
{
	vips::VImage image = vips::VImage::new_from_file(file.c_str()).cast(VIPS_FORMAT_FLOAT);
	return read_all(image);
}

// Writes `frames` as TIFF files of `format` (scaled by its full range) and a transforms file with their
// integer shifts, runs run_stack at scale 1 with nearest resampling and float output, and compares.
void check_format(VipsBandFormat format, int bands, bool alpha, int n, std::uint32_t seed)
{
	TempDir dir(fmt::format("fmt{}-{}-{}-{}", static_cast<int>(format), bands, alpha, n));
	std::mt19937 rng(seed);
	const int w = 23, h = 19;
	const bool integer = format != VIPS_FORMAT_FLOAT;
	std::vector<MemoryFrame> frames;
	TransformSet set;
	std::uniform_int_distribution<int> shift(-4, 4);
	const double full = format_full_scale(format);
	for (int i = 0; i < n; i++) {
		frames.push_back(random_frame(rng, w, h, bands, alpha, i ? shift(rng) : 0, i ? shift(rng) : 0, integer));
		MemoryFrame &f = frames.back();
		const int stride = bands + (alpha ? 1 : 0);
		// Store the un-premultiplied colour and alpha, as a file would.
		std::vector<float> stored(f.pixels.size());
		for (int p = 0; p < w * h; p++) {
			for (int b = 0; b < bands; b++)
				stored[p * stride + b] = f.colour[p * bands + b];
			if (alpha)
				stored[p * stride + bands] = f.alpha_at(p % w, p / w);
		}
		// 8-bit colour values are k/255; 16-bit files store them as k*257, the same fraction.
		vips::VImage image = (image_from(stored, w, h, stride, VIPS_FORMAT_FLOAT) * full);
		if (integer)
			image = image.round(VIPS_OPERATION_ROUND_RINT);
		image = image.cast(format);
		const auto name = fmt::format("f{:02}.tif", i);
		image.tiffsave((dir / name).c_str());
		set.frames.push_back({name, Matrix3::translation(f.dx, f.dy)});
	}
	write_transforms(dir / "t.json", set);
	RunOptions o;
	for (int i = 0; i < n; i++)
		o.inputs.push_back((dir / fmt::format("f{:02}.tif", i)).string());
	o.out_dir = dir / "out";
	o.scale = 1;
	o.kernel = Kernel::nearest;
	o.transforms = dir / "t.json";
	o.save.depth = Depth::f32;
	o.save_coverage = true;
	o.memory_bytes = 64ull << 20;
	o.threads = 2;
	o.normalize = Normalize::none; // random frames: no exposure to measure
	o.linear = LinearLight::off;   // the oracle averages the stored values
	NoProgress quiet;
	const RunResult r = run_stack(o, quiet);
	REQUIRE(r.outputs.size() == 3);
	const auto mean = load_floats(o.out_dir / "mean.tif");
	const auto median = load_floats(o.out_dir / "median.tif");
	const auto count = load_floats(o.out_dir / "coverage.tif");
	double worst_mean = 0, worst_median = 0;
	int counted = 0;
	for (int y = 0; y < h; y++)
		for (int x = 0; x < w; x++) {
			const std::size_t p = static_cast<std::size_t>(y) * w + x;
			CHECK(count[p] == static_cast<float>(oracle_samples(frames, x, y, 0).size()));
			for (int b = 0; b < bands; b++) {
				const auto s = oracle_samples(frames, x, y, b);
				counted += !s.empty();
				worst_mean = std::max(worst_mean, std::fabs(mean[p * bands + b] - static_cast<double>(oracle_mean(s))));
				worst_median = std::max(worst_median, static_cast<double>(std::fabs(median[p * bands + b] - oracle_median(s))));
			}
		}
	CHECK(counted > 0);
	// Scaling to [0, 1] rounds in float: at most an ulp or two of 1.0.
	CHECK(worst_mean < 5e-7);
	CHECK(worst_median < 5e-7);
	// Nothing left behind but the results and the report.
	int entries = 0;
	for (auto &e : std::filesystem::directory_iterator(o.out_dir))
		entries += e.is_regular_file() || e.is_directory();
	CHECK(entries == 4);
}

// A small burst with real subpixel motion (rotation, scale 2, lanczos3), written as 16-bit RGB.
std::vector<std::string> make_burst(const TempDir &dir, int n, TransformSet &set)
{
	std::vector<std::string> files;
	const int w = 96, h = 72;
	// Smooth random texture around 0.5 (gaussnoise defaults to mean 128, sigma 30: set them).
	vips::VImage scene = vips::VImage::gaussnoise(w + 40, h + 40,
		vips::VImage::option()->set("seed", 3)->set("mean", 0.0)->set("sigma", 1.0))
				     .gaussblur(1.2)
				     .linear(0.5, 0.5);
	scene = vips::VImage::bandjoin({scene, scene.flip(VIPS_DIRECTION_VERTICAL), scene.flip(VIPS_DIRECTION_HORIZONTAL)});
	std::mt19937 rng(5);
	std::uniform_real_distribution<double> u(-1, 1);
	for (int i = 0; i < n; i++) {
		const Matrix3 m = i == 0 ? Matrix3::identity()
					 : Matrix3::similarity(2 * u(rng), 1.0, {w / 2.0, h / 2.0}, 3 * u(rng), 3 * u(rng));
		// frame(x) = scene(m^-1 x + 20): resample with vips' affine (an independent path).
		const Matrix3 inv = m.inverse();
		vips::VImage frame = scene.affine({m(0, 0), m(0, 1), m(1, 0), m(1, 1)},
			vips::VImage::option()
				->set("interpolate", vips::VInterpolate::new_from_name("bicubic"))
				->set("oarea", std::vector<int>{0, 0, w, h})
				->set("idx", -20.0)
				->set("idy", -20.0)
				->set("odx", m(0, 2))
				->set("ody", m(1, 2)));
		(void)inv;
		const auto name = fmt::format("b{:02}.tif", i);
		(frame.linear(65535.0, 0.0)).cast(VIPS_FORMAT_USHORT).tiffsave((dir / name).c_str());
		files.push_back((dir / name).string());
		set.frames.push_back({name, m});
	}
	return files;
}

} // namespace

TEST_CASE("run: 8-bit, 16-bit and float frames with 1, 3 and 4 bands match the oracle")
{
	for (VipsBandFormat format : {VIPS_FORMAT_UCHAR, VIPS_FORMAT_USHORT, VIPS_FORMAT_FLOAT})
		for (auto [bands, alpha] : {std::pair{1, false}, std::pair{3, false}, std::pair{3, true}})
			for (int n : {1, 4, 5}) {
				CAPTURE(static_cast<int>(format));
				const int band_count = bands; // clang 14 cannot capture structured bindings
				const bool with_alpha = alpha;
				CAPTURE(band_count);
				CAPTURE(with_alpha);
				CAPTURE(n);
				check_format(format, bands, alpha, n, 77u + n + bands * 10 + alpha);
			}
}

TEST_CASE("run: grey and RGB, 8-bit and 16-bit frames in one stack take the reference's layout")
{
	TempDir dir("mixed");
	std::mt19937 rng(21);
	const int w = 17, h = 13;
	// Reference RGB 16-bit, a second RGB 8-bit frame, a grey 8-bit frame: values are k/255 throughout.
	auto rgb = random_frame(rng, w, h, 3, false, 0, 0, true);
	auto rgb8 = random_frame(rng, w, h, 3, false, 0, 0, true);
	auto grey = random_frame(rng, w, h, 1, false, 0, 0, true);
	(image_from(rgb.colour, w, h, 3, VIPS_FORMAT_FLOAT) * 65535.0).round(VIPS_OPERATION_ROUND_RINT)
		.cast(VIPS_FORMAT_USHORT).copy(vips::VImage::option()->set("interpretation", VIPS_INTERPRETATION_RGB16))
		.tiffsave((dir / "a.tif").c_str());
	(image_from(rgb8.colour, w, h, 3, VIPS_FORMAT_FLOAT) * 255.0).round(VIPS_OPERATION_ROUND_RINT)
		.cast(VIPS_FORMAT_UCHAR).tiffsave((dir / "b.tif").c_str());
	(image_from(grey.colour, w, h, 1, VIPS_FORMAT_FLOAT) * 255.0).round(VIPS_OPERATION_ROUND_RINT)
		.cast(VIPS_FORMAT_UCHAR).pngsave((dir / "c.png").c_str());
	RunOptions o;
	o.inputs = {(dir / "a.tif").string(), (dir / "b.tif").string(), (dir / "c.png").string()};
	o.out_dir = dir / "out";
	o.align = MotionModel::none; // random frames: taken as aligned
	o.normalize = Normalize::none;
	o.linear = LinearLight::off;
	o.scale = 1;
	o.kernel = Kernel::nearest;
	o.save.depth = Depth::f32;
	NoProgress quiet;
	run_stack(o, quiet);
	vips::VImage median = vips::VImage::new_from_file((dir / "out" / "median.tif").c_str());
	REQUIRE(median.bands() == 3);
	const auto m = read_all(median);
	double worst = 0;
	for (int p = 0; p < w * h; p++)
		for (int b = 0; b < 3; b++) {
			std::vector<float> s{rgb.colour[p * 3 + b], rgb8.colour[p * 3 + b], grey.colour[p]};
			worst = std::max(worst, static_cast<double>(std::fabs(m[p * 3 + b] - oracle_median(s))));
		}
	CHECK(worst < 5e-7);
}

namespace {

// Runs the burst with `statistics` at several thread counts and memory limits, the last two `tight`
// enough to change the tiling, and checks every output file is byte-identical to the first run's.
void check_bit_identical(const std::string &name, const std::vector<Statistic> &statistics, bool rejects,
	std::pair<std::uint64_t, std::uint64_t> tight, const std::function<void(RunOptions &, const TempDir &)> &configure = {})
{
	TempDir dir(name);
	TransformSet set;
	const auto files = make_burst(dir, 6, set);
	write_transforms(dir / "t.json", set);
	struct Setting {
		int threads;
		std::uint64_t memory;
	};
	const std::vector<Setting> settings{{1, 1ull << 30}, {2, 1ull << 30}, {4, 1ull << 30}, {2, tight.first}, {1, tight.second}};
	std::vector<int> tiles;
	std::vector<std::string> names;
	bool weights = false;
	for (std::size_t i = 0; i < settings.size(); i++) {
		RunOptions o;
		o.inputs = files;
		o.out_dir = dir / fmt::format("out{}", i);
		o.transforms = dir / "t.json";
		o.threads = settings[i].threads;
		o.memory_bytes = settings[i].memory;
		o.statistics = statistics;
		o.save_coverage = true;
		o.save_rejects = rejects;
		if (configure)
			configure(o, dir);
		weights = o.save_weights;
		NoProgress quiet;
		const RunResult r = run_stack(o, quiet);
		tiles.push_back(r.plan.tile);
		if (i == 0) {
			for (const auto &path : r.outputs)
				names.push_back(path.filename().string());
			names.push_back("transforms.json"); // gains, sharpness and selection too
		}
	}
	REQUIRE(names.size() == statistics.size() + 2 + (rejects ? 1 : 0) + (weights ? 1 : 0));
	// The settings really did change the tile size.
	CHECK(*std::min_element(tiles.begin(), tiles.end()) < *std::max_element(tiles.begin(), tiles.end()));
	for (std::size_t i = 1; i < settings.size(); i++)
		for (const auto &file : names) {
			CAPTURE(i);
			CAPTURE(file);
			CHECK(same_bytes(dir / "out0" / file, dir / fmt::format("out{}", i) / file));
		}
	// And the stack is not trivially constant: the median differs from the mean somewhere.
	CHECK_FALSE(same_bytes(dir / "out0" / names[0], dir / "out0" / names[1]));
}

} // namespace

TEST_CASE("run: results are bit-identical across threads 1/2/4 and memory limits that change the tiling")
{
	check_bit_identical("determinism", {Statistic::mean, Statistic::median}, false, {8ull << 20, 3ull << 20});
}

TEST_CASE("run: the kernel merge, sharpened, is bit-identical across threads and memory limits")
{
	check_bit_identical("determinism-kernel", {Statistic::mean, Statistic::median}, false, {16ull << 20, 8ull << 20},
		[](RunOptions &o, const TempDir &) {
			o.merge = Merge::kernel;
			o.sharpen.amount = 1.0;
		});
}

TEST_CASE("run: robust drizzle and its weight sums are bit-identical across threads and memory limits")
{
	check_bit_identical("determinism-drizzle", {Statistic::mean, Statistic::median}, false, {12ull << 20, 5ull << 20},
		[](RunOptions &o, const TempDir &) {
			o.merge = Merge::drizzle;
			REQUIRE(o.regression.robustness > 0); // robust drizzle, the default
			o.save_weights = true;
		});
}

TEST_CASE("run: every statistic and the reject map are bit-identical across threads and memory limits")
{
	check_bit_identical("determinism-all", {Statistic::mean, Statistic::median, Statistic::sigma_clip,
		Statistic::winsorized, Statistic::trimmed, Statistic::weighted, Statistic::min, Statistic::max}, true,
		{24ull << 20, 11ull << 20});
}

TEST_CASE("run: with displacement fields, every merge is bit-identical across threads and memory limits")
{
	// Each frame but the reference bends by a field of up to 1.5 px (nodes 10 px apart).
	auto with_fields = [](RunOptions &o, const TempDir &dir) {
		const std::filesystem::path bent = dir / "bent.json";
		if (!std::filesystem::exists(bent)) {
			TransformSet set = read_transforms(*o.transforms);
			for (std::size_t f = 1; f < set.frames.size(); f++) {
				DisplacementField d;
				d.left = -5, d.top = -5, d.spacing = 10, d.columns = 12, d.rows = 10;
				for (int j = 0; j < d.rows; j++)
					for (int i = 0; i < d.columns; i++) {
						d.dx.push_back(std::round(1e4 * 1.5 * std::sin(0.5 * i + 0.7 * f)) / 1e4);
						d.dy.push_back(std::round(1e4 * 1.2 * std::cos(0.4 * j - 0.3 * i + f)) / 1e4);
					}
				set.frames[f].displacement = d;
			}
			write_transforms(bent, set);
		}
		o.transforms = bent;
	};
	check_bit_identical("determinism-fields", {Statistic::mean, Statistic::median}, false, {8ull << 20, 3ull << 20}, with_fields);
	check_bit_identical("determinism-fields-drizzle", {Statistic::mean, Statistic::median}, false, {12ull << 20, 5ull << 20},
		[&](RunOptions &o, const TempDir &dir) {
			with_fields(o, dir);
			o.merge = Merge::drizzle;
		});
	check_bit_identical("determinism-fields-kernel", {Statistic::mean, Statistic::median}, false, {16ull << 20, 8ull << 20},
		[&](RunOptions &o, const TempDir &dir) {
			with_fields(o, dir);
			o.merge = Merge::kernel;
			o.sharpen.amount = 1.0;
		});
}

TEST_CASE("run: exposure normalization, frame selection, linear light, every crop and --mask-reduce are bit-identical too")
{
	// A mask over a corner of the reference (96 x 72), for the exposure estimate and the reduction.
	auto with_mask = [](RunOptions &o, const TempDir &dir) {
		if (!std::filesystem::exists(dir / "mask.png")) {
			const vips::VImage xyz = vips::VImage::xyz(96, 72);
			((xyz.extract_band(0) < 30) & (xyz.extract_band(1) < 20)).pngsave((dir / "mask.png").c_str());
		}
		o.mask = dir / "mask.png";
		o.mask_reduce = true;
	};
	check_bit_identical("determinism-none", {Statistic::mean, Statistic::median}, false, {8ull << 20, 3ull << 20},
		[&](RunOptions &o, const TempDir &dir) {
			o.normalize = Normalize::gain_offset;
			o.linear = LinearLight::on;
			o.crop = Crop::none;
			o.selection.reject_fraction = 0.2; // drops 1 of 6
			with_mask(o, dir);
		});
	check_bit_identical("determinism-common", {Statistic::median, Statistic::winsorized}, true, {8ull << 20, 3ull << 20},
		[&](RunOptions &o, const TempDir &dir) {
			o.normalize = Normalize::gain;
			o.crop = Crop::common;
			o.selection.min_sharpness = 0;
			with_mask(o, dir);
		});
}
