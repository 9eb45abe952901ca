// options -- one option group per subcommand, each with --help and examples.
#include "options.hpp"

#include "superstack/error.hpp"
#include "superstack_version.h"

#include <boost/program_options.hpp>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <initializer_list>
#include <optional>
#include <sstream>

namespace po = boost::program_options;

namespace superstack::cli {

namespace {

constexpr const char *kUsage = R"(usage: superstack <command> [options]

commands:
  run     align frames and stack them into mean, median or robust statistics at a higher resolution
  batch   run every image folder under a root as one stack, with a journal to restart from
  align   estimate the transforms only, into a transforms file with a report per frame
  check   rank frames by sharpness (noise-compensated), with each frame's noise
  synth   make a synthetic burst with known transforms from a built-in chart
  score   PSNR and SSIM of an image against a ground truth

`superstack <command> --help` shows a command's options and examples.
exit codes: 0 success, 1 usage error, 2 bad input, 3 processing failure, 4 batch: some stacks failed,
130 interrupted
)";

constexpr const char *kRunExamples = R"(
examples:
  superstack run burst/ -o out/                       # aligned, mean.tif and median.tif at 2x
  superstack run a.tif b.tif c.tif -o out --scale 1    # plain stacking, no upscale
  superstack run burst/ -o out --reference sharpest --mask moving.png --align similarity
  superstack run burst/ -o out --transforms t.json --reduce median --memory 512M
  superstack run tripod/ -o out --align none           # frames already aligned
  superstack run big/*.tif -o out --depth float --compression zstd --threads 2
  superstack run burst/ -o out --reduce median,sigma-clip,winsorized --save-rejects  # no ghosts
  superstack run burst/ -o out --merge drizzle --save-weights   # robust drizzle and its weight map
  superstack run burst/ -o out --merge drizzle --robustness 0   # plain drizzle
  superstack run burst/ -o out --reduce sigma-clip --kappa 2.5 --iterations 3
  superstack run burst/ -o out --reduce trimmed --trim 0.25     # the mean of the middle half
  superstack run burst/ -o out --reduce weighted --weight sharpness  # sharper frames count more
  superstack run burst/ -o out --reduce min,max --depth float
  superstack run burst/ -o out --normalize gain-offset -v   # exposure per frame, printed
  superstack run burst/ -o out --reject-blurry 0.2           # drop the 20% least sharp (never the reference)
  superstack run burst/ -o out --min-sharpness 0.04          # drop frames below a sharpness from `check`
  superstack run jpegs/ -o out --linear off                  # average the sRGB code values instead of light
  superstack run burst/ -o out --crop common                 # only where every frame reaches
  superstack run burst/ -o out --crop none --save-coverage   # every frame's area, alpha where none reaches
  superstack run street/ -o out --mask person.png --mask-reduce   # the person from the reference alone
  superstack run big/ -o out --resume                        # continue a run that was killed: finished bands are kept
  superstack run card/ -o out --on-error skip                # a truncated frame is left out (named), not fatal
)";

constexpr const char *kBatchExamples = R"(
examples:
  superstack batch shoots/ -o stacked/                 # every image folder under shoots/, one after another
  superstack batch shoots/ -o stacked/ --dry-run       # what would run: frames, output size, memory
  superstack batch shoots/ -o stacked/ --reduce median --memory 2G --on-error fail
  superstack batch shoots/ -o stacked/                 # again: skips what is done, retries what failed or was cut
)";

constexpr const char *kCheckExamples = R"(
examples:
  superstack check burst/                              # a table, sharpest first
  superstack check burst/*.jpg --json                  # the same as JSON
  superstack check burst/ && superstack run burst/ -o out --reject-blurry 0.25
)";

constexpr const char *kAlignExamples = R"(
examples:
  superstack align burst/ -o transforms.json          # then: run burst/ -o out --transforms transforms.json
  superstack align burst/ -o t.json --align affine --reference sharpest
  superstack align burst/ -o t.json --mask person.png --on-align-failure fail
  superstack align burst/ -o t.json --local-grid 32      # and a displacement field per frame (parallax, lens)
)";

constexpr const char *kAlignHelp =
	"motion model: none, translation, euclidean, similarity, affine, homography (default homography: "
	"handheld motion is mostly camera rotation, which maps a scene by a homography)";

constexpr const char *kSynthExamples = R"(
examples:
  superstack synth -o burst/                           # 16 frames of 640x480, scale 2, noise 2%
  superstack synth -o burst --frames 8 --size 1920x1080 --noise 0.01 --seed 7
  superstack synth -o burst --source photo.tif --scale 2 --jpeg
  superstack synth -o burst --moving-object 0.05 --moving-frames 6 --moving-texture   # a ghost to remove
  superstack synth -o burst --local-motion 2                                    # frames that bend
  superstack synth -o burst --exposure-variation 0.3 --blur-frames 3,7,11   # for --normalize and --reject-blurry
)";

constexpr const char *kScoreExamples = R"(
examples:
  superstack score out/median.tif burst/truth.tif
  superstack score out/mean.tif burst/truth.tif --crop 16 --json
)";

HelpText version_text()
{
	return HelpText{fmt::format("superstack {} (libvips {})\n", SUPERSTACK_VERSION, vips_version_string())};
}

std::string help_of(const std::string &synopsis, const po::options_description &desc, const char *examples)
{
	std::ostringstream s;
	s << synopsis << "\n\n" << desc << examples;
	return s.str();
}

void add_common(po::options_description &desc, bool &quiet, bool &verbose)
{
	desc.add_options()
		("help,h", "show this help")
		("quiet,q", po::bool_switch(&quiet), "print nothing but errors")
		("verbose,v", po::bool_switch(&verbose), "print the memory plan and other details")
		("version", "print the version and exit");
}

po::variables_map parse(const po::options_description &desc, const po::positional_options_description &pos,
	const std::vector<std::string> &args)
{
	po::variables_map vm;
	try {
		po::store(po::command_line_parser(args).options(desc).positional(pos).run(), vm);
		po::notify(vm);
	} catch (const po::error &e) {
		throw_error(ExitCode::usage, "{}", e.what());
	}
	return vm;
}

// "640x480": two positive decimal integers, nothing else (no signs, spaces or trailing text).
std::pair<int, int> parse_dimensions(const std::string &text)
{
	const auto x = text.find_first_of("xX");
	int w = 0, h = 0;
	auto whole_number = [](std::string_view digits, int &value) {
		if (digits.empty() || !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; }))
			return false;
		const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
		return ec == std::errc() && end == digits.data() + digits.size() && value > 0;
	};
	if (x == std::string::npos || !whole_number(std::string_view(text).substr(0, x), w) ||
		!whole_number(std::string_view(text).substr(x + 1), h))
		throw_error(ExitCode::usage, "--size must look like 640x480, two whole numbers above 0 (got '{}')", text);
	return {w, h};
}

std::vector<Statistic> parse_statistics(const std::string &text)
{
	std::vector<Statistic> out;
	std::stringstream in(text);
	std::string item;
	while (std::getline(in, item, ',')) {
		if (item.empty())
			continue;
		Statistic s = parse_statistic(item);
		if (std::find(out.begin(), out.end(), s) != out.end())
			throw_error(ExitCode::usage, "--reduce names '{}' twice", item);
		out.push_back(s);
	}
	if (out.empty())
		throw_error(ExitCode::usage, "--reduce needs at least one of {}", statistic_names());
	return out;
}

// The options of the rejecting and weighted statistics, which only those statistics read: giving one
// that no requested statistic reads is a mistake worth a usage error.
struct StatisticFlags {
	ClipOptions clip; // its defaults are the options'
	std::string weight = "noise";
	bool save_rejects = false;
	void add_to(po::options_description &desc)
	{
		desc.add_options()
			("kappa", po::value(&clip.kappa)->default_value(clip.kappa, fmt::format("{}", clip.kappa)), "sigma-clip, winsorized: reject samples beyond kappa sigma of the median (> 0)")
			("iterations", po::value(&clip.iterations)->default_value(clip.iterations), "sigma-clip, winsorized: at most this many rejection passes (1 to 100)")
			("trim", po::value(&clip.trim)->default_value(clip.trim, fmt::format("{}", clip.trim)), "trimmed: fraction of the samples dropped at each end, in [0, 0.5)")
			("weight", po::value(&weight)->default_value("noise"), "weighted: frame weight, noise (inverse noise variance) or sharpness")
			("save-rejects", po::bool_switch(&save_rejects), "also write rejects.tif: per pixel, the samples each rejecting statistic left out");
	}
	void apply_to(RunOptions &o, const po::variables_map &vm) const
	{
		auto requested = [&](std::initializer_list<Statistic> any) {
			return std::any_of(any.begin(), any.end(),
				[&](Statistic s) { return std::find(o.statistics.begin(), o.statistics.end(), s) != o.statistics.end(); });
		};
		auto only_for = [&](const char *option, std::initializer_list<Statistic> any, const char *names) {
			if (!vm[option].defaulted() && !requested(any))
				throw_error(ExitCode::usage, "--{} applies only to {}, which --reduce does not name", option, names);
		};
		only_for("kappa", {Statistic::sigma_clip, Statistic::winsorized}, "sigma-clip and winsorized");
		only_for("iterations", {Statistic::sigma_clip, Statistic::winsorized}, "sigma-clip and winsorized");
		only_for("trim", {Statistic::trimmed}, "trimmed");
		only_for("weight", {Statistic::weighted}, "weighted");
		o.clip = clip; // its ranges, and --save-rejects, are checked by run_stack
		o.weight = parse_frame_weight(weight);
		o.save_rejects = save_rejects;
	}
};

// The options of the stacking stages before the reduction: exposure, frame selection, light, crop,
// the mask's part in the reduction.
struct PreparationFlags {
	std::string normalize = "gain", linear = "auto", crop = "reference";
	double reject_blurry = 0, min_sharpness = 0, reject_misaligned = kDefaultRejectMisaligned;
	bool mask_reduce = false;
	void add_to(po::options_description &desc)
	{
		desc.add_options()
			("normalize", po::value(&normalize)->default_value("gain"), "exposure normalization against the reference: none, gain or gain-offset (robust, on proxies)")
			("reject-blurry", po::value(&reject_blurry)->default_value(0.0, "0"), "drop the floor(F x N) least sharp frames, F in [0, 1) (never the reference)")
			("min-sharpness", po::value(&min_sharpness), "drop frames less sharp than this (the sharpness `superstack check` prints; never the reference)")
			("reject-misaligned", po::value(&reject_misaligned)->default_value(kDefaultRejectMisaligned, "2.5"), "drop frames whose alignment residual is more than R times the burst's good fits (its lower quartile) and above 0.3 px: another viewpoint (parallax) or shake; 0: off (never the reference)")
			("linear", po::value(&linear)->default_value("auto"), "stack in linear light: auto (on for 8-bit sRGB input), on or off")
			("crop", po::value(&crop)->default_value("reference"), "output area: reference (the reference's frame), common (covered by every frame) or none (all frames, alpha where none)")
			("mask-reduce", po::bool_switch(&mask_reduce), "--mask also applies to the stack: masked pixels come from the reference alone");
	}
	void apply_to(RunOptions &o, const po::variables_map &vm) const
	{
		o.normalize = parse_normalize(normalize);
		o.linear = parse_linear_light(linear);
		o.crop = parse_crop(crop);
		o.selection.reject_fraction = reject_blurry;
		if (vm.count("min-sharpness"))
			o.selection.min_sharpness = min_sharpness;
		o.selection.reject_misaligned = reject_misaligned;
		check_selection_options(o.selection);
		o.mask_reduce = mask_reduce;
		if (mask_reduce && !o.mask)
			throw_error(ExitCode::usage, "--mask-reduce needs --mask");
	}
};

Verbosity verbosity_of(bool quiet, bool verbose)
{
	return quiet ? Verbosity::quiet : verbose ? Verbosity::verbose : Verbosity::normal;
}

// --version and --help answer before anything else is checked.
std::optional<HelpText> help_or_version(const po::variables_map &vm, const std::string &synopsis,
	const po::options_description &desc, const char *examples)
{
	if (vm.count("version"))
		return version_text();
	if (vm.count("help"))
		return HelpText{help_of(synopsis, desc, examples)};
	return std::nullopt;
}

// What `run` and `align` both need: frames, an output, a sane thread count.
void check_frames_and_output(const char *verb, const std::vector<std::string> &inputs, const std::string &out,
	const char *output_name, int threads)
{
	if (inputs.empty())
		throw_error(ExitCode::usage, "{}: no input frames given", verb);
	if (out.empty())
		throw_error(ExitCode::usage, "{}: -o {} is required", verb, output_name);
	if (threads < 0 || threads > 1024)
		throw_error(ExitCode::usage, "--threads must be between 0 and 1024");
}

// The alignment options `run` and `align` share.
struct AlignFlags {
	std::string model = "homography", mask, on_failure = "skip", reference;
	double max_residual = 2.0;
	int local_grid = 0;
	bool tca = false;
	void add_to(po::options_description &desc)
	{
		desc.add_options()
			("reference", po::value(&reference), "reference frame: first, sharpest, an index from 0, or a file name (default: first)")
			("align", po::value(&model)->default_value("homography"), kAlignHelp)
			("mask", po::value(&mask), "image in the reference's geometry: pixels that are non-zero (or opaque, with alpha) are ignored by alignment")
			("on-align-failure", po::value(&on_failure)->default_value("skip"), "a frame that cannot be aligned: skip it (named in a warning and the report) or fail")
			("max-residual", po::value(&max_residual)->default_value(2.0), "reject a frame whose fit leaves more than this RMS residual, input pixels")
			("local-grid", po::value(&local_grid)->default_value(0), "also fit each frame a displacement field (parallax, lens distortion) with about N nodes along the reference's longer side, at least 16 px apart; 0: the matrix alone")
			("tca", po::bool_switch(&tca), "measure the lens's chromatic aberration (red and blue against green) on the reference and correct it in every frame's warp");
	}
	// Into RunOptions or AlignRunOptions (the same member names).
	template <typename Options>
	void apply_to(Options &o) const
	{
		if (!reference.empty())
			o.reference = reference;
		o.align = parse_motion_model(model);
		if (!mask.empty())
			o.mask = mask;
		o.on_align_failure = parse_align_failure(on_failure);
		if (!(max_residual > 0) || !std::isfinite(max_residual))
			throw_error(ExitCode::usage, "--max-residual must be a number > 0 (got {})", max_residual);
		o.max_residual = max_residual;
		if (local_grid < 0 || local_grid > 1024)
			throw_error(ExitCode::usage, "--local-grid must be between 0 and 1024 (got {})", local_grid);
		o.local_grid = local_grid;
		o.tca = tca;
	}
};

// Every option of `run` but the inputs and the output, which `batch` takes too.
struct RunFlags {
	RunOptions o;
	std::string kernel = "lanczos3", reduce = "mean,median", memory = "1G", compression = "none", bigtiff = "auto",
		    depth = "16", transforms, workdir, merge = "interpolate", sharpen = "none", on_error;
	AlignFlags align;
	StatisticFlags stats;
	PreparationFlags preparation;
	void add_to(po::options_description &desc, const char *default_on_error)
	{
		on_error = default_on_error;
		align.add_to(desc);
		desc.add_options()
			("scale", po::value(&o.scale)->default_value(2.0), "output pixels per input pixel; any real >= 1 (1: plain stacking)")
			("kernel", po::value(&kernel)->default_value("lanczos3"), "resampling: nearest, linear, cubic, lanczos3")
			("merge", po::value(&merge)->default_value("interpolate"), "how frames reach the output grid: interpolate (resampled), drizzle (their own pixels, shrunk and dropped) or kernel (their own pixels, weighed by steering kernels and robustness)")
			("pixfrac", po::value(&o.pixfrac)->default_value(0.5), "drizzle: the drop's side over the input pixel's, in (0, 1]")
			("kernel-detail", po::value(&o.regression.detail)->default_value(RegressionOptions{}.detail, fmt::format("{}", RegressionOptions{}.detail)), "kernel: the kernel's sd across edges, reference pixels")
			("kernel-denoise", po::value(&o.regression.denoise)->default_value(RegressionOptions{}.denoise), "kernel: where there is no detail, a round kernel this many times --kernel-detail (1: no widening)")
			("robustness", po::value(&o.regression.robustness)->default_value(RegressionOptions{}.robustness), "kernel, drizzle: a frame counts fully where its local mean is within this many expected spreads of the consensus, less beyond (0: off, plain drizzle)")
			("sharpen", po::value(&sharpen)->default_value("none"), "undo part of the known blur (Wiener deconvolution, no overshoot): none, auto, or an amount (auto x it)")
			("unsharp", po::value(&o.sharpen.unsharp)->default_value(0.0), "unsharp mask amount (0: none), after --sharpen")
			("unsharp-sigma", po::value(&o.sharpen.unsharp_sigma)->default_value(1.0), "unsharp mask radius: Gaussian sigma, output pixels")
			("brightness", po::value(&o.sharpen.brightness)->default_value(1.0), "multiply the results by this, last")
			("reduce", po::value(&reduce)->default_value("mean,median"), "statistics to write, comma-separated: mean, median, sigma-clip, winsorized, trimmed, weighted, min, max")
			("transforms", po::value(&transforms), "per-frame transforms file (JSON, e.g. from `superstack align`) instead of aligning")
			("memory", po::value(&memory)->default_value("1G"), "memory budget for the reduction, e.g. 512M, 2G")
			("threads", po::value(&o.threads)->default_value(0), "worker threads (0: one per core)")
			("compression", po::value(&compression)->default_value("none"), "TIFF compression: none, lzw, deflate, zstd")
			("bigtiff", po::value(&bigtiff)->default_value("auto"), "BigTIFF: auto (above 3 GiB), yes, no")
			("depth", po::value(&depth)->default_value("16"), "output samples: 16, 8 or float")
			("save-coverage", po::bool_switch(&o.save_coverage), "also write coverage.tif: the number of frames behind each pixel")
			("save-weights", po::bool_switch(&o.save_weights), "drizzle, kernel: also write weights.tif (32-bit float): the merge's weight sum per pixel")
			("work-dir", po::value(&workdir), "folder for the work files: frame spool and bands (default: the output folder)")
			("on-error", po::value(&on_error)->default_value(default_on_error), "a frame that fails to load or decode: skip it (named in a warning and the report) or fail")
			("band-rows", po::value(&o.band_rows)->default_value(0), "rows per band of the reduction, the unit of work --resume keeps (0: at most 64 bands of at least 64 rows)");
		stats.add_to(desc);
		preparation.add_to(desc);
	}
	void apply_to(const po::variables_map &vm)
	{
		align.apply_to(o);
		if (!transforms.empty() && !vm["align"].defaulted() && o.align != MotionModel::none)
			throw_error(ExitCode::usage, "--transforms and --align exclude each other (the file's transforms are used as they are)");
		if (!(o.scale >= 1.0 && o.scale <= 16.0))
			throw_error(ExitCode::usage, "--scale must be between 1 and 16 (got {})", o.scale);
		o.kernel = parse_kernel(kernel);
		o.merge = parse_merge(merge);
		if (!(o.pixfrac > 0 && o.pixfrac <= 1))
			throw_error(ExitCode::usage, "--pixfrac must be in (0, 1] (got {})", o.pixfrac);
		check_regression_options(o.regression);
		o.sharpen.amount = parse_sharpen(sharpen);
		if (!(o.sharpen.unsharp >= 0 && o.sharpen.unsharp <= 10))
			throw_error(ExitCode::usage, "--unsharp must be in [0, 10] (got {})", o.sharpen.unsharp);
		if (!(o.sharpen.unsharp_sigma >= 0.3 && o.sharpen.unsharp_sigma <= 50))
			throw_error(ExitCode::usage, "--unsharp-sigma must be in [0.3, 50] output pixels (got {})", o.sharpen.unsharp_sigma);
		if (!(o.sharpen.brightness > 0 && o.sharpen.brightness <= 100))
			throw_error(ExitCode::usage, "--brightness must be in (0, 100] (got {})", o.sharpen.brightness);
		o.statistics = parse_statistics(reduce);
		stats.apply_to(o, vm);
		preparation.apply_to(o, vm);
		if (!transforms.empty())
			o.transforms = transforms;
		o.memory_bytes = parse_size(memory, "--memory");
		o.save.compression = parse_compression(compression);
		o.save.bigtiff = parse_bigtiff(bigtiff);
		o.save.depth = parse_depth(depth);
		if (!workdir.empty())
			o.work_dir = workdir;
		o.on_error = parse_frame_errors(on_error);
		if (o.band_rows < 0)
			throw_error(ExitCode::usage, "--band-rows must be >= 0 (got {})", o.band_rows);
	}
};

Command parse_run(const std::vector<std::string> &args)
{
	Command command;
	bool quiet = false, verbose = false, resume = false;
	std::string out;
	std::vector<std::string> inputs;
	RunFlags flags;
	po::options_description desc("superstack run options");
	add_common(desc, quiet, verbose);
	desc.add_options()
		("input", po::value(&inputs)->composing(), "frames: image files or directories")
		("output,o", po::value(&out), "output folder (created if missing)")
		("resume", po::bool_switch(&resume), "continue an interrupted run into the same output folder: its alignments and finished bands are reused");
	flags.add_to(desc, "fail");
	po::positional_options_description pos;
	pos.add("input", -1);
	const auto vm = parse(desc, pos, args);
	if (auto text = help_or_version(vm, "usage: superstack run INPUT... -o OUTDIR [options]", desc, kRunExamples)) {
		command.action = *text;
		return command;
	}
	check_frames_and_output("run", inputs, out, "OUTDIR", flags.o.threads);
	flags.apply_to(vm);
	flags.o.inputs = inputs;
	flags.o.out_dir = out;
	flags.o.resume = resume ? Resume::on : Resume::off;
	command.action = flags.o;
	command.verbosity = verbosity_of(quiet, verbose);
	return command;
}

Command parse_batch(const std::vector<std::string> &args)
{
	Command command;
	BatchCommand b;
	bool quiet = false, verbose = false;
	std::string out;
	std::vector<std::string> roots;
	RunFlags flags;
	po::options_description desc("superstack batch options");
	add_common(desc, quiet, verbose);
	desc.add_options()
		("root", po::value(&roots)->composing(), "ROOT: the folder whose image folders are the stacks")
		("output,o", po::value(&out), "OUTROOT: one output folder per stack, and the journal batch.json")
		("dry-run", po::bool_switch(&b.dry_run), "list the stacks, their state and the output size and memory each needs; run nothing");
	flags.add_to(desc, "skip");
	po::positional_options_description pos;
	pos.add("root", -1);
	const auto vm = parse(desc, pos, args);
	if (auto text = help_or_version(vm, "usage: superstack batch ROOT -o OUTROOT [run options]\n\n"
		"Every folder under ROOT that holds images is one stack, run as `run` would into OUTROOT/<folder>.\n"
		"OUTROOT/batch.json records each stack's state: the same command again skips the stacks done and\n"
		"retries those that failed or were cut off (resuming their finished bands).\n"
		"exit codes: 0 every stack done, 4 some stacks failed (the others done), 1 usage, 130 interrupted", desc, kBatchExamples)) {
		command.action = *text;
		return command;
	}
	if (roots.size() != 1)
		throw_error(ExitCode::usage, "batch: needs exactly one ROOT folder (got {})", roots.size());
	if (out.empty())
		throw_error(ExitCode::usage, "batch: -o OUTROOT is required");
	if (flags.o.threads < 0 || flags.o.threads > 1024)
		throw_error(ExitCode::usage, "--threads must be between 0 and 1024");
	flags.apply_to(vm);
	b.options.root = roots.front();
	b.options.out_root = out;
	b.options.run = flags.o;
	command.action = b;
	command.verbosity = verbosity_of(quiet, verbose);
	return command;
}

Command parse_align(const std::vector<std::string> &args)
{
	Command command;
	AlignRunOptions o;
	bool quiet = false, verbose = false;
	std::string out, workdir;
	std::vector<std::string> inputs;
	AlignFlags align;
	po::options_description desc("superstack align options");
	add_common(desc, quiet, verbose);
	desc.add_options()
		("input", po::value(&inputs)->composing(), "frames: image files or directories")
		("output,o", po::value(&out), "the transforms file to write (JSON)");
	align.add_to(desc);
	desc.add_options()
		("threads", po::value(&o.threads)->default_value(0), "worker threads (0: one per core)")
		("work-dir", po::value(&workdir), "folder for the frame spool (default: the output file's folder)");
	po::positional_options_description pos;
	pos.add("input", -1);
	const auto vm = parse(desc, pos, args);
	if (auto text = help_or_version(vm, "usage: superstack align INPUT... -o TRANSFORMS.json [options]", desc, kAlignExamples)) {
		command.action = *text;
		return command;
	}
	check_frames_and_output("align", inputs, out, "TRANSFORMS.json", o.threads);
	o.inputs = inputs;
	o.output = out;
	align.apply_to(o);
	if (o.align == MotionModel::none)
		throw_error(ExitCode::usage, "align: --align none estimates nothing");
	if (!workdir.empty())
		o.work_dir = workdir;
	command.action = o;
	command.verbosity = verbosity_of(quiet, verbose);
	return command;
}

Command parse_synth(const std::vector<std::string> &args)
{
	Command command;
	SynthOptions o;
	bool quiet = false, verbose = false;
	std::string out, size = "640x480", source, blurred;
	long long seed = 1;
	po::options_description desc("superstack synth options");
	add_common(desc, quiet, verbose);
	desc.add_options()
		("output,o", po::value(&out), "folder for frame_NNN.tif, truth.tif and transforms.json")
		("frames", po::value(&o.frames)->default_value(16), "number of frames")
		("size", po::value(&size)->default_value("640x480"), "frame size WxH in input pixels")
		("scale", po::value(&o.scale)->default_value(2.0), "truth resolution over frame resolution (>= 1)")
		("noise", po::value(&o.noise)->default_value(0.02), "noise sigma at mid-grey, as a fraction of full scale")
		("max-shift", po::value(&o.max_shift)->default_value(16.0), "largest random shift, input pixels")
		("max-rotation", po::value(&o.max_rotation)->default_value(2.0), "largest random rotation, degrees")
		("max-scale", po::value(&o.max_scale)->default_value(0.0), "largest random zoom, relative (0.02: +-2%)")
		("local-motion", po::value(&o.local_motion)->default_value(0.0), "frames after the first also bend by a smooth field of at most PX reference pixels (written to transforms.json)")
		("moving-object", po::value(&o.moving_object)->default_value(0.0), "area fraction of a bright square that moves between frames")
		("moving-frames", po::value(&o.moving_frames)->default_value(0), "0: the object is in every frame; K: only in K frames, crossing the frame")
		("moving-texture", po::bool_switch(&o.moving_texture), "the moving object is a textured patch, not a flat square")
		("tca-red", po::value(&o.tca_red)->default_value(1.0), "chromatic aberration: red magnified by this about the centre")
		("tca-blue", po::value(&o.tca_blue)->default_value(1.0), "chromatic aberration: blue magnified by this about the centre")
		("exposure-variation", po::value(&o.exposure_variation)->default_value(0.0, "0"), "frames after the first are scaled by 1 + U(-F, F) after their noise (0.3: +-30%)")
		("blur-frames", po::value(&blurred), "frames to blur (shake), comma-separated indices, e.g. 3,7,11")
		("blur-sigma", po::value(&o.blur_sigma)->default_value(1.5, "1.5"), "sigma of that blur, frame pixels")
		("seed", po::value(&seed)->default_value(1), "random seed")
		("source", po::value(&source), "scene image at truth resolution (default: the built-in chart)")
		("jpeg", po::bool_switch(&o.jpeg), "also write 8-bit JPEG frames");
	const auto vm = parse(desc, {}, args);
	if (vm.count("help")) {
		command.action = HelpText{help_of("usage: superstack synth -o DIR [options]", desc, kSynthExamples)};
		return command;
	}
	if (out.empty())
		throw_error(ExitCode::usage, "synth: -o DIR is required");
	o.out_dir = out;
	std::tie(o.width, o.height) = parse_dimensions(size);
	if (seed < 0)
		throw_error(ExitCode::usage, "--seed must be >= 0");
	o.seed = static_cast<std::uint64_t>(seed);
	if (!source.empty())
		o.source = source;
	std::stringstream list(blurred);
	for (std::string item; std::getline(list, item, ',');) {
		int index = -1;
		std::size_t used = 0;
		try {
			index = std::stoi(item, &used);
		} catch (const std::exception &) {
			used = 0;
		}
		if (used == 0 || used != item.size())
			throw_error(ExitCode::usage, "--blur-frames must be frame indices separated by commas (got '{}')", blurred);
		o.blurred_frames.push_back(index);
	}
	command.action = o;
	command.verbosity = verbosity_of(quiet, verbose);
	return command;
}

Command parse_score(const std::vector<std::string> &args)
{
	Command command;
	ScoreCommand o;
	bool quiet = false, verbose = false;
	std::vector<std::string> files;
	po::options_description desc("superstack score options");
	add_common(desc, quiet, verbose);
	desc.add_options()
		("files", po::value(&files)->composing(), "IMAGE TRUTH")
		("crop", po::value(&o.crop)->default_value(0), "pixels to leave out at every border")
		("json", po::bool_switch(&o.json), "print JSON instead of text");
	po::positional_options_description pos;
	pos.add("files", -1);
	const auto vm = parse(desc, pos, args);
	if (vm.count("help")) {
		command.action = HelpText{help_of("usage: superstack score IMAGE TRUTH [options]", desc, kScoreExamples)};
		return command;
	}
	if (files.size() != 2)
		throw_error(ExitCode::usage, "score: needs exactly IMAGE and TRUTH");
	if (o.crop < 0)
		throw_error(ExitCode::usage, "--crop must be >= 0");
	o.image = files[0];
	o.truth = files[1];
	command.action = o;
	command.verbosity = verbosity_of(quiet, verbose);
	return command;
}

Command parse_check(const std::vector<std::string> &args)
{
	Command command;
	CheckCommand o;
	bool quiet = false, verbose = false;
	po::options_description desc("superstack check options");
	add_common(desc, quiet, verbose);
	desc.add_options()
		("input", po::value(&o.inputs)->composing(), "frames: image files or directories")
		("json", po::bool_switch(&o.json), "print JSON instead of a table")
		("threads", po::value(&o.threads)->default_value(0), "worker threads (0: one per core)");
	po::positional_options_description pos;
	pos.add("input", -1);
	const auto vm = parse(desc, pos, args);
	if (auto text = help_or_version(vm, "usage: superstack check INPUT... [--json]\n\n"
		"Ranks the frames by noise-compensated sharpness (the variance of a Laplacian less the part the\n"
		"frame's own noise explains, the noise from the median absolute Laplacian), sharpest first.", desc, kCheckExamples)) {
		command.action = *text;
		return command;
	}
	if (o.inputs.empty())
		throw_error(ExitCode::usage, "check: no input frames given");
	if (o.threads < 0 || o.threads > 1024)
		throw_error(ExitCode::usage, "--threads must be between 0 and 1024");
	command.action = o;
	command.verbosity = verbosity_of(quiet, verbose);
	return command;
}

} // namespace

Command parse_command_line(int argc, char **argv)
{
	std::vector<std::string> args(argv + 1, argv + argc);
	// Boost.Program_options (1.74) builds its error messages by replacing "%value%" and the like in a
	// template until none is left: an argument holding one of those words makes that loop endless
	// (found by fuzz_options: `run x -o y --%canonical_option%` hung, growing). No real file name or
	// value holds them, so they are refused before Boost sees them.
	for (const std::string &arg : args)
		for (const char *placeholder : {"%canonical_option%", "%option%", "%value%", "%prefix_option%", "%original_token%"})
			if (arg.find(placeholder) != std::string::npos)
				throw_error(ExitCode::usage, "argument '{}' holds '{}', which the option parser cannot report on", arg,
					placeholder);
	if (args.empty())
		throw_error(ExitCode::usage, "no command given (try superstack --help)");
	const std::string verb = args.front();
	args.erase(args.begin());
	if (verb == "--help" || verb == "-h" || verb == "help")
		return Command{HelpText{kUsage}, Verbosity::normal};
	if (verb == "--version")
		return Command{version_text(), Verbosity::normal};
	if (verb == "run")
		return parse_run(args);
	if (verb == "align")
		return parse_align(args);
	if (verb == "batch")
		return parse_batch(args);
	if (verb == "synth")
		return parse_synth(args);
	if (verb == "score")
		return parse_score(args);
	if (verb == "check")
		return parse_check(args);
	throw_error(ExitCode::usage, "unknown command '{}' (try superstack --help)", verb);
}

} // namespace superstack::cli
