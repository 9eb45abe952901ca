// spool -- every input frame decoded once, in file order, into a raw pixel file; read back by rectangle.
//
// Why: JPEG, PNG and strip TIFF cannot be read in random order cheaply. libvips' random access to
// them decodes the whole image (to RAM, or to an mmap-ed temporary whose touched pages count in RSS).
// A spooled frame is a headerless row-major file read with pread() per requested row span, so a
// region costs exactly its own bytes: no cache, no mapping, no descriptor held between requests
// (a 5000-frame stack never meets the open-file limit). The page cache, not our RSS, keeps hot data.
// Disk cost: width x height x bands x bytes-per-sample of each frame, in its own depth.
#pragma once

#include <vips/vips8>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace superstack {

class Spool {
public:
	// Creates `dir` (which must not exist yet) and removes it, with everything in it, on destruction.
	explicit Spool(std::filesystem::path dir);
	~Spool();
	Spool(const Spool &) = delete;
	Spool &operator=(const Spool &) = delete;

	const std::filesystem::path &dir() const { return dir_; }

	// Decodes `decoded` (a sequential, lazily loaded image) into a spool file and returns a random-access
	// image over it with the same size, bands, format, interpretation and metadata. Throws
	// Error(bad_input, "<source>: <reason>") when decoding fails.
	vips::VImage add(const vips::VImage &decoded, const std::string &source_name);

	// Bytes a frame of this shape will take on disk.
	static std::uint64_t bytes_for(int width, int height, int bands, VipsBandFormat format);

private:
	std::filesystem::path dir_;
	int count_ = 0;
};

// A random-access image over a headerless row-major pixel file (what Spool writes).
vips::VImage open_raw_file(const std::filesystem::path &file, int width, int height, int bands,
	VipsBandFormat format, VipsInterpretation interpretation);

// One image over raw files stacked top to bottom (the band files of a reduction), each `rows` rows of
// the same width, bands and format. One image, not a join of one image per file: libvips keeps a
// region and its buffers per input image and thread, so a join of B files held B times the rows of
// a request (2 GB for 250 bands of a 6000 px wide, 13-band 16-bit image).
struct RawPart {
	std::filesystem::path file;
	int rows = 0;
};
vips::VImage open_raw_files(const std::vector<RawPart> &parts, int width, int bands, VipsBandFormat format,
	VipsInterpretation interpretation);

// `image` (a spooled frame, or a pipeline on one) shrunk by k (an integer box), for a proxy read
// whole. libvips' shrink asks its input for one row at a time, and every request of a spooled frame
// opens its file: 42,470 opens to align 5 frames of 6 MP. A tile cache in between (16 tiles of 512 x
// 64 pixels, a few MB at most) makes those reads 64 rows tall; the pixels are the same.
vips::VImage shrink_spooled(const vips::VImage &image, int k);

} // namespace superstack
