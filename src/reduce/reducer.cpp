// reducer -- the one place with start/generate/stop: tiles of the output, reduced from every frame.
//
// Per thread (a libvips sequence): one sample buffer of tile^2 x N x C floats (only when an estimator
// needs all samples) laid out frame-major -- the k-th sample of every pixel in one plane, so a frame's
// samples are written in sequence -- plus the running state (counts, sums in double, and weighted sums
// or extremes when asked) and one scratch column of N floats. Per tile: the frames are visited one at
// a time; each visit opens a region on that frame's warp for the overlap (or, to drizzle, on the
// frame's own pixels that can reach the tile: drizzle.hpp), copies the covered samples, and frees the
// region, so one frame's pipeline is live per thread whatever N is. Then every statistic of every
// pixel comes from that one buffer: the estimators are in kernels.hpp.
#include "superstack/reduce.hpp"

#include "drizzle.hpp"
#include "kernel_regression.hpp"
#include "kernels.hpp"
#include "superstack/cancel.hpp"
#include "superstack/error.hpp"
#include "superstack/warp.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <iterator>
#include <limits>
#include <memory>
#include <type_traits>

namespace superstack {

namespace {

struct StatisticInfo {
	Statistic statistic;
	std::string_view name;
	bool all_samples, rejects;
};

constexpr StatisticInfo kStatistics[] = {
	{Statistic::mean, "mean", false, false},
	{Statistic::median, "median", true, false},
	{Statistic::sigma_clip, "sigma-clip", true, true},
	{Statistic::winsorized, "winsorized", true, true},
	{Statistic::trimmed, "trimmed", true, true},
	{Statistic::weighted, "weighted", false, false},
	{Statistic::min, "min", false, false},
	{Statistic::max, "max", false, false},
};

constexpr bool in_enum_order()
{
	for (int i = 0; i < static_cast<int>(std::size(kStatistics)); i++)
		if (static_cast<int>(kStatistics[i].statistic) != i)
			return false;
	return true;
}
static_assert(in_enum_order(), "kStatistics is indexed by Statistic");

const StatisticInfo &info_of(Statistic statistic)
{
	return kStatistics[static_cast<int>(statistic)];
}

} // namespace

Merge parse_merge(std::string_view name)
{
	if (name == "interpolate") return Merge::interpolate;
	if (name == "drizzle") return Merge::drizzle;
	if (name == "kernel") return Merge::kernel;
	throw_error(ExitCode::usage, "--merge must be interpolate, drizzle or kernel (got '{}')", name);
}

std::string_view merge_name(Merge merge)
{
	switch (merge) {
	case Merge::drizzle: return "drizzle";
	case Merge::kernel: return "kernel";
	default: return "interpolate";
	}
}

Statistic parse_statistic(std::string_view name)
{
	for (const auto &info : kStatistics)
		if (info.name == name)
			return info.statistic;
	throw_error(ExitCode::usage, "--reduce: unknown statistic '{}' (use {})", name, statistic_names());
}

std::string_view statistic_name(Statistic statistic)
{
	return info_of(statistic).name;
}

std::string_view statistic_names()
{
	static const std::string names = [] {
		std::string all;
		for (const auto &info : kStatistics)
			all += (all.empty() ? "" : ", ") + std::string(info.name);
		return all;
	}();
	return names;
}

bool needs_all_samples(Statistic statistic)
{
	return info_of(statistic).all_samples;
}

bool rejects_samples(Statistic statistic)
{
	return info_of(statistic).rejects;
}

void check_clip_options(const ClipOptions &clip)
{
	if (!(clip.kappa > 0) || !std::isfinite(clip.kappa))
		throw_error(ExitCode::usage, "--kappa must be a number > 0 (got {})", clip.kappa);
	if (clip.iterations < 1 || clip.iterations > 100)
		throw_error(ExitCode::usage, "--iterations must be between 1 and 100 (got {})", clip.iterations);
	if (!(clip.trim >= 0 && clip.trim < 0.5))
		throw_error(ExitCode::usage, "--trim must be in [0, 0.5) (got {})", clip.trim);
}

void check_regression_options(const RegressionOptions &o)
{
	auto positive = [](double v) { return v > 0 && std::isfinite(v); };
	if (!positive(o.detail) || o.detail > 4)
		throw_error(ExitCode::usage, "--kernel-detail must be in (0, 4] reference pixels (got {})", o.detail);
	if (!(o.denoise >= 1 && o.denoise <= 8))
		throw_error(ExitCode::usage, "--kernel-denoise must be in [1, 8] (got {})", o.denoise);
	if (!(o.stretch >= 1 && o.stretch <= 8))
		throw_error(ExitCode::usage, "the kernel's stretch must be in [1, 8] (got {})", o.stretch);
	if (!(o.flat_snr >= 0 && o.edge_snr > o.flat_snr && std::isfinite(o.edge_snr)))
		throw_error(ExitCode::usage, "the kernel's flat and edge thresholds must have 0 <= flat < edge (got {}, {})", o.flat_snr, o.edge_snr);
	if (!(o.robustness >= 0 && std::isfinite(o.robustness)))
		throw_error(ExitCode::usage, "--robustness must be a number >= 0 (got {})", o.robustness);
	if (!(o.noise >= 0 && std::isfinite(o.noise)))
		throw_error(ExitCode::processing, "kernel merge: the noise level is not a number >= 0 ({})", o.noise);
}

std::vector<BandGroup> band_groups(const ReduceSpec &spec)
{
	std::vector<BandGroup> groups;
	int band = 0;
	for (Statistic s : spec.statistics) {
		groups.push_back({std::string(statistic_name(s)), band, spec.colour_bands, false});
		band += spec.colour_bands;
	}
	if (spec.coverage)
		groups.push_back({"coverage", band++, 1, true});
	const auto rejecting = std::count_if(spec.statistics.begin(), spec.statistics.end(), rejects_samples);
	if (spec.rejects && rejecting > 0) {
		groups.push_back({"rejects", band, static_cast<int>(rejecting), true});
		band += static_cast<int>(rejecting);
	}
	if (spec.weights && spec.merge != Merge::interpolate)
		groups.push_back({"weights", band, 1, true});
	return groups;
}

int reduced_bands(const ReduceSpec &spec)
{
	const auto groups = band_groups(spec);
	return groups.empty() ? 0 : groups.back().first + groups.back().count;
}

namespace {

// Which running state a reduction keeps per pixel (besides the count).
struct Running {
	bool weighted = false; // weighted sums per band and the weight sum
	bool extremes = false; // running min and max per band
	explicit Running(const std::vector<Statistic> &statistics)
	{
		for (Statistic s : statistics) {
			weighted = weighted || s == Statistic::weighted;
			extremes = extremes || s == Statistic::min || s == Statistic::max;
		}
	}
	// Bytes per pixel: the count, the plain sums, and the optional parts.
	int bytes_per_pixel(int c) const { return 4 + c * 8 + (weighted ? c * 8 + 8 : 0) + (extremes ? c * 8 : 0); }
};

} // namespace

void describe_reduction(const ReduceSpec &spec, BudgetRequest &request)
{
	request.colour_bands = spec.colour_bands;
	request.order_statistics = std::any_of(spec.statistics.begin(), spec.statistics.end(), needs_all_samples);
	const int c = spec.colour_bands;
	request.running_bytes_per_pixel = Running(spec.statistics).bytes_per_pixel(c) + (spec.reference_only ? 1 : 0);
	if (spec.merge == Merge::drizzle)
		request.running_bytes_per_pixel += 2 * 8 * (c + 1); // a frame's drops, and their sums over frames
	if (spec.merge == Merge::kernel) // the weighted sums over frames, their moments, each pixel's steering kernel, the curvature
		request.running_bytes_per_pixel += 8 * (c + 1) + 8 * (5 + 2 * c) + static_cast<int>(sizeof(regression::Kernel)) + 4;
	if (spec.merge == Merge::kernel && spec.displaced) // a frame block's output positions (a block holds about a tile's frame pixels)
		request.running_bytes_per_pixel += static_cast<int>(sizeof(Point));
	if (measures_consensus(spec)) {
		// Over the tile and its apron, per channel (the luminance and c - 1 chroma channels): the
		// consensus, its variance, the detail and its gradient; the robustness before its minimum
		// filter; a frame block's channels (a block holds about a tile's frame pixels). Per frame: its
		// noise factor, per channel its local mean and variance, and its robustness.
		request.running_bytes_per_pixel += (6 * c + 1) * 4;
		request.frame_bytes_per_pixel = (regression::local_stride(c) + 1) * 4;
		request.apron = regression::kApron;
	}
	request.reduced_bands = reduced_bands(spec);
}

namespace {

struct Reducer {
	std::vector<StackFrame> frames;
	std::vector<double> frame_scale;      // kernel: frame pixels per reference pixel, at most
	double kernel_reach = 0;              // kernel: the farthest any steering kernel reaches, reference px
	ReduceSpec spec;
	bool keep_samples = false;
	Running running{{}};
	int out_bands = 0;
	int rejecting = 0; // statistics with a band in the reject map (when spec.rejects)
	const StackFrame *reference = nullptr; // the reference frame, when it is among the frames
};

struct Sequence {
	std::vector<float> samples;        // [k-th sample][pixel][band]: plane k holds each pixel's k-th sample
	std::vector<double> sums;          // [pixel][band]
	std::vector<double> weighted_sums; // [pixel][band], when weighted
	std::vector<double> weight_sums;   // [pixel], when weighted
	std::vector<float> lows, highs;    // [pixel][band], when min or max
	std::vector<std::uint32_t> counts; // [pixel]
	std::vector<float> scratch;        // one pixel-band's samples, for every order statistic in turn
	kernels::SortedSamples sorted;     // the scratch sorted, and its sums, for the clippings
	// Drizzle: one frame's drops ([pixel][band] value x overlap, [pixel] overlap). Drizzle and kernel:
	// over all frames, the weighted sums ([pixel][band] and [pixel]) whose ratio is the merged mean.
	std::vector<double> drop_values, drop_weights, merge_values, merge_weights;
	// Kernel and robust drizzle: over the tile grown by the apron, each frame's noise factor and, per
	// channel (regression::local_stride), its local mean and the local variance of its samples
	// ([frame][pixel][stride]); per channel ([channel][pixel], the luminance's plane first), the
	// consensus, its variance, the detail (the local variance less the noise's) and the consensus's
	// gradient; the luminance consensus's curvature energy (kernel); over the tile, each pixel's
	// steering kernel and each frame's robustness ([frame][pixel]); and one frame block's channels
	// ([pixel][channel]).
	std::vector<float> local, consensus, consensus_variance, detail, gradient_x, gradient_y, curvature, raw_robustness, row_minima,
		robust, channels;
	std::vector<const float *> gathered; // the consensus: one pixel's frames' local statistics in `local`
	std::vector<regression::Kernel> steering;
	// Kernel: the weighted moments of the offsets and values for the local linear fit ([pixel][5 + 2C]:
	// sx, sy, sxx, sxy, syy, then per band scx, scy; merge_weights and merge_values hold s0 and sc).
	std::vector<double> moments;
	std::vector<std::uint8_t> reference_only; // [pixel], with spec.reference_only: 1 where only the reference counts
	std::vector<Point> positions;             // kernel, a frame with a displacement field: its block's output positions
};

void *reducer_start(VipsImage *, void *a, void *)
{
	const auto *r = static_cast<const Reducer *>(a);
	const std::size_t px = static_cast<std::size_t>(r->spec.plan.tile) * r->spec.plan.tile;
	const std::size_t c = r->spec.colour_bands;
	auto seq = std::make_unique<Sequence>();
	if (r->keep_samples)
		seq->samples.resize(px * c * r->frames.size());
	seq->sums.resize(px * c);
	if (r->running.weighted) {
		seq->weighted_sums.resize(px * c);
		seq->weight_sums.resize(px);
	}
	if (r->running.extremes) {
		seq->lows.resize(px * c);
		seq->highs.resize(px * c);
	}
	seq->counts.resize(px);
	if (r->spec.reference_only)
		seq->reference_only.resize(px);
	seq->scratch.resize(r->frames.size());
	if (r->spec.merge != Merge::interpolate) {
		seq->merge_values.resize(px * c);
		seq->merge_weights.resize(px);
	}
	if (r->spec.merge == Merge::drizzle) {
		seq->drop_values.resize(px * c);
		seq->drop_weights.resize(px);
	}
	if (measures_consensus(r->spec)) {
		const std::size_t side = static_cast<std::size_t>(r->spec.plan.tile) + 2 * regression::kApron;
		const std::size_t ext = side * side, n = r->frames.size();
		seq->local.resize(ext * n * regression::local_stride(static_cast<int>(c)));
		seq->gathered.resize(n);
		seq->consensus.resize(ext * c);
		seq->gradient_x.resize(ext * c);
		seq->gradient_y.resize(ext * c);
		seq->consensus_variance.resize(ext * c);
		seq->detail.resize(ext * c);
		if (r->spec.merge == Merge::kernel)
			seq->curvature.resize(ext);
		seq->raw_robustness.resize(ext);
		seq->robust.resize(px * n);
	}
	if (r->spec.merge == Merge::kernel) {
		seq->steering.resize(px);
		seq->moments.resize(px * (5 + 2 * c));
	}
	return seq.release();
}

int reducer_stop(void *seq, void *, void *)
{
	delete static_cast<Sequence *>(seq);
	return 0;
}

// A region of `image` prepared over `r`, released when it goes; empty when libvips failed (its error
// is set).
struct PreparedRegion {
	VipsRegion *region;
	PreparedRegion(const vips::VImage &image, const Rect &r) : region(vips_region_new(image.get_image()))
	{
		const VipsRect rect{r.left, r.top, r.width, r.height};
		if (vips_region_prepare(region, &rect)) {
			g_object_unref(region);
			region = nullptr;
		}
	}
	~PreparedRegion()
	{
		if (region)
			g_object_unref(region);
	}
	PreparedRegion(const PreparedRegion &) = delete;
	PreparedRegion &operator=(const PreparedRegion &) = delete;
};

// Adds one frame's sample v[0..C) at tile pixel `pixel` (the frame's k-th there) to the buffers.
void add_sample(const Reducer &r, const StackFrame &frame, Sequence &s, std::size_t pixel, std::size_t plane,
	const float *v)
{
	const int c = r.spec.colour_bands;
	const std::uint32_t k = s.counts[pixel]++;
	double *sum = &s.sums[pixel * c];
	float *sample = r.keep_samples ? &s.samples[k * plane + pixel * c] : nullptr;
	for (int b = 0; b < c; b++) {
		sum[b] += v[b];
		if (sample)
			sample[b] = v[b];
		if (r.running.weighted)
			s.weighted_sums[pixel * c + b] += frame.weight * v[b];
		if (r.running.extremes)
			kernels::extend_range(s.lows[pixel * c + b], s.highs[pixel * c + b], v[b], k == 0);
	}
	if (r.running.weighted)
		s.weight_sums[pixel] += frame.weight;
}

// Adds the samples frame `frame` covers in `tile` to the sequence's buffers: its warp's pixels.
int accumulate_warped(const Reducer &r, const StackFrame &frame, const Rect &tile, Sequence &s)
{
	const Rect need = tile.intersect(frame.footprint);
	if (need.empty())
		return 0;
	const PreparedRegion prepared(frame.warped, need);
	VipsRegion *region = prepared.region;
	if (!region)
		return -1;
	const int c = r.spec.colour_bands;
	const std::size_t plane = static_cast<std::size_t>(tile.width) * tile.height * c;
	const int stride = frame.warped.bands();
	const FrameMap &map = frame.output_to_frame;
	const bool affine = map.matrix().is_affine(); // once per tile, not per row
	std::array<float, 16> v{};
	const bool masked = r.spec.reference_only && !frame.reference;
	for (int y = need.top; y < need.bottom(); y++) {
		// With a displacement field the span holds every covered pixel, and each is tested.
		const auto [x0, x1] = map.rigid() ? covered_span(map.matrix(), frame.width, frame.height, affine, y, need.left, need.right())
						  : covered_span(map, frame.width, frame.height, y, need.left, need.right());
		const auto *p = reinterpret_cast<const float *>(VIPS_REGION_ADDR(region, x0, y));
		std::size_t pixel = static_cast<std::size_t>(y - tile.top) * tile.width + (x0 - tile.left);
		for (int x = x0; x < x1; x++, p += stride, pixel++) {
			if (masked && s.reference_only[pixel])
				continue;
			if (!map.rigid() && !frame_covers(map, frame.width, frame.height, x, y))
				continue;
			if (!frame.alpha) {
				add_sample(r, frame, s, pixel, plane, p);
				continue;
			}
			const float a = p[c];
			if (!(a >= 0.5f))
				continue;
			for (int b = 0; b < c; b++)
				v[b] = p[b] * (1.0f / a);
			add_sample(r, frame, s, pixel, plane, v.data());
		}
	}
	return 0;
}

// The frame's pixels (clipped to the frame) within `margin` frame pixels of the output area `area`
// mapped back into the frame: the area's corners mapped by the matrix (a projective map keeps the
// area's image inside their bounding box), the box grown by the margin and the field's reach.
Rect frame_block(const StackFrame &frame, const Rect &area, double margin)
{
	margin += frame.output_to_frame.frame_reach();
	double x0 = 1e300, y0 = 1e300, x1 = -1e300, y1 = -1e300;
	for (const Point corner : {Point{area.left - 0.5, area.top - 0.5}, Point{area.right() - 0.5, area.top - 0.5},
		     Point{area.left - 0.5, area.bottom() - 0.5}, Point{area.right() - 0.5, area.bottom() - 0.5}}) {
		const Point q = frame.output_to_frame.matrix().apply(corner);
		x0 = std::min(x0, q.x), x1 = std::max(x1, q.x), y0 = std::min(y0, q.y), y1 = std::max(y1, q.y);
	}
	const double lim = 1e8;
	const int left = static_cast<int>(std::floor(std::clamp(x0 - margin, -lim, lim)));
	const int top = static_cast<int>(std::floor(std::clamp(y0 - margin, -lim, lim)));
	const int right = static_cast<int>(std::ceil(std::clamp(x1 + margin, -lim, lim))) + 1;
	const int bottom = static_cast<int>(std::ceil(std::clamp(y1 + margin, -lim, lim))) + 1;
	return Rect{left, top, right - left, bottom - top}.intersect(Rect{0, 0, frame.width, frame.height});
}

// A frame's drop weight below this fraction of an output pixel gives no sample there (a sliver of a
// drop is a single input pixel seen through a corner, and would count as much as a full one in the
// order statistics); it still counts, by its weight, in the drizzled mean.
constexpr double kMinDropWeight = 0.1;

// Adds the samples of frame `index` in `tile`, drizzled: its own pixels whose drops can reach the tile
// are read and dropped (drizzle.hpp); their sums, times the frame's robustness at each pixel (robust
// drizzle: s.robust, from measure_robustness()), go into the merge's sums; where the frame's drops
// weigh enough, their weighted mean is the frame's sample.
int accumulate_drizzled(const Reducer &r, std::size_t index, const Rect &tile, Sequence &s)
{
	const StackFrame &frame = r.frames[index];
	if (tile.intersect(frame.footprint).empty())
		return 0;
	// The frame pixels whose drops can touch the tile: a pixel more.
	const Rect block = frame_block(frame, tile, 1.0);
	if (block.empty())
		return 0;
	const PreparedRegion prepared(frame.working, block);
	VipsRegion *region = prepared.region;
	if (!region)
		return -1;
	const int c = r.spec.colour_bands;
	const std::size_t px = static_cast<std::size_t>(tile.width) * tile.height;
	std::fill_n(s.drop_values.begin(), px * c, 0.0);
	std::fill_n(s.drop_weights.begin(), px, 0.0);
	drizzle::Block b;
	b.pixels = reinterpret_cast<const float *>(VIPS_REGION_ADDR(region, block.left, block.top));
	b.left = block.left, b.top = block.top, b.width = block.width, b.height = block.height;
	b.stride = VIPS_REGION_LSKIP(region) / sizeof(float);
	b.bands = frame.working.bands();
	b.alpha = frame.alpha;
	if (frame.output_to_frame.rigid()) {
		drizzle::drop_block(b, frame.output_to_frame.matrix_inverse(), r.spec.pixfrac, tile, s.drop_values.data(), s.drop_weights.data());
	} else {
		const FrameMap &map = frame.output_to_frame;
		drizzle::drop_block(b, [&map](double x, double y) { return map.to_output({x, y}); }, r.spec.pixfrac, tile,
			s.drop_values.data(), s.drop_weights.data());
	}
	const std::size_t plane = px * c;
	const bool masked = r.spec.reference_only && !frame.reference;
	const float *robust = measures_consensus(r.spec) ? &s.robust[index * px] : nullptr;
	std::array<float, 16> v{};
	for (std::size_t pixel = 0; pixel < px; pixel++) {
		const double w = s.drop_weights[pixel];
		if (!(w > 0) || (masked && s.reference_only[pixel]))
			continue;
		// Under --mask-reduce the reference alone makes the pixel: it counts whatever the consensus.
		const double rho = !robust || (r.spec.reference_only && frame.reference && s.reference_only[pixel]) ? 1.0 : robust[pixel];
		s.merge_weights[pixel] += rho * w;
		for (int k = 0; k < c; k++) {
			s.merge_values[pixel * c + k] += rho * s.drop_values[pixel * c + k];
			v[k] = static_cast<float>(s.drop_values[pixel * c + k] / w);
		}
		if (w >= kMinDropWeight)
			add_sample(r, frame, s, pixel, plane, v.data());
	}
	return 0;
}

std::size_t area_of(const Rect &a)
{
	return static_cast<std::size_t>(a.width) * a.height;
}

std::size_t index_in(const Rect &a, int x, int y)
{
	return static_cast<std::size_t>(y - a.top) * a.width + (x - a.left);
}

// For a frame with a displacement field: every pixel of `block`'s output position (FrameMap::to_output,
// one inverse per pixel and tile rather than one per kernel visit), in s.positions; null when rigid.
const Point *block_positions(const StackFrame &frame, const Rect &block, Sequence &s)
{
	if (frame.output_to_frame.rigid())
		return nullptr;
	s.positions.resize(area_of(block));
	for (int y = block.top; y < block.bottom(); y++)
		for (int x = block.left; x < block.right(); x++)
			s.positions[index_in(block, x, y)] = frame.output_to_frame.to_output({static_cast<double>(x), static_cast<double>(y)});
	return s.positions.data();
}

// The `kernel` merge (kernel_regression.hpp), in two passes over the frames per tile. The first
// gives every frame's local means (round kernel) over the tile and an apron, of the luminance and of
// the chroma channels; their medians are the consensus, whose luminance's gradients steer the
// kernels and against which each frame's robustness is measured. The second adds every frame's
// samples through the steering kernels.

// Calls visit(px, py, w, dx, dy) for each pixel of frame `index` (within `block`) whose kernel `k` centred on
// output pixel (x, y) gives it a weight w > 0 (its offset from (x, y): dx, dy reference pixels), in row order. Which pixels and weights depends only on
// the pixel, the frame and the kernel (the block holds every pixel the kernel reaches), so a pixel's
// sums do not depend on the tiling. `positions` (for a frame with a displacement field, else null):
// each block pixel's output position, block_positions().
template <typename Visit>
void visit_samples(const Reducer &r, std::size_t index, const Rect &block, int x, int y, const regression::Kernel &k,
	const Point *positions, Visit visit)
{
	const StackFrame &frame = r.frames[index];
	const Matrix3 &m = frame.output_to_frame.matrix();
	const Point u = positions ? frame.output_to_frame.apply({static_cast<double>(x), static_cast<double>(y)})
		: frame.output_to_frame.is_affine()
		? Point{(m(0, 0) * x + m(0, 1) * y + m(0, 2)) / m(2, 2), (m(1, 0) * x + m(1, 1) * y + m(1, 2)) / m(2, 2)}
		: m.apply({static_cast<double>(x), static_cast<double>(y)});
	if (!(std::abs(u.x) < 1e8 && std::abs(u.y) < 1e8))
		return;
	const double reach = k.reach * r.frame_scale[index];
	const int x0 = std::max(block.left, static_cast<int>(std::ceil(u.x - reach)));
	const int x1 = std::min(block.right() - 1, static_cast<int>(std::floor(u.x + reach)));
	const int y0 = std::max(block.top, static_cast<int>(std::ceil(u.y - reach)));
	const int y1 = std::min(block.bottom() - 1, static_cast<int>(std::floor(u.y + reach)));
	const Matrix3 &to_output = frame.output_to_frame.matrix_inverse();
	const double s = 1.0 / r.spec.geometry.scale;
	const bool affine = frame.output_to_frame.is_affine();
	for (int py = y0; py <= y1; py++)
		for (int px = x0; px <= x1; px++) {
			double dx, dy; // the sample's offset from the output pixel, reference pixels
			if (positions) {
				const Point q = positions[index_in(block, px, py)];
				dx = (q.x - x) * s, dy = (q.y - y) * s;
			} else if (affine) {
				const double fx = px - u.x, fy = py - u.y;
				dx = (to_output(0, 0) * fx + to_output(0, 1) * fy) * s;
				dy = (to_output(1, 0) * fx + to_output(1, 1) * fy) * s;
			} else {
				const Point q = to_output.apply({static_cast<double>(px), static_cast<double>(py)});
				dx = (q.x - x) * s, dy = (q.y - y) * s;
			}
			const double w = k.weight(dx, dy);
			if (w > 0)
				visit(px, py, w, dx, dy);
		}
}

// The pixels of frame `index` that kernels reaching `reach` reference pixels, centred on the output
// pixels of `area`, can weigh: empty when the area is beyond its footprint grown by that reach.
Rect kernel_block(const Reducer &r, std::size_t index, const Rect &area, double reach)
{
	const Rect &f = r.frames[index].footprint;
	const int grow = static_cast<int>(std::ceil(reach * r.spec.geometry.scale)) + 1;
	if (Rect{f.left - grow, f.top - grow, f.width + 2 * grow, f.height + 2 * grow}.intersect(area).empty())
		return {};
	return frame_block(r.frames[index], area, reach * r.frame_scale[index] + 1);
}


// Pass 1 for frame `index`: at every pixel of `ext`, its noise factor sqrt(sum w^2) / sum w and, per
// channel, its local mean and the weighted variance of its samples (NaN where its weights there are
// below kMinWeight), into s.local (regression::local_stride).
int local_means(const Reducer &r, std::size_t index, const Rect &ext, Sequence &s)
{
	const int c = r.spec.colour_bands, stride = regression::local_stride(c);
	float *local = &s.local[index * area_of(ext) * static_cast<std::size_t>(stride)];
	std::fill_n(local, area_of(ext) * static_cast<std::size_t>(stride), std::numeric_limits<float>::quiet_NaN());
	const regression::Kernel k = regression::round_kernel(regression::kConsensusSd);
	const StackFrame &frame = r.frames[index];
	const Rect block = kernel_block(r, index, ext, k.reach);
	if (block.empty())
		return 0;
	const PreparedRegion prepared(frame.working, block);
	if (!prepared.region)
		return -1;
	const Point *positions = block_positions(frame, block, s);
	// The block's channels (regression.hpp): the luminance, the mean of the colour bands, then the
	// chroma; NaN where alpha says the pixel is not there.
	const std::size_t pixels = area_of(block);
	s.channels.resize(pixels * static_cast<std::size_t>(c));
	std::array<float, 16 * 16> weights{}; // [channel][band], the chroma's
	for (int ch = 1; ch < c; ch++)
		for (int b = 0; b < c; b++)
			weights[static_cast<std::size_t>(ch * c + b)] = static_cast<float>(chroma_weight(ch, b, c));
	std::array<float, 16> values{}; // one pixel's bands, alpha undone
	for (int y = block.top; y < block.bottom(); y++) {
		const auto *p = reinterpret_cast<const float *>(VIPS_REGION_ADDR(prepared.region, block.left, y));
		const std::size_t row = index_in(block, block.left, y);
		for (int x = 0; x < block.width; x++, p += frame.working.bands()) {
			float sum = 0;
			for (int b = 0; b < c; b++)
				sum += p[b];
			const float a = frame.alpha ? p[c] : 1.0f;
			float *l = &s.channels[(row + static_cast<std::size_t>(x)) * static_cast<std::size_t>(c)];
			if (!(a >= 0.5f)) {
				std::fill_n(l, c, std::numeric_limits<float>::quiet_NaN());
				continue;
			}
			l[0] = sum / (static_cast<float>(c) * a);
			for (int b = 0; b < c; b++)
				values[static_cast<std::size_t>(b)] = p[b] / a;
			for (int ch = 1; ch < c; ch++) {
				float chroma = 0;
				for (int b = 0; b < c; b++)
					chroma += weights[static_cast<std::size_t>(ch * c + b)] * values[static_cast<std::size_t>(b)];
				l[ch] = chroma;
			}
		}
	}
	// The sums, with the channel count known at compile time for one and three bands (C; 0: c).
	auto accumulate = [&](auto bands) {
		constexpr int C = decltype(bands)::value;
		const int n = C ? C : c;
		std::array<double, 16> swl{}, swll{};
		for (int y = ext.top; y < ext.bottom(); y++)
			for (int x = ext.left; x < ext.right(); x++) {
				double sw = 0, sw2 = 0;
				std::fill_n(swl.begin(), n, 0.0);
				std::fill_n(swll.begin(), n, 0.0);
				visit_samples(r, index, block, x, y, k, positions, [&](int px, int py, double w, double, double) {
					const float *l = &s.channels[index_in(block, px, py) * static_cast<std::size_t>(n)];
					if (std::isnan(l[0]))
						return;
					sw += w, sw2 += w * w;
					for (int ch = 0; ch < n; ch++) {
						const double v = l[ch];
						swl[static_cast<std::size_t>(ch)] += w * v, swll[static_cast<std::size_t>(ch)] += w * v * v;
					}
				});
				if (sw >= regression::kMinWeight) {
					float *o = &local[index_in(ext, x, y) * static_cast<std::size_t>(stride)];
					o[regression::kNoiseFactorSlot] = static_cast<float>(std::sqrt(sw2) / sw);
					for (int ch = 0; ch < n; ch++) {
						const double mean = swl[static_cast<std::size_t>(ch)] / sw;
						o[regression::mean_slot(ch)] = static_cast<float>(mean);
						o[regression::variance_slot(ch)] = static_cast<float>(std::max(0.0, swll[static_cast<std::size_t>(ch)] / sw - mean * mean));
					}
				}
			}
	};
	if (c == 1)
		accumulate(std::integral_constant<int, 1>{});
	else if (c == 3)
		accumulate(std::integral_constant<int, 3>{});
	else
		accumulate(std::integral_constant<int, 0>{});
	return 0;
}

// Channel `ch`'s consensus at pixel i of `ext` (the median of the frames' local means), the variance
// of that median (pi/2 x the frames' mean variance over their count; noise^2 units) and the detail
// (the median of the frames' local variances less the noise's, as a standard deviation), in the
// channel's planes; from the m frames' local statistics with a mean there (s.gathered: where each
// starts in s.local, in frame order), the sum of their squared noise factors, and which of them is
// the reference frame's (m or more if none).
//
// Where the frames split evenly (an even count whose two middle local means lie further apart than
// the robustness tolerates, regression::even_split), the median would be the midpoint of two states
// that no frame shows: every frame would be equally far from it and the merge a blend of both, a
// ghost at half strength (a thing present in exactly half the frames, or half a burst from another
// viewpoint). There the consensus is the median of the half the reference frame's local mean lies
// in. With fewer than half the frames the median already stays with the majority.
void channel_consensus(const Reducer &r, Sequence &s, std::size_t area, std::size_t i, std::uint32_t m, double factors, std::uint32_t ref, int ch)
{
	const std::size_t plane = static_cast<std::size_t>(ch) * area;
	const std::size_t at_mean = static_cast<std::size_t>(regression::mean_slot(ch)), at_variance = static_cast<std::size_t>(regression::variance_slot(ch));
	constexpr float nan = std::numeric_limits<float>::quiet_NaN();
	const double sigma = r.spec.regression.channel_noise(ch), noise2 = sigma * sigma;
	for (std::uint32_t k = 0; k < m; k++)
		s.scratch[k] = s.gathered[k][at_variance];
	const double detail = m ? std::sqrt(std::max(0.0, kernels::median_inplace(s.scratch.data(), m) - noise2)) : 0.0;
	s.detail[plane + i] = static_cast<float>(detail);
	if (m == 0) {
		s.consensus[plane + i] = s.consensus_variance[plane + i] = nan;
		return;
	}
	for (std::uint32_t k = 0; k < m; k++)
		s.scratch[k] = s.gathered[k][at_mean];
	const float reference_mean = ref < m ? s.gathered[ref][at_mean] : nan;
	const double spread = std::sqrt(2 * noise2 * factors / m + regression::kAliasing * regression::kAliasing * detail * detail);
	std::uint32_t lo = 0, hi = m; // the sorted local means the consensus is the median of
	if (m % 2 == 0 && !std::isnan(reference_mean)) {
		kernels::sort_samples(s.scratch.data(), m);
		if (regression::even_split(s.scratch.data(), m, spread, r.spec.regression.robustness))
			(reference_mean >= 0.5f * (s.scratch[m / 2 - 1] + s.scratch[m / 2]) ? lo : hi) = m / 2;
		s.consensus[plane + i] = static_cast<float>(kernels::detail::median_of_sorted(s.scratch.data(), lo, hi));
	} else {
		s.consensus[plane + i] = kernels::median_inplace(s.scratch.data(), m);
	}
	s.consensus_variance[plane + i] = static_cast<float>(1.5707963 * factors / m / (hi - lo));
}

// The consensus of every channel (channel_consensus) at every pixel of `ext`, each pixel's frames
// found once for all channels (their statistics stay in the cache for the channels); then each channel's gradient per reference pixel (central
// differences, one-sided at the edge of what is known).
void build_consensus(const Reducer &r, const Rect &ext, Sequence &s)
{
	constexpr float nan = std::numeric_limits<float>::quiet_NaN();
	const double scale = r.spec.geometry.scale;
	const std::size_t area = area_of(ext), n = r.frames.size(), stride = static_cast<std::size_t>(regression::local_stride(r.spec.colour_bands));
	const std::size_t reference = r.reference ? static_cast<std::size_t>(r.reference - r.frames.data()) : n;
	for (std::size_t i = 0; i < area; i++) {
		std::uint32_t m = 0, ref = std::numeric_limits<std::uint32_t>::max();
		double factors = 0;
		for (std::size_t f = 0; f < n; f++) {
			const float *l = &s.local[(f * area + i) * stride];
			if (std::isnan(l[0]))
				continue;
			if (f == reference)
				ref = m;
			s.gathered[m] = l;
			factors += static_cast<double>(l[regression::kNoiseFactorSlot]) * l[regression::kNoiseFactorSlot];
			m++;
		}
		for (int ch = 0; ch < r.spec.colour_bands; ch++)
			channel_consensus(r, s, area, i, m, factors, ref, ch);
	}
	auto derivative = [&](float before, float centre, float after) {
		if (std::isnan(centre))
			return nan;
		if (!std::isnan(before) && !std::isnan(after))
			return static_cast<float>(0.5 * (after - before) * scale);
		if (!std::isnan(after))
			return static_cast<float>((after - centre) * scale);
		if (!std::isnan(before))
			return static_cast<float>((centre - before) * scale);
		return 0.0f;
	};
	for (int ch = 0; ch < r.spec.colour_bands; ch++) {
		const std::size_t base = static_cast<std::size_t>(ch) * area;
		const float *consensus = &s.consensus[base];
		auto at = [&](int x, int y) { return ext.intersect(Rect{x, y, 1, 1}).empty() ? nan : consensus[index_in(ext, x, y)]; };
		for (int y = ext.top; y < ext.bottom(); y++)
			for (int x = ext.left; x < ext.right(); x++) {
				const std::size_t i = index_in(ext, x, y);
				s.gradient_x[base + i] = derivative(at(x - 1, y), consensus[i], at(x + 1, y));
				s.gradient_y[base + i] = derivative(at(x, y - 1), consensus[i], at(x, y + 1));
			}
	}
}

// The consensus's curvature energy (regression::curvature_energy) at every pixel of `area` (within
// `ext`), NaN where it or a neighbour is unknown: each once, for the windows of every tile pixel.
void build_curvature(const Rect &area, const Rect &ext, Sequence &s)
{
	const auto c = [&](int i, int j) {
		return ext.intersect(Rect{i, j, 1, 1}).empty() ? std::numeric_limits<double>::quiet_NaN()
							       : static_cast<double>(s.consensus[index_in(ext, i, j)]);
	};
	for (int j = area.top; j < area.bottom(); j++)
		for (int i = area.left; i < area.right(); i++)
			s.curvature[index_in(ext, i, j)] = static_cast<float>(regression::curvature_energy(c(i, j), c(i - 1, j), c(i + 1, j),
				c(i, j - 1), c(i, j + 1), c(i - 1, j - 1), c(i + 1, j - 1), c(i - 1, j + 1), c(i + 1, j + 1)));
}

// The steering kernel's detail at (x, y): regression::curvature_detail over the window, where the
// curvature is known (0, flat, where nowhere).
double curvature_detail(const Reducer &r, const Rect &ext, const Sequence &s, int x, int y)
{
	double energy = 0, variance = 0;
	int m = 0;
	for (int j = y - regression::kCurvatureRadius; j <= y + regression::kCurvatureRadius; j++)
		for (int i = x - regression::kCurvatureRadius; i <= x + regression::kCurvatureRadius; i++) {
			if (ext.intersect(Rect{i, j, 1, 1}).empty() || std::isnan(s.curvature[index_in(ext, i, j)]))
				continue;
			energy += s.curvature[index_in(ext, i, j)], variance += s.consensus_variance[index_in(ext, i, j)], m++;
		}
	return m ? regression::curvature_detail(energy / m, variance / m, r.spec.regression.noise, r.spec.geometry.scale) : 0.0;
}

// Each tile pixel's steering kernel, from the structure tensor: the mean of the gradient products
// over its 3x3 neighbourhood (what of it is known), and the curvature's detail.
void build_steering(const Reducer &r, const Rect &tile, const Rect &ext, Sequence &s)
{
	const int a = regression::kCurvatureRadius;
	build_curvature(Rect{tile.left - a, tile.top - a, tile.width + 2 * a, tile.height + 2 * a}.intersect(ext), ext, s);
	for (int y = tile.top; y < tile.bottom(); y++)
		for (int x = tile.left; x < tile.right(); x++) {
			double gxx = 0, gxy = 0, gyy = 0;
			int m = 0;
			for (int j = std::max(y - 1, ext.top); j <= std::min(y + 1, ext.bottom() - 1); j++)
				for (int i = std::max(x - 1, ext.left); i <= std::min(x + 1, ext.right() - 1); i++) {
					const std::size_t e = index_in(ext, i, j);
					if (std::isnan(s.gradient_x[e]))
						continue;
					gxx += static_cast<double>(s.gradient_x[e]) * s.gradient_x[e];
					gxy += static_cast<double>(s.gradient_x[e]) * s.gradient_y[e];
					gyy += static_cast<double>(s.gradient_y[e]) * s.gradient_y[e];
					m++;
				}
			const double detail = curvature_detail(r, ext, s, x, y);
			s.steering[index_in(tile, x, y)] = m ? regression::steer(gxx / m, gxy / m, gyy / m, detail, r.spec.regression)
							     : regression::steer(0, 0, 0, detail, r.spec.regression);
		}
}

// Frame `index`'s robustness at every tile pixel: at each pixel of the tile grown by kMinRadius, the
// robustness of its local means' distance from the consensus in expected spreads (its noise, the
// consensus's, kMisalignment px of the local gradient and kAliasing of the detail), in the channel
// where it is furthest; then the minimum over the window around each tile pixel (where the frame has
// a local mean). 0 where the frame has none.
void frame_robustness(const Reducer &r, std::size_t index, const Rect &tile, const Rect &ext, Sequence &s)
{
	std::vector<float> &raw = s.raw_robustness;
	const RegressionOptions &o = r.spec.regression;
	const int c = r.spec.colour_bands;
	const std::size_t area = area_of(ext), stride = static_cast<std::size_t>(regression::local_stride(c));
	const float *local = &s.local[index * area * stride];
	const Rect around = Rect{tile.left - regression::kMinRadius, tile.top - regression::kMinRadius,
		tile.width + 2 * regression::kMinRadius, tile.height + 2 * regression::kMinRadius}.intersect(ext);
	for (int y = around.top; y < around.bottom(); y++)
		for (int x = around.left; x < around.right(); x++) {
			const std::size_t e = index_in(ext, x, y);
			const float *l = &local[e * stride];
			float &out = raw[index_in(around, x, y)];
			if (std::isnan(l[0])) {
				out = std::numeric_limits<float>::quiet_NaN();
				continue;
			}
			const double factor2 = static_cast<double>(l[regression::kNoiseFactorSlot]) * l[regression::kNoiseFactorSlot];
			double z = 0;
			for (int ch = 0; ch < c; ch++) {
				const std::size_t p = static_cast<std::size_t>(ch) * area + e;
				const double sigma = o.channel_noise(ch);
				const double g2 = static_cast<double>(s.gradient_x[p]) * s.gradient_x[p] + static_cast<double>(s.gradient_y[p]) * s.gradient_y[p];
				const double aliasing = regression::kAliasing * s.detail[p];
				const double spread = std::sqrt(sigma * sigma * (factor2 + s.consensus_variance[p]) +
					regression::kMisalignment * regression::kMisalignment * g2 + aliasing * aliasing);
				if (spread > 0)
					z = std::max(z, std::abs(l[regression::mean_slot(ch)] - s.consensus[p]) / spread);
			}
			out = static_cast<float>(regression::robustness(z, o.robustness));
		}
	// The window's minimum in two passes (rows, then columns of the row minima), NaN skipped.
	auto least_of = [](float least, float v) { return !std::isnan(v) && !(v >= least) ? v : least; };
	std::vector<float> &rows = s.row_minima;
	rows.resize(area_of(around));
	for (int y = around.top; y < around.bottom(); y++)
		for (int x = tile.left; x < tile.right(); x++) {
			float least = std::numeric_limits<float>::quiet_NaN();
			for (int i = std::max(x - regression::kMinRadius, around.left); i <= std::min(x + regression::kMinRadius, around.right() - 1); i++)
				least = least_of(least, raw[index_in(around, i, y)]);
			rows[index_in(around, x, y)] = least;
		}
	float *robust = &s.robust[index * area_of(tile)];
	for (int y = tile.top; y < tile.bottom(); y++)
		for (int x = tile.left; x < tile.right(); x++) {
			float least = std::numeric_limits<float>::quiet_NaN();
			if (!std::isnan(raw[index_in(around, x, y)]))
				for (int j = std::max(y - regression::kMinRadius, around.top); j <= std::min(y + regression::kMinRadius, around.bottom() - 1); j++)
					least = least_of(least, rows[index_in(around, x, j)]);
			robust[index_in(tile, x, y)] = std::isnan(least) ? 0.0f : least;
		}
}

// Pass 2 for frame `index`: its samples through each tile pixel's steering kernel. Its weighted sum
// and weight, times its robustness there, go into the merge's sums; where its weights reach
// kMinWeight, their weighted mean is the frame's sample for the other statistics.
int kernel_samples(const Reducer &r, std::size_t index, const Rect &tile, Sequence &s)
{
	const StackFrame &frame = r.frames[index];
	const Rect block = kernel_block(r, index, tile, r.kernel_reach);
	if (block.empty())
		return 0;
	const PreparedRegion prepared(frame.working, block);
	if (!prepared.region)
		return -1;
	const Point *positions = block_positions(frame, block, s);
	const int c = r.spec.colour_bands;
	const std::size_t plane = area_of(tile) * c;
	const float *robust = &s.robust[index * area_of(tile)];
	const bool masked = r.spec.reference_only && !frame.reference;
	const int nm = 5 + 2 * c;
	std::array<double, 16> sums{};
	std::array<double, 5 + 2 * 16> m{};
	std::array<float, 16> v{};
	for (int y = tile.top; y < tile.bottom(); y++)
		for (int x = tile.left; x < tile.right(); x++) {
			const std::size_t pixel = index_in(tile, x, y);
			if (masked && s.reference_only[pixel])
				continue;
			double sw = 0;
			std::fill_n(sums.begin(), c, 0.0);
			std::fill_n(m.begin(), nm, 0.0);
			visit_samples(r, index, block, x, y, s.steering[pixel], positions, [&](int px, int py, double w, double dx, double dy) {
				const auto *p = reinterpret_cast<const float *>(VIPS_REGION_ADDR(prepared.region, px, py));
				const float a = frame.alpha ? p[c] : 1.0f;
				if (!(a >= 0.5f))
					return;
				const double wx = w * dx, wy = w * dy;
				m[0] += wx, m[1] += wy, m[2] += wx * dx, m[3] += wx * dy, m[4] += wy * dy;
				for (int b = 0; b < c; b++) {
					const double value = p[b] / a;
					sums[b] += w * value;
					m[5 + 2 * b] += wx * value;
					m[6 + 2 * b] += wy * value;
				}
				sw += w;
			});
			if (!(sw > 0))
				continue;
			// Under --mask-reduce the reference alone makes the pixel: it counts whatever the consensus.
			const double rho = r.spec.reference_only && frame.reference && s.reference_only[pixel] ? 1.0 : robust[pixel];
			s.merge_weights[pixel] += rho * sw;
			double *moments = &s.moments[pixel * nm];
			for (int k = 0; k < nm; k++)
				moments[k] += rho * m[k];
			for (int b = 0; b < c; b++) {
				s.merge_values[pixel * c + b] += rho * sums[b];
				v[b] = static_cast<float>(sums[b] / sw);
			}
			if (sw >= regression::kMinWeight)
				add_sample(r, frame, s, pixel, plane, v.data());
		}
	return 0;
}

// The tile grown by the apron the consensus needs, within the output.
Rect consensus_area(const Reducer &r, const Rect &tile)
{
	const int a = regression::kApron;
	return Rect{tile.left - a, tile.top - a, tile.width + 2 * a, tile.height + 2 * a}.intersect(r.spec.geometry.bounds());
}

// The first pass of the kernel merge and of robust drizzle: every frame's local mean over `ext` (the
// tile and its apron), their consensus, and each frame's robustness at every tile pixel (s.robust).
int measure_robustness(const Reducer &r, const Rect &tile, const Rect &ext, Sequence &s)
{
	for (std::size_t i = 0; i < r.frames.size(); i++) {
		if (cancel_requested()) {
			vips_error("superstack", "%s", "interrupted");
			return -1;
		}
		if (local_means(r, i, ext, s))
			return -1;
	}
	build_consensus(r, ext, s);
	for (std::size_t i = 0; i < r.frames.size(); i++)
		frame_robustness(r, i, tile, ext, s);
	return 0;
}

// The kernel merge of one tile (the merge's sums and the samples of every frame).
int merge_by_kernel(const Reducer &r, const Rect &tile, Sequence &s)
{
	const Rect ext = consensus_area(r, tile);
	if (measure_robustness(r, tile, ext, s))
		return -1;
	build_steering(r, tile, ext, s);
	for (std::size_t i = 0; i < r.frames.size(); i++) {
		if (cancel_requested()) {
			vips_error("superstack", "%s", "interrupted");
			return -1;
		}
		if (kernel_samples(r, i, tile, s))
			return -1;
	}
	return 0;
}

// The kernel merge's value of band b at a tile pixel: the robust local linear fit, or where every
// frame's robustness there is 0, the mean of the frames' samples.
double kernel_mean(const Reducer &r, const Sequence &s, std::size_t pixel, int b)
{
	const int c = r.spec.colour_bands;
	const double s0 = s.merge_weights[pixel];
	if (!(s0 > 0))
		return kernels::mean_of(s.sums[pixel * c + b], s.counts[pixel]);
	const double *m = &s.moments[pixel * (5 + 2 * c)];
	return regression::local_linear(s0, m[0], m[1], m[2], m[3], m[4], s.merge_values[pixel * c + b], m[5 + 2 * b], m[6 + 2 * b]);
}

// The statistics of one pixel: values into o[statistic * C + band], each rejecting statistic's
// reject count (the most over bands) into rejects[i]. Order statistics share one gather of each band's
// samples into the scratch array (the first sorts it, the others find it sorted), and the two
// clippings one kernels::SortedSamples (the sums their passes read).
void reduce_pixel(const Reducer &r, Sequence &s, std::size_t pixel, std::size_t plane, float *o, float *rejects)
{
	const int c = r.spec.colour_bands;
	const ClipOptions &clip = r.spec.clip;
	const std::uint32_t count = s.counts[pixel];
	std::fill_n(rejects, r.rejecting, 0.0f);
	for (int b = 0; b < c; b++) {
		const std::size_t at = pixel * c + b;
		if (r.keep_samples) {
			const float *column = &s.samples[at];
			for (std::uint32_t k = 0; k < count; k++)
				s.scratch[k] = column[k * plane];
		}
		float *v = s.scratch.data();
		bool sorted = false; // s.sorted holds this band's samples: made by the first clipping
		const auto sorted_samples = [&]() -> const kernels::SortedSamples & {
			if (!sorted)
				s.sorted.assign(v, count);
			sorted = true;
			return s.sorted;
		};
		int rejecting = 0;
		for (std::size_t i = 0; i < r.spec.statistics.size(); i++) {
			kernels::Estimate e;
			switch (r.spec.statistics[i]) {
			case Statistic::mean:
				// Drizzle: the (robust) drizzled mean. Kernel: the robust kernel regression. Where every
				// frame's robustness is 0, the mean of the frames' samples.
				if (r.spec.merge == Merge::kernel)
					e.value = static_cast<float>(kernel_mean(r, s, pixel, b));
				else
					e.value = static_cast<float>(r.spec.merge == Merge::interpolate ? kernels::mean_of(s.sums[at], count)
							: kernels::weighted_mean_of(s.merge_values[at], s.merge_weights[pixel], s.sums[at], count));
				break;
			case Statistic::weighted:
				e.value = static_cast<float>(kernels::weighted_mean_of(s.weighted_sums[at], s.weight_sums[pixel], s.sums[at], count));
				break;
			case Statistic::min: e.value = count ? s.lows[at] : 0.0f; break;
			case Statistic::max: e.value = count ? s.highs[at] : 0.0f; break;
			case Statistic::median: e.value = kernels::median_inplace(v, count); break;
			case Statistic::sigma_clip: e = kernels::sigma_clip(sorted_samples(), clip.kappa, clip.iterations); break;
			case Statistic::winsorized: e = kernels::winsorized_clip(sorted_samples(), clip.kappa, clip.iterations); break;
			case Statistic::trimmed: e = kernels::trimmed_mean_inplace(v, count, clip.trim); break;
			}
			o[i * c + b] = e.value;
			if (r.rejecting && rejects_samples(r.spec.statistics[i])) {
				rejects[rejecting] = std::max(rejects[rejecting], static_cast<float>(e.rejected));
				rejecting++;
			}
		}
	}
}

void write_tile(const Reducer &r, const Rect &tile, Sequence &s, VipsRegion *out)
{
	const int c = r.spec.colour_bands;
	const std::size_t plane = static_cast<std::size_t>(tile.width) * tile.height * c;
	const std::size_t values = r.spec.statistics.size() * c;
	for (int y = tile.top; y < tile.bottom(); y++) {
		auto *q = reinterpret_cast<float *>(VIPS_REGION_ADDR(out, tile.left, y));
		for (int x = tile.left; x < tile.right(); x++, q += r.out_bands) {
			const std::size_t pixel = static_cast<std::size_t>(y - tile.top) * tile.width + (x - tile.left);
			float *after = q + values;
			if (r.spec.coverage)
				*after++ = static_cast<float>(s.counts[pixel]);
			reduce_pixel(r, s, pixel, plane, q, after);
			if (r.spec.weights && r.spec.merge != Merge::interpolate)
				after[r.rejecting] = static_cast<float>(s.merge_weights[pixel]);
			// Drizzle or kernel with too few frames for the scale: no frame's weights are enough here
			// for a sample, yet some reach it: every statistic takes the merged mean.
			if (r.spec.merge != Merge::interpolate && s.counts[pixel] == 0 && s.merge_weights[pixel] > 0)
				for (std::size_t i = 0; i < r.spec.statistics.size(); i++)
					for (int b = 0; b < c; b++)
						q[i * c + b] = static_cast<float>(s.merge_values[pixel * c + b] / s.merge_weights[pixel]);
		}
	}
}

// Marks the tile's pixels where only the reference counts: the mask is set and the reference covers them.
int mark_reference_only(const Reducer &r, const Rect &tile, Sequence &s)
{
	const PreparedRegion prepared(*r.spec.reference_only, tile);
	VipsRegion *region = prepared.region;
	if (!region)
		return -1;
	const StackFrame &ref = *r.reference;
	for (int y = tile.top; y < tile.bottom(); y++) {
		const auto *m = reinterpret_cast<const std::uint8_t *>(VIPS_REGION_ADDR(region, tile.left, y));
		std::uint8_t *mark = &s.reference_only[static_cast<std::size_t>(y - tile.top) * tile.width];
		for (int x = 0; x < tile.width; x++)
			mark[x] = m[x] != 0 && frame_covers(ref.output_to_frame, ref.width, ref.height, tile.left + x, y);
	}
	return 0;
}

int reducer_generate(VipsRegion *out, void *seq, void *a, void *, gboolean *)
{
	const auto *r = static_cast<const Reducer *>(a);
	auto *s = static_cast<Sequence *>(seq);
	const Rect valid{out->valid.left, out->valid.top, out->valid.width, out->valid.height};
	if (r->spec.computed_pixels)
		*r->spec.computed_pixels += static_cast<std::uint64_t>(valid.width) * valid.height;
	for (const Rect &tile : r->spec.plan.tiles(valid)) {
		const std::size_t px = static_cast<std::size_t>(tile.width) * tile.height;
		std::fill_n(s->counts.begin(), px, 0u);
		std::fill_n(s->sums.begin(), px * r->spec.colour_bands, 0.0);
		if (r->running.weighted) {
			std::fill_n(s->weighted_sums.begin(), px * r->spec.colour_bands, 0.0);
			std::fill_n(s->weight_sums.begin(), px, 0.0);
		}
		if (r->spec.merge == Merge::kernel)
			std::fill_n(s->moments.begin(), px * (5 + 2 * r->spec.colour_bands), 0.0);
		if (r->spec.merge != Merge::interpolate) {
			std::fill_n(s->merge_values.begin(), px * r->spec.colour_bands, 0.0);
			std::fill_n(s->merge_weights.begin(), px, 0.0);
		}
		if (r->spec.reference_only && mark_reference_only(*r, tile, *s))
			return -1;
		if (r->spec.merge == Merge::kernel) {
			if (merge_by_kernel(*r, tile, *s))
				return -1;
			write_tile(*r, tile, *s, out);
			continue;
		}
		if (r->spec.merge == Merge::drizzle && measures_consensus(r->spec) && measure_robustness(*r, tile, consensus_area(*r, tile), *s))
			return -1;
		for (std::size_t i = 0; i < r->frames.size(); i++) {
			if (cancel_requested()) {
				vips_error("superstack", "%s", "interrupted");
				return -1;
			}
			const int failed = r->spec.merge == Merge::drizzle ? accumulate_drizzled(*r, i, tile, *s)
									  : accumulate_warped(*r, r->frames[i], tile, *s);
			if (failed)
				return -1;
		}
		write_tile(*r, tile, *s, out);
	}
	return 0;
}

// The most frame pixels one reference pixel spans, anywhere on the output: output_to_frame's largest
// stretch (at the output's corners and centre) times the scale, and the field's stretch.
double frame_pixels_per_reference_pixel(const FrameMap &m, const OutputGeometry &g)
{
	const double w = g.width - 1.0, h = g.height - 1.0;
	return largest_stretch(m.matrix(), {{0, 0}, {w, 0}, {0, h}, {w, h}, {0.5 * g.width, 0.5 * g.height}}) * g.scale * m.stretch();
}

void delete_reducer(gpointer data)
{
	delete static_cast<Reducer *>(data);
}

} // namespace

vips::VImage reduce_stack(std::vector<StackFrame> frames, const ReduceSpec &spec)
{
	if (frames.empty())
		throw_error(ExitCode::bad_input, "no frames to reduce");
	if (spec.statistics.empty() && !spec.coverage)
		throw_error(ExitCode::usage, "nothing to compute");
	if (spec.plan.tile < kMinTile)
		throw_error(ExitCode::processing, "reducer has no memory plan");
	check_clip_options(spec.clip);
	auto reducer = std::make_unique<Reducer>();
	reducer->frames = std::move(frames);
	reducer->spec = spec;
	for (Statistic s : spec.statistics)
		reducer->keep_samples = reducer->keep_samples || needs_all_samples(s);
	reducer->running = Running(spec.statistics);
	reducer->out_bands = reduced_bands(spec);
	if (spec.rejects)
		reducer->rejecting = static_cast<int>(std::count_if(spec.statistics.begin(), spec.statistics.end(), rejects_samples));
	for (const auto &f : reducer->frames)
		if (!(f.weight >= 0) || !std::isfinite(f.weight))
			throw_error(ExitCode::processing, "reducer: a frame weight is not a finite number >= 0");
	const bool drizzled = spec.merge != Merge::interpolate; // reads the frames' own pixels
	if (spec.merge == Merge::drizzle && !(spec.pixfrac > 0 && spec.pixfrac <= 1))
		throw_error(ExitCode::usage, "--pixfrac must be in (0, 1] (got {})", spec.pixfrac);
	if (measures_consensus(spec))
		check_regression_options(spec.regression);
	if (spec.merge == Merge::kernel) {
		const RegressionOptions &o = spec.regression;
		reducer->kernel_reach = 3 * o.detail * std::max({1.0, o.stretch, o.denoise});
	}
	for (const auto &f : reducer->frames) {
		const vips::VImage &pixels = drizzled ? f.working : f.warped;
		if (pixels.format() != VIPS_FORMAT_FLOAT || pixels.bands() != spec.colour_bands + (f.alpha ? 1 : 0))
			throw_error(ExitCode::processing, "reducer: a frame is not in the working layout");
		reducer->frame_scale.push_back(frame_pixels_per_reference_pixel(f.output_to_frame, spec.geometry));
	}

	for (const auto &f : reducer->frames)
		if (f.reference)
			reducer->reference = &f;
	if (spec.reference_only) {
		const vips::VImage &m = *spec.reference_only;
		if (!reducer->reference || m.bands() != 1 || m.format() != VIPS_FORMAT_UCHAR || m.width() != spec.geometry.width ||
			m.height() != spec.geometry.height)
			throw_error(ExitCode::processing, "reducer: the reference-only mask needs the reference frame and the output's grid");
	}

	std::vector<VipsImage *> inputs;
	for (const auto &f : reducer->frames)
		inputs.push_back((drizzled ? f.working : f.warped).get_image());
	if (spec.reference_only)
		inputs.push_back(spec.reference_only->get_image());
	inputs.push_back(nullptr);

	VipsImage *out = vips_image_new();
	vips_image_init_fields(out, spec.geometry.width, spec.geometry.height, reducer->out_bands, VIPS_FORMAT_FLOAT,
		VIPS_CODING_NONE, VIPS_INTERPRETATION_MULTIBAND, 1.0, 1.0);
	if (vips_image_pipeline_array(out, VIPS_DEMAND_STYLE_SMALLTILE, inputs.data())) {
		g_object_unref(out);
		vips_check(-1, ExitCode::processing, "reducer");
	}
	// The pipeline copied the first frame's fields; the output's are its own.
	out->Xsize = spec.geometry.width;
	out->Ysize = spec.geometry.height;
	out->Bands = reducer->out_bands;
	out->BandFmt = VIPS_FORMAT_FLOAT;
	out->Type = VIPS_INTERPRETATION_MULTIBAND;
	Reducer *state = reducer.release();
	g_object_set_data_full(G_OBJECT(out), "superstack-reducer", state, delete_reducer);
	if (vips_image_generate(out, reducer_start, reducer_generate, reducer_stop, state, nullptr)) {
		g_object_unref(out);
		vips_check(-1, ExitCode::processing, "reducer");
	}
	return vips::VImage(out, vips::STEAL);
}

} // namespace superstack
