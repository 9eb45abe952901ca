// test_synth_score -- the scorer against known answers and a brute-force SSIM, the chart's shape,
// and `synth` against its own conventions (geometry oracle, transforms file, noise model).
#include "superstack/chart.hpp"
#include "superstack/error.hpp"
#include "superstack/geometry.hpp"
#include "superstack/score.hpp"
#include "superstack/synth.hpp"
#include "superstack/transform.hpp"

#include <doctest/doctest.h>
#include <fmt/core.h>
#include <vips/vips8>

#include <algorithm>
#include <array>
#include <cmath>
#include <filesystem>
#include <functional>
#include <limits>
#include <numbers>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <unistd.h>

using namespace superstack;
using vips::VImage;
namespace fs = std::filesystem;

namespace {

void ensure_vips()
{
	REQUIRE(VIPS_INIT("superstack-tests") == 0); // idempotent
}

// A fresh directory, removed with everything in it at the end of the test.
struct TempDir {
	fs::path path;
	explicit TempDir(const std::string &name)
		: path(fs::temp_directory_path() / fmt::format("superstack-{}-{}", name, ::getpid()))
	{
		fs::remove_all(path);
		fs::create_directories(path);
	}
	~TempDir()
	{
		std::error_code ec;
		fs::remove_all(path, ec);
	}
};

// An image of doubles from interleaved pixel values (copied into libvips).
VImage from_pixels(const std::vector<double> &v, int w, int h, int bands)
{
	VipsImage *image = vips_image_new_from_memory_copy(v.data(), v.size() * sizeof(double), w, h, bands,
		VIPS_FORMAT_DOUBLE);
	REQUIRE(image != nullptr);
	return VImage(image);
}

VImage to_16bit(const VImage &v)
{
	return (v * 65535.0).round(VIPS_OPERATION_ROUND_RINT).cast(VIPS_FORMAT_USHORT);
}

// A 16-bit file read back as double in [0, 1].
VImage load_unit(const fs::path &p)
{
	const VImage im = VImage::new_from_file(p.c_str());
	REQUIRE(im.format() == VIPS_FORMAT_USHORT);
	return im.cast(VIPS_FORMAT_DOUBLE) * (1.0 / 65535);
}

// libvips affine, bicubic: output pixel X samples `in` at m^-1 X (pixel centres at integers).
VImage warp(const VImage &in, const Matrix3 &m, int w, int h)
{
	return in.affine({m(0, 0), m(0, 1), m(1, 0), m(1, 1)}, VImage::option()
		->set("interpolate", vips::VInterpolate::new_from_name("bicubic"))
		->set("odx", m(0, 2))
		->set("ody", m(1, 2))
		->set("oarea", std::vector<int>{0, 0, w, h})
		->set("extend", VIPS_EXTEND_COPY));
}

VImage warp(const VImage &in, const Matrix3 &m)
{
	return warp(in, m, in.width(), in.height());
}

ExitCode code_of(const std::function<void()> &f, std::string *message = nullptr)
{
	try {
		f();
	} catch (const Error &e) {
		if (message)
			*message = e.what();
		return e.code();
	}
	return ExitCode::success;
}

// Wang et al.'s SSIM, straight from the definition, in double: 11x11 Gaussian (sigma 1.5) over the
// positions where the window fits.
double brute_ssim(const std::vector<double> &x, const std::vector<double> &y, int w, int h)
{
	std::array<double, 11> g{};
	double sum = 0;
	for (int i = 0; i < 11; i++)
		sum += g[i] = std::exp(-(i - 5) * (i - 5) / (2 * 1.5 * 1.5));
	for (double &v : g)
		v /= sum;
	const double c1 = 1e-4, c2 = 9e-4;
	double total = 0;
	int count = 0;
	for (int cy = 5; cy < h - 5; cy++)
		for (int cx = 5; cx < w - 5; cx++) {
			double mx = 0, my = 0, xx = 0, yy = 0, xy = 0;
			for (int j = 0; j < 11; j++)
				for (int i = 0; i < 11; i++) {
					const double wt = g[i] * g[j];
					const double a = x[(cy + j - 5) * w + cx + i - 5], b = y[(cy + j - 5) * w + cx + i - 5];
					mx += wt * a;
					my += wt * b;
					xx += wt * a * a;
					yy += wt * b * b;
					xy += wt * a * b;
				}
			const double vx = xx - mx * mx, vy = yy - my * my, cxy = xy - mx * my;
			total += (2 * mx * my + c1) * (2 * cxy + c2) / ((mx * mx + my * my + c1) * (vx + vy + c2));
			count++;
		}
	return total / count;
}

} // namespace

TEST_CASE("score: an image against itself is perfect, a constant offset d gives 10 log10(1/d^2)")
{
	ensure_vips();
	TempDir dir("score-offset");
	const VImage chart = render_chart(128, 96, 1);
	const fs::path a = dir.path / "a.tif", b = dir.path / "b.tif";
	to_16bit(chart).tiffsave(a.c_str());
	// Chart values are <= 0.97, so 1000 codes more never clip.
	(to_16bit(chart).cast(VIPS_FORMAT_DOUBLE) + 1000).cast(VIPS_FORMAT_USHORT).tiffsave(b.c_str());

	const Score same = score_images(a, a);
	CHECK(same.psnr == std::numeric_limits<double>::infinity());
	CHECK(same.ssim == doctest::Approx(1).epsilon(1e-12));
	REQUIRE(same.channels.size() == 3);
	for (const auto &c : same.channels) {
		CHECK(std::isinf(c.psnr));
		CHECK(c.ssim == doctest::Approx(1).epsilon(1e-12));
	}

	const double d = 1000.0 / 65535, expected = 10 * std::log10(1 / (d * d));
	const Score offset = score_images(b, a);
	CHECK(std::abs(offset.psnr - expected) < 1e-6);
	for (const auto &c : offset.channels)
		CHECK(std::abs(c.psnr - expected) < 1e-6);
	CHECK(offset.ssim < 1);
	// Cropping cannot change a constant offset.
	CHECK(std::abs(score_images(b, a, 7).psnr - expected) < 1e-6);
}

TEST_CASE("score: gaussian noise of sigma s gives about -20 log10(s)")
{
	ensure_vips();
	TempDir dir("score-noise");
	const int w = 512, h = 512;
	const double s = 0.03;
	const VImage xy = VImage::xyz(w, h).cast(VIPS_FORMAT_DOUBLE);
	const VImage base = VImage::bandjoin({xy[0] * (0.5 / w) + 0.25, xy[1] * (0.5 / h) + 0.25, xy[0] * 0 + 0.5});
	std::vector<VImage> noise;
	for (int b = 0; b < 3; b++)
		noise.push_back(VImage::gaussnoise(w, h, VImage::option()->set("mean", 0.0)->set("sigma", s)->set("seed", 11 + b)));
	const fs::path clean = dir.path / "clean.tif", noisy = dir.path / "noisy.tif";
	base.cast(VIPS_FORMAT_FLOAT).tiffsave(clean.c_str());
	(base + VImage::bandjoin(noise)).cast(VIPS_FORMAT_FLOAT).tiffsave(noisy.c_str());

	const Score r = score_images(noisy, clean);
	REQUIRE(r.channels.size() == 3);
	for (const auto &c : r.channels) {
		MESSAGE("channel PSNR " << c.psnr << " dB, SSIM " << c.ssim);
		CHECK(std::abs(c.psnr - -20 * std::log10(s)) < 0.2);
		CHECK(c.ssim < 0.99);
	}
	// Independent noise per band: luminance noise is s * |weights|.
	const double lum_s = s * std::sqrt(0.2126 * 0.2126 + 0.7152 * 0.7152 + 0.0722 * 0.0722);
	CHECK(std::abs(r.psnr - -20 * std::log10(lum_s)) < 0.2);
	CHECK(r.ssim < 0.99);
}

TEST_CASE("score: SSIM matches a brute-force double implementation")
{
	ensure_vips();
	const int w = 32, h = 24;
	std::mt19937_64 rng(3);
	std::uniform_real_distribution<double> u(0, 1);
	std::vector<double> a(w * h * 3), b(w * h * 3);
	for (std::size_t i = 0; i < a.size(); i++) {
		a[i] = u(rng);
		b[i] = std::clamp(0.7 * a[i] + 0.3 * u(rng) + (i % 3 == 1 ? 0.05 : 0), 0.0, 1.0);
	}
	const VImage ia = from_pixels(a, w, h, 3), ib = from_pixels(b, w, h, 3);

	for (int crop : {0, 3}) {
		const int cw = w - 2 * crop, ch = h - 2 * crop;
		std::array<std::vector<double>, 4> x, y; // R, G, B, luminance
		for (int j = crop; j < h - crop; j++)
			for (int i = crop; i < w - crop; i++) {
				const double *pa = &a[(j * w + i) * 3], *pb = &b[(j * w + i) * 3];
				for (int c = 0; c < 3; c++) {
					x[c].push_back(pa[c]);
					y[c].push_back(pb[c]);
				}
				x[3].push_back(0.2126 * pa[0] + 0.7152 * pa[1] + 0.0722 * pa[2]);
				y[3].push_back(0.2126 * pb[0] + 0.7152 * pb[1] + 0.0722 * pb[2]);
			}
		const Score s = score_images(ia, ib, crop);
		REQUIRE(s.channels.size() == 3);
		for (int c = 0; c < 3; c++) {
			const double expected = brute_ssim(x[c], y[c], cw, ch);
			CHECK(std::abs(s.channels[c].ssim - expected) < 1e-4);
			double mse = 0;
			for (std::size_t k = 0; k < x[c].size(); k++)
				mse += (x[c][k] - y[c][k]) * (x[c][k] - y[c][k]);
			CHECK(std::abs(s.channels[c].psnr - 10 * std::log10(x[c].size() / mse)) < 1e-9);
		}
		const double lum = brute_ssim(x[3], y[3], cw, ch);
		MESSAGE("crop " << crop << ": luminance SSIM " << s.ssim << ", brute force " << lum);
		CHECK(std::abs(s.ssim - lum) < 1e-4);
	}
}

TEST_CASE("score: grey against RGB compares luminance; sizes must match; errors name the files")
{
	ensure_vips();
	TempDir dir("score-errors");
	const VImage chart = render_chart(96, 64, 1).cast(VIPS_FORMAT_DOUBLE);
	const VImage lum = chart[0] * 0.2126 + chart[1] * 0.7152 + chart[2] * 0.0722;
	const fs::path rgb = dir.path / "rgb.tif", grey = dir.path / "grey.tif", small = dir.path / "small.tif";
	chart.cast(VIPS_FORMAT_FLOAT).tiffsave(rgb.c_str());
	lum.cast(VIPS_FORMAT_FLOAT).tiffsave(grey.c_str());
	chart.extract_area(0, 0, 90, 64).cast(VIPS_FORMAT_FLOAT).tiffsave(small.c_str());

	const Score s = score_images(grey, rgb);
	CHECK(s.channels.empty());
	CHECK(s.psnr > 120); // identical up to float rounding: the weights are right
	CHECK(s.ssim == doctest::Approx(1).epsilon(1e-9));
	// With an alpha band, the alpha is ignored.
	CHECK(std::isinf(score_images(chart.bandjoin(chart[0] * 0), chart).psnr));

	std::string message;
	CHECK(code_of([&] { score_images(small, rgb); }, &message) == ExitCode::bad_input);
	CHECK(message.find("90x64") != std::string::npos);
	CHECK(message.find("96x64") != std::string::npos);
	CHECK(code_of([&] { score_images(dir.path / "missing.tif", rgb); }, &message) == ExitCode::bad_input);
	CHECK(message.find("missing.tif") != std::string::npos);
	CHECK(code_of([&] { score_images(rgb, rgb, 30); }) == ExitCode::usage);
}

TEST_CASE("chart: exact size, 3 bands float in [0, 1], detail near Nyquist, lazy at any size")
{
	ensure_vips();
	for (auto [w, h] : {std::pair{256, 192}, std::pair{192, 256}, std::pair{333, 517}, std::pair{640, 480}}) {
		const VImage c = render_chart(w, h, 1);
		CHECK(c.width() == w);
		CHECK(c.height() == h);
		CHECK(c.bands() == 3);
		CHECK(c.format() == VIPS_FORMAT_FLOAT);
		CHECK(c.min() >= 0);
		CHECK(c.max() <= 1);
	}
	// Rendered at 2x and box-averaged, as synth makes its truth: neighbouring pixels still differ a
	// lot (a smooth image gives ~0.002), in both directions.
	const VImage truth = render_chart(1280, 960, 2).shrink(2, 2);
	const double dx = (truth.extract_area(1, 0, 639, 480) - truth.extract_area(0, 0, 639, 480)).abs().avg();
	const double dy = (truth.extract_area(0, 1, 640, 479) - truth.extract_area(0, 0, 640, 479)).abs().avg();
	MESSAGE("mean |neighbour difference|: x " << dx << ", y " << dy);
	CHECK(dx > 0.04);
	CHECK(dy > 0.04);
	// A 40000 x 30000 chart is only an expression: a small region costs a small region.
	const VImage big = render_chart(40000, 30000, 4);
	CHECK(big.width() == 40000);
	const double avg = big.extract_area(20000, 15000, 256, 256).avg();
	CHECK(avg > 0);
	CHECK(avg < 1);
	CHECK(code_of([] { render_chart(16, 100); }) == ExitCode::usage);
}

namespace {

SynthOptions geometry_options(const fs::path &out_dir)
{
	SynthOptions o;
	o.out_dir = out_dir;
	o.frames = 4;
	o.width = 160;
	o.height = 120;
	o.scale = 2;
	o.noise = 0;
	o.max_shift = 4;
	o.max_rotation = 1;
	o.seed = 7;
	return o;
}

} // namespace

TEST_CASE("synth: geometry oracle -- truth, reference and matrices agree")
{
	ensure_vips();
	TempDir dir("synth-geometry");
	NoProgress quiet;
	const SynthResult r = synthesize(geometry_options(dir.path / "chart"), quiet);
	REQUIRE(r.frames.size() == 4);
	CHECK(r.jpeg_frames.empty());
	CHECK(r.frames[0].filename() == "frame_000.tif");

	// (a) The truth integrated down by S is the reference frame.
	const VImage truth = load_unit(r.truth);
	CHECK(truth.width() == 320);
	CHECK(truth.height() == 240);
	const VImage reference = load_unit(r.frames[0]);
	CHECK(reference.width() == 160);
	CHECK(reference.height() == 120);
	const Score a = score_images(truth.shrink(2, 2), reference);
	MESSAGE("truth shrunk by S vs frame_000: " << a.psnr << " dB");
	CHECK(a.psnr > 45);

	// (c) The transforms file: identity first, similarities within the requested maxima.
	const TransformSet set = read_transforms(r.transforms);
	REQUIRE(set.frames.size() == 4);
	CHECK(set.reference == 0);
	for (int i = 0; i < 3; i++)
		for (int j = 0; j < 3; j++)
			CHECK(set.frames[0].matrix(i, j) == (i == j ? 1.0 : 0.0));
	const Point centre{79.5, 59.5};
	for (int f = 1; f < 4; f++) {
		const Matrix3 &m = set.frames[f].matrix;
		CHECK(set.frames[f].file == fmt::format("frame_{:03d}.tif", f));
		CHECK(m(0, 0) * m(1, 1) - m(0, 1) * m(1, 0) == doctest::Approx(1).epsilon(1e-12));
		const double degrees = std::atan2(m(1, 0), m(0, 0)) * 180 / std::numbers::pi;
		const Point moved = m.apply(centre);
		CHECK(std::abs(degrees) <= 1);
		CHECK(std::abs(moved.x - centre.x) <= 4);
		CHECK(std::abs(moved.y - centre.y) <= 4);
		CHECK(std::abs(moved.x - centre.x) + std::abs(moved.y - centre.y) + std::abs(degrees) > 0.1);
	}

	// (b) Frame f predicted through H_f, against the inverse matrix and H_f off by half a pixel.
	// The chart's frames are aliased on purpose (detail up to the truth's Nyquist limit, twice the
	// frames'), so the reference interpolated cannot predict another frame's samples to 30 dB;
	// the truth sampled on frame f's 2x2 subpixel grid and box-averaged can.
	const OutputGeometry g = OutputGeometry::for_reference(160, 120, 2);
	const Matrix3 to_subpixels({{{2, 0, 0.5}, {0, 2, 0.5}, {0, 0, 1}}}); // frame -> its 2x2 grid
	const auto from_truth = [&](const Matrix3 &m) {
		return warp(truth, to_subpixels * m * g.output_to_reference(), 320, 240).shrink(2, 2);
	};
	for (int f = 1; f < 4; f++) {
		const Matrix3 &m = set.frames[f].matrix;
		const VImage frame = load_unit(r.frames[f]);
		const double right = score_images(from_truth(m), frame, 8).psnr;
		const double inverse = score_images(from_truth(m.inverse()), frame, 8).psnr;
		const double half = score_images(from_truth(Matrix3::translation(0.5, 0.5) * m), frame, 8).psnr;
		MESSAGE("chart frame " << f << " from the truth: H_f " << right << " dB, inverse " << inverse
					 << " dB, half-pixel off " << half << " dB");
		CHECK(right > 30);
		CHECK(right - inverse >= 6);
		CHECK(right - half >= 6);
	}

	// ... and on a band-limited scene (the chart blurred, given as `source`), the reference warped by
	// H_f predicts frame f directly.
	const fs::path smooth = dir.path / "smooth.tif";
	to_16bit(render_chart(320, 240, 1).gaussblur(2)).tiffsave(smooth.c_str());
	SynthOptions o = geometry_options(dir.path / "smooth");
	o.source = smooth;
	const SynthResult rs = synthesize(o, quiet);
	const TransformSet ss = read_transforms(rs.transforms);
	const VImage ref = load_unit(rs.frames[0]);
	for (int f = 1; f < 4; f++) {
		const Matrix3 &m = ss.frames[f].matrix;
		const VImage frame = load_unit(rs.frames[f]);
		const double right = score_images(warp(ref, m), frame, 8).psnr;
		const double inverse = score_images(warp(ref, m.inverse()), frame, 8).psnr;
		const double half = score_images(warp(ref, Matrix3::translation(0.5, 0.5) * m), frame, 8).psnr;
		MESSAGE("smooth frame " << f << " from frame_000: H_f " << right << " dB, inverse " << inverse
					  << " dB, half-pixel off " << half << " dB");
		CHECK(right > 30);
		CHECK(right - inverse >= 6);
		CHECK(right - half >= 6);
	}
}

TEST_CASE("synth: noise follows sigma^2 (0.25 + 1.5 v)")
{
	ensure_vips();
	TempDir dir("synth-noise");
	SynthOptions o;
	o.frames = 2;
	o.width = 256;
	o.height = 192;
	o.seed = 5;
	NoProgress quiet;
	o.out_dir = dir.path / "clean";
	o.noise = 0;
	const SynthResult clean = synthesize(o, quiet);
	o.out_dir = dir.path / "noisy";
	o.noise = 0.02;
	const SynthResult noisy = synthesize(o, quiet);

	for (int f = 0; f < 2; f++) {
		const VImage v = load_unit(clean.frames[f]);
		const VImage diff = load_unit(noisy.frames[f]) - v;
		// The variance is linear in v, so over any set of pixels it is sigma^2 (0.25 + 1.5 mean(v)).
		const double expected = 0.02 * std::sqrt(0.25 + 1.5 * v.avg());
		const double measured = diff.deviate();
		MESSAGE("frame " << f << ": noise std " << measured << ", model " << expected);
		CHECK(std::abs(diff.avg()) < 0.1 * expected);
		CHECK(std::abs(measured / expected - 1) < 0.2);
		// Dark and bright samples separately (away from the clamps): the signal dependence.
		for (auto [lo, hi] : {std::pair{0.05, 0.15}, std::pair{0.7, 0.9}}) {
			const VImage in = ((v > lo) & (v < hi)) / 255.0; // 1 inside, per band
			const double n = in.avg();
			REQUIRE(n > 0.02);
			const double mean_v = (v * in).avg() / n, std = std::sqrt((diff * diff * in).avg() / n);
			const double model = 0.02 * std::sqrt(0.25 + 1.5 * mean_v);
			MESSAGE("  values " << lo << ".." << hi << " (mean " << mean_v << "): std " << std << ", model " << model);
			CHECK(std::abs(std / model - 1) < 0.1);
		}
	}
	// Same seed, same transforms, whatever the noise.
	CHECK(read_transforms(clean.transforms).frames[1].matrix.rows() ==
	      read_transforms(noisy.transforms).frames[1].matrix.rows());
	// And the noise did change the pixels.
	CHECK(load_unit(noisy.frames[0]).avg() != load_unit(clean.frames[0]).avg());
}

namespace {

// Records every progress report.
struct Recorder final : Progress {
	std::vector<std::pair<std::string, double>> calls;
	void update(std::string_view stage, double fraction, double eta) override
	{
		CHECK(eta < 0);
		calls.emplace_back(std::string(stage), fraction);
	}
};

} // namespace

TEST_CASE("synth: a source image is the scene at truth resolution")
{
	ensure_vips();
	TempDir dir("synth-source");
	// Grey with alpha: the alpha is dropped and the grey becomes three equal bands.
	const fs::path source = dir.path / "scene.png";
	const VImage chart = render_chart(101, 81, 1);
	const VImage grey = chart[0] * 0.2126 + chart[1] * 0.7152 + chart[2] * 0.0722;
	(grey * 255).round(VIPS_OPERATION_ROUND_RINT).cast(VIPS_FORMAT_UCHAR).bandjoin(255).pngsave(source.c_str());
	SynthOptions o;
	o.out_dir = dir.path / "burst";
	o.frames = 2;
	o.scale = 2;
	o.noise = 0;
	o.max_shift = 2;
	o.source = source;
	o.jpeg = true;
	Recorder progress;
	const SynthResult r = synthesize(o, progress);
	const VImage truth = load_unit(r.truth), reference = load_unit(r.frames[0]);
	CHECK(truth.bands() == 3);
	CHECK(reference.width() == 50); // floor(101 / 2)
	CHECK(reference.height() == 40);
	CHECK(truth.width() == 100);
	CHECK(truth.height() == 80);
	const VImage scene = VImage::new_from_file(source.c_str())[0].extract_area(0, 0, 100, 80);
	CHECK(score_images(truth, scene).psnr > 90); // luminance of equal bands against the grey
	CHECK(score_images(truth.shrink(2, 2), reference).psnr > 45);
	REQUIRE(r.jpeg_frames.size() == 2);
	CHECK(r.jpeg_frames[1].filename() == "frame_001.jpg");
	CHECK(fs::exists(r.jpeg_frames[1]));
	CHECK(score_images(r.jpeg_frames[0], r.frames[0]).psnr > 30);

	// Nothing left under a temporary name; progress rises to 1 in the "synth" stage.
	for (const auto &entry : fs::directory_iterator(o.out_dir))
		CHECK(entry.path().extension() != ".part");
	REQUIRE(progress.calls.size() == 3);
	for (std::size_t i = 0; i < progress.calls.size(); i++) {
		CHECK(progress.calls[i].first == "synth");
		if (i > 0)
			CHECK(progress.calls[i].second > progress.calls[i - 1].second);
	}
	CHECK(progress.calls.back().second == 1.0);
}

TEST_CASE("synth: bad options are usage errors, an unreadable source is bad input")
{
	ensure_vips();
	TempDir dir("synth-errors");
	NoProgress quiet;
	const auto with = [&](auto change) {
		SynthOptions o;
		o.out_dir = dir.path / "out";
		o.frames = 1;
		o.width = o.height = 32;
		change(o);
		return code_of([&] { synthesize(o, quiet); });
	};
	CHECK(with([](SynthOptions &o) { o.frames = 0; }) == ExitCode::usage);
	CHECK(with([](SynthOptions &o) { o.width = 15; }) == ExitCode::usage);
	CHECK(with([](SynthOptions &o) { o.noise = -0.1; }) == ExitCode::usage);
	CHECK(with([](SynthOptions &o) { o.scale = 0.9; }) == ExitCode::usage);

	SynthOptions o;
	o.out_dir = dir.path / "out";
	o.source = dir.path / "no-such-scene.png";
	std::string message;
	CHECK(code_of([&] { synthesize(o, quiet); }, &message) == ExitCode::bad_input);
	CHECK(message.find("no-such-scene.png") != std::string::npos);
	CHECK(!fs::exists(dir.path / "out"));
}
