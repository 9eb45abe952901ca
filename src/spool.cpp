// spool -- raw spool files written by libvips' rawsave and read back with pread() per row span.
#include "superstack/spool.hpp"

#include "superstack/cancel.hpp"
#include "superstack/error.hpp"
#include "superstack/files.hpp"
#include "superstack/output.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>

namespace superstack {

namespace {

constexpr int kShrinkTileWidth = 512, kShrinkTileHeight = 64, kShrinkTiles = 16; // shrink_spooled's cache

// Raw files stacked top to bottom: part i holds image rows [tops[i], tops[i + 1]).
struct RawFile {
	std::vector<std::string> paths;
	std::vector<int> tops; // one more than paths: the last is the image's height
	std::size_t row_bytes = 0;
	std::size_t pixel_bytes = 0;
};

bool read_fully(int fd, void *buffer, std::size_t bytes, off_t offset)
{
	auto *p = static_cast<char *>(buffer);
	while (bytes > 0) {
		ssize_t n = pread(fd, p, bytes, offset);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		p += n;
		bytes -= static_cast<std::size_t>(n);
		offset += n;
	}
	return true;
}

int raw_generate(VipsRegion *out, void * /*seq*/, void *a, void * /*b*/, gboolean * /*stop*/)
{
	const auto *file = static_cast<const RawFile *>(a);
	const VipsRect &r = out->valid;
	const std::size_t span = static_cast<std::size_t>(r.width) * file->pixel_bytes;
	// The parts the rows span, each opened for its rows only.
	for (int y = r.top; y < r.top + r.height;) {
		const auto part = static_cast<std::size_t>(std::upper_bound(file->tops.begin(), file->tops.end(), y) - file->tops.begin() - 1);
		const std::string &path = file->paths[part];
		const int end = std::min(r.top + r.height, file->tops[part + 1]);
		const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			vips_error("superstack", "%s: %s", path.c_str(), std::strerror(errno));
			return -1;
		}
		for (; y < end; y++) {
			const off_t offset = static_cast<off_t>(y - file->tops[part]) * static_cast<off_t>(file->row_bytes) +
				static_cast<off_t>(r.left) * static_cast<off_t>(file->pixel_bytes);
			if (!read_fully(fd, VIPS_REGION_ADDR(out, r.left, y), span, offset)) {
				vips_error("superstack", "%s: short read at row %d", path.c_str(), y - file->tops[part]);
				close(fd);
				return -1;
			}
		}
		close(fd);
	}
	return 0;
}

void delete_raw_file(gpointer data)
{
	delete static_cast<RawFile *>(data);
}

} // namespace

vips::VImage open_raw_files(const std::vector<RawPart> &parts, int width, int bands, VipsBandFormat format,
	VipsInterpretation interpretation)
{
	if (parts.empty())
		throw_error(ExitCode::processing, "open_raw_files: no files");
	auto raw = std::make_unique<RawFile>();
	raw->tops.push_back(0);
	for (const RawPart &p : parts) {
		if (p.rows < 1)
			throw_error(ExitCode::processing, "{}: a raw file of {} rows", p.file.string(), p.rows);
		raw->paths.push_back(p.file.string());
		raw->tops.push_back(raw->tops.back() + p.rows);
	}
	VipsImage *out = vips_image_new();
	vips_image_init_fields(out, width, raw->tops.back(), bands, format, VIPS_CODING_NONE, interpretation, 1.0, 1.0);
	if (vips_image_pipelinev(out, VIPS_DEMAND_STYLE_ANY, nullptr)) {
		g_object_unref(out);
		vips_check(-1, ExitCode::processing, parts.front().file.string());
	}
	raw->pixel_bytes = VIPS_IMAGE_SIZEOF_PEL(out);
	raw->row_bytes = raw->pixel_bytes * static_cast<std::size_t>(width);
	RawFile *state = raw.release();
	// The state lives exactly as long as the image.
	g_object_set_data_full(G_OBJECT(out), "superstack-raw-file", state, delete_raw_file);
	if (vips_image_generate(out, nullptr, raw_generate, nullptr, state, nullptr)) {
		g_object_unref(out);
		vips_check(-1, ExitCode::processing, parts.front().file.string());
	}
	return vips::VImage(out, vips::STEAL);
}

vips::VImage shrink_spooled(const vips::VImage &image, int k)
{
	if (k <= 1)
		return image;
	return image
		.tilecache(vips::VImage::option()->set("tile_width", kShrinkTileWidth)->set("tile_height", kShrinkTileHeight)
				->set("max_tiles", kShrinkTiles))
		.shrink(k, k);
}

vips::VImage open_raw_file(const std::filesystem::path &file, int width, int height, int bands,
	VipsBandFormat format, VipsInterpretation interpretation)
{
	return open_raw_files({{file, height}}, width, bands, format, interpretation);
}

Spool::Spool(std::filesystem::path dir) : dir_(std::move(dir))
{
	std::error_code ec;
	if (!std::filesystem::create_directories(dir_, ec))
		throw_error(ExitCode::processing, "{}: cannot create work folder ({})", dir_.string(),
			ec ? ec.message() : "it exists already");
}

Spool::~Spool()
{
	std::error_code ec;
	std::filesystem::remove_all(dir_, ec);
}

std::uint64_t Spool::bytes_for(int width, int height, int bands, VipsBandFormat format)
{
	return static_cast<std::uint64_t>(width) * static_cast<std::uint64_t>(height) *
		static_cast<std::uint64_t>(bands) * vips_format_sizeof(format);
}

vips::VImage Spool::add(const vips::VImage &decoded, const std::string &source_name)
{
	const auto file = dir_ / fmt::format("frame-{:05d}.raw", count_++);
	int status = 0;
	const std::uint64_t tile_failures = tile_failure_count();
	{
		NoProgress silent; // the caller reports per frame; this only lets SIGINT stop a huge decode
		EvalMonitor monitor(decoded, silent, "decode");
		status = vips_rawsave(decoded.get_image(), file.c_str(), nullptr);
	}
	if (status && cancel_requested()) {
		std::error_code ec;
		std::filesystem::remove(file, ec);
		vips_error_clear();
		throw_error(ExitCode::interrupted, "interrupted");
	}
	if (status == 0 && tile_failure_count() != tile_failures)
		status = -1; // a decoder's failure that libvips' thread pool lost (see tile_failure_count)
	// libvips' raw writer can miss a short write (a full disk): the size is the proof of a whole frame.
	const std::uintmax_t expected = static_cast<std::uintmax_t>(decoded.width()) * decoded.height() *
		VIPS_IMAGE_SIZEOF_PEL(decoded.get_image());
	std::error_code size_ec;
	if (status == 0 && std::filesystem::file_size(file, size_ec) != expected) {
		vips_error("superstack", "short write (%ju of %ju bytes)", static_cast<std::uintmax_t>(size_ec ? 0 : std::filesystem::file_size(file, size_ec)), expected);
		status = -1;
	}
	if (status) {
		const std::string reason = vips_error_line();
		std::error_code ec;
		std::filesystem::remove(file, ec);
		// A full disk (or a file size limit) is ours, not the frame's: never a reason to call it bad.
		const std::string full = disk_full_note(dir_);
		if (!full.empty() || reason.find(std::strerror(ENOSPC)) != std::string::npos ||
			reason.find(std::strerror(EFBIG)) != std::string::npos)
			throw_error(ExitCode::processing, "{}: cannot write the frame spool: {}{}", file.string(), reason, full);
		throw Error(ExitCode::bad_input, about_file(source_name, reason));
	}
	vips::VImage raw = open_raw_file(file, decoded.width(), decoded.height(), decoded.bands(),
		decoded.format(), decoded.interpretation());
	// Carry the header metadata (ICC, EXIF, orientation, resolution) over to the spooled image.
	VipsImage *copy = nullptr;
	if (vips_copy(raw.get_image(), &copy, nullptr))
		vips_check(-1, ExitCode::processing, file.string());
	vips::VImage result(copy, vips::STEAL);
	copy_fields(decoded, result);
	// The decoder's "read me top to bottom only" mark is not the spool's: it reads any rectangle. Left
	// on, libvips' shrink puts a sequential line cache on it, which serves a rectangle far down the
	// frame by computing every row above it and caches them (a 40000 px frame's alignment patches
	// read at full resolution reached 1.5 GB).
	vips_image_remove(result.get_image(), VIPS_META_SEQUENTIAL);
	result.get_image()->Xres = decoded.get_image()->Xres;
	result.get_image()->Yres = decoded.get_image()->Yres;
	return result;
}

} // namespace superstack
