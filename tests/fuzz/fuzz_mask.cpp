// fuzz_mask -- libFuzzer target: the mask reader (`--mask FILE`), an image file from the user.
//
// Each input is written to a file and read as a mask in its own geometry (the header decides the
// reference size, so the whole path runs: probe, orientation, band layout, decode into the spool).
// The contract: a 1-band 8-bit mask of that size holding only 0 and 255, or Error(bad_input) naming
// the file. A libvips exception escaping unconverted, a crash or a sanitizer report is a bug.
// Inputs whose header declares more than 2^22 pixels are probed but not decoded (the fuzzer's time
// limit, not the reader's: bigger masks decode the same way, in strips).
#include "superstack/error.hpp"
#include "superstack/frame.hpp"
#include "superstack/mask.hpp"
#include "superstack/spool.hpp"

#include <unistd.h>
#include <vips/vips8>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string_view>

using namespace superstack;
namespace fs = std::filesystem;

namespace {

fs::path work;

[[noreturn]] void fail(const char *what)
{
	std::fprintf(stderr, "fuzz_mask: contract broken: %s\n", what);
	std::abort();
}

} // namespace

extern "C" int LLVMFuzzerInitialize(int * /*argc*/, char ***argv)
{
	if (VIPS_INIT((*argv)[0]))
		std::abort();
	vips_cache_set_max(0);
	vips_concurrency_set(1);
	capture_vips_warnings();
	work = fs::temp_directory_path() / ("superstack-fuzz-mask-" + std::to_string(getpid()));
	fs::create_directories(work);
	std::atexit([] {
		std::error_code ec;
		fs::remove_all(work, ec);
	});
	return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size)
{
	const fs::path file = work / "mask.img";
	{
		std::ofstream out(file, std::ios::binary | std::ios::trunc);
		out.write(reinterpret_cast<const char *>(data), static_cast<std::streamsize>(size));
	}
	try {
		const FrameInfo info = probe_frame(file);
		if (info.width < 1 || info.height < 1)
			fail("probe accepted an empty image");
		if (static_cast<std::uint64_t>(info.width) * static_cast<std::uint64_t>(info.height) > (1u << 22))
			return 0;
		Spool spool(work / "spool");
		const vips::VImage mask = open_mask(file, info.width, info.height, spool);
		if (mask.width() != info.width || mask.height() != info.height || mask.bands() != 1 ||
			mask.format() != VIPS_FORMAT_UCHAR)
			fail("the mask has another geometry or layout");
		const vips::VImage odd = (mask != 0.0) & (mask != 255.0);
		if (odd.max() != 0)
			fail("the mask holds values other than 0 and 255");
	} catch (const Error &e) {
		if (e.code() != ExitCode::bad_input)
			fail("an error other than bad_input");
		if (std::string_view(e.what()).find(file.string()) == std::string_view::npos)
			fail("an error that does not name the file");
	} catch (const vips::VError &) {
		fail("a libvips error escaped without naming the file");
	}
	vips_error_clear();
	return 0;
}
