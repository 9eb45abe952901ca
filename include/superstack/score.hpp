// score -- PSNR and SSIM of an image against a truth image, for measuring what stacking gained.
//
// Values are normalised to [0, 1] by each file's format maximum (uchar 255, ushort 65535, float as
// is). SSIM is Wang et al. 2004: 11x11 Gaussian window, sigma 1.5, K1 = 0.01, K2 = 0.03, L = 1,
// averaged over the positions where the window fits inside the (cropped) image.
// Memory: one lazy libvips pipeline (Gaussian blurs, products) ending in one streaming reduction
// (vips stats), so both files are read once, sequentially, in tiles: gigapixel images are fine.
#pragma once

#include <vips/vips8>

#include <filesystem>
#include <vector>

namespace superstack {

struct ChannelScore {
	double psnr; // dB; +infinity when the channels are identical
	double ssim;
};

struct Score {
	double psnr; // on luminance 0.2126 R + 0.7152 G + 0.0722 B of the stored values (or the grey band)
	double ssim; // on luminance
	std::vector<ChannelScore> channels; // R, G, B when both are RGB; empty when either is grey
};

// Scores `image` against `truth`, after removing `crop` pixels from every border. Alpha is dropped.
// Throws Error(bad_input) for an unreadable file, a size mismatch (naming both sizes) or an
// unsupported band count, Error(usage) when `crop` is negative or leaves less than 11x11.
Score score_images(const std::filesystem::path &image, const std::filesystem::path &truth, int crop = 0);

// The same on images already opened (normalised here by their format's maximum, alpha dropped);
// for pipelines that score without writing a file. They are read once.
Score score_images(const vips::VImage &image, const vips::VImage &truth, int crop = 0);

} // namespace superstack
