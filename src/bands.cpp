// bands -- one band computed into a raw file (libvips' rawsave of a crop), the band files read back as one image.
#include "superstack/bands.hpp"

#include "superstack/cancel.hpp"
#include "superstack/error.hpp"
#include "superstack/files.hpp"
#include "superstack/output.hpp"
#include "superstack/spool.hpp"

#include <algorithm>

namespace superstack {

namespace fs = std::filesystem;

std::vector<Band> split_into_bands(const OutputGeometry &geometry, int rows)
{
	if (rows < 1)
		throw_error(ExitCode::usage, "a band needs at least one row (got {})", rows);
	std::vector<Band> bands;
	for (int top = 0; top < geometry.height; top += rows)
		bands.push_back({static_cast<int>(bands.size()), top, std::min(rows, geometry.height - top)});
	return bands;
}

int default_band_rows(int output_height)
{
	return std::max(64, (output_height + 63) / 64);
}

void reduce_band(const vips::VImage &image, const Band &band, const fs::path &file, Progress &progress,
	std::string_view stage)
{
	if (cancel_requested())
		throw_error(ExitCode::interrupted, "interrupted");
	const vips::VImage rows = image.crop(0, band.top, image.width(), band.height);
	const fs::path tmp = temporary_name(file);
	int status = 0;
	const std::uint64_t failures = tile_failure_count();
	{
		EvalMonitor monitor(rows, progress, stage);
		status = vips_rawsave(rows.get_image(), tmp.c_str(), nullptr);
	}
	if (status == 0 && tile_failure_count() != failures)
		status = -1; // a failed tile that libvips' thread pool lost (see tile_failure_count)
	// libvips' raw writer can miss a short write (a full disk): the size is the proof of a whole band.
	const std::uintmax_t expected = static_cast<std::uintmax_t>(rows.width()) * rows.height() * VIPS_IMAGE_SIZEOF_PEL(rows.get_image());
	std::error_code size_ec;
	if (status == 0 && fs::file_size(tmp, size_ec) != expected) {
		vips_error("superstack", "wrote %ju of %ju bytes", static_cast<std::uintmax_t>(size_ec ? 0 : fs::file_size(tmp, size_ec)), expected);
		status = -1;
	}
	if (status) {
		const std::string reason = vips_error_line();
		std::error_code ec;
		fs::remove(tmp, ec);
		if (cancel_requested())
			throw_error(ExitCode::interrupted, "interrupted");
		throw_error(ExitCode::processing, "{}: {}{}", file.string(), reason, disk_full_note(file.parent_path()));
	}
	commit_file(tmp, file);
}

vips::VImage assemble_bands(const std::vector<fs::path> &files, const std::vector<Band> &bands, int width,
	int image_bands, VipsBandFormat format)
{
	if (files.empty() || files.size() != bands.size())
		throw_error(ExitCode::processing, "assemble_bands: {} files for {} bands", files.size(), bands.size());
	std::vector<RawPart> parts;
	for (std::size_t i = 0; i < files.size(); i++) {
		if (bands[i].top != (i ? bands[i - 1].bottom() : 0))
			throw_error(ExitCode::processing, "assemble_bands: band {} starts at row {}, not {}", i, bands[i].top,
				i ? bands[i - 1].bottom() : 0);
		const std::uintmax_t expected = static_cast<std::uintmax_t>(width) * bands[i].height * image_bands *
			vips_format_sizeof(format);
		std::error_code ec;
		if (fs::file_size(files[i], ec) != expected || ec)
			throw_error(ExitCode::processing, "{}: band file is not {} bytes", files[i].string(), expected);
		parts.push_back({files[i], bands[i].height});
	}
	return open_raw_files(parts, width, image_bands, format, VIPS_INTERPRETATION_MULTIBAND);
}

} // namespace superstack
