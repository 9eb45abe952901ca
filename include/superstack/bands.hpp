// bands -- the reduction split into horizontal bands of the output geometry: each band's rows computed
// and written to a band file of its own, and the band files assembled into the whole image by streaming.
//
// Why: a band is the unit of work that survives. A run killed in the middle loses only the band in
// progress (a band file exists under its final name only when complete, see files.hpp), and bands are
// independent of one another, so they can be computed in any order, by other processes or machines.
// The reducer's results do not depend on the region asked of it, so a band is byte-identical to the
// same rows of the whole image, and the assembled image to the image computed in one pass.
// Memory: computing a band costs what computing the image costs (the reducer's tiles and the sink's
// line buffers, budget.hpp), whatever the band's height; assembling reads each band file by row spans.
// Disk: the band files together hold the image raw (width x height x bands x bytes per sample).
#pragma once

#include "superstack/geometry.hpp"
#include "superstack/progress.hpp"

#include <vips/vips8>

#include <filesystem>
#include <string_view>
#include <vector>

namespace superstack {

// Rows [top, top + height) of the output.
struct Band {
	int index = 0;
	int top = 0, height = 0;
	int bottom() const { return top + height; }
	bool operator==(const Band &) const = default;
};

// The output's rows in bands of `rows` (the last one shorter), top to bottom.
std::vector<Band> split_into_bands(const OutputGeometry &geometry, int rows);

// The default band height: at most 64 bands, at least 64 rows each (a 1280-row output: 20 bands of 64).
int default_band_rows(int output_height);

// Computes rows [band.top, band.bottom()) of `image` (an image of the output geometry, e.g. the lazy
// reduced stack) and writes them raw, row-major, to `file`, which appears only once complete.
// Progress is reported as `stage`. Throws Error(processing), or Error(interrupted) on cancellation.
void reduce_band(const vips::VImage &image, const Band &band, const std::filesystem::path &file, Progress &progress,
	std::string_view stage);

// The band files (in the order of `bands`, each starting where the one before ends, from row 0) as one
// lazy image of `width` columns, `image_bands` bands of `format`: the image reduce_band() read them
// from. Reading it holds only the rows asked for, whatever the number of bands (open_raw_files).
vips::VImage assemble_bands(const std::vector<std::filesystem::path> &files, const std::vector<Band> &bands, int width,
	int image_bands, VipsBandFormat format);

} // namespace superstack
