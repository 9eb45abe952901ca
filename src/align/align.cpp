// align -- the per-frame pipeline: proxy -> coarse similarity -> patch refinement per pyramid level
// -> robust model fit -> plausibility checks -> (with local_grid) the displacement field the fit leaves.
#include "superstack/align.hpp"

#include "coarse.hpp"
#include "field.hpp"
#include "fit.hpp"
#include "lucas_kanade.hpp"
#include "phase.hpp"

#include "superstack/cancel.hpp"
#include "superstack/error.hpp"
#include "superstack/frame.hpp"
#include "superstack/geometry.hpp"
#include "superstack/lanczos.hpp"
#include "superstack/noise.hpp"
#include "superstack/sharpness.hpp"
#include "superstack/spool.hpp"
#include "superstack/warp.hpp"

#include <fmt/core.h>
#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <exception>
#include <mutex>
#include <numbers>
#include <thread>

namespace superstack {

MotionModel parse_motion_model(std::string_view name)
{
	if (name == "none") return MotionModel::none;
	if (name == "translation") return MotionModel::translation;
	if (name == "euclidean") return MotionModel::euclidean;
	if (name == "similarity") return MotionModel::similarity;
	if (name == "affine") return MotionModel::affine;
	if (name == "homography") return MotionModel::homography;
	throw_error(ExitCode::usage,
		"--align must be none, translation, euclidean, similarity, affine or homography (got '{}')", name);
}

std::string_view motion_model_name(MotionModel model)
{
	switch (model) {
	case MotionModel::none: return "none";
	case MotionModel::translation: return "translation";
	case MotionModel::euclidean: return "euclidean";
	case MotionModel::similarity: return "similarity";
	case MotionModel::affine: return "affine";
	case MotionModel::homography: return "homography";
	}
	return "?";
}

AlignFailure parse_align_failure(std::string_view name)
{
	if (name == "skip") return AlignFailure::skip;
	if (name == "fail") return AlignFailure::fail;
	throw_error(ExitCode::usage, "--on-align-failure must be skip or fail (got '{}')", name);
}

double mapping_rms(const Matrix3 &a, const Matrix3 &b, int width, int height, int grid)
{
	double sum = 0;
	for (int j = 0; j < grid; j++)
		for (int i = 0; i < grid; i++) {
			const Point p{(width - 1) * i / static_cast<double>(grid - 1), (height - 1) * j / static_cast<double>(grid - 1)};
			const Point pa = a.apply(p), pb = b.apply(p);
			sum += (pa.x - pb.x) * (pa.x - pb.x) + (pa.y - pb.y) * (pa.y - pb.y);
		}
	return std::sqrt(sum / (grid * grid));
}

namespace align {

namespace {

using vips::VImage;

constexpr int kProxyLongSide = 480;
// A frame's proxy is made at the reference's proxy scale, so a frame far larger than the reference (a
// 65000 px scan against a 640 px reference) would get a proxy nearly as large as itself, held whole in
// memory: beyond this many proxy pixels per axis it is cut to a window about the frame's centre (where
// the coarse estimate looks for the reference's centre), 960 x 960 floats at most.
constexpr int kMaxFrameProxySide = 2 * kProxyLongSide;
// A patch whose predicted footprint in the frame is over this many times its side is not read: no
// transform that passes the plausibility checks (scale 0.67 to 1.5) gives one, and a wild coarse
// estimate (a frame of another scale) would otherwise read blocks as large as the frame.
constexpr double kMaxPatchFootprint = 2.0;
constexpr int kMaxPatchesPerAxis = 16;
// Patch pixels per level (tracking time is proportional): at full resolution on large frames (128 px
// patches) at most 40 patches, chosen for texture from up to 16 x 16 candidates: a fit still ten times
// more precise than needed (0.004 px RMS at 6 MP, as with 256 patches on a fixed grid), at a quarter
// of the time. Smaller patches are not limited beyond the 16 x 16 grid.
constexpr double kPixelsPerLevel = 40.0 * 128 * 128;
constexpr int kMaxIterations = 8;
constexpr double kConverged = 0.005; // level pixels
constexpr double kMinNcc = 0.5;
constexpr double kSmoothing = 1.0; // Gaussian sigma, level pixels
constexpr std::size_t kChunk = 32;  // patches tracked together: one atlas

// Level k holds the frame shrunk by k (box average): level pixel i covers full pixels [ik, ik+k), so
// its centre sits at full coordinate (i + 0.5) k - 0.5.
Matrix3 level_to_full(int k)
{
	return Matrix3::translation(-0.5, -0.5) * Matrix3::scaling(k, k) * Matrix3::translation(0.5, 0.5);
}

Matrix3 full_to_level(int k)
{
	return Matrix3::translation(-0.5, -0.5) * Matrix3::scaling(1.0 / k, 1.0 / k) * Matrix3::translation(0.5, 0.5);
}

std::vector<int> pyramid_for(int width, int height)
{
	const int k0 = std::max(1, static_cast<int>(std::ceil(std::max(width, height) / static_cast<double>(kProxyLongSide))));
	std::vector<int> levels{k0};
	while (levels.back() > 1)
		levels.push_back(std::max(1, levels.back() / 8));
	return levels;
}

// Large enough to hold texture at that scale, small enough for a few dozen patches per frame.
int patch_size_for(int level_width, int level_height, bool proxy)
{
	const int side = std::min(level_width, level_height);
	if (side < 384)
		return 32;
	if (proxy || side < 640)
		return 48;
	return side >= 1500 ? 128 : 64;
}

// Band 0 luminance, band 1 (when the frame has alpha) alpha, at level k, lightly smoothed: at full
// resolution a low-light frame's pixel-to-pixel gradients are mostly noise, which makes each
// Lucas-Kanade step fall short (the steps then shrink by a constant factor instead of converging).
// The same smoothing on both sides moves nothing: a shift commutes with a blur.
VImage level_image(const VImage &lum_alpha, int k)
{
	const VImage level = shrink_spooled(lum_alpha, k);
	return level.gaussblur(kSmoothing, VImage::option()->set("precision", VIPS_PRECISION_FLOAT)->set("min_ampl", 0.01));
}

// Reads rectangles of one image through one region, so the image's pipeline starts once for all.
class RegionReader {
public:
	explicit RegionReader(const VImage &image) : image_(image), region_(vips::VRegion::new_from_image(image)) {}

	// Band 0 into a Grey; band 1 (when there is one) into `alpha` if given.
	Grey read(int left, int top, int width, int height, std::vector<float> *alpha = nullptr)
	{
		region_.prepare(left, top, width, height);
		Grey g;
		g.width = width;
		g.height = height;
		g.pixels.resize(static_cast<std::size_t>(width) * height);
		if (alpha)
			alpha->resize(g.pixels.size());
		const int bands = image_.bands();
		for (int y = 0; y < height; y++) {
			const float *row = reinterpret_cast<const float *>(region_.addr(left, top + y));
			for (int x = 0; x < width; x++) {
				g.pixels[static_cast<std::size_t>(y) * width + x] = row[x * bands];
				if (alpha)
					(*alpha)[static_cast<std::size_t>(y) * width + x] = bands > 1 ? row[x * bands + 1] : 1.0f;
			}
		}
		return g;
	}

private:
	VImage image_;
	vips::VRegion region_;
};

// A reference patch at one level, measured once and reused for every frame.
struct RefPatch {
	int left = 0, top = 0;
	Grey pixels;
	std::vector<float> weight; // 1 - masked fraction per pixel; empty when nothing is masked
	Point centre() const { return {left + (pixels.width - 1) / 2.0, top + (pixels.height - 1) / 2.0}; }
};

struct Level {
	int k = 1;
	int size = 64;
	VImage reference;             // lum (+ alpha) at this level
	std::vector<RefPatch> patches; // the textured, mostly unmasked ones
};

// The noise sigma of a patch from the median absolute 4-neighbour Laplacian (sigma x
// sqrt(kLaplacianNoiseGain) for white noise), which texture inflates: callers take a low quantile
// over many patches.
double patch_noise(const Grey &p)
{
	std::vector<double> lap;
	for (int y = 1; y + 1 < p.height; y++)
		for (int x = 1; x + 1 < p.width; x++)
			lap.push_back(std::abs(4.0 * p.at(x, y) - p.at(x - 1, y) - p.at(x + 1, y) - p.at(x, y - 1) - p.at(x, y + 1)));
	if (lap.empty())
		return 0;
	std::nth_element(lap.begin(), lap.begin() + lap.size() / 2, lap.end());
	return 1.4826 * lap[lap.size() / 2] / std::sqrt(kLaplacianNoiseGain);
}

// The smaller and larger eigenvalue of the mean structure tensor (central differences).
std::pair<double, double> structure(const Grey &p)
{
	double xx = 0, xy = 0, yy = 0;
	int n = 0;
	for (int y = 1; y + 1 < p.height; y++)
		for (int x = 1; x + 1 < p.width; x++) {
			const double gx = 0.5 * (p.at(x + 1, y) - p.at(x - 1, y)), gy = 0.5 * (p.at(x, y + 1) - p.at(x, y - 1));
			xx += gx * gx, xy += gx * gy, yy += gy * gy, n++;
		}
	if (n == 0)
		return {0, 0};
	xx /= n, xy /= n, yy /= n;
	const double mean = 0.5 * (xx + yy), d = std::sqrt(0.25 * (xx - yy) * (xx - yy) + xy * xy);
	return {mean - d, mean + d};
}

// Patch origins along one axis: patches overlapping by a quarter, at most kMaxPatchesPerAxis.
std::vector<int> grid_positions(int extent, int size, int margin)
{
	const int span = extent - 2 * margin - size;
	if (span < 0)
		return {};
	const int n = std::clamp(static_cast<int>((extent - 2 * margin) / (0.75 * size)), 1, kMaxPatchesPerAxis);
	std::vector<int> out;
	for (int i = 0; i < n; i++)
		out.push_back(margin + (n == 1 ? span / 2 : static_cast<int>(std::lround(static_cast<double>(i) * span / (n - 1)))));
	return out;
}

// The size x size reference patch at (left, top): nothing when part of it is transparent or more than
// half of it is masked (`mask_reader`: the masked fraction per pixel, or null).
std::optional<RefPatch> read_patch(RegionReader &reader, RegionReader *mask_reader, int left, int top, int size, bool alpha_band)
{
	RefPatch p;
	p.left = left;
	p.top = top;
	std::vector<float> alpha;
	p.pixels = reader.read(left, top, size, size, alpha_band ? &alpha : nullptr);
	if (std::any_of(alpha.begin(), alpha.end(), [](float a) { return a < 0.999f; }))
		return std::nullopt;
	if (mask_reader) {
		Grey m = mask_reader->read(left, top, size, size);
		double sum = 0;
		p.weight.resize(m.pixels.size());
		for (std::size_t i = 0; i < m.pixels.size(); i++)
			p.weight[i] = 1.0f - std::clamp(m.pixels[i], 0.0f, 1.0f), sum += p.weight[i];
		if (sum < 0.5 * m.pixels.size())
			return std::nullopt;
		if (sum == static_cast<double>(m.pixels.size()))
			p.weight.clear();
	}
	return p;
}

// The level's noise sigma: the lower quartile of its patches' (texture inflates each one's).
double typical_noise(const std::vector<RefPatch> &patches)
{
	std::vector<double> noise;
	for (const auto &p : patches)
		noise.push_back(patch_noise(p.pixels));
	if (noise.empty())
		return 0;
	std::nth_element(noise.begin(), noise.begin() + noise.size() / 4, noise.end());
	return noise[noise.size() / 4];
}

// Texture: the weaker gradient direction must stand clear of the noise (a flat patch has no
// position) and of the stronger one (a lone straight edge only fixes one direction).
bool textured_enough(double weak, double strong, double sigma)
{
	return weak > 2.0 * sigma * sigma && weak > 0.02 * strong && weak > 1e-10;
}

// `reference` is the reference's lum (+ alpha) at level k.
Level make_level(const VImage &reference, int k, bool proxy, const std::optional<VImage> &mask)
{
	Level level;
	level.k = k;
	level.reference = reference;
	level.size = patch_size_for(level.reference.width(), level.reference.height(), proxy);
	std::optional<VImage> masked; // fraction of each level pixel that is masked
	if (mask)
		masked = level_image((*mask > 0).cast(VIPS_FORMAT_FLOAT) * (1.0 / 255.0), k);
	const int size = level.size;
	RegionReader reader(level.reference);
	std::optional<RegionReader> mask_reader;
	if (masked)
		mask_reader.emplace(*masked);
	std::vector<RefPatch> all;
	for (int top : grid_positions(level.reference.height(), size, 4))
		for (int left : grid_positions(level.reference.width(), size, 4))
			if (auto p = read_patch(reader, mask_reader ? &*mask_reader : nullptr, left, top, size, level.reference.bands() > 1))
				all.push_back(std::move(*p));
	const double sigma = typical_noise(all);
	std::vector<std::pair<double, RefPatch>> textured; // (weaker eigenvalue, patch)
	for (auto &p : all) {
		const auto [weak, strong] = structure(p.pixels);
		if (textured_enough(weak, strong, sigma))
			textured.push_back({weak, std::move(p)});
	}
	// Within the pixel budget: the most textured patch of each cell of a coarser grid (so the patches
	// still cover the frame), then the most textured of the rest.
	const auto budget = static_cast<std::size_t>(std::max(1.0, kPixelsPerLevel / (size * size)));
	if (textured.size() > budget) {
		const double w = level.reference.width(), h = level.reference.height();
		const int columns = std::max(1, static_cast<int>(std::lround(std::sqrt(budget * w / h))));
		const int rows = std::max(1, static_cast<int>(budget / columns));
		auto cell_of = [&](const RefPatch &p) {
			const Point c = p.centre();
			return std::min(rows - 1, static_cast<int>(c.y / h * rows)) * columns + std::min(columns - 1, static_cast<int>(c.x / w * columns));
		};
		std::vector<int> best(static_cast<std::size_t>(rows * columns), -1);
		for (std::size_t i = 0; i < textured.size(); i++) {
			int &b = best[cell_of(textured[i].second)];
			if (b < 0 || textured[i].first > textured[b].first)
				b = static_cast<int>(i);
		}
		std::vector<bool> chosen(textured.size(), false);
		for (int b : best)
			if (b >= 0)
				chosen[b] = true;
		std::vector<std::size_t> rest;
		for (std::size_t i = 0; i < textured.size(); i++)
			if (!chosen[i])
				rest.push_back(i);
		std::stable_sort(rest.begin(), rest.end(), [&](std::size_t a, std::size_t b) { return textured[a].first > textured[b].first; });
		std::size_t count = static_cast<std::size_t>(std::count(chosen.begin(), chosen.end(), true));
		for (std::size_t i = 0; i < rest.size() && count < budget; i++, count++)
			chosen[rest[i]] = true;
		for (std::size_t i = 0; i < textured.size(); i++)
			if (chosen[i])
				level.patches.push_back(std::move(textured[i].second));
	} else {
		for (auto &t : textured)
			level.patches.push_back(std::move(t.second));
	}
	return level;
}

struct LevelFit {
	std::vector<Correspondence> points;
	std::vector<double> ncc;           // of each point's patches, once aligned
	std::vector<std::size_t> patch;    // each point's patch in the level
	RobustFit fit;
	RobustOptions options; // those of the fit
	int measured = 0;
};

// The frame's pixels around every patch's predicted place, read once per level (one region read per
// patch) and laid side by side in memory: each Lucas-Kanade step re-samples the patches still moving
// there with the Lanczos-3 stencil (lanczos.hpp), with no operation to build per step (a mapim per
// step spent more time building itself and copying the atlas than interpolating). The stencil is
// lanczos3_at(), inline on the atlas's floats: the interpolator's weights, vectorised, without a
// call through a libvips region per sample.
class Atlas {
public:
	Atlas(const Atlas &) = delete; // large: one per chunk of patches, never copied
	Atlas &operator=(const Atlas &) = delete;

	struct Block {
		int left = 0, top = 0, width = 0, height = 0; // in the frame level image
		int x = 0, y = 0;                             // its place in the atlas
		bool ok = false;
	};

	Atlas(const VImage &frame_level, const std::vector<Matrix3> &predicted, int size, int margin)
	{
		const int w = frame_level.width(), h = frame_level.height();
		if (frame_level.bands() > 2)
			throw_error(ExitCode::processing, "internal: the alignment atlas takes 1 or 2 bands, not {}", frame_level.bands());
		blocks_.resize(predicted.size());
		int cell_w = 1, cell_h = 1;
		for (std::size_t i = 0; i < predicted.size(); i++) {
			double x0 = 1e300, y0 = 1e300, x1 = -1e300, y1 = -1e300;
			for (const Point c : {Point{0, 0}, Point{size - 1.0, 0}, Point{0, size - 1.0}, Point{size - 1.0, size - 1.0}}) {
				const Point p = predicted[i].apply(c);
				x0 = std::min(x0, p.x), x1 = std::max(x1, p.x), y0 = std::min(y0, p.y), y1 = std::max(y1, p.y);
			}
			Block &b = blocks_[i];
			if (!(x0 > -1e6 && x1 < 1e6 && y0 > -1e6 && y1 < 1e6))
				continue;
			if (x1 - x0 > kMaxPatchFootprint * size || y1 - y0 > kMaxPatchFootprint * size)
				continue;
			const Rect r = Rect{static_cast<int>(std::floor(x0)) - margin, static_cast<int>(std::floor(y0)) - margin,
				static_cast<int>(std::ceil(x1) - std::floor(x0)) + 2 * margin + 1,
				static_cast<int>(std::ceil(y1) - std::floor(y0)) + 2 * margin + 1}
					       .intersect(Rect{0, 0, w, h});
			if (r.width < size / 2 || r.height < size / 2)
				continue;
			b = {r.left, r.top, r.width, r.height, 0, 0, true};
			cell_w = std::max(cell_w, r.width), cell_h = std::max(cell_h, r.height);
		}
		const int n = static_cast<int>(blocks_.size());
		const int columns = std::max(1, static_cast<int>(std::ceil(std::sqrt(static_cast<double>(n)))));
		const int rows = std::max(1, (n + columns - 1) / columns);
		const int bands = frame_level.bands();
		width_ = columns * cell_w, height_ = rows * cell_h;
		pixels_.assign(static_cast<std::size_t>(width_) * height_ * bands, 0.0f);
		RegionReader reader(frame_level);
		for (int i = 0; i < n; i++) {
			Block &b = blocks_[i];
			if (!b.ok)
				continue;
			b.x = i % columns * cell_w, b.y = i / columns * cell_h;
			std::vector<float> alpha;
			const Grey g = reader.read(b.left, b.top, b.width, b.height, bands > 1 ? &alpha : nullptr);
			for (int y = 0; y < b.height; y++)
				for (int x = 0; x < b.width; x++) {
					const std::size_t at = (static_cast<std::size_t>(b.y + y) * width_ + b.x + x) * bands;
					pixels_[at] = g.at(x, y);
					if (bands > 1)
						pixels_[at + 1] = alpha[static_cast<std::size_t>(y) * b.width + x];
				}
		}
		bands_ = bands;
	}

	// For each request (patch index, patch -> frame level matrix), the size x size patch sampled there
	// with the Lanczos-3 interpolator; nothing where the kernel would reach outside the patch's block
	// or a sample is not opaque.
	std::vector<std::optional<Grey>> sample(const std::vector<std::pair<std::size_t, Matrix3>> &requests, int size) const
	{
		std::vector<std::optional<Grey>> out(requests.size());
		const std::size_t line = static_cast<std::size_t>(width_) * bands_;
		float px[2];
		for (std::size_t r = 0; r < requests.size(); r++) {
			const Block &b = blocks_[requests[r].first];
			if (!b.ok)
				continue;
			Grey g;
			g.width = g.height = size;
			g.pixels.resize(static_cast<std::size_t>(size) * size);
			// Homogeneous coordinates step by the matrix's first column along a row.
			const auto &m = requests[r].second.rows();
			bool ok = true;
			for (int v = 0; v < size && ok; v++) {
				double hx = m[0][1] * v + m[0][2], hy = m[1][1] * v + m[1][2], hw = m[2][1] * v + m[2][2];
				for (int u = 0; u < size; u++, hx += m[0][0], hy += m[1][0], hw += m[2][0]) {
					const double x = hx / hw, y = hy / hw;
					if (!(x >= b.left + 3 && x <= b.left + b.width - 4 && y >= b.top + 3 && y <= b.top + b.height - 4)) {
						ok = false;
						break;
					}
					if (bands_ == 1)
						lanczos3_at<1>(weights_, pixels_.data(), line, x - b.left + b.x, y - b.top + b.y, px);
					else
						lanczos3_at<2>(weights_, pixels_.data(), line, x - b.left + b.x, y - b.top + b.y, px);
					if (bands_ > 1 && px[1] < 0.999f) {
						ok = false;
						break;
					}
					g.pixels[static_cast<std::size_t>(v) * size + u] = px[0];
				}
			}
			if (ok)
				out[r] = std::move(g);
		}
		return out;
	}

private:
	std::vector<Block> blocks_;
	std::vector<float> pixels_;
	int width_ = 0, height_ = 0, bands_ = 1;
	const LanczosWeights &weights_ = lanczos3_weights();
};

// Tracks reference patches [begin, end) of `level` in the frame (tl: reference level -> frame level
// coordinates) and appends the correspondences of those that settle and still look alike. Per patch:
// Lucas-Kanade from the prediction, re-sampling until the step vanishes; where it does not settle
// (the prediction is off by more than its capture range), a phase correlation of the first sample
// gives a new start, once, when `restart`. Memory: the chunk's atlas, sampling index and samples.
void track_patches(const Level &level, const VImage &frame_level, const Matrix3 &tl, std::size_t begin,
	std::size_t end, LevelFit &out, bool restart = true)
{
	const int k = level.k, size = level.size;
	const std::size_t n = end - begin;
	auto patch_of = [&](std::size_t i) -> const RefPatch & { return level.patches[begin + i]; };
	std::vector<Matrix3> predicted;
	for (std::size_t i = 0; i < n; i++)
		predicted.push_back(tl * Matrix3::translation(patch_of(i).left, patch_of(i).top));
	const int reach = size / 4; // the farthest a patch may move from its prediction
	const Atlas atlas(frame_level, predicted, size, reach + 4);

	struct State {
		double dx = 0, dy = 0, gain = 1;
		// Noise in the gradients makes every step fall short by the same factor; a secant estimate of
		// that factor from the last two steps scales the next one (Aitken's acceleration).
		double reach_factor = 1, last_dx = 0, last_dy = 0, last_sx = 0, last_sy = 0;
		bool have_last = false;
		int steps = 0;
		bool restarted = false, done = false, ok = false, measured = false;
		Grey first, last;
		std::optional<LucasKanade> lk;
	};
	std::vector<State> state(n);
	for (int round = 0; round < 2 * kMaxIterations + 1; round++) {
		if (cancel_requested())
			throw_error(ExitCode::interrupted, "interrupted");
		std::vector<std::pair<std::size_t, Matrix3>> requests;
		for (std::size_t i = 0; i < n; i++)
			if (!state[i].done)
				requests.push_back({i, tl * Matrix3::translation(patch_of(i).left + state[i].dx, patch_of(i).top + state[i].dy)});
		if (requests.empty())
			break;
		const auto samples = atlas.sample(requests, size);
		for (std::size_t r = 0; r < requests.size(); r++) {
			const std::size_t i = requests[r].first;
			State &st = state[i];
			const RefPatch &patch = patch_of(i);
			const std::vector<float> *weight = patch.weight.empty() ? nullptr : &patch.weight;
			if (!samples[r]) {
				st.done = true;
				continue;
			}
			if (!st.lk)
				st.lk.emplace(patch.pixels, weight);
			if (st.first.pixels.empty())
				st.first = *samples[r];
			st.measured = true;
			st.last = *samples[r];
			const LucasKanade::Step s = st.lk->step(st.last, st.gain);
			if (s.ok) {
				st.gain = s.gain;
				if (st.have_last) {
					const double ddx = st.dx - st.last_dx, ddy = st.dy - st.last_dy;
					const double moved = ddx * ddx + ddy * ddy;
					if (moved > 1e-12)
						st.reach_factor = std::clamp(((st.last_sx - s.dx) * ddx + (st.last_sy - s.dy) * ddy) / moved, 0.25, 1.25);
				}
				st.have_last = true;
				st.last_dx = st.dx, st.last_dy = st.dy, st.last_sx = s.dx, st.last_sy = s.dy;
			}
			const double sx = s.ok ? s.dx / st.reach_factor : 0.0, sy = s.ok ? s.dy / st.reach_factor : 0.0;
			const double length = std::hypot(sx, sy);
			if (s.ok && length < kConverged) {
				st.done = st.ok = true;
				continue;
			}
			// A long step leaves the linear range: take part of it and look again.
			if (s.ok) {
				const double f = length > 1.0 ? 1.0 / length : 1.0;
				st.dx += sx * f, st.dy += sy * f;
			}
			st.steps++;
			if (!s.ok || std::hypot(st.dx, st.dy) > reach || st.steps >= kMaxIterations) {
				if (st.restarted || !restart) {
					st.done = true;
					continue;
				}
				const Shift c = phase_correlate(patch.pixels, st.first, PhaseOptions{}, weight);
				st.dx = c.dx, st.dy = c.dy, st.steps = 0, st.restarted = true;
				st.have_last = false, st.reach_factor = 1;
			}
		}
	}
	for (std::size_t i = 0; i < n; i++) {
		const State &st = state[i];
		out.measured += st.measured;
		const RefPatch &patch = patch_of(i);
		if (!st.ok)
			continue;
		const double ncc = window_ncc(patch.pixels, st.last, patch.weight.empty() ? nullptr : &patch.weight);
		if (ncc < kMinNcc)
			continue;
		out.ncc.push_back(ncc);
		out.patch.push_back(begin + i);
		const Point q = patch.centre();
		const Point ref_full = level_to_full(k).apply(q);
		const Point frame_full = (level_to_full(k) * tl).apply({q.x + st.dx, q.y + st.dy});
		out.points.push_back({ref_full, frame_full});
	}
}

// The least likeness (normalised correlation with its reference) a tracked patch may keep: the median
// of `ncc` less 4 robust deviations (at least 0.005 each).
double likeness_cut(const std::vector<double> &ncc)
{
	std::vector<double> sorted = ncc;
	std::sort(sorted.begin(), sorted.end());
	const double median = sorted[sorted.size() / 2];
	std::vector<double> deviation;
	for (double v : sorted)
		deviation.push_back(std::abs(v - median));
	std::sort(deviation.begin(), deviation.end());
	return median - 4 * std::max(1.4826 * deviation[deviation.size() / 2], 0.005);
}

// Measures every reference patch of `level` in the frame under the current estimate `t` (full
// resolution, reference -> frame), in chunks of kChunk patches, and fits `model` to what they say.
LevelFit refine(const Level &level, const VImage &frame_level, const Matrix3 &t, MotionModel model, std::uint64_t seed)
{
	const Matrix3 tl = (full_to_level(level.k) * t * level_to_full(level.k)).normalised();
	LevelFit out;
	for (std::size_t begin = 0; begin < level.patches.size(); begin += kChunk)
		track_patches(level, frame_level, tl, begin, std::min(level.patches.size(), begin + kChunk), out);
	// A patch that a moving object or an occlusion crosses still settles somewhere, but looks less
	// like its reference than the rest do: drop those far below the typical likeness before they can
	// pull the fit.
	if (out.ncc.size() >= 8) {
		const double cut = likeness_cut(out.ncc);
		std::vector<Correspondence> kept;
		std::vector<std::size_t> kept_patch;
		for (std::size_t i = 0; i < out.points.size(); i++)
			if (out.ncc[i] >= cut)
				kept.push_back(out.points[i]), kept_patch.push_back(out.patch[i]);
		out.points = std::move(kept);
		out.patch = std::move(kept_patch);
	}
	RobustOptions robust;
	robust.threshold = std::max(2.0, 2.0 * level.k);
	robust.min_sigma = 0.01 * level.k;
	robust.seed = seed;
	out.fit = fit_robust(model, out.points, robust);
	out.options = robust;
	return out;
}

// Why a fitted transform cannot be right, or empty.
std::string implausibility(const Matrix3 &t, int rw, int rh, int fw, int fh)
{
	const Point corners[] = {{0, 0}, {rw - 1.0, 0}, {0, rh - 1.0}, {rw - 1.0, rh - 1.0}, {(rw - 1) / 2.0, (rh - 1) / 2.0}};
	for (const Point c : corners) {
		// The local Jacobian by central differences.
		const Point px = t.apply({c.x + 1, c.y}), mx = t.apply({c.x - 1, c.y});
		const Point py = t.apply({c.x, c.y + 1}), my = t.apply({c.x, c.y - 1});
		const double a = (px.x - mx.x) / 2, b = (py.x - my.x) / 2, cc = (px.y - mx.y) / 2, d = (py.y - my.y) / 2;
		const double det = a * d - b * cc;
		if (!(det > 0))
			return "the fitted transform mirrors or collapses the image";
		const double scale = std::sqrt(det);
		if (scale < 0.67 || scale > 1.5)
			return fmt::format("the fitted transform scales by {:.2f}", scale);
		const double degrees = std::atan2(cc - b, a + d) * 180 / std::numbers::pi;
		if (std::abs(degrees) > 45)
			return fmt::format("the fitted transform rotates by {:.0f} degrees", degrees);
	}
	int inside = 0;
	constexpr int n = 16;
	for (int j = 0; j < n; j++)
		for (int i = 0; i < n; i++) {
			const Point p = t.apply({(rw - 1) * i / (n - 1.0), (rh - 1) * j / (n - 1.0)});
			inside += p.x >= -0.5 && p.x < fw - 0.5 && p.y >= -0.5 && p.y < fh - 0.5;
		}
	if (inside < 0.3 * n * n)
		return fmt::format("it overlaps the reference by only {}%", inside * 100 / (n * n));
	return {};
}

VImage lum_alpha_of(const AlignFrame &f)
{
	const VImage lum = working_luminance(f.working, f.alpha);
	return f.alpha ? VImage::bandjoin({lum, f.working.extract_band(f.working.bands() - 1)}) : lum;
}

// The part of a frame's proxy (w x h proxy pixels) the coarse estimate sees: all of it, or a window
// of kMaxFrameProxySide per axis about its centre.
Rect proxy_window(int w, int h)
{
	const int ww = std::min(w, kMaxFrameProxySide), wh = std::min(h, kMaxFrameProxySide);
	return Rect{(w - ww) / 2, (h - wh) / 2, ww, wh};
}


// The local field (AlignOptions::local_grid): patches on a regular grid of the reference at full
// resolution, centred on the field's nodes (fold 0) and on its cells' centres (fold 1), so that each
// fold judges a field fitted to the other at places between its nodes.
struct LocalGrid {
	DisplacementField grid;              // the field's nodes (values empty)
	Level level;                         // k = 1; its patches are the grid's
	std::vector<int> fold;               // 0: on a node, 1: on a cell's centre
	std::vector<std::array<double, 3>> information; // each patch's W (field.hpp), 1 / px^2
	std::vector<char> textured;          // passes the global fit's texture test: judges the residual
};

struct Reference {
	int width = 0, height = 0;
	std::vector<int> pyramid;
	Grey proxy;
	std::vector<Level> levels;     // one per pyramid entry
	std::optional<LocalGrid> local; // with AlignOptions::local_grid
};

constexpr int kMinLocalSpacing = 16;     // reference pixels between the field's nodes, at least
// The reference's grid patches are held for every frame: at most this many pixels (64 MB of floats;
// the GoPro's 12 MP at --local-grid 32 needs 15 M).
constexpr double kMaxLocalPixels = 16e6;
// The prior's weight (field.hpp), in units of a patch at the model floor (1 / floor^2 = 100): swept
// 3 to 300 on synthetic bends of 1.5 px and on a rigid burst (field error, px): 3: 0.158 / 0.045,
// 10: 0.138 / 0.027, 30: 0.140 / 0.021, 100: 0.189 / 0.017, 300: 0.475 / 0.013.
constexpr double kLocalSmoothness = 20;
// A field is kept when its cross-validated residual is below this fraction of the matrix alone's,
// and below it by this many pixels.
constexpr double kKeepField = 0.95;
constexpr double kKeepFieldGain = 0.01;
constexpr double kModelFloor = 0.1; // px: what no patch measures better (parallax within it, the sensor's sampling)

LocalGrid make_local_grid(const Level &full, int nodes_along, const std::optional<VImage> &mask)
{
	LocalGrid g;
	const int w = full.reference.width(), h = full.reference.height();
	// Patches of about one and a half spacings (neighbours overlap by half, and each sees texture),
	// two per node; the spacing grows until they hold at most kMaxLocalPixels.
	double spacing = std::max<double>(kMinLocalSpacing, std::ceil(std::max(w, h) / static_cast<double>(nodes_along)));
	int size = 0;
	for (;; spacing = std::ceil(spacing * 1.25)) {
		g.grid.columns = static_cast<int>(std::ceil((w - 1) / spacing)) + 1;
		g.grid.rows = static_cast<int>(std::ceil((h - 1) / spacing)) + 1;
		size = std::clamp(static_cast<int>(std::lround(1.5 * spacing)) / 2 * 2, 24, 96);
		if (2.0 * g.grid.columns * g.grid.rows * size * size <= kMaxLocalPixels)
			break;
	}
	g.grid.spacing = spacing;
	g.level.k = 1;
	g.level.size = size;
	g.level.reference = full.reference;
	RegionReader reader(full.reference);
	std::optional<VImage> masked;
	std::optional<RegionReader> mask_reader;
	if (mask) {
		masked = level_image((*mask > 0).cast(VIPS_FORMAT_FLOAT) * (1.0 / 255.0), 1);
		mask_reader.emplace(*masked);
	}
	for (int fold = 0; fold < 2; fold++)
		for (int j = 0; j < g.grid.rows - fold; j++)
			for (int i = 0; i < g.grid.columns - fold; i++) {
				const double cx = (i + 0.5 * fold) * spacing, cy = (j + 0.5 * fold) * spacing;
				const int left = static_cast<int>(std::lround(cx - (size - 1) / 2.0));
				const int top = static_cast<int>(std::lround(cy - (size - 1) / 2.0));
				if (left < 4 || top < 4 || left + size > w - 4 || top + size > h - 4)
					continue;
				if (auto p = read_patch(reader, mask_reader ? &*mask_reader : nullptr, left, top, size, full.reference.bands() > 1)) {
					g.level.patches.push_back(std::move(*p));
					g.fold.push_back(fold);
				}
			}
	// Each patch's information: its structure tensor summed over the Hann window's effective quarter
	// of its pixels, over the noise of two images (2 sigma^2), capped by the model floor:
	// W = J (I + floor^2 J)^-1.
	const double sigma = std::max(typical_noise(g.level.patches), 1e-4);
	for (const RefPatch &p : g.level.patches) {
		double xx = 0, xy = 0, yy = 0;
		for (int y = 1; y + 1 < p.pixels.height; y++)
			for (int x = 1; x + 1 < p.pixels.width; x++) {
				const double gx = 0.5 * (p.pixels.at(x + 1, y) - p.pixels.at(x - 1, y)), gy = 0.5 * (p.pixels.at(x, y + 1) - p.pixels.at(x, y - 1));
				xx += gx * gx, xy += gx * gy, yy += gy * gy;
			}
		const double f = 0.25 / (2 * sigma * sigma);
		const double a = xx * f, b = xy * f, d = yy * f, s2 = kModelFloor * kModelFloor;
		// (I + s2 J)^-1 = adj / det for the 2x2 matrix [[1 + s2 a, s2 b], [s2 b, 1 + s2 d]].
		const double p00 = 1 + s2 * a, p01 = s2 * b, p11 = 1 + s2 * d, det = p00 * p11 - p01 * p01;
		const double i00 = p11 / det, i01 = -p01 / det, i11 = p00 / det;
		g.information.push_back({a * i00 + b * i01, a * i01 + b * i11, b * i01 + d * i11});
		const auto [weak, strong] = structure(p.pixels);
		g.textured.push_back(textured_enough(weak, strong, sigma));
	}
	return g;
}

// The frame's displacement field against `t` (full resolution, reference -> frame), into `result`:
// every grid patch tracked from t, its shift taken back to the reference (t^-1 (frame point) - its
// centre), the field fitted to all of them (field.hpp); and the residual it leaves, judged fairly:
// each fold's textured patches against the field fitted to the other fold.
void estimate_local(const LocalGrid &g, const VImage &frame_full, const Matrix3 &t, FrameAlignment &result)
{
	const Matrix3 tl = t.normalised(); // k = 1: level coordinates are full ones
	LevelFit tracked;
	// No second start from a phase correlation: the prediction is the full-resolution fit, so a patch
	// that does not settle from it is ambiguous (a period of a texture, an occlusion), and another
	// correlation peak seldom makes it less so. Measured (5 frames of 3000x2000 bending by 1.5 px,
	// --local-grid 32): the map's worst error 0.204 px against 0.210 with the restarts, in 79% of the
	// time; the still life's fields and residuals as before (within 0.02 px; 6.jpg and 8.jpg lower).
	for (std::size_t begin = 0; begin < g.level.patches.size(); begin += kChunk)
		track_patches(g.level, frame_full, tl, begin, std::min(g.level.patches.size(), begin + kChunk), tracked, false);
	const Matrix3 back = t.inverse();
	std::vector<FieldMeasurement> all;
	std::vector<std::size_t> patch_of;
	// The likeness a patch must keep, as in refine().
	const double cut = tracked.ncc.size() >= 8 ? likeness_cut(tracked.ncc) : kMinNcc;
	// Every patch that still looks like its reference counts, by its information (a weakly textured
	// one mostly across its edges); only the textured ones judge the residual (below). Measured on
	// synthetic bends of 1.5 px (640x480, nodes 20 px apart): the field's error 0.114 px with all
	// patches, 0.138 with the textured ones alone, against the matrix alone's 0.76.
	for (std::size_t i = 0; i < tracked.points.size(); i++) {
		if (tracked.ncc[i] < cut)
			continue;
		const Point c = tracked.points[i].ref, r = back.apply(tracked.points[i].frame);
		all.push_back({c, {r.x - c.x, r.y - c.y}, g.information[tracked.patch[i]]});
		patch_of.push_back(tracked.patch[i]);
	}
	if (all.size() < 8)
		return; // too few patches for a field: the matrix alone
	FieldOptions options;
	options.smoothness = kLocalSmoothness;
	std::vector<double> weights;
	DisplacementField field = fit_field(g.grid, all, options, &weights);
	// A field steeper than the transforms file takes would fold the frame: smoother until it fits.
	for (int tries = 0; tries < 6 && field.max_gradient() > 0.2; tries++) {
		options.smoothness *= 4;
		field = fit_field(g.grid, all, options, &weights);
	}
	if (field.max_gradient() > 0.2)
		return;
	for (auto *values : {&field.dx, &field.dy})
		for (double &v : *values)
			v = std::round(v * 1e4) / 1e4; // the transforms file's precision, so `run` and `run --transforms` agree
	// Cross-validation: every textured patch (whatever the fit made of it: a judge the fit chose would
	// flatter it), each against the field fitted to the other fold. Their residual, as an RMS
	// distance robust to gross failures (a patch that locked onto the wrong period of a texture, an
	// occlusion): the clipped sd of the residuals' components (noise.hpp's clipped_sigma) x sqrt 2,
	// for the field and, on the same patches, for the matrix alone.
	std::vector<float> local, matrix;
	for (int fold = 0; fold < 2; fold++) {
		std::vector<FieldMeasurement> others;
		for (std::size_t i = 0; i < all.size(); i++)
			if (g.fold[patch_of[i]] != fold)
				others.push_back(all[i]);
		if (others.size() < 4)
			continue;
		const DisplacementField held_out = fit_field(g.grid, others, options);
		for (std::size_t i = 0; i < all.size(); i++) {
			if (g.fold[patch_of[i]] != fold || !g.textured[patch_of[i]])
				continue;
			const Point d = held_out.at(all[i].at);
			local.push_back(static_cast<float>(std::abs(d.x - all[i].shift.x)));
			local.push_back(static_cast<float>(std::abs(d.y - all[i].shift.y)));
			matrix.push_back(static_cast<float>(std::abs(all[i].shift.x)));
			matrix.push_back(static_cast<float>(std::abs(all[i].shift.y)));
		}
	}
	result.local_patches = static_cast<int>(local.size() / 2);
	result.local_residual_rms = std::sqrt(2.0) * clipped_sigma(std::move(local));
	result.matrix_residual_rms = std::sqrt(2.0) * clipped_sigma(std::move(matrix));
	// The simplest sufficient model, as for the matrices: the field is kept only when it predicts the
	// patches it was not fitted to clearly better than the matrix alone, by a share and by a hundredth
	// of a pixel (a rigid scene's field is the patches' noise: 0.03 px of error on a 6 MP chart burst
	// that the matrix alone aligns to 0.004; on a 480x360 one, 0.0279 px against 0.0295 by chance).
	if (result.local_patches > 0 && result.local_residual_rms < kKeepField * result.matrix_residual_rms &&
		result.matrix_residual_rms - result.local_residual_rms > kKeepFieldGain)
		result.displacement = std::move(field);
}

FrameAlignment align_one(const Reference &ref, const AlignFrame &frame, int index, const AlignOptions &o)
{
	FrameAlignment result;
	result.model = o.model;
	const VImage lum_alpha = lum_alpha_of(frame);
	const int k0 = ref.pyramid.front();
	if (k0 > 1 && (frame.working.width() / k0 < 2 || frame.working.height() / k0 < 2)) {
		result.ok = false;
		result.reason = fmt::format("the frame ({}x{}) is too small against the reference ({}x{}): under 2 pixels at the "
					    "reference's proxy scale (1/{})",
			frame.working.width(), frame.working.height(), ref.width, ref.height, k0);
		return result;
	}
	const VImage frame_proxy_level = level_image(lum_alpha, k0);
	const Rect window = proxy_window(frame_proxy_level.width(), frame_proxy_level.height());
	const bool cut = window.width < frame_proxy_level.width() || window.height < frame_proxy_level.height();
	const VImage proxy_image =
		(cut ? frame_proxy_level.extract_area(window.left, window.top, window.width, window.height) : frame_proxy_level)
			.copy_memory();
	const CoarseEstimate coarse = estimate_coarse(ref.proxy, grey_of(proxy_image));
	Matrix3 t = (level_to_full(k0) * Matrix3::translation(window.left, window.top) * coarse.matrix * full_to_level(k0))
			    .normalised();

	LevelFit last;
	for (std::size_t l = 0; l < ref.levels.size(); l++) {
		const Level &level = ref.levels[l];
		// The refinement reads patches on demand: from the whole level image, never the window only.
		const VImage frame_level = l == 0 ? (cut ? frame_proxy_level : proxy_image) : level_image(lum_alpha, level.k);
		last = refine(level, frame_level, t, o.model, static_cast<std::uint64_t>(index) * 131 + l + 1);
		if (last.fit.ok)
			t = last.fit.matrix;
		else if (l + 1 < ref.levels.size())
			continue; // keep the estimate; the finer level may still have enough patches
	}
	if (last.fit.ok) {
		// The requested model is the most general allowed; the simplest the patches support is used.
		auto [model, fit] = simplest_sufficient(o.model, last.points, last.fit, last.options);
		result.model = model;
		last.fit = fit;
		t = fit.matrix;
	}
	result.matrix = t;
	result.patches = last.measured;
	result.inliers = last.fit.ok ? last.fit.inliers : 0;
	result.residual_rms = last.fit.ok ? last.fit.rms : 0;
	const int need = std::max(o.min_inliers, minimal_points(o.model) + 2);
	if (ref.levels.back().patches.empty()) {
		result.ok = false;
		result.reason = fmt::format("the reference ({}x{}) has no textured patch to align on: too small or featureless",
			ref.width, ref.height);
	} else if (!last.fit.ok || result.inliers < need) {
		result.ok = false;
		result.reason = fmt::format("only {} of {} patches match the reference (need {})", result.inliers,
			ref.levels.back().patches.size(), need);
	} else if (result.inliers < 0.25 * static_cast<double>(last.points.size()) || result.inliers < 0.1 * ref.levels.back().patches.size()) {
		result.ok = false;
		result.reason = fmt::format("only {} of {} matching patches agree on one transform", result.inliers,
			last.points.size());
	} else if (result.residual_rms > o.max_residual) {
		result.ok = false;
		result.reason = fmt::format("residual {:.2f} px is above {:.2f} px", result.residual_rms, o.max_residual);
	} else if (auto why = implausibility(t, ref.width, ref.height, frame.working.width(), frame.working.height()); !why.empty()) {
		result.ok = false;
		result.reason = why;
	}
	if (result.ok && ref.local)
		estimate_local(*ref.local, level_image(lum_alpha, 1), t, result);
	if (!result.ok && cut && !ref.levels.back().patches.empty())
		result.reason += fmt::format(" (the frame is {}x{}, the reference {}x{}: only a central window of it was searched)",
			frame.working.width(), frame.working.height(), ref.width, ref.height);
	return result;
}

} // namespace

} // namespace align

std::vector<FrameAlignment> align_frames(const std::vector<AlignFrame> &frames, int reference,
	const std::optional<vips::VImage> &mask, const AlignOptions &o, Progress &progress)
{
	using namespace align;
	std::vector<FrameAlignment> results(frames.size());
	auto known = [&](std::size_t i) { return i < o.known.size() && o.known[i].has_value(); };
	bool all_known = true;
	for (std::size_t i = 0; i < frames.size(); i++)
		all_known = all_known && (known(i) || static_cast<int>(i) == reference);
	if (all_known && o.model != MotionModel::none && frames.size() > 1) {
		for (std::size_t i = 0; i < frames.size(); i++)
			results[i] = known(i) ? *o.known[i] : FrameAlignment{Matrix3::identity(), o.model};
		return results;
	}
	if (o.model == MotionModel::none || frames.size() == 1) {
		for (auto &r : results)
			r.model = MotionModel::none;
		return results;
	}
	const AlignFrame &rf = frames[reference];
	Reference ref;
	ref.width = rf.working.width();
	ref.height = rf.working.height();
	if (mask && (mask->width() != ref.width || mask->height() != ref.height))
		throw_error(ExitCode::bad_input, "mask is {}x{}, the reference frame {} is {}x{}", mask->width(), mask->height(),
			rf.name, ref.width, ref.height);
	ref.pyramid = pyramid_for(ref.width, ref.height);
	const VImage ref_lum_alpha = lum_alpha_of(rf);
	const VImage ref_proxy = level_image(ref_lum_alpha, ref.pyramid.front()).copy_memory();
	ref.proxy = grey_of(ref_proxy);
	for (std::size_t l = 0; l < ref.pyramid.size(); l++) {
		const int k = ref.pyramid[l];
		ref.levels.push_back(make_level(l == 0 ? ref_proxy : level_image(ref_lum_alpha, k), k, l == 0, mask));
	}
	if (o.local_grid > 0 && ref.levels.back().k == 1) {
		ref.local = make_local_grid(ref.levels.back(), o.local_grid, mask);
		progress.note(fmt::format("align: local fields on a grid of {}x{} nodes {} px apart, {} patches of {} px",
			ref.local->grid.columns, ref.local->grid.rows, ref.local->grid.spacing, ref.local->level.patches.size(),
			ref.local->level.size));
	}
	progress.note(fmt::format("align: pyramid {}, {} patches at full resolution ({} px), model {}",
		fmt::join(ref.pyramid, "/"), ref.levels.back().patches.size(), ref.levels.back().size,
		motion_model_name(o.model)));

	std::atomic<std::size_t> next{0};
	std::atomic<int> done{0};
	std::mutex report;
	std::vector<std::exception_ptr> errors(frames.size());
	auto worker = [&] {
		for (std::size_t i = next++; i < frames.size(); i = next++) {
			try {
				if (static_cast<int>(i) == reference) {
					results[i].model = o.model;
					results[i].matrix = Matrix3::identity();
				} else if (known(i)) {
					results[i] = *o.known[i];
				} else {
					results[i] = align_one(ref, frames[i], static_cast<int>(i), o);
					std::lock_guard lock(report);
					if (o.on_aligned)
						o.on_aligned(i, results[i]);
				}
			} catch (...) {
				errors[i] = std::current_exception();
			}
			std::lock_guard lock(report);
			progress.update("align", static_cast<double>(++done) / frames.size(), -1);
		}
	};
	const int threads = std::clamp(o.threads, 1, static_cast<int>(frames.size()));
	std::vector<std::thread> pool;
	for (int t = 1; t < threads; t++)
		pool.emplace_back(worker);
	worker();
	for (auto &t : pool)
		t.join();
	for (std::size_t i = 0; i < frames.size(); i++)
		if (errors[i]) {
			try {
				std::rethrow_exception(errors[i]);
			} catch (const Error &e) {
				if (e.code() == ExitCode::interrupted)
					throw;
				std::throw_with_nested(Error(e.code(), fmt::format("aligning {}", frames[i].name)));
			} catch (const vips::VError &) {
				throw_error(ExitCode::processing, "aligning {}: {}", frames[i].name, vips_error_line());
			}
		}
	return results;
}

} // namespace superstack
