// Alignment's memory does not grow with the frame: a 16000 x 16000 frame (small on disk: a textured
// block repeated over a flat field, tiled and compressed) aligned against much smaller references,
// with the peak RSS of the whole run held to the budget plus the fixed overhead (README, memory model).
// Before the frame's proxy was bounded, the 32x24 reference made the frame's proxy the whole frame in
// floats: 2.0 GB for this frame, 21 GB for a 65000 px one.
#include "process.hpp"
#include "temp_dir.hpp"

#include <doctest/doctest.h>
#include <fmt/core.h>

#include <vips/vips8>

using namespace superstack::test;
using vips::VImage;

namespace {

// 400 x 400: flat mid grey with a 96 px block of blurred noise, the same for every seed.
VImage texture_tile()
{
	const VImage noise = VImage::gaussnoise(400, 400, VImage::option()->set("sigma", 40.0)->set("mean", 128.0)->set("seed", 7))
				     .gaussblur(1.5)
				     .cast(VIPS_FORMAT_UCHAR);
	const VImage flat = (VImage::black(400, 400) + 128).cast(VIPS_FORMAT_UCHAR);
	return flat.insert(noise.extract_area(0, 0, 96, 96), 150, 150);
}

} // namespace

TEST_CASE("aligning a 16000 x 16000 frame to a small reference stays within --memory plus the fixed overhead")
{
	if (!have_binary()) {
		MESSAGE("skipped: SUPERSTACK_BIN is not set");
		return;
	}
	TempDir dir("align-memory");
	const VImage tile = texture_tile();
	// 256 MB of pixels in about 7 MB of file.
	tile.replicate(40, 40).tiffsave((dir / "huge.tif").c_str(), VImage::option()
		->set("tile", true)->set("tile_width", 256)->set("tile_height", 256)
		->set("compression", VIPS_FOREIGN_TIFF_COMPRESSION_ZSTD)->set("level", 1));
	tile.extract_area(150, 150, 32, 24).tiffsave((dir / "ref32x24.tif").c_str());
	tile.replicate(2, 2).extract_area(0, 0, 640, 480).tiffsave((dir / "ref640x480.tif").c_str());

	constexpr long kBudgetMiB = 128;
	// README: "On top of the budget the process needs a fixed 60 to 150 MB"; the frame's decoder (a row
	// of 256 px tiles) and the spool writer's strips come with it.
	constexpr long kBoundMiB = kBudgetMiB + 192;
	// The 32x24 reference has no patch to align on: the frame is left out, saying why. The 640x480 one
	// repeats the frame's pattern, so it is found in the window about the frame's centre (7600 px from
	// the frame's corner: period 400) and stacked. Exposure normalization and linear light are off: each
	// is one more full pass over the frame (12 s here), with proxies bounded as before.
	const std::pair<const char *, const char *> cases[] = {
		{"ref32x24.tif", "huge.tif: left out, cannot be aligned: the reference (32x24) has no textured patch"},
		{"ref640x480.tif", "aligned huge.tif: "},
	};
	for (const auto &c : cases) {
		const std::string reference = c.first, expected = c.second; // clang 14 cannot CAPTURE a structured binding
		CAPTURE(reference);
		const auto out = dir / fmt::format("out-{}", reference);
		const ProcessResult r = run_superstack({"run", (dir / reference).string(), (dir / "huge.tif").string(), "-o",
							       out.string(), "--memory", fmt::format("{}M", kBudgetMiB), "--reduce", "mean",
							       "--normalize", "none", "--linear", "off", "--threads", "2", "-v"},
			120);
		CAPTURE(r.err);
		REQUIRE_FALSE(r.timed_out);
		CHECK(r.exit_code == 0);
		CHECK(r.err.find(expected) != std::string::npos);
		MESSAGE(fmt::format("{}: peak RSS {} MiB (bound {} MiB)", reference, r.peak_rss_kib / 1024, kBoundMiB));
		CHECK(r.peak_rss_kib > 0);
		CHECK(r.peak_rss_kib / 1024 < kBoundMiB);
	}
}
