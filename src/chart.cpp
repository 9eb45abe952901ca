// chart -- a resolution test chart as one lazy libvips expression.
//
// Every element is a function of pixel coordinates (vips xyz) built from libvips arithmetic, and a
// tile costs only the operations of the cell it falls in (arrayjoin and insert pull one source per
// pixel). Hard edges are anti-aliased with a one-pixel ramp of a signed distance: the exact pixel
// coverage of a straight edge along an axis, and close to it at any angle.
// Memory: libvips keeps a couple of buffers per operation and thread after use, so the graph is
// kept small (one image per kind of cell, however many cells use it; fused arithmetic) and a tile
// cache at the end bounds every request to 128 x 32 pixels. What is left: the cache (two rows of
// tiles, about 0.8 KB per chart column), the rendered text (kilobytes to a few megabytes for huge
// cells) and some 10-20 MB per thread of operation buffers.
#include "superstack/chart.hpp"

#include "superstack/error.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <map>
#include <numbers>
#include <string>
#include <vector>

namespace superstack {

namespace {

using vips::VImage;
using Colour = std::array<double, 3>;

constexpr Colour black{0.06, 0.06, 0.06};
constexpr Colour white{0.92, 0.92, 0.92};
constexpr Colour paper{0.84, 0.84, 0.82};
constexpr double unit = 65535; // coverage is carried as ushort 0..65535

// The finest feature frequency, in cycles per chart pixel: the truth Nyquist limit, kept a little
// under the chart's own so the chart itself does not alias when pixel == 1.
double finest(double pixel)
{
	return std::min(0.5 / pixel, 0.45);
}

std::vector<double> vec(const Colour &c)
{
	return {c[0], c[1], c[2]};
}

VImage constant(int w, int h, const Colour &c)
{
	return VImage::black(w, h, VImage::option()->set("bands", 3)).linear({1, 1, 1}, vec(c));
}

// Pixel-centre coordinates relative to (cx, cy).
struct Coords {
	VImage x, y;
};
Coords coords(int w, int h, double cx, double cy, VipsBandFormat format = VIPS_FORMAT_FLOAT)
{
	const VImage xy = VImage::xyz(w, h).cast(format).linear({1, 1}, {-cx, -cy});
	return {xy[0], xy[1]};
}

// The fraction of a pixel inside a region, from the signed distance (pixels, positive inside)
// a * v + b: a one-pixel linear ramp, clamped by the cast to ushort (0 .. `unit`).
VImage coverage(const VImage &v, double a = 1, double b = 0)
{
	return v.linear(a * unit, (b + 0.5) * unit + 0.5).cast(VIPS_FORMAT_USHORT);
}

// Colour a where t == 0 and b where t == full (1 band in, 3 bands out).
VImage mix(const VImage &t, const Colour &a, const Colour &b, double full = unit)
{
	return t.linear({(b[0] - a[0]) / full, (b[1] - a[1]) / full, (b[2] - a[2]) / full}, vec(a));
}

// `inside` where the coverage image is full, paper where it is 0; `inside` minus paper is given.
VImage on_paper(const VImage &inside_minus_paper, const VImage &cover)
{
	return (inside_minus_paper * cover).linear({1 / unit, 1 / unit, 1 / unit}, vec(paper));
}

// star -- N spokes (binary or sinusoidal in angle) inside a disc, grey at the centre where the
// spokes pass the truth Nyquist limit. Fewer spokes on a small disc, so that centre stays small.
VImage star(int w, int h, int spokes, bool sine, const Colour &a, const Colour &b, double pixel)
{
	const Coords xy = coords(w, h, (w - 1) / 2.0, (h - 1) / 2.0);
	const VImage p = xy.x.complexform(xy.y).polar();
	const VImage r = p.real(), theta = p.imag(); // pixels, degrees
	const double radius = std::min(w, h) / 2.0 - 1;
	const int fit = static_cast<int>(std::floor(radius * std::numbers::pi * 0.3 / pixel));
	const int n = std::max(8, std::min(spokes, fit));
	const double hole = n * pixel / std::numbers::pi; // spoke period = 2 truth pixels here
	const VImage s = (theta * static_cast<double>(n)).sin();
	// Near an edge, r sin(n theta) / n is the distance to it in pixels. t - 1/2, in [-1/2, 1/2]:
	const VImage t = sine ? s * 0.5 : coverage(r * s, 1.0 / n).linear(1 / unit, -0.5);
	const VImage centred = (t * coverage(r, 1, -hole)).linear(1 / unit, 0.5); // grey inside the hole
	const Colour a_p{a[0] - paper[0], a[1] - paper[1], a[2] - paper[2]};
	const Colour b_p{b[0] - paper[0], b[1] - paper[1], b[2] - paper[2]};
	return on_paper(mix(centred, a_p, b_p, 1), coverage(r, -1, radius));
}

// zone plate -- cos(pi f r^2 / R): frequency rises linearly from 0 at the centre to the truth
// Nyquist limit at the rim R. Computed in double: the phase reaches 10^5 degrees on big charts.
VImage zone_plate(int w, int h, double pixel)
{
	const Coords xy = coords(w, h, (w - 1) / 2.0, (h - 1) / 2.0, VIPS_FORMAT_DOUBLE);
	const VImage r2 = xy.x * xy.x + xy.y * xy.y;
	const double radius = std::min(w, h) / 2.0 - 1;
	const VImage c = (r2 * (180.0 * finest(pixel) / radius)).cos().cast(VIPS_FORMAT_FLOAT); // phase in degrees
	// Grey 0.5 +- 0.45 c, minus paper, on paper inside the rim.
	const VImage inside = c.linear({0.45 * (white[0] - black[0]), 0.45 * (white[1] - black[1]), 0.45 * (white[2] - black[2])},
		{0.5 * (white[0] + black[0]) - paper[0], 0.5 * (white[1] + black[1]) - paper[1], 0.5 * (white[2] + black[2]) - paper[2]});
	return on_paper(inside, coverage(r2.pow(0.5).cast(VIPS_FORMAT_FLOAT), -1, radius));
}

// line pairs -- eight groups of square-wave bars per orientation, 2.2 to 8 truth pixels per pair:
// vertical bars in the left half, horizontal bars in the right, finest at the top.
VImage line_pairs(int w, int h, double pixel)
{
	static constexpr std::array<double, 8> periods{2.2, 2.5, 2.8, 3.2, 4, 5, 6.5, 8};
	VImage cell = constant(w, h, paper);
	const int gap = std::max(1, std::min(w, h) / 40);
	const int bw = std::max(1, (w / 2 - 3 * gap) / 2), bh = std::max(1, (h - 5 * gap) / 4);
	const Coords xy = coords(bw, bh, 0, 0);
	for (int half = 0; half < 2; half++)
		for (int i = 0; i < 8; i++) {
			const int x = half * (w / 2) + gap + (i % 2) * (bw + gap), y = gap + (i / 2) * (bh + gap);
			if (x + bw > w || y + bh > h)
				continue;
			// sin(2 pi u / p) p / (2 pi) is the distance to the nearest bar edge, near one.
			const double p = periods[i] * pixel;
			const VImage s = (half == 0 ? xy.x : xy.y).linear(360.0 / p, 0).sin();
			cell = cell.insert(mix(coverage(s, p / (2 * std::numbers::pi)), black, white), x, y);
		}
	return cell;
}

// Bars whose frequency rises linearly from coarse to the truth Nyquist limit along x or y.
VImage chirp(int w, int h, bool along_x, double pixel)
{
	const int length = along_x ? w : h;
	const double f1 = finest(pixel), f0 = std::min(8.0 / length, f1 / 4);
	const double slope = (f1 - f0) / std::max(1, length - 1);
	const Coords xy = coords(w, h, 0, 0, VIPS_FORMAT_DOUBLE);
	const VImage t = along_x ? xy.x : xy.y;
	const VImage phase = (t * t).linear(slope / 2 * 360, 0) + t * (f0 * 360); // degrees
	const VImage d = phase.sin() / t.linear(slope * 2 * std::numbers::pi, f0 * 2 * std::numbers::pi);
	return mix(coverage(d.cast(VIPS_FORMAT_FLOAT)), black, white);
}

// wedge -- a frequency sweep in each orientation, one above the other.
VImage wedge(int w, int h, double pixel)
{
	const int gap = std::max(1, std::min(w, h) / 40);
	const int bh = std::max(1, (h - 3 * gap) / 2), bw = std::max(1, w - 2 * gap);
	return constant(w, h, paper)
		.insert(chirp(bw, bh, true, pixel), gap, gap)
		.insert(chirp(bw, bh, false, pixel), gap, 2 * gap + bh);
}

// slanted edge -- a square turned by 5 degrees, for edge-spread (MTF) measurement; moderate contrast.
VImage slanted_edge(int w, int h)
{
	const double a = 5 * std::numbers::pi / 180, c = std::cos(a), s = std::sin(a);
	const Coords xy = coords(w, h, (w - 1) / 2.0, (h - 1) / 2.0);
	const VImage u = (xy.x * c + xy.y * s).abs(), v = (xy.y * c - xy.x * s).abs();
	const VImage nearest = u + v + (u - v).abs(); // 2 max(u, v)
	return mix(coverage(nearest, -0.5, 0.3 * std::min(w, h)), {0.8, 0.8, 0.8}, {0.2, 0.2, 0.2});
}

// text -- a sample sentence at eight sizes (5 to 19 truth pixels) in one Pango layout, the block
// repeated to fill the cell. The block is at most 2048 pixels wide.
VImage text(int w, int h, double pixel, const Colour &ink, const Colour &background)
{
	static constexpr std::array<double, 8> sizes{5, 6, 7, 8, 10, 12, 15, 19};
	static constexpr const char *sample = "Superstack 0123456789 The quick brown fox jumps over the lazy dog. ";
	const int target = std::min(w, 2048);
	std::string markup;
	for (double size : sizes) {
		const double px = size * pixel;
		// A sample is about 35 em wide; repeat it to cover the block.
		const int repeats = std::max(1, static_cast<int>(std::ceil(target / (35 * px))));
		markup += fmt::format("<span font_desc=\"Sans {:.2f}\">", px);
		for (int i = 0; i < repeats; i++)
			markup += sample;
		markup += "</span>\n";
	}
	VImage block = VImage::text(markup.c_str(), VImage::option()->set("dpi", 72));
	block = block.extract_area(0, 0, std::min(target, block.width()), block.height());
	block = block.replicate((w + block.width() - 1) / block.width(), (h + block.height() - 1) / block.height())
			.extract_area(0, 0, w, h);
	return mix(block, background, ink, 255);
}

// patches -- a 6 x 4 grid of ColorChecker-like sRGB colours, zoomed from a 6 x 4 image.
VImage patches(int w, int h)
{
	static constexpr std::array<unsigned char, 72> colours{
		115, 82, 68, 194, 150, 130, 98, 122, 157, 87, 108, 67, 133, 128, 177, 103, 189, 170,
		214, 126, 44, 80, 91, 166, 193, 90, 99, 94, 60, 108, 157, 188, 64, 224, 163, 46,
		56, 61, 150, 70, 148, 73, 175, 54, 60, 231, 199, 31, 187, 86, 149, 8, 133, 161,
		243, 243, 242, 200, 200, 200, 160, 160, 160, 122, 122, 121, 85, 85, 85, 52, 52, 52,
	};
	const int pw = w / 6, ph = h / 4, gap = std::max(1, std::min(pw, ph) / 10);
	if (pw <= gap || ph <= gap)
		return constant(w, h, paper);
	VipsImage *grid = vips_image_new_from_memory_copy(colours.data(), colours.size(), 6, 4, 3, VIPS_FORMAT_UCHAR);
	if (!grid)
		throw_error(ExitCode::processing, "chart: {}", vips_error_line());
	const VImage zoomed = VImage(grid).zoom(pw, ph).linear({1 / 255.0, 1 / 255.0, 1 / 255.0}, {0, 0, 0});
	const Coords xy = coords(6 * pw, 4 * ph, 0, 0);
	const VImage gaps = (xy.x % pw < gap) | (xy.y % ph < gap);
	return gaps.ifthenelse(vec(paper), zoomed)
		.embed(0, 0, w, h, VImage::option()->set("background", vec(paper)));
}

// gradients -- a grey ramp, a hue ramp fading to grey, and a two-dimensional colour ramp.
VImage gradients(int w, int h)
{
	const double sx = 1.0 / std::max(1, w - 1), sy = 3.0 / std::max(1, h - 1);
	const Coords xy = coords(w, h, 0, 0);
	const VImage u = xy.x * sx, v = xy.y * sy; // u in [0, 1], v in [0, 3]: one strip per unit
	const VImage grey = mix(u, {0.03, 0.03, 0.03}, {0.97, 0.97, 0.97}, 1);
	const VImage hue = u * 6;
	const auto ramp = [](const VImage &x, double a, double b) { // clamp(a |x| + b) in [0, 1]
		return x.abs().linear(a * unit, b * unit + 0.5).cast(VIPS_FORMAT_USHORT);
	};
	const VImage rgb = VImage::bandjoin({ramp(hue - 3, 1, -1), ramp(hue - 2, -1, 2), ramp(hue - 4, -1, 2)});
	const VImage saturation = (v - 1).linear(unit, 0.5).cast(VIPS_FORMAT_USHORT); // 0 .. 1 over the strip
	const VImage hues = (rgb.linear(0.9 / unit, -0.45) * saturation).linear(1 / unit, 0.5);
	const VImage plane = VImage::bandjoin({u * 0.9 + 0.05, (v - 2) * 0.9 + 0.05, u * -0.9 + 0.95});
	return (v < 1).ifthenelse(grey, (v < 2).ifthenelse(hues, plane));
}

// Four small stars, 24 to 60 spokes, binary and sinusoidal, one in colour.
VImage small_stars(int w, int h, double pixel)
{
	const int sw = std::max(1, w / 2), sh = std::max(1, h / 2);
	const VImage grid = VImage::arrayjoin({star(sw, sh, 24, false, black, white, pixel),
						      star(sw, sh, 36, true, black, white, pixel),
						      star(sw, sh, 48, false, {0.7, 0.15, 0.6}, {0.2, 0.6, 0.2}, pixel),
						      star(sw, sh, 60, false, black, white, pixel)},
		VImage::option()->set("across", 2));
	return grid.embed(0, 0, w, h, VImage::option()->set("background", vec(paper)));
}

enum class Cell {
	star_bw, zone, line_pairs, text, patches, slanted_edge,
	star_colour, gradients, wedge, star_sine, text_colour, small_stars,
};

// In order along the short side first, so the first nine cells (a square chart) hold one of each kind.
constexpr std::array<Cell, 12> order{
	Cell::star_bw, Cell::zone, Cell::line_pairs,
	Cell::text, Cell::patches, Cell::slanted_edge,
	Cell::star_colour, Cell::gradients, Cell::wedge,
	Cell::star_sine, Cell::text_colour, Cell::small_stars,
};

VImage element(Cell kind, int w, int h, double pixel)
{
	switch (kind) {
	case Cell::star_bw: return star(w, h, 72, false, black, white, pixel);
	case Cell::zone: return zone_plate(w, h, pixel);
	case Cell::line_pairs: return line_pairs(w, h, pixel);
	case Cell::text: return text(w, h, pixel, black, paper);
	case Cell::patches: return patches(w, h);
	case Cell::slanted_edge: return slanted_edge(w, h);
	// Red and cyan of nearly equal luminance: this star is only visible in colour.
	case Cell::star_colour: return star(w, h, 36, false, {0.8, 0.2, 0.15}, {0.1, 0.4, 0.45}, pixel);
	case Cell::gradients: return gradients(w, h);
	case Cell::wedge: return wedge(w, h, pixel);
	case Cell::star_sine: return star(w, h, 48, true, black, white, pixel);
	case Cell::text_colour: return text(w, h, pixel, {0.1, 0.15, 0.55}, {0.92, 0.88, 0.6});
	case Cell::small_stars: return small_stars(w, h, pixel);
	}
	return constant(w, h, paper);
}

// A smooth, slightly tinted background for whatever the grid of cells leaves uncovered.
VImage background(int w, int h)
{
	const VImage xy = VImage::xyz(w, h).cast(VIPS_FORMAT_FLOAT);
	return VImage::bandjoin({xy[0] * (0.12 / w) + 0.42, xy[1] * (0.1 / h) + 0.45, xy[0] * (-0.08 / w) + 0.5});
}

} // namespace

VImage render_chart(int width, int height, double pixel)
{
	if (width < 32 || height < 32)
		throw_error(ExitCode::usage, "chart size {}x{} is too small (at least 32x32)", width, height);
	if (!(pixel >= 1) || !std::isfinite(pixel))
		throw_error(ExitCode::usage, "chart pixel scale must be >= 1 (got {})", pixel);

	// Square cells, three along the short side; the grid is centred and the rest is background.
	const bool landscape = width >= height;
	const int cell = std::min(width, height) / 3;
	const int cols = width / cell, rows = height / cell;
	const int pad = std::max(1, cell / 24), inner = cell - 2 * pad;

	std::map<Cell, VImage> made; // one image per kind: libvips keeps buffers per image
	std::vector<VImage> cells;
	for (int row = 0; row < rows; row++)
		for (int col = 0; col < cols; col++) {
			const Cell kind = order[(landscape ? col * rows + row : row * cols + col) % order.size()];
			if (!made.count(kind))
				made[kind] = element(kind, inner, inner, pixel)
						     .cast(VIPS_FORMAT_FLOAT)
						     .embed(pad, pad, cell, cell, VImage::option()->set("background", vec(paper)));
			cells.push_back(made[kind]);
		}
	const VImage grid = VImage::arrayjoin(cells, VImage::option()->set("across", cols));
	const VImage chart = background(width, height)
				     .insert(grid, (width - cols * cell) / 2, (height - rows * cell) / 2)
				     .copy(VImage::option()->set("interpretation", VIPS_INTERPRETATION_sRGB));

	// Requests of any shape (full-width strips, rotated bounding boxes) become 128 x 32 tiles, so no
	// operation above ever holds a buffer larger than that; two rows of tiles are kept.
	constexpr int tile_w = 128, tile_h = 32;
	return chart.tilecache(VImage::option()
		->set("tile_width", tile_w)
		->set("tile_height", tile_h)
		->set("max_tiles", 2 * (width / tile_w + 2) + 16)
		->set("threaded", true));
}

} // namespace superstack
