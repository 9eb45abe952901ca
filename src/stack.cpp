// stack -- the run pipeline, in order.
#include "superstack/stack.hpp"

#include "superstack/cancel.hpp"
#include "superstack/error.hpp"
#include "superstack/frame.hpp"
#include "superstack/linear_light.hpp"
#include "superstack/mask.hpp"
#include "superstack/sharpness.hpp"
#include "superstack/spool.hpp"
#include "superstack/tca.hpp"

#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <thread>

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

std::uint64_t free_bytes(const fs::path &dir)
{
	struct statvfs s {};
	if (statvfs(dir.c_str(), &s) != 0)
		return UINT64_MAX;
	return static_cast<std::uint64_t>(s.f_bavail) * s.f_frsize;
}

void ensure_writable_dir(const fs::path &dir)
{
	std::error_code ec;
	fs::create_directories(dir, ec);
	if (!fs::is_directory(dir, ec))
		throw_error(ExitCode::processing, "{}: cannot create output folder", dir.string());
	if (access(dir.c_str(), W_OK) != 0)
		throw_error(ExitCode::processing, "{}: output folder is not writable", dir.string());
}

// Writes one file per band group (each statistic, the coverage when asked and the reject map). The
// reduced image is encoded whole, in one operation: taking it apart first would make libvips compute
// every tile once per part. With a single output it is saved directly; with several, the encoded image
// is written once to a work file (one pass over the stack) and each output streams out of that.
// `linear`: the statistics are linear light, encoded back by the sRGB curve. `alpha`: each statistic's
// file gets an alpha band, opaque where the count band (then present) is above 0.
void write_outputs(const vips::VImage &reduced, const RunOptions &o, const std::vector<BandGroup> &groups, bool linear,
	bool alpha, const vips::VImage &reference, const fs::path &work, Progress &progress, RunResult &result)
{
	const VipsBandFormat stored = o.save.depth == Depth::f32 ? VIPS_FORMAT_FLOAT
		: o.save.depth == Depth::u8                      ? VIPS_FORMAT_UCHAR
								 : VIPS_FORMAT_USHORT;
	// Statistics scaled to the stored range, counts as they are; one format for all bands that holds
	// both (8-bit statistics travel as 16-bit beside a count that may pass 255).
	const double full = o.save.depth == Depth::f32 ? 1.0 : o.save.depth == Depth::u8 ? 255.0 : 65535.0;
	const VipsBandFormat combined_format =
		o.save.depth == Depth::f32 || result.frames > 65535 ? VIPS_FORMAT_FLOAT : VIPS_FORMAT_USHORT;
	std::vector<double> gain;
	int value_bands = 0;
	const BandGroup *count = nullptr;
	for (const BandGroup &g : groups) {
		gain.insert(gain.end(), static_cast<std::size_t>(g.count), g.is_count ? 1.0 : full);
		value_bands += g.is_count ? 0 : g.count;
		if (g.name == "coverage")
			count = &g;
	}
	vips::VImage values = reduced;
	if (linear && value_bands > 0) {
		const vips::VImage encoded = linear_to_srgb(reduced.extract_band(0, vips::VImage::option()->set("n", value_bands)));
		values = value_bands == reduced.bands()
			? encoded
			: encoded.bandjoin(reduced.extract_band(value_bands, vips::VImage::option()->set("n", reduced.bands() - value_bands)));
	}
	vips::VImage encoded = values.linear(gain, {0.0});
	if (combined_format != VIPS_FORMAT_FLOAT)
		encoded = encoded.round(VIPS_OPERATION_ROUND_RINT); // then cast() clamps: never wraps
	encoded = encoded.cast(combined_format);

	// A band group of `source`, as the file it becomes.
	auto part_of = [&](const vips::VImage &source, const BandGroup &g) {
		vips::VImage part = source.extract_band(g.first, vips::VImage::option()->set("n", g.count));
		if (g.is_count)
			return part.copy(vips::VImage::option()->set("interpretation", VIPS_INTERPRETATION_MULTIBAND));
		if (part.format() != stored)
			part = part.cast(stored);
		if (alpha)
			part = part.bandjoin(((source.extract_band(count->first) > 0.0) * (full / 255.0)).cast(stored)); // 255 where true
		part = with_metadata_of(part, reference);
		return part.copy(vips::VImage::option()->set("interpretation", interpretation_for(g.count, o.save.depth)));
	};
	std::vector<const BandGroup *> files;
	for (const BandGroup &g : groups)
		if (g.name != "coverage" || o.save_coverage)
			files.push_back(&g);
	if (files.size() == 1 && !alpha) {
		const fs::path path = o.out_dir / (files[0]->name + ".tif");
		save_tiff(part_of(encoded, *files[0]), path, o.save, progress, "stack");
		result.outputs.push_back(path);
		return;
	}
	// The work file is raw pixels (libvips' rawsave converts nothing; tiffsave would split and rejoin a
	// many-band image, pulling every tile of the stack twice) read back with the spool's pread reader.
	const fs::path combined_path = work / "combined.raw";
	{
		EvalMonitor monitor(encoded, progress, "stack");
		if (vips_rawsave(encoded.get_image(), combined_path.c_str(), nullptr)) {
			if (cancel_requested())
				throw_error(ExitCode::interrupted, "interrupted");
			throw_error(ExitCode::processing, "{}: {}", combined_path.string(), vips_error_line());
		}
	}
	const vips::VImage combined = open_raw_file(combined_path, encoded.width(), encoded.height(), encoded.bands(),
		encoded.format(), VIPS_INTERPRETATION_MULTIBAND);
	for (const BandGroup *g : files) {
		const fs::path path = o.out_dir / (g->name + ".tif");
		save_tiff(part_of(combined, *g), path, o.save, progress, "write " + g->name);
		result.outputs.push_back(path);
	}
	std::error_code ec;
	fs::remove(combined_path, ec);
}

} // namespace

namespace {

// The inputs, probed (headers only: a missing or broken frame fails before any heavy work).
struct Inputs {
	std::vector<fs::path> files;
	std::vector<FrameInfo> infos;
	std::optional<int> reference; // unknown yet for `sharpest`
	int colour_bands = 1;         // the working layout: the reference's (the first frame's for sharpest)
};

Inputs probe_inputs(const std::vector<std::string> &inputs, const std::optional<std::string> &reference)
{
	Inputs in;
	in.files = expand_inputs(inputs);
	in.reference = resolve_reference(reference, in.files);
	for (const auto &f : in.files)
		in.infos.push_back(probe_frame(f));
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

void check_free_space(const fs::path &at, std::uint64_t need)
{
	if (free_bytes(at) < need)
		throw_error(ExitCode::processing, "{}: not enough free disk space ({} needed for the frame spool and results, {} free)",
			at.string(), format_bytes(need), format_bytes(free_bytes(at)));
}

// Every frame decoded once into the spool, in the working layout.
std::vector<vips::VImage> decode_frames(const Inputs &in, Spool &spool, Progress &progress)
{
	std::vector<vips::VImage> working;
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
			std::throw_with_nested(Error(e.code(), fmt::format("frame {}", i)));
		}
	}
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

// Every frame's noise-compensated sharpness and noise (one streaming pass over each).
std::vector<Sharpness> measure_frames(const Inputs &in, const std::vector<vips::VImage> &working, Progress &progress)
{
	std::vector<Sharpness> measured;
	for (std::size_t i = 0; i < working.size(); i++) {
		if (cancel_requested())
			throw_error(ExitCode::interrupted, "interrupted");
		progress.update("sharpness", static_cast<double>(i) / working.size(), -1);
		try {
			measured.push_back(measure_sharpness(working_luminance(working[i], in.infos[i].alpha)));
		} catch (const vips::VError &) {
			throw Error(ExitCode::bad_input, about_file(in.files[i].string(), vips_error_line()));
		}
		progress.note(fmt::format("sharpness {:.4g} (noise {:.4f}): {}", measured.back().sharpness, measured.back().noise,
			in.files[i].filename().string()));
	}
	progress.update("sharpness", 1.0, 0);
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
	MotionModel model, const std::optional<vips::VImage> &mask, AlignFailure on_failure, double max_residual,
	bool tca, int threads, Progress &progress)
{
	std::vector<AlignFrame> frames;
	for (std::size_t i = 0; i < working.size(); i++)
		frames.push_back({working[i], in.infos[i].alpha, in.files[i].filename().string()});
	AlignOptions options;
	options.model = model;
	options.threads = threads;
	options.max_residual = max_residual;
	const std::vector<FrameAlignment> aligned = align_frames(frames, reference, mask, options, progress);
	TransformSet set;
	set.reference = reference;
	for (std::size_t i = 0; i < aligned.size(); i++) {
		const FrameAlignment &a = aligned[i];
		AlignmentReport r{std::string(motion_model_name(a.model)), a.patches, a.inliers, a.residual_rms, a.ok, a.reason};
		set.frames.push_back({in.files[i].string(), a.matrix, r});
		if (a.ok) {
			progress.note(fmt::format("aligned {}: {} of {} patches, residual {:.3f} px", in.files[i].filename().string(),
				a.inliers, a.patches, a.residual_rms));
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
	const Inputs in = probe_inputs(o.inputs, o.reference);
	if (o.mask)
		probe_frame(*o.mask); // a missing or broken mask fails before any heavy work
	const int threads = resolved_threads(o.threads);
	vips_concurrency_set(threads);
	fs::path dir = o.output.parent_path();
	if (dir.empty())
		dir = ".";
	ensure_writable_dir(dir);
	const fs::path space_at = o.work_dir.value_or(dir);
	check_free_space(space_at, spool_bytes_of(in));
	Spool spool(space_at / fmt::format(".superstack-work-{}", getpid()));
	const std::vector<vips::VImage> working = decode_frames(in, spool, progress);
	const int reference = in.reference ? *in.reference : sharpest_frame(in, measure_frames(in, working, progress), progress);
	AlignRunResult result;
	result.transforms = estimate_transforms(in, working, reference, o.align, open_reference_mask(o.mask, in.infos[reference], spool),
		o.on_align_failure, o.max_residual, o.tca, threads, progress);
	for (const auto &f : result.transforms.frames)
		result.rejected += f.report && !f.report->ok;
	write_transforms(o.output, result.transforms);
	return result;
}

RunResult run_stack(const RunOptions &o, Progress &progress)
{
	RunResult result;
	if (o.statistics.empty() && !o.save_coverage)
		throw_error(ExitCode::usage, "--reduce names no statistic");
	check_clip_options(o.clip);
	check_selection_options(o.selection);
	if (o.save_rejects && std::none_of(o.statistics.begin(), o.statistics.end(), rejects_samples))
		throw_error(ExitCode::usage, "--save-rejects needs sigma-clip, winsorized or trimmed in --reduce");
	if (o.mask_reduce && !o.mask)
		throw_error(ExitCode::usage, "--mask-reduce needs --mask");
	const bool weighted = std::find(o.statistics.begin(), o.statistics.end(), Statistic::weighted) != o.statistics.end();
	const Inputs in = probe_inputs(o.inputs, o.reference);
	ReduceSpec spec;
	spec.colour_bands = in.colour_bands;
	spec.statistics = o.statistics;
	spec.clip = o.clip;
	spec.merge = o.merge;
	spec.pixfrac = o.pixfrac;
	// --crop none marks uncovered pixels by an alpha band made from the count.
	spec.coverage = o.save_coverage || o.crop == Crop::none;
	spec.rejects = o.save_rejects;
	if (o.mask)
		probe_frame(*o.mask); // a missing or broken mask fails before any heavy work
	std::optional<TransformSet> given;
	if (o.transforms)
		given = read_transforms(*o.transforms);

	const int threads = resolved_threads(o.threads);
	vips_concurrency_set(threads);
	ensure_writable_dir(o.out_dir);
	const fs::path work = o.work_dir.value_or(o.out_dir) / fmt::format(".superstack-work-{}", getpid());
	result.spool_bytes = spool_bytes_of(in);
	{
		// Outputs of the largest frame's grid: the reference is not known yet for `sharpest`.
		int w = 0, h = 0;
		for (const auto &info : in.infos)
			if (!in.reference || &info == &in.infos[*in.reference])
				w = std::max(w, info.width), h = std::max(h, info.height);
		const OutputGeometry g = OutputGeometry::for_reference(w, h, o.scale);
		const int bytes = o.save.depth == Depth::f32 ? 4 : 2;
		const std::uint64_t out_bytes = static_cast<std::uint64_t>(g.width) * g.height * 2 * bytes * reduced_bands(spec);
		check_free_space(o.work_dir.value_or(o.out_dir), result.spool_bytes + out_bytes);
	}
	progress.note(fmt::format("frame spool: {} in {}", format_bytes(result.spool_bytes), work.string()));

	Spool spool(work);
	const std::vector<vips::VImage> working = decode_frames(in, spool, progress);
	result.reference = in.reference ? *in.reference : sharpest_frame(in, measure_frames(in, working, progress), progress);
	const FrameInfo &ref = in.infos[result.reference];
	const std::optional<vips::VImage> mask = open_reference_mask(o.mask, ref, spool);
	const OutputGeometry full = OutputGeometry::for_reference(ref.width, ref.height, o.scale);

	// Transforms: from the file, estimated here, or the identity (frames taken as aligned). Frames
	// the alignment rejected are left out. `report` is what OUTDIR/transforms.json will say.
	std::vector<std::optional<Matrix3>> transforms(in.files.size(), Matrix3::identity());
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
			if (t.report && !t.report->ok) {
				if (static_cast<int>(i) == result.reference)
					throw_error(ExitCode::bad_input, "{}: the reference frame {} is marked rejected", o.transforms->string(),
						in.files[i].filename().string());
				progress.warn(fmt::format("{}: left out, rejected in {}: {}", in.files[i].string(), o.transforms->string(),
					t.report->reason));
				transforms[i].reset();
			}
		}
		// The file's matrices may be relative to another reference: re-express them against ours.
		const Matrix3 to_ref = matrices[result.reference].inverse();
		for (std::size_t i = 0; i < in.files.size(); i++) {
			report.frames[i].matrix = (matrices[i] * to_ref).normalised();
			if (transforms[i])
				transforms[i] = report.frames[i].matrix;
		}
	} else if (o.align != MotionModel::none && in.files.size() > 1) {
		const TransformSet set = estimate_transforms(in, working, result.reference, o.align, mask, o.on_align_failure,
			o.max_residual, o.tca, threads, progress);
		tca = set.tca;
		for (std::size_t i = 0; i < in.files.size(); i++) {
			transforms[i] = set.frames[i].matrix;
			report.frames[i] = set.frames[i];
			if (!set.frames[i].report->ok)
				transforms[i].reset();
		}
	} else if (o.tca) {
		tca = measure_tca(in, working, result.reference, mask, threads, progress);
	}
	for (std::size_t i = 0; i < in.files.size(); i++)
		if (!transforms[i])
			result.rejected.push_back(in.files[i]);

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
				return estimate_exposure(*proxy, {prepared[i], in.infos[i].alpha}, *transforms[i], o.normalize == Normalize::gain_offset);
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

	// Sharpness and noise of the frames as stacked (exposure and linear light change both), for frame
	// selection and the weights.
	if (o.selection.active() || weighted) {
		result.sharpness = measure_frames(in, prepared, progress);
		for (std::size_t i = 0; i < in.files.size(); i++) {
			StackingReport &r = report.frames[i].stacking.emplace(report.frames[i].stacking.value_or(StackingReport{}));
			r.sharpness = result.sharpness[i].sharpness;
			r.noise = result.sharpness[i].noise;
		}
	}
	if (o.selection.active()) {
		std::vector<bool> candidate;
		for (const auto &t : transforms)
			candidate.push_back(t.has_value());
		for (const Dropped &d : select_frames(result.sharpness, candidate, result.reference, o.selection)) {
			transforms[d.index].reset();
			result.dropped.push_back(in.files[d.index]);
			report.frames[d.index].stacking->dropped = d.reason;
			progress.warn(fmt::format("{}: left out, {}", in.files[d.index].string(), d.reason));
		}
	}
	result.frames = static_cast<int>(std::count_if(transforms.begin(), transforms.end(), [](const auto &t) { return t.has_value(); }));

	// The output's window of the reference's grid.
	std::vector<FrameArea> areas;
	for (std::size_t i = 0; i < in.files.size(); i++)
		if (transforms[i])
			areas.push_back({output_to_frame(*transforms[i], full), in.infos[i].width, in.infos[i].height});
	result.geometry = crop_geometry(o.crop, full, areas);
	if (o.crop != Crop::reference)
		progress.note(fmt::format("crop {}: {}x{} output pixels at ({}, {}) of the reference's {}x{}", crop_name(o.crop),
			result.geometry.width, result.geometry.height, result.geometry.left, result.geometry.top, full.width, full.height));

	BudgetRequest request;
	request.memory_bytes = o.memory_bytes;
	request.threads = threads;
	request.frames = result.frames;
	if (o.mask_reduce)
		spec.reference_only = vips::VImage(); // counted by describe_reduction; set below
	describe_reduction(spec, request);
	request.scale = o.scale;
	request.output_width = result.geometry.width;
	const int bytes = o.save.depth == Depth::f32 ? 4 : o.save.depth == Depth::u8 ? 1 : 2;
	request.output_bytes_per_pixel = reduced_bands(spec) * std::max(bytes, 2);
	result.plan = plan_memory(request);
	progress.note(result.plan.describe());

	std::vector<double> weights(in.files.size(), 1.0);
	if (weighted) {
		weights = frame_weights(result.sharpness, o.weight);
		for (std::size_t i = 0; i < in.files.size(); i++)
			if (transforms[i]) {
				result.weights.push_back(weights[i]);
				progress.note(fmt::format("weight {:.4f}: {}", weights[i], in.files[i].filename().string()));
			}
	}
	std::vector<StackFrame> frames;
	for (std::size_t i = 0; i < in.files.size(); i++) {
		if (!transforms[i])
			continue;
		StackFrame f;
		f.weight = weights[i];
		f.working = prepared[i];
		f.width = in.infos[i].width;
		f.height = in.infos[i].height;
		f.alpha = in.infos[i].alpha;
		f.reference = static_cast<int>(i) == result.reference;
		f.output_to_frame = output_to_frame(*transforms[i], result.geometry);
		f.footprint = frame_footprint(f.output_to_frame, f.width, f.height, result.geometry);
		f.warped = warp_to_output(f.working, f.output_to_frame, result.geometry, o.kernel, tca);
		frames.push_back(std::move(f));
	}

	spec.geometry = result.geometry;
	spec.plan = result.plan;
	if (o.mask_reduce)
		spec.reference_only = warp_to_output(*mask, output_to_frame(Matrix3::identity(), result.geometry), result.geometry,
			Kernel::nearest).cast(VIPS_FORMAT_UCHAR);
	// The spooled reference carries its file's header fields (ICC, EXIF, XMP) through its pipeline.
	const vips::VImage reference_image = working[result.reference];
	vips::VImage reduced = reduce_stack(std::move(frames), spec);
	write_outputs(reduced, o, band_groups(spec), result.linear_light, o.crop == Crop::none, reference_image, work, progress, result);
	result.report = o.out_dir / "transforms.json";
	report.tca = tca;
	write_transforms(result.report, report);
	return result;
}

} // namespace superstack
