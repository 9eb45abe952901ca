// bands -- one band computed into a raw file (libvips' rawsave of a crop), bands joined back by arrayjoin.
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
	std::vector<VipsImage *> parts;
	std::vector<vips::VImage> keep;
	for (std::size_t i = 0; i < files.size(); i++) {
		const std::uintmax_t expected = static_cast<std::uintmax_t>(width) * bands[i].height * image_bands *
			vips_format_sizeof(format);
		std::error_code ec;
		if (fs::file_size(files[i], ec) != expected || ec)
			throw_error(ExitCode::processing, "{}: band file is not {} bytes", files[i].string(), expected);
		keep.push_back(open_raw_file(files[i], width, bands[i].height, image_bands, format, VIPS_INTERPRETATION_MULTIBAND));
		parts.push_back(keep.back().get_image());
	}
	if (parts.size() == 1)
		return keep.front();
	// arrayjoin places every part in a cell of the tallest part's height: bands of equal height but the
	// last (split_into_bands) land at their rows, and the last one's cell is cropped to its height.
	for (std::size_t i = 0; i + 1 < bands.size(); i++)
		if (bands[i].height != bands.front().height || bands[i + 1].top != bands[i].bottom())
			throw_error(ExitCode::processing, "assemble_bands: band {} is not {} rows at row {}", i, bands.front().height,
				bands.front().height * i);
	VipsImage *joined = nullptr;
	if (vips_arrayjoin(parts.data(), &joined, static_cast<int>(parts.size()), "across", 1, nullptr))
		vips_check(-1, ExitCode::processing, "assembling the bands");
	return vips::VImage(joined, vips::STEAL).crop(0, 0, width, bands.back().bottom());
}

} // namespace superstack
