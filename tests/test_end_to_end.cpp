// End to end: synth -> run (true transforms) -> score. The stack must beat the single-frame lanczos3
// upscale of the reference by the margins measured when this test was written (less a small margin),
// so a regression fails. Also: the reference's ICC profile and XMP reach the outputs (libvips 8.14's
// TIFF writer has no EXIF support; see README).
#include "temp_dir.hpp"

#include "superstack/score.hpp"
#include "superstack/stack.hpp"
#include "superstack/synth.hpp"

#include <doctest/doctest.h>
#include <fmt/core.h>

#include <cstring>

using namespace superstack;
using namespace superstack::test;
namespace fs = std::filesystem;

namespace {

struct Gains {
	double single, mean, median, single_ssim, mean_ssim, median_ssim;
};

Gains stack_and_score(const SynthResult &burst, const fs::path &out)
{
	NoProgress quiet;
	RunOptions o;
	for (const auto &f : burst.frames)
		o.inputs.push_back(f.string());
	o.out_dir = out / "stack";
	o.transforms = burst.transforms;
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
	chart.width = 640;
	chart.height = 480;
	chart.noise = 0.02;
	const SynthResult chart_burst = synthesize(chart, quiet);

	{ // the built-in chart
		// Measured (2026-11-21): single 18.688 dB; mean +0.610; median +0.480; SSIM 0.747 -> 0.834 / 0.828.
		// The chart's error is dominated by detail beyond the frames' Nyquist limit (line pairs at 2.2
		// truth px, stars to the truth's limit), which warp-then-reduce cannot recover: the noise that
		// stacking removes is a small part of it. Recovering that detail is the superresolution merge's job.
		const Gains g = stack_and_score(chart_burst, dir / "chart-out");
		CHECK(g.mean - g.single >= 0.50);
		CHECK(g.median - g.single >= 0.38);
		CHECK(g.mean_ssim - g.single_ssim >= 0.07);
		CHECK(g.median_ssim - g.single_ssim >= 0.07);
	}
	{ // a natural-spectrum scene: the chart blurred by 1.2 truth px, given as --source
		// Measured (2026-11-21): single 34.614 dB; mean +3.639; median +3.402; SSIM 0.880 -> 0.976 / 0.971.
		const fs::path source = dir / "source.tif";
		vips::VImage::new_from_file(chart_burst.truth.c_str()).gaussblur(1.2).cast(VIPS_FORMAT_USHORT).tiffsave(source.c_str());
		SynthOptions photo = chart;
		photo.out_dir = dir / "photo";
		photo.source = source;
		const Gains g = stack_and_score(synthesize(photo, quiet), dir / "photo-out");
		CHECK(g.mean - g.single >= 3.3);
		CHECK(g.median - g.single >= 3.1);
		CHECK(g.mean_ssim - g.single_ssim >= 0.08);
	}
}

TEST_CASE("outputs carry the reference's ICC profile and XMP, and are 16-bit by default")
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
	tagged.jpegsave((dir / "ref.jpg").c_str(), vips::VImage::option()->set("Q", 95));
	base.jpegsave((dir / "other.jpg").c_str());
	vips::VImage ref = vips::VImage::new_from_file((dir / "ref.jpg").c_str());
	REQUIRE(ref.get_typeof(VIPS_META_ICC_NAME) != 0);
	RunOptions o;
	o.inputs = {(dir / "other.jpg").string(), (dir / "ref.jpg").string()};
	o.reference = "ref.jpg";
	o.out_dir = dir / "out";
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
	}
}
