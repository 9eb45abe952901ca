// End to end: synth -> run (true transforms) -> score. The stack must beat the single-frame lanczos3
// upscale of the reference by the margins measured when this test was written (less a small margin),
// so a regression fails. Also: the reference's ICC profile, XMP and EXIF reach the outputs.
#include "synth_fixtures.hpp"
#include "temp_dir.hpp"

#include "superstack/score.hpp"
#include "superstack/stack.hpp"
#include "superstack/synth.hpp"

#include <doctest/doctest.h>
#include <fmt/core.h>

#include <cstring>

#include <tiffio.h>

using namespace superstack;
using namespace superstack::test;
namespace fs = std::filesystem;

namespace {

struct Gains {
	double single, mean, median, single_ssim, mean_ssim, median_ssim;
};

Gains stack_and_score(const SynthResult &burst, const fs::path &out, Merge merge = Merge::interpolate)
{
	NoProgress quiet;
	RunOptions o = burst_run_options(burst, out / "stack");
	o.merge = merge;
	run_stack(o, quiet);
	RunOptions one;
	one.inputs = {burst.frames.front().string()};
	one.out_dir = out / "single";
	one.statistics = {Statistic::median};
	run_stack(one, quiet);
	const Score s = score_images(out / "single" / "median.tif", burst.truth, 16);
	const Score mean = score_images(out / "stack" / "mean.tif", burst.truth, 16);
	const Score median = score_images(out / "stack" / "median.tif", burst.truth, 16);
	MESSAGE(fmt::format("PSNR single {:.3f}, mean {:.3f} (+{:.3f}), median {:.3f} (+{:.3f}); SSIM {:.4f} / {:.4f} / {:.4f}",
		s.psnr, mean.psnr, mean.psnr - s.psnr, median.psnr, median.psnr - s.psnr, s.ssim, mean.ssim, median.ssim));
	return {s.psnr, mean.psnr, median.psnr, s.ssim, mean.ssim, median.ssim};
}

} // namespace

TEST_CASE("end to end: 16 frames at noise 2% beat the single-frame lanczos3 upscale")
{
	TempDir dir("e2e");
	NoProgress quiet;
	SynthOptions chart;
	chart.out_dir = dir / "chart";
	chart.frames = 16;
	chart.width = 320; // 640x480 gives the same gains (see the figures); 320x240 keeps the suite quick
	chart.height = 240;
	chart.noise = 0.02;
	const SynthResult chart_burst = synthesize(chart, quiet);

	{ // the built-in chart
		// Measured (2026-11-22, 320x240): single 17.976 dB; mean +0.600; median +0.493; SSIM 0.728 -> 0.800 / 0.795
		// (at 640x480: single 18.688; mean +0.610; median +0.480; SSIM 0.747 -> 0.834 / 0.828).
		// The chart's error is dominated by detail beyond the frames' Nyquist limit (line pairs at 2.2
		// truth px, stars to the truth's limit), which warp-then-reduce cannot recover: the noise that
		// stacking removes is a small part of it. Recovering that detail is the superresolution merge's job.
		const Gains g = stack_and_score(chart_burst, dir / "chart-out");
		CHECK(g.mean - g.single >= 0.50);
		CHECK(g.median - g.single >= 0.38);
		CHECK(g.mean_ssim - g.single_ssim >= 0.06);
		CHECK(g.median_ssim - g.single_ssim >= 0.06);
		// Drizzle reads the frames' own pixels instead of interpolating them, and recovers that detail.
		// Measured (2026-11-22, pixfrac 0.5, 320x240): mean +2.168, median +2.049 (640x480: +2.260, +2.191).
		const Gains d = stack_and_score(chart_burst, dir / "chart-drizzle", Merge::drizzle);
		CHECK(d.mean - d.single >= 2.0);
		CHECK(d.median - d.single >= 1.9);
	}
	{ // a natural-spectrum scene: the chart blurred by 1.2 truth px, given as --source
		// Measured (2026-11-22, 320x240): single 34.037 dB; mean +3.180; median +2.978; SSIM 0.890 -> 0.975 / 0.971
		// (at 640x480: single 34.614; mean +3.639; median +3.402; SSIM 0.880 -> 0.976 / 0.971).
		const fs::path source = dir / "source.tif";
		vips::VImage::new_from_file(chart_burst.truth.c_str()).gaussblur(1.2).cast(VIPS_FORMAT_USHORT).tiffsave(source.c_str());
		SynthOptions photo = chart;
		photo.out_dir = dir / "photo";
		photo.source = source;
		const Gains g = stack_and_score(synthesize(photo, quiet), dir / "photo-out");
		CHECK(g.mean - g.single >= 3.0);
		CHECK(g.median - g.single >= 2.8);
		CHECK(g.mean_ssim - g.single_ssim >= 0.08);
	}
}

TEST_CASE("outputs carry the reference's ICC profile, XMP and EXIF, and are 16-bit by default")
{
	TempDir dir("metadata");
	vips::VImage base = vips::VImage::gaussnoise(48, 32, vips::VImage::option()->set("mean", 128.0)->set("sigma", 20.0));
	base = vips::VImage::bandjoin({base, base, base}).cast(VIPS_FORMAT_UCHAR)
		       .copy(vips::VImage::option()->set("interpretation", VIPS_INTERPRETATION_sRGB));
	// An sRGB profile from libvips' own set, and an XMP packet naming the camera.
	vips::VImage tagged = base.icc_transform("srgb", vips::VImage::option()->set("embedded", false)->set("input_profile", "srgb"));
	tagged = tagged.copy();
	const std::string xmp = R"(<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">)"
				R"(<rdf:Description xmlns:tiff="http://ns.adobe.com/tiff/1.0/" tiff:Make="SuperstackCam"/></rdf:RDF></x:xmpmeta>)";
	vips_image_set_blob_copy(tagged.get_image(), VIPS_META_XMP_NAME, xmp.data(), xmp.size());
	// EXIF: libvips builds the block from these fields when it writes the JPEG.
	tagged.set("exif-ifd0-Make", "SuperstackCam");
	tagged.set("exif-ifd0-Model", "Burst 1");
	tagged.set("exif-ifd2-ExposureTime", "1/250");
	tagged.set("exif-ifd2-FNumber", "28/10");
	tagged.set("exif-ifd2-DateTimeOriginal", "2026:11:21 10:11:12");
	tagged.jpegsave((dir / "ref.jpg").c_str(), vips::VImage::option()->set("Q", 95));
	base.jpegsave((dir / "other.jpg").c_str());
	vips::VImage ref = vips::VImage::new_from_file((dir / "ref.jpg").c_str());
	REQUIRE(ref.get_typeof(VIPS_META_ICC_NAME) != 0);
	RunOptions o;
	o.inputs = {(dir / "other.jpg").string(), (dir / "ref.jpg").string()};
	o.reference = "ref.jpg";
	o.out_dir = dir / "out";
	o.align = MotionModel::none; // noise frames: taken as aligned
	NoProgress quiet;
	run_stack(o, quiet);
	for (const char *name : {"mean.tif", "median.tif"}) {
		vips::VImage out = vips::VImage::new_from_file((dir / "out" / name).c_str());
		CHECK(out.format() == VIPS_FORMAT_USHORT);
		CHECK(out.width() == 96);
		REQUIRE(out.get_typeof(VIPS_META_ICC_NAME) != 0);
		std::size_t a = 0, b = 0;
		const void *pa = out.get_blob(VIPS_META_ICC_NAME, &a);
		const void *pb = ref.get_blob(VIPS_META_ICC_NAME, &b);
		CHECK(a == b);
		CHECK(std::memcmp(pa, pb, a) == 0);
		REQUIRE(out.get_typeof(VIPS_META_XMP_NAME) != 0);
		std::size_t n = 0;
		const char *packet = static_cast<const char *>(out.get_blob(VIPS_META_XMP_NAME, &n));
		CHECK(std::string(packet, n).find("SuperstackCam") != std::string::npos);

		// EXIF, read back with libtiff (independently of how it was written).
		TIFF *t = TIFFOpen((dir / "out" / name).c_str(), "r");
		REQUIRE(t != nullptr);
		char *make = nullptr, *model = nullptr;
		CHECK(TIFFGetField(t, TIFFTAG_MAKE, &make) == 1);
		CHECK(std::string(make ? make : "") == "SuperstackCam");
		CHECK(TIFFGetField(t, TIFFTAG_MODEL, &model) == 1);
		uint32_t width = 0;
		TIFFGetField(t, TIFFTAG_IMAGEWIDTH, &width);
		CHECK(width == 96); // the image directory survived the rewrite
		toff_t exif_offset = 0;
		REQUIRE(TIFFGetField(t, TIFFTAG_EXIFIFD, &exif_offset) == 1);
		REQUIRE(TIFFReadEXIFDirectory(t, exif_offset) == 1);
		// libtiff stores a rational as float or double, per tag: ask it which.
		auto rational = [&](uint32_t tag) {
			const TIFFField *field = TIFFFindField(t, tag, TIFF_ANY);
			REQUIRE(field != nullptr);
			if (TIFFFieldSetGetSize(field) == 4) {
				float f = 0;
				CHECK(TIFFGetField(t, tag, &f) == 1);
				return static_cast<double>(f);
			}
			double d = 0;
			CHECK(TIFFGetField(t, tag, &d) == 1);
			return d;
		};
		char *original = nullptr;
		CHECK(rational(EXIFTAG_EXPOSURETIME) == doctest::Approx(1.0 / 250));
		CHECK(rational(EXIFTAG_FNUMBER) == doctest::Approx(2.8));
		CHECK(TIFFGetField(t, EXIFTAG_DATETIMEORIGINAL, &original) == 1);
		CHECK(std::string(original ? original : "") == "2026:11:21 10:11:12");
		TIFFClose(t);
	}
	// And the pixels still read as before.
	vips::VImage median = vips::VImage::new_from_file((dir / "out" / "median.tif").c_str());
	CHECK(median.avg() > 0);
}
