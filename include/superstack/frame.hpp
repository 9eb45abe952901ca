// frame -- one input image: found, probed (header only), decoded into the spool, and brought lazily to
// the working layout every later stage sees.
//
// Working layout: float samples in [0, 1] (8-bit /255, 16-bit /65535, float as is), the reference's
// colour band count (grey and RGB convert either way), and, when the frame has alpha, one more band
// holding alpha with the colours premultiplied by it (so warping does not bleed invalid pixels).
// Float frames always get one: NaN and infinite samples are no data (alpha 0, colour 0).
// EXIF orientation is applied. Nothing here holds a frame in memory.
#pragma once

#include "superstack/spool.hpp"

#include <vips/vips8>

#include <filesystem>
#include <string>
#include <vector>

namespace superstack {

// Files as given, and every loadable image in a given directory (by extension, case-insensitive,
// sorted by name). Throws Error(bad_input) for a missing path or a directory with no images.
std::vector<std::filesystem::path> expand_inputs(const std::vector<std::string> &inputs);

struct FrameInfo {
	std::filesystem::path file;
	int width = 0, height = 0;    // as displayed (after EXIF orientation)
	int colour_bands = 0;         // bands without alpha, in the working layout (CMYK: 3)
	bool alpha = false;           // the working layout has an alpha band: the file's, or no-data (float)
	bool file_alpha = false;      // the file has an alpha band (its last)
	int file_bands = 0;           // bands as decoded
	int pages = 1;                // pages in the file (multi-page TIFF): only the first is read
	VipsBandFormat format = VIPS_FORMAT_UCHAR;
	VipsInterpretation interpretation = VIPS_INTERPRETATION_sRGB;
	int orientation = 1;          // EXIF orientation 1..8
};

// Reads the header only (and, for a file far smaller than its declared pixels could be, its first
// rows). Throws Error(bad_input, "<file>: <reason>").
FrameInfo probe_frame(const std::filesystem::path &file);

// The frame decoded once into `spool`, then lazily: oriented, converted to the reference's colour bands,
// float [0,1], premultiplied alpha as the last band when the frame has one.
vips::VImage open_working_frame(const FrameInfo &info, int reference_colour_bands, Spool &spool);

// The frame in the working layout of its own colour bands, decoded as one sequential stream (no spool)
// and not oriented: for one-pass measures that EXIF orientation does not change (sharpness: the
// 4-neighbour Laplacian is the same under every rotation by 90 degrees and mirror).
vips::VImage stream_working_frame(const FrameInfo &info);

// The luminance (Rec. 709 weights; premultiplied when the frame has alpha) of a working image.
// Lazy, 1 band float.
vips::VImage working_luminance(const vips::VImage &working, bool alpha);

// The value that means "full scale" for a band format (255 for 8-bit, 65535 for 16-bit, 1 for float).
double format_full_scale(VipsBandFormat format);

} // namespace superstack
