// synth -- renders a burst from one scene through known transforms, in one resampling per frame.
//
// The scene is held (lazily) on a supersampled grid aligned with the truth grid: K scene pixels
// per truth pixel, S*K per reference pixel, plus a margin wide enough for every frame's view.
// A frame is the scene warped by one affine (vips affine, bicubic) onto a grid of n x n subpixels
// per frame pixel, box-averaged by vips shrink (sensor integration); the truth is the same scene
// cropped and box-averaged by K. Memory: libvips tile buffers, a small tile cache behind each warp
// (about 1 KB per subpixel column) and the chart's own (see chart.cpp); the chart is recomputed per
// frame rather than cached, and a `source` is opened with libvips' random access (which decodes
// large compressed files to a temporary file, not to memory).
#include "superstack/synth.hpp"

#include "superstack/chart.hpp"
#include "superstack/error.hpp"
#include "superstack/frame.hpp"
#include "superstack/geometry.hpp"
#include "superstack/transform.hpp"
#include "superstack/warp.hpp"

#include <fmt/core.h>
#include <vips/vips8>

#include <algorithm>
#include <array>
#include <cmath>
#include <exception>
#include <numbers>
#include <random>
#include <string>
#include <system_error>

namespace superstack {

namespace {

using vips::VImage;
namespace fs = std::filesystem;

void validate(const SynthOptions &o)
{
	if (o.frames < 1)
		throw_error(ExitCode::usage, "--frames must be at least 1 (got {})", o.frames);
	if (!o.source && (o.width < 16 || o.height < 16))
		throw_error(ExitCode::usage, "frame size must be at least 16x16 (got {}x{})", o.width, o.height);
	if (!(o.scale >= 1) || !std::isfinite(o.scale))
		throw_error(ExitCode::usage, "--scale must be a number >= 1 (got {})", o.scale);
	if (!(o.noise >= 0) || !std::isfinite(o.noise))
		throw_error(ExitCode::usage, "--noise must be >= 0 (got {})", o.noise);
	if (!(o.max_shift >= 0) || !std::isfinite(o.max_shift))
		throw_error(ExitCode::usage, "--max-shift must be >= 0 (got {})", o.max_shift);
	if (!(o.max_rotation >= 0) || o.max_rotation > 45)
		throw_error(ExitCode::usage, "--max-rotation must be in [0, 45] degrees (got {})", o.max_rotation);
	if (!(o.max_scale >= 0) || o.max_scale > 0.5)
		throw_error(ExitCode::usage, "--max-scale must be in [0, 0.5] (got {})", o.max_scale);
	if (!(o.local_motion >= 0) || o.local_motion > 64)
		throw_error(ExitCode::usage, "--local-motion must be in [0, 64] px (got {})", o.local_motion);
	if (!(o.moving_object >= 0) || o.moving_object > 0.5)
		throw_error(ExitCode::usage, "--moving-object must be in [0, 0.5] (got {})", o.moving_object);
	if (o.moving_frames < 0 || o.moving_frames > o.frames)
		throw_error(ExitCode::usage, "--moving-frames must be between 0 and --frames (got {})", o.moving_frames);
	if ((o.moving_frames > 0 || o.moving_texture) && !(o.moving_object > 0))
		throw_error(ExitCode::usage, "--moving-frames and --moving-texture need --moving-object");
	for (const double t : {o.tca_red, o.tca_blue})
		if (!(t >= 0.95 && t <= 1.05))
			throw_error(ExitCode::usage, "--tca-red and --tca-blue must be in [0.95, 1.05] (got {})", t);
	if (!(o.exposure_variation >= 0) || o.exposure_variation >= 1)
		throw_error(ExitCode::usage, "--exposure-variation must be in [0, 1) (got {})", o.exposure_variation);
	if (!(o.blur_sigma > 0) || o.blur_sigma > 100)
		throw_error(ExitCode::usage, "--blur-sigma must be in (0, 100] frame pixels (got {})", o.blur_sigma);
	for (int f : o.blurred_frames)
		if (f < 0 || f >= o.frames)
			throw_error(ExitCode::usage, "--blur-frames: {} is not a frame index (0 to {})", f, o.frames - 1);
	if (o.out_dir.empty())
		throw_error(ExitCode::usage, "an output directory is needed");
}



// The source as 3 bands float in [0, 1] (by its format's maximum), alpha dropped.
VImage load_source(const fs::path &path)
{
	VImage image;
	try {
		image = VImage::new_from_file(path.c_str());
	} catch (const vips::VError &) {
		throw_error(ExitCode::bad_input, "{}: cannot read source image ({})", path.string(), vips_error_line());
	}
	if (image.format() == VIPS_FORMAT_COMPLEX || image.format() == VIPS_FORMAT_DPCOMPLEX)
		throw_error(ExitCode::bad_input, "{}: complex images are not supported", path.string());
	int bands = image.bands();
	if (bands == 2 || bands == 4)
		bands--; // alpha
	if (bands != 1 && bands != 3)
		throw_error(ExitCode::bad_input, "{}: needs 1 or 3 bands (plus alpha), has {}", path.string(),
			image.bands());
	VImage v = image.extract_band(0, VImage::option()->set("n", bands)).cast(VIPS_FORMAT_FLOAT) *
		   (1.0 / format_full_scale(image.format()));
	return bands == 1 ? VImage::bandjoin({v, v, v}) : v;
}

// A uniform draw in [-m, m] from 53 bits of the engine: the same numbers on every platform.
double symmetric(std::mt19937_64 &rng, double m)
{
	const double u = static_cast<double>(rng() >> 11) * 0x1.0p-53;
	return m * (2 * u - 1);
}

std::vector<Matrix3> random_transforms(const SynthOptions &o, int w, int h)
{
	std::mt19937_64 rng(o.seed);
	const Point centre{(w - 1) / 2.0, (h - 1) / 2.0};
	std::vector<Matrix3> matrices{Matrix3::identity()};
	for (int f = 1; f < o.frames; f++) {
		const double degrees = symmetric(rng, o.max_rotation);
		const double tx = symmetric(rng, o.max_shift);
		const double ty = symmetric(rng, o.max_shift);
		const double zoom = o.max_scale > 0 ? 1 + symmetric(rng, o.max_scale) : 1.0;
		matrices.push_back(Matrix3::similarity(degrees, zoom, centre, tx, ty));
	}
	return matrices;
}

constexpr double kFieldSpacing = 16; // reference pixels between a synthetic field's nodes

// Frame f's displacement field (none for the reference, or without local motion): see synth.hpp.
std::vector<std::optional<DisplacementField>> random_fields(const SynthOptions &o, int w, int h)
{
	std::vector<std::optional<DisplacementField>> fields(static_cast<std::size_t>(o.frames));
	if (!(o.local_motion > 0))
		return fields;
	std::mt19937_64 rng(o.seed ^ 0xD15D15D1ull);
	const double shorter = std::min(w, h);
	for (int f = 1; f < o.frames; f++) {
		DisplacementField d;
		d.spacing = kFieldSpacing;
		d.columns = static_cast<int>(std::ceil((w - 1) / kFieldSpacing)) + 1;
		d.rows = static_cast<int>(std::ceil((h - 1) / kFieldSpacing)) + 1;
		struct Wave {
			double kx, ky, phase, amplitude;
		};
		std::array<std::array<Wave, 3>, 2> waves{};
		for (auto &axis : waves)
			for (Wave &wave : axis) {
				const double angle = symmetric(rng, std::numbers::pi);
				const double length = shorter * (0.75 + symmetric(rng, 0.25));
				wave = {std::cos(angle) * 2 * std::numbers::pi / length, std::sin(angle) * 2 * std::numbers::pi / length,
					symmetric(rng, std::numbers::pi), 0.75 + symmetric(rng, 0.25)};
			}
		for (int j = 0; j < d.rows; j++)
			for (int i = 0; i < d.columns; i++) {
				const double x = i * d.spacing, y = j * d.spacing;
				double v[2] = {0, 0};
				for (int a = 0; a < 2; a++)
					for (const Wave &wave : waves[a])
						v[a] += wave.amplitude * std::sin(wave.kx * x + wave.ky * y + wave.phase);
				d.dx.push_back(v[0]), d.dy.push_back(v[1]);
			}
		const double scale = o.local_motion / std::max(1e-12, d.max_magnitude());
		for (auto *values : {&d.dx, &d.dy})
			for (double &v : *values)
				v = std::round(v * scale * 1e4) / 1e4;
		if (d.max_gradient() > 0.25)
			throw_error(ExitCode::usage, "--local-motion {} bends {}x{} frames too much (a slope of {:.2f} px per pixel; at most 0.25)",
				o.local_motion, w, h, d.max_gradient());
		fields[static_cast<std::size_t>(f)] = std::move(d);
	}
	return fields;
}

// A seed for libvips' gaussnoise (a gint) per frame and band, from splitmix64 of the master seed.
int noise_seed(std::uint64_t seed, int frame, int band)
{
	std::uint64_t z = seed + 0x9E3779B97F4A7C15ull * (static_cast<std::uint64_t>(frame) * 3 + band + 1);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	z ^= z >> 31;
	return static_cast<int>(z >> 33);
}

// The scene on a grid of `k` pixels per truth pixel, covering the truth grid plus `margin` truth
// pixels on every side: scene pixel (i, j) is centred at truth coordinates ((i+0.5)/k-0.5-margin, ...).
struct Scene {
	VImage image;
	int k = 1;
	int margin = 0;
};

// Truth pixels of margin that keep every frame's view (and the bicubic support) inside the scene.
int margin_for(const std::vector<Matrix3> &matrices, double local_motion, int w, int h, const OutputGeometry &g)
{
	const double wr = g.width / g.scale, hr = g.height / g.scale; // the truth's extent, reference px
	double over = std::max({0.0, wr - w, hr - h});
	for (const auto &m : matrices) {
		const Matrix3 inverse = m.inverse();
		for (const Point corner : {Point{-0.5, -0.5}, Point{w - 0.5, -0.5}, Point{-0.5, h - 0.5}, Point{w - 0.5, h - 0.5}}) {
			const Point p = inverse.apply(corner);
			over = std::max({over, -0.5 - p.x, -0.5 - p.y, p.x - (w - 0.5), p.y - (h - 0.5)});
		}
	}
	return static_cast<int>(std::ceil((over + local_motion + 1) * g.scale)) + 2;
}

// libvips' affine takes (a, b, c, d) and output offsets; the input offsets stay 0. Its convention:
// output pixel X samples input at A^-1 (X - od), integer coordinates at pixel centres.
VImage warp(const VImage &in, const Matrix3 &m, int width, int height)
{
	return in.affine({m(0, 0), m(0, 1), m(1, 0), m(1, 1)}, VImage::option()
		->set("interpolate", vips::VInterpolate::new_from_name("bicubic"))
		->set("odx", m(0, 2))
		->set("ody", m(1, 2))
		->set("idx", 0.0)
		->set("idy", 0.0)
		->set("oarea", std::vector<int>{0, 0, width, height})
		->set("extend", VIPS_EXTEND_COPY));
}

VImage clamp01(const VImage &v)
{
	return (v.abs() - (v - 1).abs() + 1) * 0.5;
}

// The reference points p with p + d(p) = q for each pixel's point q of `points` (2 bands, double):
// the fixed-point iteration of FrameMap::to_output, whose error shrinks by 2 x the field's slope per
// step (at most 1/2), run until it is below 1e-9 px.
VImage undisplaced(const VImage &points, const DisplacementField &field)
{
	const double rate = std::max(1e-3, 2 * field.max_gradient());
	const int steps = static_cast<int>(std::ceil(std::log(1e-9 / (field.max_magnitude() + 1e-9)) / std::log(rate))) + 1;
	VImage p = points;
	for (int step = 0; step < std::clamp(steps, 1, 60); step++)
		p = points - displacement_at(p, field);
	return p;
}

// Frame f: the scene seen through `h` (reference -> frame) and the frame's field, integrated over
// each frame pixel.
VImage render_frame(const Scene &scene, const Matrix3 &h, const std::optional<DisplacementField> &field, const OutputGeometry &g,
	int w, int fh)
{
	const double q = g.scale * scene.k; // scene pixels per reference pixel
	const int n = std::abs(q - std::round(q)) < 1e-9 ? static_cast<int>(std::round(q)) : static_cast<int>(std::ceil(q));
	const double off = 0.5 * q + scene.margin * scene.k - 0.5;
	const Matrix3 reference_to_scene({{{q, 0, off}, {0, q, off}, {0, 0, 1}}});
	const Matrix3 frame_to_sub({{{static_cast<double>(n), 0, 0.5 * n - 0.5}, {0, static_cast<double>(n), 0.5 * n - 0.5}, {0, 0, 1}}});
	const Matrix3 scene_to_sub = frame_to_sub * h * reference_to_scene.inverse();
	VImage sub;
	if (!field) {
		sub = warp(scene.image, scene_to_sub, n * w, n * fh);
	} else {
		// Each subpixel's displaced reference point q = h^-1 (frame point), undone through the field,
		// then into the scene, sampled there by the same bicubic as the rigid frames.
		const VImage xy = VImage::xyz(n * w, n * fh).cast(VIPS_FORMAT_DOUBLE);
		const VImage reference = undisplaced(map_points(xy, (h.inverse() * frame_to_sub.inverse()).normalised()), *field);
		sub = scene.image.mapim(map_points(reference, reference_to_scene), VImage::option()
			->set("interpolate", vips::VInterpolate::new_from_name("bicubic"))
			->set("extend", VIPS_EXTEND_COPY));
	}
	// vips shrink asks for strips a few subpixel rows high and the full width; through a rotation
	// each such strip needs a band of scene rows (width * sin(angle) high) recomputed every time.
	// Short wide cache tiles, three rows of them, keep that to one scene pass:
	// memory 3 * 32 * n*w * 12 bytes (about 1 KB per subpixel column).
	constexpr int tile_w = 256, tile_h = 32;
	sub = sub.tilecache(VImage::option()
		->set("tile_width", tile_w)
		->set("tile_height", tile_h)
		->set("max_tiles", 3 * (n * w / tile_w + 2))
		->set("threaded", true));
	return n > 1 ? sub.shrink(n, n) : sub;
}

VImage add_noise(const VImage &clean, double sigma, std::uint64_t seed, int frame)
{
	const VImage v = clamp01(clean);
	if (sigma <= 0)
		return v;
	std::vector<VImage> bands;
	for (int b = 0; b < 3; b++)
		bands.push_back(VImage::gaussnoise(v.width(), v.height(), VImage::option()
			->set("mean", 0.0)
			->set("sigma", 1.0)
			->set("seed", noise_seed(seed, frame, b))));
	// Variance sigma^2 (0.25 + 1.5 v): read noise plus shot noise, sigma in total at mid-grey.
	const VImage deviation = (v * 1.5 + 0.25).pow(0.5) * sigma;
	return clamp01(v + VImage::bandjoin(bands) * deviation);
}

// The object drawn onto `frame` at `place`: a flat bright (0.95) square, or a texture of grey
// cosines, 0.5 + 0.4 cos(2 pi u / p) cos(2 pi v / p), three periods p across it, u and v measured
// from its corner (so the texture moves with it).
VImage with_moving_object(const VImage &frame, const ObjectPlace &place, bool textured)
{
	const VImage xyz = VImage::xyz(frame.width(), frame.height());
	const VImage x = xyz.extract_band(0), y = xyz.extract_band(1);
	const VImage inside = (x >= place.x0) & (x < place.x0 + place.width) & (y >= place.y0) & (y < place.y0 + place.height);
	if (!textured)
		return inside.ifthenelse(std::vector<double>{0.95, 0.95, 0.95}, frame);
	const double degrees_x = 360.0 * 3 / place.width, degrees_y = 360.0 * 3 / place.height; // vips' cos takes degrees
	const VImage texture = ((x - place.x0) * degrees_x).cos() * ((y - place.y0) * degrees_y).cos() * 0.4 + 0.5;
	return inside.ifthenelse(VImage::bandjoin({texture, texture, texture}), frame);
}

VImage to_16bit(const VImage &v)
{
	return (clamp01(v) * 65535.0)
		.round(VIPS_OPERATION_ROUND_RINT)
		.cast(VIPS_FORMAT_USHORT)
		.copy(VImage::option()->set("interpretation", VIPS_INTERPRETATION_RGB16));
}

// Writes through a temporary name in the same directory and renames on success.
template <typename Save>
void save_atomically(const fs::path &path, Save save)
{
	const fs::path part = path.string() + ".part";
	try {
		save(part);
		fs::rename(part, path);
	} catch (...) {
		std::error_code ec;
		fs::remove(part, ec);
		std::throw_with_nested(Error(ExitCode::processing, fmt::format("writing {}", path.string())));
	}
}

} // namespace

std::optional<ObjectPlace> moving_object_place(const SynthOptions &o, int index, int width, int height)
{
	if (!(o.moving_object > 0))
		return std::nullopt;
	const double side_x = std::sqrt(o.moving_object) * width, side_y = std::sqrt(o.moving_object) * height;
	if (o.moving_frames > 0) {
		// Appearance i of K is in frame floor(i N / K), at i / (K - 1) of the way across.
		const int k = o.moving_frames;
		for (int i = 0; i < k; i++)
			if (static_cast<int>(static_cast<long long>(i) * o.frames / k) == index) {
				const double t = k > 1 ? static_cast<double>(i) / (k - 1) : 0.5;
				return ObjectPlace{t * (width - side_x), 0.5 * (height - side_y), side_x, side_y};
			}
		return std::nullopt;
	}
	// Every frame: the cells of a g x g grid of places (g = ceil(sqrt(frames))) in a shuffled order,
	// with a random jitter of a quarter cell, so that it keeps moving and no pixel is under it in more
	// than about 4 frames of g^2: a median over the burst must not show it.
	const int g = std::max(1, static_cast<int>(std::ceil(std::sqrt(static_cast<double>(o.frames)))));
	std::vector<int> order(static_cast<std::size_t>(g) * g);
	for (std::size_t i = 0; i < order.size(); i++)
		order[i] = static_cast<int>(i);
	std::mt19937_64 shuffle(o.seed ^ 0xA5A5A5A5ull);
	for (std::size_t i = order.size(); i > 1; i--) // Fisher-Yates, from our own draws
		std::swap(order[i - 1], order[static_cast<std::size_t>(shuffle() % i)]);
	std::mt19937_64 rng(o.seed ^ (0x5A5A5A5Aull + static_cast<std::uint64_t>(index) * 0x9E3779B97F4A7C15ull));
	const int cell = order[static_cast<std::size_t>(index) % order.size()];
	auto place = [&](int i, double room) {
		const double step = g > 1 ? room / (g - 1) : 0.0;
		return std::clamp(i * step + symmetric(rng, step / 4), 0.0, room);
	};
	const double x0 = place(cell % g, width - side_x);
	const double y0 = place(cell / g, height - side_y);
	return ObjectPlace{x0, y0, side_x, side_y};
}

SynthResult synthesize(const SynthOptions &o, Progress &progress)
{
	validate(o);

	std::optional<VImage> source;
	int w = o.width, h = o.height;
	if (o.source) {
		source = load_source(*o.source);
		w = static_cast<int>(std::floor(source->width() / o.scale));
		h = static_cast<int>(std::floor(source->height() / o.scale));
		if (w < 16 || h < 16)
			throw_error(ExitCode::bad_input, "{}: {}x{} is too small for frames of at least 16x16 at scale {}",
				o.source->string(), source->width(), source->height(), o.scale);
	}
	const OutputGeometry g = OutputGeometry::for_reference(w, h, o.scale);
	const std::vector<Matrix3> matrices = random_transforms(o, w, h);
	const std::vector<std::optional<DisplacementField>> fields = random_fields(o, w, h);

	Scene scene;
	scene.margin = margin_for(matrices, o.local_motion, w, h, g);
	const int sw = g.width + 2 * scene.margin, sh = g.height + 2 * scene.margin;
	if (source) {
		// The source is the scene at truth resolution; mirror it into the margin.
		scene.k = 1;
		scene.image = source->extract_area(0, 0, g.width, g.height)
				      .embed(scene.margin, scene.margin, sw, sh, VImage::option()->set("extend", VIPS_EXTEND_MIRROR));
	} else {
		// K scene pixels per truth pixel, at least four per reference pixel.
		scene.k = std::clamp(static_cast<int>(std::ceil(4 / o.scale - 1e-9)), 2, 4);
		scene.image = render_chart(sw * scene.k, sh * scene.k, scene.k);
	}

	std::error_code ec;
	fs::create_directories(o.out_dir, ec);
	if (ec || !fs::is_directory(o.out_dir))
		throw_error(ExitCode::processing, "{}: cannot create output directory ({})", o.out_dir.string(),
			ec ? ec.message() : "not a directory");

	SynthResult result;
	const double steps = o.frames + 1;

	VImage truth = scene.image.extract_area(scene.margin * scene.k, scene.margin * scene.k, g.width * scene.k,
		g.height * scene.k);
	if (scene.k > 1)
		truth = truth.shrink(scene.k, scene.k);
	result.truth = o.out_dir / "truth.tif";
	save_atomically(result.truth, [&](const fs::path &p) { to_16bit(truth).tiffsave(p.c_str()); });
	progress.update("synth", 1 / steps, -1);

	TransformSet set;
	set.reference = 0;
	if (o.tca_red != 1 || o.tca_blue != 1) {
		const Point centre{(w - 1) / 2.0, (h - 1) / 2.0};
		set.tca = ChannelTransforms{Matrix3::similarity(0, o.tca_red, centre, 0, 0), Matrix3::similarity(0, o.tca_blue, centre, 0, 0)};
	}
	std::mt19937_64 exposure_rng(o.seed ^ 0xE1E1E1E1ull);
	for (int f = 0; f < o.frames; f++) {
		const std::string name = fmt::format("frame_{:03d}", f);
		VImage clean = render_frame(scene, matrices[f], fields[f], g, w, h);
		if (set.tca) // each colour band through its own magnification, green as it is
			clean = VImage::bandjoin({render_frame(scene, set.tca->red * matrices[f], fields[f], g, w, h).extract_band(0),
				clean.extract_band(1), render_frame(scene, set.tca->blue * matrices[f], fields[f], g, w, h).extract_band(2)});
		if (const auto place = moving_object_place(o, f, w, h))
			clean = with_moving_object(clean, *place, o.moving_texture);
		if (std::find(o.blurred_frames.begin(), o.blurred_frames.end(), f) != o.blurred_frames.end())
			clean = clean.gaussblur(o.blur_sigma, VImage::option()->set("precision", VIPS_PRECISION_FLOAT));
		VImage frame = add_noise(clean, o.noise, o.seed, f);
		const double exposure = f > 0 && o.exposure_variation > 0 ? 1 + symmetric(exposure_rng, o.exposure_variation) : 1.0;
		if (exposure != 1.0)
			frame = clamp01(frame * exposure);
		result.exposures.push_back(exposure);
		const fs::path tif = o.out_dir / (name + ".tif");
		save_atomically(tif, [&](const fs::path &p) { to_16bit(frame).tiffsave(p.c_str()); });
		result.frames.push_back(tif);
		if (o.jpeg) {
			// From the 16-bit file just written: 65535 / 255 = 257 exactly, and no second render.
			const fs::path jpg = o.out_dir / (name + ".jpg");
			save_atomically(jpg, [&](const fs::path &p) {
				VImage::new_from_file(tif.c_str(), VImage::option()->set("access", VIPS_ACCESS_SEQUENTIAL))
					.linear(1.0 / 257, 0.0)
					.round(VIPS_OPERATION_ROUND_RINT)
					.cast(VIPS_FORMAT_UCHAR)
					.copy(VImage::option()->set("interpretation", VIPS_INTERPRETATION_sRGB))
					.jpegsave(p.c_str(), VImage::option()->set("Q", 95));
			});
			result.jpeg_frames.push_back(jpg);
		}
		set.frames.push_back({tif.filename().string(), matrices[f], std::nullopt, std::nullopt, fields[f]});
		if (o.exposure_variation > 0)
			set.frames.back().stacking = StackingReport{.gain = exposure, .offset = 0.0};
		progress.update("synth", (f + 2) / steps, -1);
	}

	result.transforms = o.out_dir / "transforms.json";
	write_transforms(result.transforms, set);
	return result;
}

} // namespace superstack
