// linear_light -- the sRGB transfer curve, both ways, so that averages are of light, not of code values.
//
// 8-bit frames are almost always sRGB-encoded: their values are light raised to about 1/2.2. The mean
// of two encoded values is not the encoding of the mean light (0 and 1 average to 0.5, which is 21%
// light, not 50%). With linear light on, each working frame is decoded by the exact sRGB curve
// (v <= 0.04045: v / 12.92, else ((v + 0.055) / 1.055)^2.4) before exposure normalization, warping and
// reduction, and the statistics are encoded back (v <= 0.0031308: 12.92 v, else 1.055 v^(1/2.4) -
// 0.055) for every output depth, since the outputs keep the reference's colour profile. Lazy, per
// pixel: no memory.
#pragma once

#include "superstack/frame.hpp"

#include <vips/vips8>

#include <string_view>

namespace superstack {

enum class LinearLight { automatic, on, off };
LinearLight parse_linear_light(std::string_view text); // throws Error(usage)

// automatic: on when the reference is 8-bit sRGB or 8-bit grey (what JPEG, PNG and 8-bit TIFF hold).
bool uses_linear_light(LinearLight mode, const FrameInfo &reference);

// A working frame (premultiplied alpha as the last band when `alpha`) decoded to linear light.
vips::VImage srgb_to_linear(const vips::VImage &working, bool alpha);

// Linear values (any bands, float) encoded by the sRGB curve; negative values (resampling ringing)
// stay on its linear toe.
vips::VImage linear_to_srgb(const vips::VImage &values);

} // namespace superstack
