// linear_light -- the exact sRGB curve as libvips operations.
#include "superstack/linear_light.hpp"

#include "superstack/error.hpp"

namespace superstack {

LinearLight parse_linear_light(std::string_view text)
{
	if (text == "auto") return LinearLight::automatic;
	if (text == "on") return LinearLight::on;
	if (text == "off") return LinearLight::off;
	throw_error(ExitCode::usage, "--linear must be auto, on or off (got '{}')", text);
}

bool uses_linear_light(LinearLight mode, const FrameInfo &reference)
{
	if (mode != LinearLight::automatic)
		return mode == LinearLight::on;
	const bool srgb = reference.interpretation == VIPS_INTERPRETATION_sRGB ||
		reference.interpretation == VIPS_INTERPRETATION_B_W;
	return reference.format == VIPS_FORMAT_UCHAR && srgb;
}

namespace {

vips::VImage decode(const vips::VImage &v)
{
	return (v <= 0.04045).ifthenelse(v * (1 / 12.92), ((v + 0.055) * (1 / 1.055)).pow(2.4)).cast(VIPS_FORMAT_FLOAT);
}

} // namespace

vips::VImage srgb_to_linear(const vips::VImage &working, bool alpha)
{
	const auto layout = vips::VImage::option()->set("interpretation", VIPS_INTERPRETATION_MULTIBAND);
	if (!alpha)
		return decode(working).copy(layout);
	// Premultiplied: a x curve(c / a), 0 where a is 0.
	const int colour = working.bands() - 1;
	const vips::VImage a = working.extract_band(colour);
	const vips::VImage c = working.extract_band(0, vips::VImage::option()->set("n", colour));
	const vips::VImage opaque = a > 0.0;
	const vips::VImage unpremultiplied = c / opaque.ifthenelse(a, 1.0);
	const vips::VImage linear = opaque.ifthenelse(decode(unpremultiplied) * a, 0.0);
	return vips::VImage::bandjoin({linear, a}).cast(VIPS_FORMAT_FLOAT).copy(layout);
}

vips::VImage linear_to_srgb(const vips::VImage &values)
{
	// pow of a negative value is NaN in libvips: the toe branch takes those, the power gets |v|.
	return (values <= 0.0031308)
		.ifthenelse(values * 12.92, values.abs().pow(1 / 2.4) * 1.055 - 0.055)
		.cast(VIPS_FORMAT_FLOAT);
}

} // namespace superstack
