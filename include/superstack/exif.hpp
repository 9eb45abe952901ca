// exif -- the reference frame's EXIF written into an output TIFF.
//
// libvips 8.14's TIFF writer carries ICC and XMP but not EXIF. After libvips has written a TIFF (and
// before it is renamed into place) this adds, with libtiff, the camera strings of IFD0 (Make, Model,
// Software, DateTime, Artist, Copyright, ImageDescription) and an EXIF IFD holding every EXIF-IFD
// entry libtiff knows the type of (exposure, aperture, ISO, dates, lens...). The MakerNote is left
// out: it holds offsets into the original file. Memory: the EXIF block only.
#pragma once

#include <cstddef>
#include <filesystem>

namespace superstack {

// Returns the number of EXIF-IFD entries written. An EXIF block that libexif cannot parse writes
// nothing and returns 0; a TIFF that libtiff cannot update throws Error(processing).
int write_exif_to_tiff(const std::filesystem::path &tiff, const void *exif_blob, std::size_t size);

} // namespace superstack
