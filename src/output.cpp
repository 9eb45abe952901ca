// output -- depth encoding, metadata carry-over and atomic TIFF saves.
#include "superstack/output.hpp"

#include "superstack/cancel.hpp"
#include "superstack/error.hpp"
#include "superstack/exif.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstring>

namespace superstack {

Depth parse_depth(std::string_view text)
{
	if (text == "16") return Depth::u16;
	if (text == "8") return Depth::u8;
	if (text == "float") return Depth::f32;
	throw_error(ExitCode::usage, "--depth must be 16, 8 or float (got '{}')", text);
}

Compression parse_compression(std::string_view text)
{
	if (text == "none") return Compression::none;
	if (text == "lzw") return Compression::lzw;
	if (text == "deflate") return Compression::deflate;
	if (text == "zstd") return Compression::zstd;
	throw_error(ExitCode::usage, "--compression must be none, lzw, deflate or zstd (got '{}')", text);
}

BigTiff parse_bigtiff(std::string_view text)
{
	if (text == "auto") return BigTiff::automatic;
	if (text == "yes") return BigTiff::yes;
	if (text == "no") return BigTiff::no;
	throw_error(ExitCode::usage, "--bigtiff must be auto, yes or no (got '{}')", text);
}

VipsInterpretation interpretation_for(int bands, Depth depth)
{
	const bool colour = bands >= 3;
	switch (depth) {
	case Depth::u16: return colour ? VIPS_INTERPRETATION_RGB16 : VIPS_INTERPRETATION_GREY16;
	case Depth::u8:
	case Depth::f32: return colour ? VIPS_INTERPRETATION_sRGB : VIPS_INTERPRETATION_B_W;
	}
	return VIPS_INTERPRETATION_MULTIBAND;
}

void copy_fields(const vips::VImage &from, vips::VImage &to, const std::vector<const char *> &names)
{
	static const char *const core[] = {"width", "height", "bands", "format", "coding", "interpretation",
		"xoffset", "yoffset", "xres", "yres", "filename"};
	auto set = [&](const char *field) {
		GValue value = {};
		if (vips_image_get(from.get_image(), field, &value) == 0) {
			vips_image_set(to.get_image(), field, &value);
			g_value_unset(&value);
		}
	};
	if (!names.empty()) {
		for (const char *field : names)
			if (from.get_typeof(field) != 0)
				set(field);
		return;
	}
	char **fields = vips_image_get_fields(from.get_image());
	for (char **f = fields; *f; f++)
		if (std::none_of(std::begin(core), std::end(core), [&](const char *c) { return !std::strcmp(c, *f); }))
			set(*f);
	g_strfreev(fields);
}

vips::VImage with_metadata_of(const vips::VImage &image, const vips::VImage &from)
{
	vips::VImage out = image.copy();
	copy_fields(from, out, {VIPS_META_ICC_NAME, VIPS_META_EXIF_NAME, VIPS_META_XMP_NAME});
	// The pixels are no longer in the camera's orientation: they were rotated when read.
	vips_image_remove(out.get_image(), VIPS_META_ORIENTATION);
	return out;
}

EvalMonitor::EvalMonitor(const vips::VImage &image, Progress &progress, std::string_view stage)
	: image_(image), progress_(progress), stage_(stage)
{
	vips_image_set_progress(image_.get_image(), TRUE);
	handler_ = g_signal_connect(image_.get_image(), "eval", G_CALLBACK(on_eval), this);
}

EvalMonitor::~EvalMonitor()
{
	g_signal_handler_disconnect(image_.get_image(), handler_);
	vips_image_set_progress(image_.get_image(), FALSE);
}

void EvalMonitor::on_eval(VipsImage *image, VipsProgress *state, void *self)
{
	auto *monitor = static_cast<EvalMonitor *>(self);
	if (cancel_requested())
		vips_image_set_kill(image, TRUE);
	const double eta = state->percent > 0 ? static_cast<double>(state->eta) : -1.0;
	monitor->progress_.update(monitor->stage_, state->percent / 100.0, eta);
}

void save_tiff(const vips::VImage &image, const std::filesystem::path &path, const SaveOptions &options,
	Progress &progress, std::string_view stage)
{
	const auto tmp = path.parent_path() / fmt::format(".{}.{}.part", path.filename().string(), getpid());
	const std::uint64_t bytes = static_cast<std::uint64_t>(image.width()) * image.height() *
		VIPS_IMAGE_SIZEOF_PEL(image.get_image());
	const bool bigtiff = options.bigtiff == BigTiff::yes ||
		(options.bigtiff == BigTiff::automatic && bytes > (3ull << 30));
	VipsForeignTiffCompression compression = VIPS_FOREIGN_TIFF_COMPRESSION_NONE;
	switch (options.compression) {
	case Compression::none: break;
	case Compression::lzw: compression = VIPS_FOREIGN_TIFF_COMPRESSION_LZW; break;
	case Compression::deflate: compression = VIPS_FOREIGN_TIFF_COMPRESSION_DEFLATE; break;
	case Compression::zstd: compression = VIPS_FOREIGN_TIFF_COMPRESSION_ZSTD; break;
	}
	auto *opts = vips::VImage::option()->set("compression", compression)->set("bigtiff", bigtiff);
	if (options.compression != Compression::none)
		opts->set("predictor", options.depth == Depth::f32 ? VIPS_FOREIGN_TIFF_PREDICTOR_FLOAT
								    : VIPS_FOREIGN_TIFF_PREDICTOR_HORIZONTAL);
	try {
		const std::uint64_t failures = tile_failure_count();
		EvalMonitor monitor(image, progress, stage);
		image.tiffsave(tmp.c_str(), opts);
		if (tile_failure_count() != failures) // a failed tile that libvips' thread pool lost
			throw vips::VError("a tile failed");
	} catch (const vips::VError &) {
		std::error_code ec;
		std::filesystem::remove(tmp, ec);
		if (cancel_requested())
			throw_error(ExitCode::interrupted, "interrupted");
		throw_error(ExitCode::processing, "{}: {}", path.string(), vips_error_line());
	}
	if (std::size_t size = 0; image.get_typeof(VIPS_META_EXIF_NAME) != 0) {
		const void *blob = image.get_blob(VIPS_META_EXIF_NAME, &size);
		try {
			write_exif_to_tiff(tmp, blob, size);
		} catch (const Error &) {
			std::error_code ec;
			std::filesystem::remove(tmp, ec);
			throw;
		}
	}
	std::error_code ec;
	std::filesystem::rename(tmp, path, ec);
	if (ec) {
		std::filesystem::remove(tmp, ec);
		throw_error(ExitCode::processing, "{}: cannot rename into place ({})", path.string(), ec.message());
	}
}

} // namespace superstack
