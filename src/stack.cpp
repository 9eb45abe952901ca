// stack -- the run pipeline, in order.
#include "superstack/stack.hpp"

#include "superstack/cancel.hpp"
#include "superstack/error.hpp"
#include "superstack/frame.hpp"
#include "superstack/spool.hpp"

#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <thread>

namespace superstack {

namespace fs = std::filesystem;

int resolve_reference(const std::optional<std::string> &reference, const std::vector<fs::path> &frames)
{
	if (!reference)
		return 0;
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

// Writes one file per statistic (and the coverage map). The reduced image is encoded whole, in one
// operation: taking it apart first would make libvips compute every tile once per part. With a single
// output it is saved directly; with several, the encoded image is written once to a work file (one
// pass over the stack) and each output streams out of that.
void write_outputs(const vips::VImage &reduced, const RunOptions &o, int colour_bands, const vips::VImage &reference,
	const fs::path &work, Progress &progress, RunResult &result)
{
	const int c = colour_bands;
	const auto &stats = o.statistics;
	const int groups = static_cast<int>(stats.size()) + (o.save_coverage ? 1 : 0);
	const VipsBandFormat stored = o.save.depth == Depth::f32 ? VIPS_FORMAT_FLOAT
		: o.save.depth == Depth::u8                      ? VIPS_FORMAT_UCHAR
								 : VIPS_FORMAT_USHORT;
	// Statistics scaled to the stored range, the count as it is; one format for all bands that holds
	// both (8-bit statistics travel as 16-bit beside a count that may pass 255).
	const double full = o.save.depth == Depth::f32 ? 1.0 : o.save.depth == Depth::u8 ? 255.0 : 65535.0;
	const VipsBandFormat combined_format =
		o.save.depth == Depth::f32 || result.frames > 65535 ? VIPS_FORMAT_FLOAT : VIPS_FORMAT_USHORT;
	std::vector<double> gain(static_cast<std::size_t>(reduced.bands()), full);
	if (o.save_coverage)
		gain.back() = 1.0;
	vips::VImage encoded = reduced.linear(gain, {0.0});
	if (combined_format != VIPS_FORMAT_FLOAT)
		encoded = encoded.round(VIPS_OPERATION_ROUND_RINT); // then cast() clamps: never wraps
	encoded = encoded.cast(combined_format);

	auto name_of = [&](int i) {
		return i < static_cast<int>(stats.size()) ? std::string(statistic_name(stats[i])) : std::string("coverage");
	};
	// Band group i of `source`, as the file it becomes.
	auto part_of = [&](const vips::VImage &source, int i) {
		const bool is_count = i >= static_cast<int>(stats.size());
		vips::VImage part = source.extract_band(is_count ? static_cast<int>(stats.size()) * c : i * c,
			vips::VImage::option()->set("n", is_count ? 1 : c));
		if (is_count) {
			part = part.copy(vips::VImage::option()->set("interpretation", VIPS_INTERPRETATION_MULTIBAND));
			return part;
		}
		if (part.format() != stored)
			part = part.cast(stored);
		part = with_metadata_of(part, reference);
		return part.copy(vips::VImage::option()->set("interpretation", interpretation_for(c, o.save.depth)));
	};
	if (groups == 1) {
		const fs::path path = o.out_dir / (name_of(0) + ".tif");
		save_tiff(part_of(encoded, 0), path, o.save, progress, "stack");
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
	for (int i = 0; i < groups; i++) {
		const fs::path path = o.out_dir / (name_of(i) + ".tif");
		save_tiff(part_of(combined, i), path, o.save, progress, "write " + name_of(i));
		result.outputs.push_back(path);
	}
	std::error_code ec;
	fs::remove(combined_path, ec);
}

} // namespace

RunResult run_stack(const RunOptions &o, Progress &progress)
{
	RunResult result;
	const std::vector<fs::path> files = expand_inputs(o.inputs);
	result.frames = static_cast<int>(files.size());
	result.reference = resolve_reference(o.reference, files);
	if (o.statistics.empty() && !o.save_coverage)
		throw_error(ExitCode::usage, "--reduce names no statistic");

	// Headers first: a missing or broken frame fails before any heavy work.
	std::vector<FrameInfo> infos;
	for (const auto &f : files)
		infos.push_back(probe_frame(f));
	const FrameInfo &ref = infos[result.reference];
	const int colour_bands = ref.colour_bands >= 3 ? 3 : 1;
	result.geometry = OutputGeometry::for_reference(ref.width, ref.height, o.scale);

	// Transforms: from the file, or the identity (frames taken as aligned).
	std::vector<Matrix3> transforms(files.size());
	if (o.transforms) {
		const TransformSet set = read_transforms(*o.transforms);
		for (std::size_t i = 0; i < files.size(); i++) {
			auto at = find_transform(set, files[i]);
			if (!at)
				throw_error(ExitCode::bad_input, "{}: no transform for frame {}", o.transforms->string(),
					files[i].filename().string());
			transforms[i] = set.frames[*at].matrix;
		}
		// The file's matrices may be relative to another reference: re-express them against ours.
		const Matrix3 to_ref = transforms[result.reference].inverse();
		for (auto &t : transforms)
			t = (t * to_ref).normalised();
	}

	const int threads = o.threads > 0 ? o.threads : std::max(1u, std::thread::hardware_concurrency());
	vips_concurrency_set(threads);
	BudgetRequest request;
	request.memory_bytes = o.memory_bytes;
	request.threads = threads;
	request.frames = result.frames;
	request.colour_bands = colour_bands;
	request.order_statistics = std::any_of(o.statistics.begin(), o.statistics.end(), needs_all_samples);
	request.scale = o.scale;
	request.output_width = result.geometry.width;
	const int bytes = o.save.depth == Depth::f32 ? 4 : o.save.depth == Depth::u8 ? 1 : 2;
	request.output_bytes_per_pixel =
		(static_cast<int>(o.statistics.size()) * colour_bands + (o.save_coverage ? 1 : 0)) * std::max(bytes, 2);
	result.plan = plan_memory(request);
	progress.note(result.plan.describe());

	ensure_writable_dir(o.out_dir);
	const fs::path work = o.work_dir.value_or(o.out_dir) / fmt::format(".superstack-work-{}", getpid());
	for (const auto &info : infos)
		result.spool_bytes += Spool::bytes_for(info.width, info.height, info.colour_bands + (info.alpha ? 1 : 0),
			info.format);
	const std::uint64_t out_bytes = static_cast<std::uint64_t>(result.geometry.width) * result.geometry.height *
		request.output_bytes_per_pixel * 2;
	const std::uint64_t need = result.spool_bytes + out_bytes;
	const fs::path space_at = o.work_dir.value_or(o.out_dir);
	if (free_bytes(space_at) < need)
		throw_error(ExitCode::processing, "{}: not enough free disk space ({} needed for the frame spool and results, {} free)",
			space_at.string(), format_bytes(need), format_bytes(free_bytes(space_at)));
	progress.note(fmt::format("frame spool: {} in {}", format_bytes(result.spool_bytes), work.string()));

	Spool spool(work);
	std::vector<StackFrame> frames;
	for (std::size_t i = 0; i < files.size(); i++) {
		if (cancel_requested())
			throw_error(ExitCode::interrupted, "interrupted");
		progress.update("decode", static_cast<double>(i) / files.size(), -1);
		StackFrame f;
		try {
			f.working = open_working_frame(infos[i], colour_bands, spool);
		} catch (const Error &e) {
			std::throw_with_nested(Error(e.code(), fmt::format("frame {}", i)));
		}
		f.width = infos[i].width;
		f.height = infos[i].height;
		f.alpha = infos[i].alpha;
		f.output_to_frame = output_to_frame(transforms[i], result.geometry);
		f.footprint = frame_footprint(f.output_to_frame, f.width, f.height, result.geometry);
		f.warped = warp_to_output(f.working, f.output_to_frame, result.geometry, o.kernel);
		frames.push_back(std::move(f));
	}
	progress.update("decode", 1.0, 0);

	ReduceSpec spec;
	spec.geometry = result.geometry;
	spec.colour_bands = colour_bands;
	spec.statistics = o.statistics;
	spec.coverage = o.save_coverage;
	spec.plan = result.plan;
	// The spooled reference carries its file's header fields (ICC, EXIF, XMP) through its pipeline.
	const vips::VImage reference_image = frames[result.reference].working;
	vips::VImage reduced = reduce_stack(std::move(frames), spec);
	write_outputs(reduced, o, colour_bands, reference_image, work, progress, result);
	return result;
}

} // namespace superstack
