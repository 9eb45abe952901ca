// output -- output options, metadata carry-over, and TIFFs written atomically.
//
// A file is written under a hidden
// temporary name in its folder and renamed on success, so a final name only ever holds a complete
// file. Progress and cancellation ride on libvips' eval signal of the image being saved.
#pragma once

#include "superstack/progress.hpp"

#include <vips/vips8>

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace superstack {

enum class Depth { u8, u16, f32 };
enum class Compression { none, lzw, deflate, zstd };
enum class BigTiff { automatic, yes, no };

Depth parse_depth(std::string_view text);
Compression parse_compression(std::string_view text);
BigTiff parse_bigtiff(std::string_view text);

struct SaveOptions {
	Depth depth = Depth::u16;
	Compression compression = Compression::none;
	BigTiff bigtiff = BigTiff::automatic;
};

// The colour interpretation to tag an output of `bands` colour bands at `depth`.
VipsInterpretation interpretation_for(int bands, Depth depth);

// Copies the ICC profile, EXIF and XMP of `from` onto a copy of `image`.
vips::VImage with_metadata_of(const vips::VImage &image, const vips::VImage &from);

// Copies header fields of `from` onto `to` (which must be a private copy): the named ones, or with
// `names` empty every field but the core ones (size, bands, format, coding, ...).
void copy_fields(const vips::VImage &from, vips::VImage &to, const std::vector<const char *> &names = {});

// Saves `image` as TIFF at `path` through a temporary name; progress reported as `stage`.
void save_tiff(const vips::VImage &image, const std::filesystem::path &path, const SaveOptions &options,
	Progress &progress, std::string_view stage);

// Reports progress (and obeys cancellation) while `image` is computed by any sink.
class EvalMonitor {
public:
	EvalMonitor(const vips::VImage &image, Progress &progress, std::string_view stage);
	~EvalMonitor();
	EvalMonitor(const EvalMonitor &) = delete;
	EvalMonitor &operator=(const EvalMonitor &) = delete;

private:
	vips::VImage image_;
	Progress &progress_;
	std::string stage_;
	gulong handler_ = 0;
	static void on_eval(VipsImage *image, VipsProgress *state, void *self);
};

} // namespace superstack
