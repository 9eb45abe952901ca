// frame -- input discovery, header probing and the lazy conversion to the working layout.
#include "superstack/frame.hpp"

#include "superstack/error.hpp"

#include <algorithm>
#include <cctype>
#include <set>

namespace superstack {

namespace fs = std::filesystem;

namespace {

const std::set<std::string> &image_extensions()
{
	static const std::set<std::string> known = {".tif", ".tiff", ".jpg", ".jpeg", ".png", ".webp", ".jp2",
		".j2k", ".jxl", ".heic", ".heif", ".avif", ".gif", ".ppm", ".pgm", ".pbm", ".pfm", ".fits", ".fit",
		".fts", ".exr", ".v", ".vips", ".hdr"};
	return known;
}

std::string lower(std::string s)
{
	std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
	return s;
}

// Loader options shared by probe and decode: fail on real errors (a truncated JPEG is one), not on
// warnings that many valid files raise.
vips::VOption *load_options(VipsAccess access)
{
	return vips::VImage::option()->set("access", access)->set("fail_on", VIPS_FAIL_ON_ERROR);
}

vips::VImage load(const fs::path &file, VipsAccess access)
{
	std::error_code ec;
	if (!fs::exists(file, ec))
		throw_error(ExitCode::bad_input, "{}: no such file", file.string());
	if (fs::is_directory(file, ec))
		throw_error(ExitCode::bad_input, "{}: is a directory", file.string());
	if (const char *loader = vips_foreign_find_load(file.c_str()); loader == nullptr) {
		vips_error_clear();
		throw_error(ExitCode::bad_input, "{}: not an image libvips can read", file.string());
	}
	try {
		return vips::VImage::new_from_file(file.c_str(), load_options(access));
	} catch (const vips::VError &) {
		throw Error(ExitCode::bad_input, about_file(file.string(), vips_error_line()));
	}
}

int orientation_of(const vips::VImage &image)
{
	if (image.get_typeof(VIPS_META_ORIENTATION) == 0)
		return 1;
	const int o = image.get_int(VIPS_META_ORIENTATION);
	return o >= 1 && o <= 8 ? o : 1;
}

} // namespace

std::vector<fs::path> expand_inputs(const std::vector<std::string> &inputs)
{
	std::vector<fs::path> files;
	for (const auto &input : inputs) {
		const fs::path path(input);
		std::error_code ec;
		if (!fs::exists(path, ec))
			throw_error(ExitCode::bad_input, "{}: no such file or directory", input);
		if (!fs::is_directory(path, ec)) {
			files.push_back(path);
			continue;
		}
		std::vector<fs::path> found;
		for (const auto &entry : fs::directory_iterator(path, ec)) {
			if (!entry.is_regular_file(ec))
				continue;
			if (image_extensions().count(lower(entry.path().extension().string())))
				found.push_back(entry.path());
		}
		if (ec)
			throw_error(ExitCode::bad_input, "{}: cannot read directory ({})", input, ec.message());
		if (found.empty())
			throw_error(ExitCode::bad_input, "{}: directory holds no images", input);
		std::sort(found.begin(), found.end());
		files.insert(files.end(), found.begin(), found.end());
	}
	if (files.empty())
		throw_error(ExitCode::bad_input, "no input frames");
	return files;
}

double format_full_scale(VipsBandFormat format)
{
	switch (format) {
	case VIPS_FORMAT_UCHAR: return 255.0;
	case VIPS_FORMAT_CHAR: return 127.0;
	case VIPS_FORMAT_USHORT: return 65535.0;
	case VIPS_FORMAT_SHORT: return 32767.0;
	case VIPS_FORMAT_UINT: return 4294967295.0;
	case VIPS_FORMAT_INT: return 2147483647.0;
	default: return 1.0;
	}
}

FrameInfo probe_frame(const fs::path &file)
{
	vips::VImage image = load(file, VIPS_ACCESS_SEQUENTIAL);
	FrameInfo info;
	info.file = file;
	info.format = image.format();
	info.interpretation = image.interpretation();
	if (vips_band_format_iscomplex(info.format))
		throw_error(ExitCode::bad_input, "{}: complex pixels are not supported", file.string());
	if (image.get_image()->Coding != VIPS_CODING_NONE)
		throw_error(ExitCode::bad_input, "{}: coded pixels (LABQ/RAD) are not supported", file.string());
	// The layout comes from the band count, not the interpretation tag, which files often get wrong
	// (a 3-band "B_W" TIFF is RGB to every viewer): 1 grey, 2 grey+alpha, 3 RGB, 4 RGBA or CMYK.
	const int bands = image.bands();
	if (bands > 4 && !(bands == 5 && info.interpretation == VIPS_INTERPRETATION_CMYK))
		throw_error(ExitCode::bad_input, "{}: {} bands (only grey, RGB, CMYK, with or without alpha, are supported)",
			file.string(), bands);
	if (info.interpretation == VIPS_INTERPRETATION_CMYK && bands >= 4) {
		info.colour_bands = 3; // converted to sRGB when opened
		info.alpha = bands == 5;
	} else {
		info.colour_bands = bands <= 2 ? 1 : 3;
		info.alpha = bands == 2 || bands == 4;
	}
	info.orientation = orientation_of(image);
	const bool swap = info.orientation >= 5;
	info.width = swap ? image.height() : image.width();
	info.height = swap ? image.width() : image.height();
	if (info.width < 1 || info.height < 1)
		throw_error(ExitCode::bad_input, "{}: empty image", file.string());
	return info;
}

namespace {

// A decoded image in the working layout (see frame.hpp), `oriented` or not.
vips::VImage to_working_layout(vips::VImage image, const FrameInfo &info, int reference_colour_bands, bool oriented)
{
	try {
		if (oriented && info.orientation != 1)
			image = image.autorot();
		if (info.interpretation == VIPS_INTERPRETATION_CMYK)
			image = image.colourspace(VIPS_INTERPRETATION_sRGB);
		const double full = format_full_scale(image.format());
		const bool alpha = info.alpha;
		vips::VImage colour = image.extract_band(0, vips::VImage::option()->set("n", info.colour_bands));
		colour = colour.cast(VIPS_FORMAT_FLOAT) * (1.0 / full);
		if (info.colour_bands == 1 && reference_colour_bands == 3)
			colour = vips::VImage::bandjoin({colour, colour, colour});
		else if (info.colour_bands == 3 && reference_colour_bands == 1)
			colour = colour.recomb(vips::VImage::new_matrixv(3, 1, 0.2126, 0.7152, 0.0722));
		// Tagged MULTIBAND: libvips guesses alpha from the tag (a 3-band "B_W" image "has" alpha) and
		// would premultiply behind our back. Alpha is ours to handle.
		const auto working = vips::VImage::option()->set("interpretation", VIPS_INTERPRETATION_MULTIBAND);
		if (!alpha)
			return colour.cast(VIPS_FORMAT_FLOAT).copy(working);
		vips::VImage a = (image.extract_band(image.bands() - 1).cast(VIPS_FORMAT_FLOAT) * (1.0 / full));
		return vips::VImage::bandjoin({colour * a, a}).cast(VIPS_FORMAT_FLOAT).copy(working);
	} catch (const vips::VError &) {
		throw Error(ExitCode::bad_input, about_file(info.file.string(), vips_error_line()));
	}
}

} // namespace

vips::VImage open_working_frame(const FrameInfo &info, int reference_colour_bands, Spool &spool)
{
	vips::VImage decoded = load(info.file, VIPS_ACCESS_SEQUENTIAL);
	return to_working_layout(spool.add(decoded, info.file.string()), info, reference_colour_bands, true);
}

vips::VImage stream_working_frame(const FrameInfo &info)
{
	return to_working_layout(load(info.file, VIPS_ACCESS_SEQUENTIAL), info, info.colour_bands, false);
}

vips::VImage working_luminance(const vips::VImage &working, bool alpha)
{
	const int colour = working.bands() - (alpha ? 1 : 0);
	if (colour == 1)
		return working.extract_band(0);
	return working.extract_band(0, vips::VImage::option()->set("n", 3))
		.recomb(vips::VImage::new_matrixv(3, 1, 0.2126, 0.7152, 0.0722))
		.cast(VIPS_FORMAT_FLOAT);
}

} // namespace superstack
