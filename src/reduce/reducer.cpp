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
#include "kernels.hpp"
#include "superstack/cancel.hpp"
#include "superstack/error.hpp"
#include "superstack/warp.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <iterator>
#include <memory>

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
	throw_error(ExitCode::usage, "--merge must be interpolate or drizzle (got '{}')", name);
}

std::string_view merge_name(Merge merge)
{
	return merge == Merge::drizzle ? "drizzle" : "interpolate";
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
	if (spec.rejects && rejecting > 0)
		groups.push_back({"rejects", band, static_cast<int>(rejecting), true});
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
	request.running_bytes_per_pixel = Running(spec.statistics).bytes_per_pixel(spec.colour_bands) +
		(spec.merge == Merge::drizzle ? 2 * 8 * (spec.colour_bands + 1) : 0) + // a frame's drops, and their sums
		(spec.reference_only ? 1 : 0);
	request.reduced_bands = reduced_bands(spec);
}

namespace {

struct Reducer {
	std::vector<StackFrame> frames;
	std::vector<Matrix3> frame_to_output; // for drizzle: each frame's pixels onto the output grid
	ReduceSpec spec;
	bool keep_samples = false;
	Running running{{}};
	int out_bands = 0;
	int rejecting = 0; // statistics with a band in the reject map (when spec.rejects)
	const StackFrame *reference = nullptr; // with spec.reference_only
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
	// Drizzle: one frame's drops ([pixel][band] value x overlap, [pixel] overlap), and over all frames
	// the same sums, whose ratio is the drizzled mean.
	std::vector<double> drop_values, drop_weights, drizzle_values, drizzle_weights;
	std::vector<std::uint8_t> reference_only; // [pixel], with spec.reference_only: 1 where only the reference counts
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
	if (r->spec.merge == Merge::drizzle) {
		seq->drop_values.resize(px * c);
		seq->drop_weights.resize(px);
		seq->drizzle_values.resize(px * c);
		seq->drizzle_weights.resize(px);
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
	const bool affine = frame.output_to_frame.is_affine(); // once per tile, not per row
	std::array<float, 16> v{};
	const bool masked = r.spec.reference_only && !frame.reference;
	for (int y = need.top; y < need.bottom(); y++) {
		const auto [x0, x1] = covered_span(frame.output_to_frame, frame.width, frame.height, affine, y, need.left, need.right());
		const auto *p = reinterpret_cast<const float *>(VIPS_REGION_ADDR(region, x0, y));
		std::size_t pixel = static_cast<std::size_t>(y - tile.top) * tile.width + (x0 - tile.left);
		for (int x = x0; x < x1; x++, p += stride, pixel++) {
			if (masked && s.reference_only[pixel])
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

// A frame's drop weight below this fraction of an output pixel gives no sample there (a sliver of a
// drop is a single input pixel seen through a corner, and would count as much as a full one in the
// order statistics); it still counts, by its weight, in the drizzled mean.
constexpr double kMinDropWeight = 0.1;

// Adds the samples of frame `index` in `tile`, drizzled: its own pixels whose drops can reach the tile
// are read and dropped (drizzle.hpp); where the frame's drops weigh enough, their weighted mean is the
// frame's sample.
int accumulate_drizzled(const Reducer &r, std::size_t index, const Rect &tile, Sequence &s)
{
	const StackFrame &frame = r.frames[index];
	if (tile.intersect(frame.footprint).empty())
		return 0;
	// The frame pixels whose drops can touch the tile: the tile's corners mapped back, and a pixel more.
	const Matrix3 &m = frame.output_to_frame;
	double x0 = 1e300, y0 = 1e300, x1 = -1e300, y1 = -1e300;
	for (const Point corner : {Point{tile.left - 0.5, tile.top - 0.5}, Point{tile.right() - 0.5, tile.top - 0.5},
		     Point{tile.left - 0.5, tile.bottom() - 0.5}, Point{tile.right() - 0.5, tile.bottom() - 0.5}}) {
		const Point q = m.apply(corner);
		x0 = std::min(x0, q.x), x1 = std::max(x1, q.x), y0 = std::min(y0, q.y), y1 = std::max(y1, q.y);
	}
	const double lim = 1e8;
	const int left = static_cast<int>(std::floor(std::clamp(x0, -lim, lim))) - 1;
	const int top = static_cast<int>(std::floor(std::clamp(y0, -lim, lim))) - 1;
	const Rect block = Rect{left, top, static_cast<int>(std::ceil(std::clamp(x1, -lim, lim))) + 2 - left,
		static_cast<int>(std::ceil(std::clamp(y1, -lim, lim))) + 2 - top}
				   .intersect(Rect{0, 0, frame.width, frame.height});
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
	drizzle::drop_block(b, r.frame_to_output[index], r.spec.pixfrac, tile, s.drop_values.data(), s.drop_weights.data());
	const std::size_t plane = px * c;
	const bool masked = r.spec.reference_only && !frame.reference;
	std::array<float, 16> v{};
	for (std::size_t pixel = 0; pixel < px; pixel++) {
		const double w = s.drop_weights[pixel];
		if (!(w > 0) || (masked && s.reference_only[pixel]))
			continue;
		s.drizzle_weights[pixel] += w;
		for (int k = 0; k < c; k++) {
			s.drizzle_values[pixel * c + k] += s.drop_values[pixel * c + k];
			v[k] = static_cast<float>(s.drop_values[pixel * c + k] / w);
		}
		if (w >= kMinDropWeight)
			add_sample(r, frame, s, pixel, plane, v.data());
	}
	return 0;
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
				e.value = static_cast<float>(r.spec.merge == Merge::drizzle
						? kernels::weighted_mean_of(s.drizzle_values[at], s.drizzle_weights[pixel], 0.0, 0)
						: kernels::mean_of(s.sums[at], count));
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
			// Drizzle with too few frames for the scale and pixfrac: no frame's drops weigh enough
			// here for a sample, yet some touch it: every statistic takes the drizzled mean.
			if (r.spec.merge == Merge::drizzle && s.counts[pixel] == 0 && s.drizzle_weights[pixel] > 0)
				for (std::size_t i = 0; i < r.spec.statistics.size(); i++)
					for (int b = 0; b < c; b++)
						q[i * c + b] = static_cast<float>(s.drizzle_values[pixel * c + b] / s.drizzle_weights[pixel]);
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
	for (const Rect &tile : r->spec.plan.tiles(valid)) {
		const std::size_t px = static_cast<std::size_t>(tile.width) * tile.height;
		std::fill_n(s->counts.begin(), px, 0u);
		std::fill_n(s->sums.begin(), px * r->spec.colour_bands, 0.0);
		if (r->running.weighted) {
			std::fill_n(s->weighted_sums.begin(), px * r->spec.colour_bands, 0.0);
			std::fill_n(s->weight_sums.begin(), px, 0.0);
		}
		if (r->spec.merge == Merge::drizzle) {
			std::fill_n(s->drizzle_values.begin(), px * r->spec.colour_bands, 0.0);
			std::fill_n(s->drizzle_weights.begin(), px, 0.0);
		}
		if (r->spec.reference_only && mark_reference_only(*r, tile, *s))
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
	const bool drizzled = spec.merge == Merge::drizzle;
	if (drizzled && !(spec.pixfrac > 0 && spec.pixfrac <= 1))
		throw_error(ExitCode::usage, "--pixfrac must be in (0, 1] (got {})", spec.pixfrac);
	for (const auto &f : reducer->frames) {
		const vips::VImage &pixels = drizzled ? f.working : f.warped;
		if (pixels.format() != VIPS_FORMAT_FLOAT || pixels.bands() != spec.colour_bands + (f.alpha ? 1 : 0))
			throw_error(ExitCode::processing, "reducer: a frame is not in the working layout");
		reducer->frame_to_output.push_back(f.output_to_frame.inverse());
	}

	if (spec.reference_only) {
		for (const auto &f : reducer->frames)
			if (f.reference)
				reducer->reference = &f;
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
