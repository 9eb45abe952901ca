// synth -- synthetic bursts with known transforms: the ground truth for alignment and stacking.
//
// One scene (the built-in chart, or a user image taken as the scene at truth resolution) is
// photographed `frames` times through random similarity transforms, integrated over each sensor
// pixel, given signal-dependent noise and written with the truth image and the exact transforms.
// Memory: everything is lazy; each output is streamed by its saver, so the cost is libvips' tile
// buffers plus, with `source`, whatever libvips needs to give random access to that file.
#pragma once

#include "superstack/progress.hpp"

#include <cstdint>
#include <filesystem>
#include <optional>
#include <vector>

namespace superstack {

struct SynthOptions {
	std::filesystem::path out_dir;
	int frames = 16;
	int width = 640, height = 480;               // frame size in input pixels
	double scale = 2;                            // S >= 1 (real)
	double noise = 0.02;                         // sigma, fraction of full scale, at mid-grey
	double max_shift = 16;                       // px, in input pixels, uniform in [-max, max]
	double max_rotation = 2;                     // degrees, uniform in [-max, max]
	double max_scale = 0;                        // relative zoom, uniform in [1-max, 1+max]
	double local_motion = 0;                     // PX: frames > 0 also bend by a smooth field of at most PX ref px
	double moving_object = 0;                    // area fraction of an object that moves (0: none)
	int moving_frames = 0;                       // 0: the object is in every frame; K: in K frames, crossing
	bool moving_texture = false;                 // a textured patch instead of a flat bright square
	double tca_red = 1, tca_blue = 1;            // chromatic aberration: red, blue magnified about the centre
	double exposure_variation = 0;               // F: frame f > 0 is scaled by 1 + U(-F, F) after its noise
	std::vector<int> blurred_frames;             // frames blurred by a Gaussian before their noise (shake)
	double blur_sigma = 1.5;                     // of that Gaussian, frame pixels
	std::uint64_t seed = 1;
	std::optional<std::filesystem::path> source; // else the built-in chart
	bool jpeg = false;                           // also write 8-bit JPEG frames (quality 95)
};

struct SynthResult {
	std::vector<std::filesystem::path> frames;      // frame_000.tif ... (16-bit RGB)
	std::vector<std::filesystem::path> jpeg_frames; // frame_000.jpg ... when jpeg
	std::filesystem::path truth, transforms;        // truth.tif, transforms.json
	std::vector<double> exposures;                  // each frame's exposure factor (1 without variation)
};

// Conventions: frame 0 is the reference (identity). Frame f's matrix maps reference input pixel
// coordinates to frame f's, pixel centres at integer coordinates. Frame f is a rotation about the
// frame centre by U(-max_rotation, max_rotation) degrees and a zoom by 1 + U(-max_scale, max_scale)
// (drawn only when max_scale > 0), then a shift by U(-max_shift, max_shift) in x and y, drawn in
// the order rotation, shift x, shift y, zoom from std::mt19937_64(seed). With local_motion PX, frame
// f > 0 also has a displacement field (transform.hpp: reference p is frame point matrix(p + d(p))),
// written as its "displacement": per axis, three plane waves of random direction, phase and
// amplitude with wavelengths between a half and the whole of the frame's shorter side, on a grid of
// 16 reference pixels over the reference (rounded to 1e-4 px, the file's precision), scaled so that
// the largest |d| at a node is PX; drawn from std::mt19937_64(seed ^ 0xD15D15D1), so the matrices
// are those without it. The field is exactly what the frame shows: bilinear between the nodes. With moving_object, every
// frame shows a flat bright (0.95) square of that fraction of the frame's area, in frame coordinates,
// which the truth does not have: it visits the places of a grid in a shuffled order (jittered), so no
// pixel is under it in more than about a quarter of the frames. With moving_frames K, it is only in
// frames floor(i N / K), i = 0..K-1, and crosses the frame from left to right at mid-height, in equal
// steps (consecutive places overlap when the object is wider than a step: a ghost, in K of N frames,
// that a robust statistic must remove). moving_texture: grey cosines in [0.1, 0.9] instead of the flat
// square (see moving_object_place for where). tca_red, tca_blue: every frame's red and blue bands are
// the scene magnified by that factor about the frame's centre, against green (a lens's transverse
// chromatic aberration), written as the "tca" of transforms.json; the truth has none. The truth has the size of
// OutputGeometry::for_reference(width, height, scale); its pixel (X, Y) is the scene's area
// average over the square centred at reference ((X+0.5)/S-0.5, (Y+0.5)/S-0.5). A frame pixel is
// the scene's area average over its own pixel square, then noise of variance
// noise^2 * (0.25 + 1.5 v) for clean value v, clamped to [0, 1]. A frame in blurred_frames is blurred
// (libvips gaussblur, blur_sigma frame pixels) before the noise. With exposure_variation F, frame f > 0
// is then multiplied by 1 + U(-F, F) (drawn from std::mt19937_64(seed ^ 0xE1E1E1E1), in frame order) and
// clamped to [0, 1]: a gain after the noise, like a camera's ISO, so that normalizing it away restores
// the frame; the factors are written to transforms.json as each frame's "gain".
// Throws Error(usage) for bad option values, Error(bad_input) for an unreadable or too small source.
SynthResult synthesize(const SynthOptions &options, Progress &progress);

// Where the moving object is in frame `index` (of frames `width` x `height`): the frame pixels (x, y)
// with x0 <= x < x0 + width and y0 <= y < y0 + height. Nothing when that frame does not show it.
struct ObjectPlace {
	double x0 = 0, y0 = 0, width = 0, height = 0;
};
std::optional<ObjectPlace> moving_object_place(const SynthOptions &options, int index, int width, int height);

} // namespace superstack
