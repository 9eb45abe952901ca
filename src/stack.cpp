// stack -- the run pipeline, in order.
#include "superstack/stack.hpp"

#include "superstack/cancel.hpp"
#include "superstack/error.hpp"
#include "superstack/files.hpp"
#include "superstack/frame.hpp"
#include "superstack/linear_light.hpp"
#include "superstack/mask.hpp"
#include "superstack/noise.hpp"
#include "superstack/sharpness.hpp"
#include "superstack/spool.hpp"
#include "superstack/tca.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <thread>

#include <nlohmann/json.hpp>

namespace superstack {

namespace fs = std::filesystem;

std::optional<int> resolve_reference(const std::optional<std::string> &reference, const std::vector<fs::path> &frames)
{
	if (!reference || *reference == "first")
		return 0;
	if (*reference == "sharpest")
		return std::nullopt;
	const std::string &r = *reference;
	int index = 0;
	auto [end, ec] = std::from_chars(r.data(), r.data() + r.size(), index);
	if (ec == std::errc() && end == r.data() + r.size()) {
		if (index < 0 || index >= static_cast<int>(frames.size()))
			throw_error(ExitCode::usage, "--reference {} is not a frame index (0 to {})", r, frames.size() - 1);
		return index;
	}
	std::error_code fec;
	for (std::size_t i = 0; i < frames.size(); i++)
		if (fs::equivalent(frames[i], r, fec) || frames[i].filename() == fs::path(r).filename())
			return static_cast<int>(i);
	throw_error(ExitCode::usage, "--reference {}: not one of the input frames", r);
}

namespace {

void ensure_writable_dir(const fs::path &dir)
{
	std::error_code ec;
	fs::create_directories(dir, ec);
	if (!fs::is_directory(dir, ec))
		throw_error(ExitCode::processing, "{}: cannot create output folder", dir.string());
	if (access(dir.c_str(), W_OK) != 0)
		throw_error(ExitCode::processing, "{}: output folder is not writable", dir.string());
}

// Whether the band files hold floats: float outputs, counts past 16 bits, or the weight sums.
bool encodes_float(const RunOptions &o, int frames)
{
	return o.save.depth == Depth::f32 || frames > 65535 || o.save_weights;
}

// The merge's weight sums: the one band group with a fraction that is not a statistic.
bool is_weights(const BandGroup &g)
{
	return g.name == "weights";
}

// Whether a count group's file is float: weight sums always, counts with float outputs or past 16 bits
// (else 16-bit).
bool count_is_float(const RunOptions &o, const BandGroup &g, int frames)
{
	return is_weights(g) || o.save.depth == Depth::f32 || frames > 65535;
}

// The reduced image as the band files hold it and the outputs are cut from: every band group in one
// image, statistics scaled to the stored range (encoded back by the sRGB curve when `linear`) and
// rounded unless stored as float, counts and weight sums as they are, in one format that holds them
// all (8-bit statistics travel as 16-bit beside a count that may pass 255; the weight sums make it
// float). Lazy.
vips::VImage encode_reduced(const vips::VImage &reduced, const RunOptions &o, const std::vector<BandGroup> &groups,
	bool linear, int frames)
{
	const double full = o.save.depth == Depth::f32 ? 1.0 : o.save.depth == Depth::u8 ? 255.0 : 65535.0;
	const VipsBandFormat combined_format = encodes_float(o, frames) ? VIPS_FORMAT_FLOAT : VIPS_FORMAT_USHORT;
	std::vector<double> gain;
	int value_bands = 0;
	for (const BandGroup &g : groups) {
		gain.insert(gain.end(), static_cast<std::size_t>(g.count), g.is_count ? 1.0 : full);
		value_bands += g.is_count ? 0 : g.count;
	}
	vips::VImage values = reduced;
	if (linear && value_bands > 0) {
		const vips::VImage encoded = linear_to_srgb(reduced.extract_band(0, vips::VImage::option()->set("n", value_bands)));
		values = value_bands == reduced.bands()
			? encoded
			: encoded.bandjoin(reduced.extract_band(value_bands, vips::VImage::option()->set("n", reduced.bands() - value_bands)));
	}
	vips::VImage encoded = values.linear(gain, 0.0);
	if (o.save.depth != Depth::f32) {
		// Rounded here, so that cast() (here or when saved) clamps and never wraps or truncates; the
		// weight sums (the last band group, when there) keep their fraction.
		const int weights = !groups.empty() && is_weights(groups.back()) ? 1 : 0;
		const vips::VImage rounded = (weights ? encoded.extract_band(0, vips::VImage::option()->set("n", encoded.bands() - 1)) : encoded)
						     .round(VIPS_OPERATION_ROUND_RINT);
		encoded = weights ? rounded.bandjoin(encoded.extract_band(encoded.bands() - 1)) : rounded;
	}
	return encoded.cast(combined_format);
}

// The names of the files a run writes, one per band group (coverage only when asked).
std::vector<const BandGroup *> output_groups(const std::vector<BandGroup> &groups, const RunOptions &o)
{
	std::vector<const BandGroup *> files;
	for (const BandGroup &g : groups)
		if (g.name != "coverage" || o.save_coverage)
			files.push_back(&g);
	return files;
}

// Writes one file per band group (each statistic, the coverage when asked, the reject map and the
// weight sums), each streamed out of `combined` (the assembled bands of encode_reduced()'s image).
// `alpha`: each statistic's file gets an alpha band, opaque where the count band (then present) is
// above 0. Counts are 16-bit unless --depth float or more than 65535 frames; weight sums are float.
void write_outputs(const vips::VImage &combined, const RunOptions &o, const std::vector<BandGroup> &groups, bool alpha,
	const vips::VImage &reference, Progress &progress, RunResult &result)
{
	const VipsBandFormat stored = o.save.depth == Depth::f32 ? VIPS_FORMAT_FLOAT
		: o.save.depth == Depth::u8                      ? VIPS_FORMAT_UCHAR
								 : VIPS_FORMAT_USHORT;
	const double full = o.save.depth == Depth::f32 ? 1.0 : o.save.depth == Depth::u8 ? 255.0 : 65535.0;
	const BandGroup *count = nullptr;
	for (const BandGroup &g : groups)
		if (g.name == "coverage")
			count = &g;
	// A band group of `combined`, as the file it becomes.
	auto part_of = [&](const BandGroup &g) {
		vips::VImage part = combined.extract_band(g.first, vips::VImage::option()->set("n", g.count));
		if (g.is_count) {
			if (!count_is_float(o, g, result.frames))
				part = part.cast(VIPS_FORMAT_USHORT);
			return part.copy(vips::VImage::option()->set("interpretation", VIPS_INTERPRETATION_MULTIBAND));
		}
		if (part.format() != stored)
			part = part.cast(stored);
		if (alpha)
			part = part.bandjoin(((combined.extract_band(count->first) > 0.0) * (full / 255.0)).cast(stored)); // 255 where true
		part = with_metadata_of(part, reference);
		return part.copy(vips::VImage::option()->set("interpretation", interpretation_for(g.count, o.save.depth)));
	};
	for (const BandGroup *g : output_groups(groups, o)) {
		const fs::path path = o.out_dir / (g->name + ".tif");
		save_tiff(part_of(*g), path, o.save, progress, "write " + g->name);
		result.outputs.push_back(path);
	}
}

// Reports a band's progress as a fraction of the whole reduction, with an ETA from this run's pace
// (bands finished by an earlier run count as done, not as speed).
class BandProgress final : public Progress {
public:
	BandProgress(Progress &outer, int total_rows, int rows_to_compute)
		: outer_(outer), total_(std::max(1, total_rows)), to_compute_(rows_to_compute), start_(std::chrono::steady_clock::now())
	{
	}
	// Band `band` starts; `done` rows are finished in all, `computed` of them by this run.
	void begin(const Band &band, int done, int computed) { band_ = band, done_ = done, computed_ = computed; }
	void update(std::string_view stage, double fraction, double) override
	{
		const double mine = computed_ + fraction * band_.height;
		const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
		const double eta = mine > 0 ? elapsed / mine * (to_compute_ - mine) : -1.0;
		outer_.update(stage, (done_ + fraction * band_.height) / total_, eta);
	}
	void note(std::string_view message) override { outer_.note(message); }
	void warn(std::string_view message) override { outer_.warn(message); }

private:
	Progress &outer_;
	int total_ = 1, to_compute_ = 0;
	Band band_;
	int done_ = 0, computed_ = 0;
	std::chrono::steady_clock::time_point start_;
};


} // namespace

namespace {

// The inputs, probed (headers only: a missing or broken frame fails before any heavy work). Under
// FrameErrors::skip, frames that cannot be read are left out of `files` and named in `unreadable`.
struct Inputs {
	std::vector<fs::path> all;    // every input frame, in order
	std::vector<fs::path> files;  // the readable ones
	std::vector<FrameInfo> infos;
	std::optional<int> reference; // index in `files`; unknown yet for `sharpest`
	bool reference_chosen = false; // given as an index or a file (else `first` means the first readable)
	int colour_bands = 1;         // the working layout: the reference's (the first frame's for sharpest)
	std::vector<UnreadableFrame> unreadable;

	// Leaves out frames[i] for every i in `out` (ascending), keeping `reference` on its frame.
	void leave_out(const std::vector<std::size_t> &out)
	{
		for (auto it = out.rbegin(); it != out.rend(); ++it) {
			const int i = static_cast<int>(*it);
			if (reference && *reference == i) {
				if (reference_chosen)
					throw_error(ExitCode::bad_input, "{}: the reference frame cannot be read: {}", files[i].string(),
						unreadable.back().reason);
				reference = 0; // `first`: the first readable frame
			} else if (reference && *reference > i) {
				--*reference;
			}
			files.erase(files.begin() + i);
			infos.erase(infos.begin() + i);
		}
		if (files.empty())
			throw_error(ExitCode::bad_input, "no frame can be read ({} of them; the first: {})", unreadable.size(),
				unreadable.front().reason);
	}
};

// `e` as a frame left out (skip) or the run's error (fail).
void frame_failed(Inputs &in, const fs::path &file, const Error &e, FrameErrors on_error, Progress &progress)
{
	if (on_error == FrameErrors::fail || e.code() != ExitCode::bad_input)
		throw;
	const std::string reason = describe(e).message;
	in.unreadable.push_back({file, reason});
	progress.warn(fmt::format("left out, cannot be read: {}", reason));
}

Inputs probe_inputs(const std::vector<std::string> &inputs, const std::optional<std::string> &reference,
	FrameErrors on_error = FrameErrors::fail, Progress *progress = nullptr)
{
	NoProgress silent;
	Inputs in;
	in.all = expand_inputs(inputs);
	in.files = in.all;
	in.reference = resolve_reference(reference, in.files);
	in.reference_chosen = reference && *reference != "first" && *reference != "sharpest";
	std::vector<std::size_t> out;
	for (std::size_t i = 0; i < in.files.size(); i++) {
		try {
			in.infos.push_back(probe_frame(in.files[i]));
		} catch (const Error &e) {
			frame_failed(in, in.files[i], e, on_error, progress ? *progress : silent);
			in.infos.emplace_back();
			out.push_back(i);
		}
	}
	in.leave_out(out);
	in.colour_bands = in.infos[in.reference.value_or(0)].colour_bands >= 3 ? 3 : 1;
	return in;
}

std::uint64_t spool_bytes_of(const Inputs &in)
{
	std::uint64_t bytes = 0;
	for (const auto &info : in.infos)
		bytes += Spool::bytes_for(info.width, info.height, info.file_bands, info.format);
	return bytes;
}

// Every frame decoded once into the spool, in the working layout.
// Under FrameErrors::skip, a frame that fails to decode is left out of `in` (and of the result).
std::vector<vips::VImage> decode_frames(Inputs &in, Spool &spool, Progress &progress, FrameErrors on_error = FrameErrors::fail)
{
	std::vector<vips::VImage> working;
	std::vector<std::size_t> out;
	for (std::size_t i = 0; i < in.files.size(); i++) {
		if (cancel_requested())
			throw_error(ExitCode::interrupted, "interrupted");
		progress.update("decode", static_cast<double>(i) / in.files.size(), -1);
		if (in.infos[i].pages > 1)
			progress.warn(fmt::format("{}: {} pages, only the first is stacked (one image per file)", in.files[i].string(),
				in.infos[i].pages));
		try {
			working.push_back(open_working_frame(in.infos[i], in.colour_bands, spool));
		} catch (const Error &e) {
			if (cancel_requested())
				throw_error(ExitCode::interrupted, "interrupted");
			if (on_error == FrameErrors::fail || e.code() != ExitCode::bad_input)
				std::throw_with_nested(Error(e.code(), fmt::format("frame {}", i)));
			frame_failed(in, in.files[i], e, on_error, progress);
			out.push_back(i);
		}
	}
	in.leave_out(out);
	progress.update("decode", 1.0, 0);
	return working;
}

// The mask in the reference's geometry, when there is one.
std::optional<vips::VImage> open_reference_mask(const std::optional<fs::path> &file, const FrameInfo &reference, Spool &spool)
{
	if (!file)
		return std::nullopt;
	return open_mask(*file, reference.width, reference.height, spool);
}

// What measure_frames() measures: the frames as decoded (`check`'s figures: sharpness and noise) or
// as stacked (exposure-normalized, linear light: only the noise is used, by the noise weights).
enum class Measured { as_decoded, as_stacked };

// Every frame's noise-compensated sharpness and noise (one streaming pass over each).
std::vector<Sharpness> measure_frames(const Inputs &in, const std::vector<vips::VImage> &working, Measured what, Progress &progress)
{
	std::vector<Sharpness> measured;
	const char *stage = what == Measured::as_decoded ? "sharpness" : "noise";
	for (std::size_t i = 0; i < working.size(); i++) {
		if (cancel_requested())
			throw_error(ExitCode::interrupted, "interrupted");
		progress.update(stage, static_cast<double>(i) / working.size(), -1);
		try {
			measured.push_back(measure_sharpness(working_luminance(working[i], in.infos[i].alpha)));
		} catch (const vips::VError &) {
			throw Error(ExitCode::bad_input, about_file(in.files[i].string(), vips_error_line()));
		}
		// As stacked, the sharpness is neither used nor check's: only the noise is printed.
		progress.note(what == Measured::as_decoded
				? fmt::format("sharpness {:.4g} (noise {:.4f}): {}", measured.back().sharpness, measured.back().noise,
					  in.files[i].filename().string())
				: fmt::format("noise as stacked {:.5f}: {}", measured.back().noise, in.files[i].filename().string()));
	}
	progress.update(stage, 1.0, 0);
	return measured;
}

// The frame with the highest noise-compensated sharpness (the first of equals).
int sharpest_frame(const Inputs &in, const std::vector<Sharpness> &measured, Progress &progress)
{
	int best = 0;
	for (std::size_t i = 1; i < measured.size(); i++)
		if (measured[i].sharpness > measured[best].sharpness)
			best = static_cast<int>(i);
	progress.note(fmt::format("reference: {} (the sharpest)", in.files[best].filename().string()));
	return best;
}

// The frames' weights for `weighted` (see FrameWeight), the largest 1; a stack where every frame
// weighs 0 keeps its zeros (the weighted mean is then the plain mean).
std::vector<double> frame_weights(const std::vector<Sharpness> &measured, FrameWeight kind)
{
	std::vector<double> w;
	for (const Sharpness &m : measured)
		w.push_back(kind == FrameWeight::sharpness ? m.sharpness : 1.0 / std::pow(std::max(m.noise, kMinWeightNoise), 2));
	const double top = *std::max_element(w.begin(), w.end());
	if (top > 0)
		for (double &x : w)
			x /= top;
	return w;
}

// The lens's chromatic aberration, from the reference frame; nothing (with a warning) when it cannot
// be measured.
std::optional<ChannelTransforms> measure_tca(const Inputs &in, const std::vector<vips::VImage> &working, int reference,
	const std::optional<vips::VImage> &mask, int threads, Progress &progress)
{
	const TcaEstimate e = estimate_tca(working[reference], in.infos[reference].alpha, mask, threads, progress);
	if (!e.channels)
		progress.warn(fmt::format("{}: chromatic aberration not corrected: {}", in.files[reference].string(), e.reason));
	return e.channels;
}

// Aligns every frame to `reference`; the transforms file's entries, with a report per frame (and the
// lens's chromatic aberration when `tca`). Rejected frames are named in a warning (skip) or fail the
// run (fail).
TransformSet estimate_transforms(const Inputs &in, const std::vector<vips::VImage> &working, int reference,
	MotionModel model, const std::optional<vips::VImage> &mask, AlignFailure on_failure, double max_residual, int local_grid,
	bool tca, int threads, Progress &progress, WorkFolder *work = nullptr, int *reused = nullptr)
{
	std::vector<AlignFrame> frames;
	for (std::size_t i = 0; i < working.size(); i++)
		frames.push_back({working[i], in.infos[i].alpha, in.files[i].filename().string()});
	AlignOptions options;
	options.model = model;
	options.threads = threads;
	options.max_residual = max_residual;
	options.local_grid = local_grid;
	if (work) {
		// Alignments saved by an interrupted run are reused; new ones are saved as they are made.
		options.known = work->saved_alignments(in.files, in.files[reference]);
		if (reused)
			*reused = static_cast<int>(std::count_if(options.known.begin(), options.known.end(), [](const auto &k) { return k.has_value(); }));
		options.on_aligned = [&](std::size_t i, const FrameAlignment &a) { work->save_alignment(in.files[i], in.files[reference], a); };
	}
	const std::vector<FrameAlignment> aligned = align_frames(frames, reference, mask, options, progress);
	TransformSet set;
	set.reference = reference;
	for (std::size_t i = 0; i < aligned.size(); i++) {
		const FrameAlignment &a = aligned[i];
		AlignmentReport r{std::string(motion_model_name(a.model)), a.patches, a.inliers, a.residual_rms, a.ok, a.reason};
		if (a.local_patches > 0)
			r.local = LocalReport{a.local_patches, a.local_residual_rms, a.matrix_residual_rms};
		set.frames.push_back({in.files[i].string(), a.matrix, r, std::nullopt, a.ok ? a.displacement : std::nullopt});
		if (a.ok) {
			progress.note(fmt::format("aligned {}: {} of {} patches, residual {:.3f} px{}", in.files[i].filename().string(),
				a.inliers, a.patches, a.residual_rms,
				a.local_patches > 0 ? fmt::format("; local field{}: {:.3f} px on {} patches it was not fitted to (the matrix alone {:.3f} px)",
							      a.displacement ? "" : " not kept", a.local_residual_rms, a.local_patches, a.matrix_residual_rms)
						    : std::string()));
			continue;
		}
		if (on_failure == AlignFailure::fail)
			throw_error(ExitCode::bad_input, "{}: cannot be aligned: {}", in.files[i].string(), a.reason);
		progress.warn(fmt::format("{}: left out, cannot be aligned: {}", in.files[i].string(), a.reason));
	}
	if (tca)
		set.tca = measure_tca(in, working, reference, mask, threads, progress);
	return set;
}

int resolved_threads(int threads)
{
	return threads > 0 ? threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

} // namespace

FrameWeight parse_frame_weight(std::string_view text)
{
	if (text == "sharpness")
		return FrameWeight::sharpness;
	if (text == "noise")
		return FrameWeight::noise;
	throw_error(ExitCode::usage, "--weight must be sharpness or noise (got '{}')", text);
}

AlignRunResult align_stack(const AlignRunOptions &o, Progress &progress)
{
	if (o.align == MotionModel::none)
		throw_error(ExitCode::usage, "align: --align none estimates nothing");
	Inputs in = probe_inputs(o.inputs, o.reference);
	if (o.mask)
		probe_frame(*o.mask); // a missing or broken mask fails before any heavy work
	const int threads = resolved_threads(o.threads);
	vips_concurrency_set(threads);
	fs::path dir = o.output.parent_path();
	if (dir.empty())
		dir = ".";
	ensure_writable_dir(dir);
	const fs::path space_at = o.work_dir.value_or(dir);
	check_free_space(space_at, spool_bytes_of(in), "the frame spool");
	Spool spool(space_at / fmt::format(".superstack-work-{}", getpid()));
	const std::vector<vips::VImage> working = decode_frames(in, spool, progress);
	const int reference = in.reference ? *in.reference : sharpest_frame(in, measure_frames(in, working, Measured::as_decoded, progress), progress);
	AlignRunResult result;
	result.transforms = estimate_transforms(in, working, reference, o.align, open_reference_mask(o.mask, in.infos[reference], spool),
		o.on_align_failure, o.max_residual, o.local_grid, o.tca, threads, progress);
	for (const auto &f : result.transforms.frames)
		result.rejected += f.report && !f.report->ok;
	write_transforms(o.output, result.transforms);
	return result;
}

namespace {

// The checks of the options that need no file, and the reduction they ask for.
ReduceSpec reduce_spec_of(const RunOptions &o, int colour_bands)
{
	if (o.statistics.empty() && !o.save_coverage)
		throw_error(ExitCode::usage, "--reduce names no statistic");
	check_clip_options(o.clip);
	check_selection_options(o.selection);
	if (o.save_rejects && std::none_of(o.statistics.begin(), o.statistics.end(), rejects_samples))
		throw_error(ExitCode::usage, "--save-rejects needs sigma-clip, winsorized or trimmed in --reduce");
	if (o.mask_reduce && !o.mask)
		throw_error(ExitCode::usage, "--mask-reduce needs --mask");
	if (o.save_weights && o.merge == Merge::interpolate)
		throw_error(ExitCode::usage, "--save-weights needs --merge drizzle or kernel (interpolate has no weights)");
	if (o.band_rows < 0)
		throw_error(ExitCode::usage, "--band-rows must be >= 0 (got {})", o.band_rows);
	ReduceSpec spec;
	spec.colour_bands = colour_bands;
	spec.statistics = o.statistics;
	spec.clip = o.clip;
	spec.merge = o.merge;
	spec.pixfrac = o.pixfrac;
	spec.regression = o.regression;
	// --crop none marks uncovered pixels by an alpha band made from the count.
	spec.coverage = o.save_coverage || o.crop == Crop::none;
	spec.rejects = o.save_rejects;
	spec.weights = o.save_weights;
	return spec;
}

// The reduction's memory plan for `frames` frames and an output `width` wide.
MemoryPlan plan_for(const RunOptions &o, ReduceSpec spec, int frames, int threads, int width)
{
	BudgetRequest request;
	request.memory_bytes = o.memory_bytes;
	request.threads = threads;
	request.frames = frames;
	if (o.mask_reduce)
		spec.reference_only = vips::VImage(); // counted by describe_reduction
	describe_reduction(spec, request);
	request.scale = o.scale;
	request.output_width = width;
	const int bytes = o.save.depth == Depth::f32 || o.save_weights ? 4 : o.save.depth == Depth::u8 ? 1 : 2;
	request.output_bytes_per_pixel = reduced_bands(spec) * std::max(bytes, 2);
	if (o.sharpen.amount > 0 || o.sharpen.unsharp != 0)
		request.fixed_bytes = sharpen_cache_bytes(width, reduced_bands(spec), threads);
	return plan_memory(request);
}

// Bytes per sample of encode_reduced()'s image.
int encoded_bytes(const RunOptions &o, int frames)
{
	return encodes_float(o, frames) ? 4 : 2;
}

// Bytes per sample of a count (or weight sum) file.
int count_bytes(const RunOptions &o, const BandGroup &g, int frames)
{
	return count_is_float(o, g, frames) ? 4 : 2;
}

// The disk a run needs, from the headers: outputs on the reference's grid (the largest frame's when the
// reference is not known yet, for `sharpest`), uncompressed.
struct Sizes {
	OutputGeometry geometry;
	std::vector<std::string> outputs;
	std::uint64_t output_bytes = 0, spool_bytes = 0, band_bytes = 0;
};

Sizes sizes_of(const Inputs &in, const RunOptions &o, const ReduceSpec &spec)
{
	Sizes s;
	int w = 0, h = 0;
	for (std::size_t i = 0; i < in.infos.size(); i++)
		if (!in.reference || static_cast<int>(i) == *in.reference)
			w = std::max(w, in.infos[i].width), h = std::max(h, in.infos[i].height);
	s.geometry = OutputGeometry::for_reference(w, h, o.scale);
	const std::uint64_t pixels = static_cast<std::uint64_t>(s.geometry.width) * s.geometry.height;
	const int frames = static_cast<int>(in.files.size());
	s.band_bytes = pixels * reduced_bands(spec) * encoded_bytes(o, frames);
	const int stored = o.save.depth == Depth::f32 ? 4 : o.save.depth == Depth::u8 ? 1 : 2;
	const std::vector<BandGroup> groups = band_groups(spec);
	for (const BandGroup *g : output_groups(groups, o)) {
		s.outputs.push_back(g->name + ".tif");
		const int bands = g->count + (o.crop == Crop::none && !g->is_count ? 1 : 0);
		s.output_bytes += pixels * bands * (g->is_count ? count_bytes(o, *g, frames) : stored);
	}
	s.spool_bytes = spool_bytes_of(in);
	return s;
}

// The definition of the results, raised when a change gives other pixels for the same options, so
// that work left by an older binary is not resumed into a mix: 2 when the robust merges' consensus
// took in the chroma (session 15; work folders before it have no "engine" and do not match either).
constexpr int kEngine = 2;

// What the results depend on (see RunOptions): every option but the threads, the memory, the TIFF
// compression and BigTIFF, the band height and where the work goes; each input's size and time; and
// the engine's definition (kEngine).
std::string run_key(const RunOptions &o, const Inputs &in)
{
	using json = nlohmann::json;
	auto file = [](const fs::path &f) {
		std::error_code ec;
		struct stat st {};
		const bool ok = stat(f.c_str(), &st) == 0;
		return json{{"path", fs::absolute(f, ec).string()}, {"size", ok ? static_cast<long long>(st.st_size) : -1},
			{"mtime_ns", ok ? static_cast<long long>(st.st_mtim.tv_sec) * 1000000000LL + st.st_mtim.tv_nsec : 0}};
	};
	json inputs = json::array();
	for (const auto &f : in.all)
		inputs.push_back(file(f));
	json statistics = json::array();
	for (Statistic st : o.statistics)
		statistics.push_back(std::string(statistic_name(st)));
	const json key = {{"engine", kEngine}, {"inputs", inputs}, {"reference", o.reference.value_or("first")}, {"scale", o.scale},
		{"kernel", std::string(kernel_name(o.kernel))}, {"merge", std::string(merge_name(o.merge))}, {"pixfrac", o.pixfrac},
		{"kernel-detail", o.regression.detail}, {"kernel-shape", {o.regression.stretch, o.regression.denoise, o.regression.flat_snr,
			o.regression.edge_snr}}, {"robustness", o.regression.robustness},
		{"sharpen", {o.sharpen.amount, o.sharpen.unsharp, o.sharpen.unsharp_sigma, o.sharpen.brightness}},
		{"reduce", statistics}, {"kappa", o.clip.kappa}, {"iterations", o.clip.iterations}, {"trim", o.clip.trim},
		{"weight", o.weight == FrameWeight::noise ? "noise" : "sharpness"},
		{"transforms", o.transforms ? file(*o.transforms) : json()}, {"align", std::string(motion_model_name(o.align))},
		{"mask", o.mask ? file(*o.mask) : json()}, {"mask-reduce", o.mask_reduce}, {"normalize", static_cast<int>(o.normalize)},
		{"reject-blurry", o.selection.reject_fraction},
		{"min-sharpness", o.selection.min_sharpness ? json(*o.selection.min_sharpness) : json()},
		{"reject-misaligned", o.selection.reject_misaligned},
		{"linear", static_cast<int>(o.linear)}, {"crop", std::string(crop_name(o.crop))},
		{"on-align-failure", o.on_align_failure == AlignFailure::skip ? "skip" : "fail"}, {"max-residual", o.max_residual},
		{"local-grid", o.local_grid},
		{"tca", o.tca}, {"depth", static_cast<int>(o.save.depth)}, {"save-coverage", o.save_coverage},
		{"save-rejects", o.save_rejects}, {"save-weights", o.save_weights}, {"on-error", o.on_error == FrameErrors::skip ? "skip" : "fail"}};
	return key.dump();
}

// What the band files hold: the geometry, the encoding and every stacked frame with its mapping. Band
// files of another layout are never reused.
std::string band_layout(const OutputGeometry &g, const vips::VImage &encoded, const std::vector<StackFrame> &frames,
	const std::vector<fs::path> &files)
{
	using json = nlohmann::json;
	json stacked = json::array();
	for (std::size_t i = 0; i < frames.size(); i++) {
		json rows = json::array();
		for (const auto &row : frames[i].output_to_frame.matrix().rows())
			rows.push_back({row[0], row[1], row[2]});
		json frame = {{"file", files[i].string()}, {"output_to_frame", rows}, {"weight", frames[i].weight}};
		if (const DisplacementField *d = frames[i].output_to_frame.field()) {
			// Its grid and a digest of its values, not the values themselves.
			std::string values(reinterpret_cast<const char *>(d->dx.data()), d->dx.size() * sizeof(double));
			values.append(reinterpret_cast<const char *>(d->dy.data()), d->dy.size() * sizeof(double));
			frame["displacement"] = {d->left, d->top, d->spacing, d->columns, d->rows, fnv1a(values)};
		}
		stacked.push_back(frame);
	}
	return json{{"geometry", {g.reference_width, g.reference_height, g.scale, g.left, g.top, g.width, g.height}},
		{"bands", encoded.bands()}, {"format", static_cast<int>(encoded.format())}, {"frames", stacked}}
		.dump();
}

// The report with the frames that could not be read put back in input order, marked rejected.
TransformSet with_unreadable(const TransformSet &report, const Inputs &in)
{
	TransformSet out;
	out.tca = report.tca;
	std::size_t next = 0;
	for (const fs::path &file : in.all) {
		if (next < in.files.size() && in.files[next] == file) {
			if (static_cast<int>(next) == report.reference)
				out.reference = static_cast<int>(out.frames.size());
			out.frames.push_back(report.frames[next++]);
			continue;
		}
		std::string reason = "cannot be read";
		for (const UnreadableFrame &u : in.unreadable)
			if (u.file == file)
				reason += ": " + u.reason;
		out.frames.push_back({file.string(), Matrix3::identity(), AlignmentReport{"none", 0, 0, 0, false, reason}, std::nullopt});
	}
	return out;
}

bool same_device(const fs::path &a, const fs::path &b)
{
	struct stat sa {}, sb {};
	return stat(a.c_str(), &sa) == 0 && stat(b.c_str(), &sb) == 0 && sa.st_dev == sb.st_dev;
}

// The frames' noise sigma, the same at the pixel scale, and their signal's Laplacian power
// (NoiseEstimate, noise.hpp), from the reference against the other frames as stacked; from the
// reference alone (sharpness.hpp) when no other frame overlaps it enough.
NoiseEstimate measure_noise(const Inputs &in, const std::vector<vips::VImage> &prepared,
	const std::vector<std::optional<Matrix3>> &transforms, const std::vector<std::shared_ptr<const DisplacementField>> &fields,
	const RunResult &result, const std::optional<vips::VImage> &mask, Progress &progress)
{
	const FrameInfo &ref = in.infos[result.reference];
	const OutputGeometry grid_of_reference = OutputGeometry::for_reference(ref.width, ref.height, 1);
	auto noise_frame = [&](std::size_t i) {
		const ExposureFit fit = result.exposures[i].value_or(ExposureFit{});
		return NoiseFrame{prepared[i], in.infos[i].alpha, FrameMap(*transforms[i], fields[i], grid_of_reference), (1 - fit.offset) / fit.gain};
	};
	std::vector<NoiseFrame> others;
	for (std::size_t i = 0; i < in.files.size(); i++)
		if (transforms[i] && static_cast<int>(i) != result.reference)
			others.push_back(noise_frame(i));
	if (const std::optional<NoiseEstimate> e = estimate_noise(noise_frame(result.reference), others, mask)) {
		progress.note(fmt::format("frame noise {:.5f}, at the pixel scale {:.5f}, chroma {:.5f}, signal Laplacian {:.5f} rms (the reference against {} other frame{}, {} samples)",
			e->sigma, e->fine, e->chroma, std::sqrt(e->signal), e->pairs, e->pairs == 1 ? "" : "s", e->samples));
		return *e;
	}
	const NoiseFrame r = noise_frame(result.reference);
	const vips::VImage colour = r.alpha ? r.working.extract_band(0, vips::VImage::option()->set("n", r.working.bands() - 1)) : r.working;
	const Sharpness s = measure_sharpness(colour.bandmean());
	const double signal = signal_power(s.variance, s.noise);
	progress.note(fmt::format("frame noise {:.5f}, signal Laplacian {:.5f} rms (the reference alone: no other frame overlaps it enough)",
		s.noise, std::sqrt(signal)));
	NoiseEstimate alone;
	alone.sigma = alone.fine = alone.chroma = s.noise; // the chroma's as if the bands' noise were independent
	alone.signal = signal;
	return alone;
}

} // namespace

FrameErrors parse_frame_errors(std::string_view text)
{
	if (text == "skip")
		return FrameErrors::skip;
	if (text == "fail")
		return FrameErrors::fail;
	throw_error(ExitCode::usage, "--on-error must be skip or fail (got '{}')", text);
}

RunEstimate estimate_run(const RunOptions &o)
{
	const Inputs in = probe_inputs(o.inputs, o.reference, o.on_error);
	ReduceSpec spec = reduce_spec_of(o, in.colour_bands);
	// Displacement fields cost the kernel merge memory per tile pixel: counted when the run may have
	// them (--local-grid may keep none; planning for them is the safe side), as run_stack() does.
	spec.displaced = o.local_grid > 0;
	if (o.transforms && !spec.displaced) {
		const TransformSet given = read_transforms(*o.transforms);
		spec.displaced = std::any_of(given.frames.begin(), given.frames.end(), [](const FrameTransform &t) { return t.displacement.has_value(); });
	}
	const Sizes sizes = sizes_of(in, o, spec);
	RunEstimate e;
	e.frames = static_cast<int>(in.files.size());
	e.unreadable = in.unreadable;
	e.geometry = sizes.geometry;
	e.outputs = sizes.outputs;
	e.output_bytes = sizes.output_bytes;
	e.spool_bytes = sizes.spool_bytes;
	e.band_bytes = sizes.band_bytes;
	e.plan = plan_for(o, spec, e.frames, resolved_threads(o.threads), sizes.geometry.width);
	return e;
}

RunResult run_stack(const RunOptions &o, Progress &progress)
{
	RunResult result;
	const bool weighted = std::find(o.statistics.begin(), o.statistics.end(), Statistic::weighted) != o.statistics.end();
	Inputs in = probe_inputs(o.inputs, o.reference, o.on_error, &progress);
	ReduceSpec spec = reduce_spec_of(o, in.colour_bands);
	if (o.mask)
		probe_frame(*o.mask); // a missing or broken mask fails before any heavy work
	std::optional<TransformSet> given;
	if (o.transforms)
		given = read_transforms(*o.transforms);

	const int threads = resolved_threads(o.threads);
	vips_concurrency_set(threads);
	ensure_writable_dir(o.out_dir);
	if (o.work_dir)
		ensure_writable_dir(*o.work_dir);
	const Sizes sizes = sizes_of(in, o, spec);
	result.spool_bytes = sizes.spool_bytes;
	WorkFolder work(work_folder_for(o.out_dir, o.work_dir), run_key(o, in), o.resume, progress);
	{
		// Before any heavy work: room for the spool, the band files not finished yet and the outputs.
		const std::uint64_t kept = work.kept_bytes();
		const std::uint64_t work_need = sizes.spool_bytes + (sizes.band_bytes > kept ? sizes.band_bytes - kept : 0);
		if (same_device(work.dir(), o.out_dir)) {
			check_free_space(o.out_dir, work_need + sizes.output_bytes, "the frame spool, the band files and the outputs");
		} else {
			check_free_space(work.dir(), work_need, "the frame spool and the band files");
			check_free_space(o.out_dir, sizes.output_bytes, "the outputs");
		}
	}
	progress.note(fmt::format("frame spool: {}, band files: {}, outputs: up to {}; work folder {}", format_bytes(sizes.spool_bytes),
		format_bytes(sizes.band_bytes), format_bytes(sizes.output_bytes), work.dir().string()));

	Spool spool(work.spool_dir());
	const std::vector<vips::VImage> working = decode_frames(in, spool, progress, o.on_error);
	result.unreadable = in.unreadable;
	// The frames' sharpness as decoded, what `check` prints: for `--reference sharpest`, the selection
	// and the sharpness weights (relative to each frame's brightness: exposure changes nothing).
	std::vector<Sharpness> as_decoded;
	auto sharpness_as_decoded = [&]() -> const std::vector<Sharpness> & {
		if (as_decoded.empty())
			as_decoded = measure_frames(in, working, Measured::as_decoded, progress);
		return as_decoded;
	};
	result.reference = in.reference ? *in.reference : sharpest_frame(in, sharpness_as_decoded(), progress);
	const FrameInfo &ref = in.infos[result.reference];
	const std::optional<vips::VImage> mask = open_reference_mask(o.mask, ref, spool);
	const OutputGeometry full = OutputGeometry::for_reference(ref.width, ref.height, o.scale);
	const OutputGeometry grid_of_reference = OutputGeometry::for_reference(ref.width, ref.height, 1);

	// Transforms: from the file, estimated here, or the identity (frames taken as aligned). Frames
	// the alignment rejected are left out. `report` is what OUTDIR/transforms.json will say.
	std::vector<std::optional<Matrix3>> transforms(in.files.size(), Matrix3::identity());
	std::vector<std::shared_ptr<const DisplacementField>> fields(in.files.size()); // null: none
	std::optional<ChannelTransforms> tca; // the lens's chromatic aberration, when corrected
	TransformSet report;
	report.reference = result.reference;
	for (const auto &file : in.files)
		report.frames.push_back({file.string(), Matrix3::identity(), std::nullopt, std::nullopt});
	if (given) {
		tca = given->tca;
		if (o.tca && !tca)
			tca = measure_tca(in, working, result.reference, mask, threads, progress);
		std::vector<Matrix3> matrices;
		for (std::size_t i = 0; i < in.files.size(); i++) {
			auto at = find_transform(*given, in.files[i]);
			if (!at)
				throw_error(ExitCode::bad_input, "{}: no transform for frame {}", o.transforms->string(),
					in.files[i].filename().string());
			const FrameTransform &t = given->frames[*at];
			matrices.push_back(t.matrix);
			report.frames[i].report = t.report;
			report.frames[i].displacement = t.displacement;
			if (t.displacement)
				fields[i] = std::make_shared<const DisplacementField>(*t.displacement);
			if (t.report && !t.report->ok) {
				if (static_cast<int>(i) == result.reference)
					throw_error(ExitCode::bad_input, "{}: the reference frame {} is marked rejected", o.transforms->string(),
						in.files[i].filename().string());
				progress.warn(fmt::format("{}: left out, rejected in {}: {}", in.files[i].string(), o.transforms->string(),
					t.report->reason));
				transforms[i].reset();
			}
		}
		// The file's matrices may be relative to another reference: re-express them against ours. Its
		// displacement fields are in its reference's coordinates, so they need that reference.
		const Matrix3 to_ref = matrices[result.reference].inverse();
		if (std::any_of(fields.begin(), fields.end(), [](const auto &f) { return f != nullptr; }) &&
			mapping_rms(to_ref, Matrix3::identity(), ref.width, ref.height, 3) > 1e-6)
			throw_error(ExitCode::bad_input, "{}: its displacement fields are relative to its own reference frame, not {}: run with "
							 "--reference set to the frame whose matrix is the identity",
				o.transforms->string(), in.files[result.reference].filename().string());
		for (std::size_t i = 0; i < in.files.size(); i++) {
			report.frames[i].matrix = (matrices[i] * to_ref).normalised();
			if (transforms[i])
				transforms[i] = report.frames[i].matrix;
		}
	} else if (o.align != MotionModel::none && in.files.size() > 1) {
		const TransformSet set = estimate_transforms(in, working, result.reference, o.align, mask, o.on_align_failure,
			o.max_residual, o.local_grid, o.tca, threads, progress, &work, &result.alignments_reused);
		tca = set.tca;
		for (std::size_t i = 0; i < in.files.size(); i++) {
			transforms[i] = set.frames[i].matrix;
			report.frames[i] = set.frames[i];
			if (set.frames[i].displacement)
				fields[i] = std::make_shared<const DisplacementField>(*set.frames[i].displacement);
			if (!set.frames[i].report->ok)
				transforms[i].reset();
		}
	} else if (o.tca) {
		tca = measure_tca(in, working, result.reference, mask, threads, progress);
	}
	for (std::size_t i = 0; i < in.files.size(); i++)
		if (!transforms[i])
			result.rejected.push_back(in.files[i]);

	// A frame frame selection leaves out: named, in the report, and out of the stack.
	auto leave_out = [&](const Dropped &d) {
		transforms[d.index].reset();
		result.dropped.push_back(in.files[d.index]);
		report.frames[d.index].stacking.emplace(report.frames[d.index].stacking.value_or(StackingReport{})).dropped = d.reason;
		progress.warn(fmt::format("{}: left out, {}", in.files[d.index].string(), d.reason));
	};
	// Frames the alignment's model fits much worse than the burst's good fits (selection.hpp).
	std::vector<std::optional<double>> residual(in.files.size());
	for (std::size_t i = 0; i < in.files.size(); i++)
		if (transforms[i] && report.frames[i].report)
			residual[i] = report.frames[i].report->residual_rms;
	for (const Dropped &d : select_misaligned(residual, result.reference, o.selection.reject_misaligned))
		leave_out(d);

	// The frames as they are stacked: in linear light when asked, then brought to the reference's
	// exposure. Both lazy, before the warp.
	result.linear_light = uses_linear_light(o.linear, ref);
	if (result.linear_light)
		progress.note("stacking in linear light (sRGB curve)");
	std::vector<vips::VImage> prepared = working;
	if (result.linear_light)
		for (std::size_t i = 0; i < in.files.size(); i++)
			prepared[i] = srgb_to_linear(working[i], in.infos[i].alpha);
	result.exposures.assign(in.files.size(), std::nullopt);
	if (o.normalize != Normalize::none) {
		// A libvips failure here is the file's (a decoder giving up on a second read, say).
		auto on_file = [&](std::size_t i, auto &&measure) {
			try {
				return measure();
			} catch (const vips::VError &) {
				throw Error(ExitCode::bad_input, about_file(in.files[i].string(), vips_error_line()));
			}
		};
		std::optional<ExposureProxy> proxy; // made when a frame needs it
		for (std::size_t i = 0; i < in.files.size(); i++) {
			if (!transforms[i] || static_cast<int>(i) == result.reference)
				continue;
			if (cancel_requested())
				throw_error(ExitCode::interrupted, "interrupted");
			progress.update("exposure", static_cast<double>(i) / in.files.size(), -1);
			if (!proxy)
				proxy = on_file(result.reference, [&] { return exposure_proxy({prepared[result.reference], ref.alpha}, mask); });
			const auto fit = on_file(i, [&] {
				return estimate_exposure(*proxy, {prepared[i], in.infos[i].alpha}, FrameMap(*transforms[i], fields[i], grid_of_reference),
					o.normalize == Normalize::gain_offset);
			});
			const std::string name = in.files[i].filename().string();
			if (!fit) {
				progress.warn(fmt::format("{}: too little usable overlap with the reference to measure its exposure; left as it is", name));
				continue;
			}
			result.exposures[i] = fit;
			report.frames[i].stacking = StackingReport{.gain = fit->gain, .offset = fit->offset};
			progress.note(fmt::format("exposure {}: gain {:.4f}{} ({} of {} proxy pixels agree)", name, fit->gain,
				o.normalize == Normalize::gain_offset ? fmt::format(", offset {:+.5f}", fit->offset) : "", fit->inliers, fit->pairs));
			prepared[i] = normalize_exposure(prepared[i], in.infos[i].alpha, *fit);
		}
		progress.update("exposure", 1.0, 0);
		result.exposures[result.reference] = ExposureFit{};
		report.frames[result.reference].stacking = StackingReport{.gain = 1.0, .offset = 0.0};
	}

	// The frames' sharpness and noise as decoded (`check`'s figures) for frame selection and the
	// sharpness weights; the noise weights take each frame's noise as stacked instead (exposure and
	// linear light change it). The report holds what was measured.
	const bool by_sharpness = o.selection.active() || (weighted && o.weight == FrameWeight::sharpness);
	const std::vector<Sharpness> as_stacked =
		weighted && o.weight == FrameWeight::noise ? measure_frames(in, prepared, Measured::as_stacked, progress) : std::vector<Sharpness>{};
	result.sharpness = by_sharpness ? sharpness_as_decoded() : as_stacked;
	for (std::size_t i = 0; i < result.sharpness.size(); i++) {
		StackingReport &r = report.frames[i].stacking.emplace(report.frames[i].stacking.value_or(StackingReport{}));
		if (by_sharpness)
			r.sharpness = result.sharpness[i].sharpness;
		r.noise = result.sharpness[i].noise;
	}
	if (o.selection.active()) {
		std::vector<bool> candidate;
		for (const auto &t : transforms)
			candidate.push_back(t.has_value());
		for (const Dropped &d : select_frames(result.sharpness, candidate, result.reference, o.selection))
			leave_out(d);
	}
	result.frames = static_cast<int>(std::count_if(transforms.begin(), transforms.end(), [](const auto &t) { return t.has_value(); }));

	// The output's window of the reference's grid.
	std::vector<FrameArea> areas;
	for (std::size_t i = 0; i < in.files.size(); i++)
		if (transforms[i])
			areas.push_back({FrameMap(*transforms[i], fields[i], full), in.infos[i].width, in.infos[i].height});
	result.geometry = crop_geometry(o.crop, full, areas);
	if (o.crop != Crop::reference)
		progress.note(fmt::format("crop {}: {}x{} output pixels at ({}, {}) of the reference's {}x{}", crop_name(o.crop),
			result.geometry.width, result.geometry.height, result.geometry.left, result.geometry.top, full.width, full.height));

	spec.displaced = std::any_of(fields.begin(), fields.end(), [](const auto &f) { return f != nullptr; });
	result.plan = plan_for(o, spec, result.frames, threads, result.geometry.width);
	progress.note(result.plan.describe());

	// The kernel merge's and robust drizzle's robustness and the kernel's flat areas are in units of
	// the frames' noise; the sharpening's regularisation in units of their noise at the pixel scale,
	// weighed against the signal's detail: all measured from the frames against each other (noise.hpp).
	NoiseEstimate noise;
	if (measures_consensus(spec) || o.sharpen.amount > 0)
		noise = measure_noise(in, prepared, transforms, fields, result, mask, progress);
	if (measures_consensus(spec)) {
		spec.regression.noise = noise.sigma;
		// Never a stricter unit for the chroma than for the luminance: JPEG and demosaicing leave the
		// chroma errors coarser than the low-pass sees (a JPEG burst's chroma blocks differ from frame
		// to frame), and a unit below the luminance's took them for moving things (README, kernel).
		spec.regression.chroma_noise = std::max(noise.chroma, noise.sigma);
	}
	if (o.merge == Merge::kernel)
		progress.note(fmt::format("kernel merge: detail {} px, stretch {}, denoise {}, robustness {}", spec.regression.detail,
			spec.regression.stretch, spec.regression.denoise, spec.regression.robustness));
	if (o.merge == Merge::drizzle)
		progress.note(spec.regression.robustness > 0
				? fmt::format("robust drizzle: pixfrac {}, robustness {}", o.pixfrac, spec.regression.robustness)
				: fmt::format("drizzle: pixfrac {}, no robustness", o.pixfrac));

	std::vector<double> weights(in.files.size(), 1.0);
	if (weighted) {
		weights = frame_weights(o.weight == FrameWeight::noise ? as_stacked : result.sharpness, o.weight);
		for (std::size_t i = 0; i < in.files.size(); i++)
			if (transforms[i]) {
				result.weights.push_back(weights[i]);
				progress.note(fmt::format("weight {:.4f}: {}", weights[i], in.files[i].filename().string()));
			}
	}
	std::vector<StackFrame> frames;
	std::vector<fs::path> stacked;
	for (std::size_t i = 0; i < in.files.size(); i++) {
		if (!transforms[i])
			continue;
		stacked.push_back(in.files[i]);
		StackFrame f;
		f.weight = weights[i];
		f.working = prepared[i];
		f.width = in.infos[i].width;
		f.height = in.infos[i].height;
		f.alpha = in.infos[i].alpha;
		f.reference = static_cast<int>(i) == result.reference;
		f.output_to_frame = FrameMap(*transforms[i], fields[i], result.geometry);
		f.footprint = frame_footprint(f.output_to_frame, f.width, f.height, result.geometry);
		f.warped = warp_to_output(f.working, f.output_to_frame, result.geometry, o.kernel, tca);
		frames.push_back(std::move(f));
	}

	spec.geometry = result.geometry;
	spec.plan = result.plan;
	spec.computed_pixels = std::make_shared<std::atomic<std::uint64_t>>(0);
	if (o.mask_reduce)
		spec.reference_only = warp_to_output(*mask, output_to_frame(Matrix3::identity(), result.geometry), result.geometry,
			Kernel::nearest).cast(VIPS_FORMAT_UCHAR);
	// The spooled reference carries its file's header fields (ICC, EXIF, XMP) through its pipeline.
	const vips::VImage reference_image = working[result.reference];
	vips::VImage reduced = reduce_stack(frames, spec);
	if (o.sharpen.active()) {
		// The stack's noise: a colour band's (luminance x sqrt(C) for independent bands) over sqrt(N).
		const double stacked_noise = noise.fine * std::sqrt(static_cast<double>(spec.colour_bands)) / std::sqrt(static_cast<double>(result.frames));
		const int values = static_cast<int>(spec.statistics.size()) * spec.colour_bands;
		reduced = sharpen_values(reduced, values, merge_blur(o.merge, o.scale, o.pixfrac, spec.regression), stacked_noise, noise.signal, o.sharpen,
			threads);
	}
	const std::vector<BandGroup> groups = band_groups(spec);
	const vips::VImage encoded = encode_reduced(reduced, o, groups, result.linear_light, result.frames);

	// The reduction, band by band into the work folder (finished bands of an interrupted run are kept),
	// then the outputs streamed from the bands.
	const std::vector<Band> bands = work.bands(band_layout(result.geometry, encoded, frames, stacked), result.geometry,
		o.band_rows > 0 ? o.band_rows : default_band_rows(result.geometry.height));
	result.bands = static_cast<int>(bands.size());
	int to_compute = 0;
	for (const Band &b : bands)
		to_compute += work.band_done(b) ? 0 : b.height;
	BandProgress band_progress(progress, result.geometry.height, to_compute);
	std::vector<fs::path> band_files;
	int done = 0, computed = 0;
	for (const Band &b : bands) {
		if (work.band_done(b)) {
			result.bands_reused++;
		} else {
			band_progress.begin(b, done, computed);
			reduce_band(encoded, b, work.band_file(b), band_progress, "stack");
			computed += b.height;
		}
		done += b.height;
		band_files.push_back(work.band_file(b));
	}
	if (result.bands_reused > 0)
		progress.note(fmt::format("resumed: {} of {} bands were finished already", result.bands_reused, result.bands));
	result.computed_pixels = *spec.computed_pixels;
	const vips::VImage combined = assemble_bands(band_files, bands, encoded.width(), encoded.bands(), encoded.format());
	write_outputs(combined, o, groups, o.crop == Crop::none, reference_image, progress, result);
	result.report = o.out_dir / "transforms.json";
	report.tca = tca;
	write_transforms(result.report, with_unreadable(report, in));
	result.reference = static_cast<int>(std::find(in.all.begin(), in.all.end(), in.files[result.reference]) - in.all.begin());
	work.finish();
	return result;
}

} // namespace superstack
