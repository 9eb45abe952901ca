// frame -- input discovery, header probing and the lazy conversion to the working layout.
#include "superstack/frame.hpp"

#include "superstack/budget.hpp"
#include "superstack/error.hpp"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cfloat>
#include <cstring>
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

// What is wrong with `file` before any decoder looks at it (missing, a loop of symbolic links, a
// directory, unreadable, empty), or nothing.
std::string unusable_file(const fs::path &file)
{
	std::error_code ec;
	const fs::file_status status = fs::status(file, ec);
	if (ec || !fs::exists(status))
		return ec && ec != std::errc::no_such_file_or_directory ? ec.message() : "no such file";
	if (fs::is_directory(status))
		return "is a directory";
	if (!fs::is_regular_file(status)) // a decoder would wait on a FIFO for ever, or read /dev/zero
		return "not a regular file (a FIFO, device or socket)";
	if (access(file.c_str(), R_OK) != 0)
		return fmt::format("cannot be read ({})", std::strerror(errno));
	if (fs::file_size(file, ec) == 0 && !ec)
		return "empty file (0 bytes)";
	return {};
}

vips::VImage load(const fs::path &file, VipsAccess access)
{
	if (const std::string why = unusable_file(file); !why.empty())
		throw_error(ExitCode::bad_input, "{}: {}", file.string(), why);
	forget_warning();
	if (const char *loader = vips_foreign_find_load(file.c_str()); loader == nullptr) {
		vips_error_clear();
		throw_error(ExitCode::bad_input, "{}: not an image libvips can read (unknown format)", file.string());
	}
	try {
		return vips::VImage::new_from_file(file.c_str(), load_options(access));
	} catch (const vips::VError &) {
		throw Error(ExitCode::bad_input, about_file(file.string(), vips_error_line()));
	}
}

// A file whose header declares far more pixels than its bytes could encode (over 4096 decoded bytes
// per file byte: beyond what JPEG, PNG or TIFF reach on any real picture; deflate stops near 1032)
// is likely truncated or forged, like a 100000x100000 PNG of 70 bytes. Its first 64 rows are decoded
// now (several strips of any decoder: libvips looks at a decoder's warnings between strips, and 16
// rows passed or failed by timing), so such a file is refused before the disk check and the spool
// (which would size themselves by the header), naming the decoder's reason.
// A real file with such a ratio (a huge flat JPEG XL, say) decodes its first rows and goes on.
void check_declared_size(const fs::path &file, const vips::VImage &image)
{
	std::error_code ec;
	const std::uintmax_t bytes = fs::file_size(file, ec);
	const double declared = static_cast<double>(image.width()) * image.height() * VIPS_IMAGE_SIZEOF_PEL(image.get_image());
	if (ec || declared <= 4096.0 * static_cast<double>(std::max<std::uintmax_t>(bytes, 1)))
		return;
	try {
		// Warnings count here: a JPEG whose data stops early only warns, and decodes as grey.
		vips::VImage::new_from_file(file.c_str(),
			vips::VImage::option()->set("access", VIPS_ACCESS_SEQUENTIAL)->set("fail_on", VIPS_FAIL_ON_WARNING))
			.crop(0, 0, image.width(), std::min(image.height(), 64))
			.avg();
	} catch (const vips::VError &) {
		throw_error(ExitCode::bad_input, "{}: the header declares {}x{} pixels ({}) but the file holds {} bytes: {}",
			file.string(), image.width(), image.height(), format_bytes(static_cast<std::uint64_t>(declared)), bytes,
			vips_error_line());
	}
}

// Colour spaces whose three bands are not R, G and B: converted to 16-bit sRGB when opened.
bool needs_rgb_conversion(VipsInterpretation interpretation)
{
	switch (interpretation) {
	case VIPS_INTERPRETATION_LAB:
	case VIPS_INTERPRETATION_LABS:
	case VIPS_INTERPRETATION_LCH:
	case VIPS_INTERPRETATION_CMC:
	case VIPS_INTERPRETATION_XYZ:
	case VIPS_INTERPRETATION_YXY:
	case VIPS_INTERPRETATION_HSV: return true;
	default: return false;
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
		if (!fs::exists(path, ec)) // ec: e.g. "Too many levels of symbolic links" (a loop)
			throw_error(ExitCode::bad_input, "{}: {}", input,
				ec && ec != std::errc::no_such_file_or_directory ? ec.message() : "no such file or directory");
		// A directory is read one level deep: symbolic links to directories (loops too) are not followed.
		if (!fs::is_directory(path, ec)) {
			files.push_back(path);
			continue;
		}
		std::vector<fs::path> found;
		for (const auto &entry : fs::directory_iterator(path, ec)) {
			std::error_code entry_ec; // a link to itself or to nowhere: not a regular file, skipped
			if (!entry.is_regular_file(entry_ec))
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
	info.file_bands = bands;
	if (info.interpretation == VIPS_INTERPRETATION_CMYK && bands >= 4) {
		info.colour_bands = 3; // converted to sRGB when opened
		info.file_alpha = bands == 5;
	} else if (needs_rgb_conversion(info.interpretation) && bands >= 3) {
		info.colour_bands = 3; // Lab, XYZ, ...: converted to 16-bit sRGB when opened
		info.file_alpha = bands == 4;
	} else {
		info.colour_bands = bands <= 2 ? 1 : 3;
		info.file_alpha = bands == 2 || bands == 4;
	}
	// Float samples may be NaN or infinite (FITS blanks, masked float TIFFs): no data, carried as alpha.
	info.alpha = info.file_alpha || vips_band_format_isfloat(info.format);
	info.orientation = orientation_of(image);
	info.pages = image.get_typeof(VIPS_META_N_PAGES) != 0 ? std::max(1, image.get_int(VIPS_META_N_PAGES)) : 1;
	const bool swap = info.orientation >= 5;
	info.width = swap ? image.height() : image.width();
	info.height = swap ? image.width() : image.height();
	if (info.width < 1 || info.height < 1)
		throw_error(ExitCode::bad_input, "{}: empty image", file.string());
	check_declared_size(file, image);
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
		else if (needs_rgb_conversion(info.interpretation) && info.file_bands >= 3)
			image = image.colourspace(VIPS_INTERPRETATION_RGB16);
		const double full = format_full_scale(image.format());
		vips::VImage colour = image.extract_band(0, vips::VImage::option()->set("n", info.colour_bands));
		colour = colour.cast(VIPS_FORMAT_FLOAT) * (1.0 / full);
		if (info.colour_bands == 1 && reference_colour_bands == 3)
			colour = vips::VImage::bandjoin({colour, colour, colour});
		else if (info.colour_bands == 3 && reference_colour_bands == 1)
			colour = colour.recomb(vips::VImage::new_matrixv(3, 1, 0.2126, 0.7152, 0.0722));
		// Tagged MULTIBAND: libvips guesses alpha from the tag (a 3-band "B_W" image "has" alpha) and
		// would premultiply behind our back. Alpha is ours to handle.
		const auto working = vips::VImage::option()->set("interpretation", VIPS_INTERPRETATION_MULTIBAND);
		if (!info.alpha)
			return colour.cast(VIPS_FORMAT_FLOAT).copy(working);
		vips::VImage a = info.file_alpha
			? image.extract_band(image.bands() - 1).cast(VIPS_FORMAT_FLOAT) * (1.0 / full)
			: vips::VImage::black(image.width(), image.height()) + 1.0;
		if (vips_band_format_isfloat(image.format())) {
			// NaN fails x == x, infinities |x| <= FLT_MAX: such a pixel is no data, transparent, so
			// no statistic counts it (and no sort meets a NaN).
			auto finite = [](const vips::VImage &x) {
				const vips::VImage ok = (x == x) & (x.abs() <= static_cast<double>(FLT_MAX));
				return ok.bands() > 1 ? ok.bandbool(VIPS_OPERATION_BOOLEAN_AND) : ok;
			};
			const vips::VImage valid = finite(colour) & finite(a);
			colour = valid.ifthenelse(colour, 0.0);
			a = valid.ifthenelse(a, 0.0);
		}
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
