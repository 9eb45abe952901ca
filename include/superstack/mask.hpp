// mask -- reference pixels to leave out, read from an image in the reference's geometry.
//
// A pixel is masked when the mask image has alpha and the pixel is more than half opaque (paint on a
// transparent layer, as in GIMP), or, without alpha, when any band is non-zero. EXIF orientation is
// applied. The alignment ignores masked pixels; the reducer will use the same mask.
// Memory: the mask is decoded once into the frame spool (1 byte per pixel) and read back on demand.
#pragma once

#include "superstack/spool.hpp"

#include <vips/vips8>

#include <filesystem>

namespace superstack {

// 1 band uchar, 255 where masked, 0 elsewhere, `width` x `height`. Throws Error(bad_input) naming the
// file when it cannot be read or has another size.
vips::VImage open_mask(const std::filesystem::path &file, int width, int height, Spool &spool);

} // namespace superstack
