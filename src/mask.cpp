// mask -- reads a mask image and reduces it to one 0/255 band in the spool.
#include "superstack/mask.hpp"

#include "superstack/error.hpp"
#include "superstack/frame.hpp"

namespace superstack {

vips::VImage open_mask(const std::filesystem::path &file, int width, int height, Spool &spool)
{
	const FrameInfo info = probe_frame(file);
	if (info.width != width || info.height != height)
		throw_error(ExitCode::bad_input, "{}: the mask is {}x{}, the reference frame is {}x{}", file.string(), info.width,
			info.height, width, height);
	try {
		vips::VImage image = vips::VImage::new_from_file(file.c_str(),
			vips::VImage::option()->set("access", VIPS_ACCESS_SEQUENTIAL));
		if (info.orientation != 1)
			image = image.autorot();
		const double full = format_full_scale(image.format());
		vips::VImage masked;
		if (info.file_alpha)
			masked = image.extract_band(image.bands() - 1) > 0.5 * full;
		else
			masked = image.cast(VIPS_FORMAT_FLOAT).abs().bandmean() != 0;
		return spool.add(masked.cast(VIPS_FORMAT_UCHAR), file.string());
	} catch (const vips::VError &) {
		throw Error(ExitCode::bad_input, about_file(file.string(), vips_error_line()));
	}
}

} // namespace superstack
