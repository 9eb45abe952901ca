// reducer -- the one place with start/generate/stop: tiles of the output, reduced from every frame.
//
// Per thread (a libvips sequence): one sample buffer of tile^2 x N x C floats (only when an estimator
// needs all samples) laid out frame-major -- the k-th sample of every pixel in one plane, so a frame's
// samples are written in sequence -- plus running sums and counts. Per tile: the frames are visited one at a time; each
// visit opens a region on that frame's warp for the overlap, copies the covered samples, and frees
// the region, so one frame's pipeline is live per thread whatever N is.
#include "superstack/reduce.hpp"

#include "kernels.hpp"
#include "superstack/cancel.hpp"
#include "superstack/error.hpp"
#include "superstack/warp.hpp"

#include <algorithm>
#include <cmath>
#include <memory>

namespace superstack {

Statistic parse_statistic(std::string_view name)
{
	if (name == "mean") return Statistic::mean;
	if (name == "median") return Statistic::median;
	throw_error(ExitCode::usage, "--reduce: unknown statistic '{}' (use mean, median)", name);
}

std::string_view statistic_name(Statistic statistic)
{
	switch (statistic) {
	case Statistic::mean: return "mean";
	case Statistic::median: return "median";
	}
	return "?";
}

bool needs_all_samples(Statistic statistic)
{
	return statistic != Statistic::mean;
}

namespace {

struct Reducer {
	std::vector<StackFrame> frames;
	ReduceSpec spec;
	bool keep_samples = false;
	int out_bands = 0;
};

struct Sequence {
	std::vector<float> samples;        // [k-th sample][pixel][band]: plane k holds each pixel's k-th sample
	std::vector<double> sums;          // [pixel][band]
	std::vector<std::uint32_t> counts; // [pixel]
	std::vector<float> scratch;        // one pixel-band's samples, for the median
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
	seq->counts.resize(px);
	seq->scratch.resize(r->frames.size());
	return seq.release();
}

int reducer_stop(void *seq, void *, void *)
{
	delete static_cast<Sequence *>(seq);
	return 0;
}

// The span [x0, x1) of row y, within [left, right), that frame `m` covers. For an affine matrix the
// covered part of a row is one interval, found from the two half-plane limits and then settled with
// the exact per-pixel test at its ends, so it agrees with frame_covers() to the pixel. A projective
// matrix is tested pixel by pixel (its covered part of a row is still one interval).
std::pair<int, int> covered_span(const StackFrame &frame, bool affine, int y, int left, int right)
{
	const Matrix3 &m = frame.output_to_frame;
	auto covers = [&](int x) { return frame_covers(m, frame.width, frame.height, x, y); };
	if (!affine) {
		int x0 = left;
		while (x0 < right && !covers(x0))
			x0++;
		int x1 = x0;
		while (x1 < right && covers(x1))
			x1++;
		return {x0, x1};
	}
	// p(x) = a x + b along the row, for each frame axis; keep -0.5 <= p < size - 0.5.
	double lo = left, hi = right;
	const double limits[2][3] = {{m(0, 0), m(0, 1) * y + m(0, 2), static_cast<double>(frame.width)},
		{m(1, 0), m(1, 1) * y + m(1, 2), static_cast<double>(frame.height)}};
	for (const auto &[a, b, size] : limits) {
		if (a == 0.0) {
			if (!(b >= -0.5 && b < size - 0.5))
				return {left, left};
			continue;
		}
		const double t0 = (-0.5 - b) / a, t1 = (size - 0.5 - b) / a;
		lo = std::max(lo, std::min(t0, t1));
		hi = std::min(hi, std::max(t0, t1));
	}
	if (!(lo < hi))
		return {left, left};
	int x0 = std::clamp(static_cast<int>(std::ceil(lo)), left, right);
	int x1 = std::clamp(static_cast<int>(std::ceil(hi)), left, right);
	// Settle the ends with the exact test (rounding in the division can move them by one).
	while (x0 > left && covers(x0 - 1))
		x0--;
	while (x0 < x1 && !covers(x0))
		x0++;
	while (x1 < right && covers(x1))
		x1++;
	while (x1 > x0 && !covers(x1 - 1))
		x1--;
	return {x0, x1};
}

// Adds the samples frame `frame` covers in `tile` to the sequence's buffers.
int accumulate(const Reducer &r, const StackFrame &frame, const Rect &tile, Sequence &s)
{
	const Rect need = tile.intersect(frame.footprint);
	if (need.empty())
		return 0;
	VipsRegion *region = vips_region_new(frame.warped.get_image());
	const VipsRect rect{need.left, need.top, need.width, need.height};
	if (vips_region_prepare(region, &rect)) {
		g_object_unref(region);
		return -1;
	}
	const int c = r.spec.colour_bands;
	const std::size_t plane = static_cast<std::size_t>(tile.width) * tile.height * c;
	const int stride = frame.warped.bands();
	const bool affine = frame.output_to_frame.is_affine(); // once per tile, not per row
	for (int y = need.top; y < need.bottom(); y++) {
		const auto [x0, x1] = covered_span(frame, affine, y, need.left, need.right());
		const auto *p = reinterpret_cast<const float *>(VIPS_REGION_ADDR(region, x0, y));
		std::size_t pixel = static_cast<std::size_t>(y - tile.top) * tile.width + (x0 - tile.left);
		for (int x = x0; x < x1; x++, p += stride, pixel++) {
			float unpremultiply = 1.0f;
			if (frame.alpha) {
				const float a = p[c];
				if (!(a >= 0.5f))
					continue;
				unpremultiply = 1.0f / a;
			}
			const std::uint32_t k = s.counts[pixel]++;
			double *sum = &s.sums[pixel * c];
			float *sample = r.keep_samples ? &s.samples[k * plane + pixel * c] : nullptr;
			for (int b = 0; b < c; b++) {
				const float v = frame.alpha ? p[b] * unpremultiply : p[b];
				sum[b] += v;
				if (sample)
					sample[b] = v;
			}
		}
	}
	g_object_unref(region);
	return 0;
}

void write_tile(const Reducer &r, const Rect &tile, Sequence &s, VipsRegion *out)
{
	const int c = r.spec.colour_bands;
	const std::size_t plane = static_cast<std::size_t>(tile.width) * tile.height * c;
	for (int y = tile.top; y < tile.bottom(); y++) {
		auto *q = reinterpret_cast<float *>(VIPS_REGION_ADDR(out, tile.left, y));
		for (int x = tile.left; x < tile.right(); x++, q += r.out_bands) {
			const std::size_t pixel = static_cast<std::size_t>(y - tile.top) * tile.width + (x - tile.left);
			const std::uint32_t count = s.counts[pixel];
			float *o = q;
			for (Statistic stat : r.spec.statistics)
				for (int b = 0; b < c; b++, o++) {
					switch (stat) {
					case Statistic::mean:
						*o = static_cast<float>(kernels::mean_of(s.sums[pixel * c + b], count));
						break;
					case Statistic::median: {
						const float *column = &s.samples[pixel * c + b];
						for (std::uint32_t k = 0; k < count; k++)
							s.scratch[k] = column[k * plane];
						*o = kernels::median_inplace(s.scratch.data(), count);
						break;
					}
					}
				}
			if (r.spec.coverage)
				*o = static_cast<float>(count);
		}
	}
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
		for (const StackFrame &frame : r->frames) {
			if (cancel_requested()) {
				vips_error("superstack", "%s", "interrupted");
				return -1;
			}
			if (accumulate(*r, frame, tile, *s))
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
	auto reducer = std::make_unique<Reducer>();
	reducer->frames = std::move(frames);
	reducer->spec = spec;
	for (Statistic s : spec.statistics)
		reducer->keep_samples = reducer->keep_samples || needs_all_samples(s);
	reducer->out_bands = static_cast<int>(spec.statistics.size()) * spec.colour_bands + (spec.coverage ? 1 : 0);
	for (const auto &f : reducer->frames)
		if (f.warped.format() != VIPS_FORMAT_FLOAT || f.warped.bands() != spec.colour_bands + (f.alpha ? 1 : 0))
			throw_error(ExitCode::processing, "reducer: a warped frame is not in the working layout");

	std::vector<VipsImage *> inputs;
	for (const auto &f : reducer->frames)
		inputs.push_back(f.warped.get_image());
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
