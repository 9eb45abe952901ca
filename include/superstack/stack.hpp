// stack -- `run` as a library call: frames -> transforms -> memory plan -> one reduction pass ->
// results on disk. The data flows one way; every stage is lazy until the savers pull.
#pragma once

#include "superstack/align.hpp"
#include "superstack/budget.hpp"
#include "superstack/crop.hpp"
#include "superstack/exposure.hpp"
#include "superstack/linear_light.hpp"
#include "superstack/selection.hpp"
#include "superstack/sharpen.hpp"
#include "superstack/geometry.hpp"
#include "superstack/output.hpp"
#include "superstack/progress.hpp"
#include "superstack/reduce.hpp"
#include "superstack/warp.hpp"
#include "superstack/work.hpp"

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace superstack {

// The quality weight of a frame in the `weighted` statistic, from measure_sharpness() of its
// luminance: `sharpness` (its noise-compensated sharpness) or `noise` (its inverse noise variance,
// the noise taken as at least kMinWeightNoise). Weights are scaled so that the largest is 1.
enum class FrameWeight { sharpness, noise };
FrameWeight parse_frame_weight(std::string_view text); // throws Error(usage)
inline constexpr double kMinWeightNoise = 1e-4;

// A frame that fails to load or decode (a truncated file, an I/O error): `skip` it (named in a warning
// and in the report, the stack goes on without it) or `fail` the run (exit 2).
enum class FrameErrors { skip, fail };
FrameErrors parse_frame_errors(std::string_view text); // throws Error(usage)

// A change to the options that changes the results must also enter the run's resume key (run_key() in
// stack.cpp), so that --resume never mixes the work of two different runs.
struct RunOptions {
	std::vector<std::string> inputs;            // files and directories
	std::filesystem::path out_dir;
	std::optional<std::string> reference;       // first, sharpest, an index (0-based) or a file; default first
	double scale = 2;
	Kernel kernel = Kernel::lanczos3;
	Merge merge = Merge::interpolate;           // how frames reach the output grid (reduce.hpp)
	double pixfrac = 0.5;                       // drizzle: drop size over pixel size, in (0, 1]
	RegressionOptions regression;               // kernel: its shape and robustness (noise: measured)
	SharpenOptions sharpen;                     // deconvolution, unsharp mask, brightness (sharpen.hpp)
	std::vector<Statistic> statistics{Statistic::mean, Statistic::median};
	ClipOptions clip;                           // kappa, iterations, trim of the rejecting statistics
	FrameWeight weight = FrameWeight::noise;    // for `weighted`
	std::optional<std::filesystem::path> transforms; // else the frames are aligned (see `align`)
	MotionModel align = MotionModel::homography;   // none: frames taken as aligned
	std::optional<std::filesystem::path> mask;     // reference pixels alignment (and exposure) ignores
	bool mask_reduce = false;                      // and where only the reference is stacked (needs mask)
	Normalize normalize = Normalize::gain;         // exposure normalization against the reference
	SelectionOptions selection;                    // --reject-blurry, --min-sharpness
	LinearLight linear = LinearLight::automatic;   // stack in linear light (auto: 8-bit sRGB input)
	Crop crop = Crop::reference;                   // the output's window (crop.hpp)
	AlignFailure on_align_failure = AlignFailure::skip;
	double max_residual = 2.0;                     // px: a frame whose fit leaves more is rejected
	int local_grid = 0;                            // > 0: a displacement field per frame, about N nodes along (align.hpp)
	bool tca = false;                              // correct chromatic aberration (measured, or the file's)
	std::uint64_t memory_bytes = 1ull << 30;
	int threads = 0;                            // 0: one per core
	SaveOptions save;
	bool save_coverage = false;
	bool save_rejects = false;                  // rejects.tif: samples each rejecting statistic left out
	bool save_weights = false;                  // weights.tif: the drizzle or kernel merge's weight sum (float)
	std::optional<std::filesystem::path> work_dir; // default: a hidden folder in out_dir
	FrameErrors on_error = FrameErrors::fail;   // a frame that fails to load or decode
	Resume resume = Resume::off;                // reuse the work folder of an interrupted run (work.hpp)
	int band_rows = 0;                          // rows per band of the reduction (0: default_band_rows)
};

// A frame left out because it could not be loaded or decoded (FrameErrors::skip).
struct UnreadableFrame {
	std::filesystem::path file;
	std::string reason;
};

struct RunResult {
	std::vector<std::filesystem::path> outputs;
	MemoryPlan plan;
	OutputGeometry geometry;
	int frames = 0;                             // stacked (after alignment rejections and frame selection)
	int reference = 0;                          // index among the inputs
	std::vector<std::filesystem::path> rejected; // inputs alignment left out, with the reason in the report
	std::vector<std::filesystem::path> dropped;  // inputs frame selection left out, likewise
	std::vector<double> weights;                // per stacked frame, in input order, when `weighted`
	std::vector<std::optional<ExposureFit>> exposures; // per input, when normalizing (none: not estimated)
	std::vector<Sharpness> sharpness;           // per input: as decoded for selection or sharpness weights, else as stacked for noise weights
	bool linear_light = false;                  // stacked in linear light
	std::filesystem::path report;               // OUTDIR/transforms.json: transforms and a report per frame
	std::uint64_t spool_bytes = 0;
	std::vector<UnreadableFrame> unreadable;    // inputs that could not be read, left out (--on-error skip)
	int bands = 0;                              // bands of the reduction
	int bands_reused = 0;                       // of them, finished by an earlier, interrupted run
	int alignments_reused = 0;                  // frame alignments saved by an earlier run
	std::uint64_t computed_pixels = 0;          // output pixels the reducer computed (twice counts twice)
};

RunResult run_stack(const RunOptions &options, Progress &progress);

// What a run will need, from the frames' headers alone (nothing is decoded): for `batch --dry-run` and
// the disk check before any heavy work. Unreadable frames are left out under FrameErrors::skip.
struct RunEstimate {
	int frames = 0;                             // readable frames
	std::vector<UnreadableFrame> unreadable;
	OutputGeometry geometry;                    // the reference's grid (--crop common: smaller, none: larger)
	std::vector<std::string> outputs;           // file names in OUTDIR
	std::uint64_t output_bytes = 0;             // the output files, uncompressed
	std::uint64_t spool_bytes = 0;              // the frame spool
	std::uint64_t band_bytes = 0;               // the band files of the reduction
	MemoryPlan plan;                            // the reduction's memory plan, every readable frame stacked
};
RunEstimate estimate_run(const RunOptions &options);

// `superstack align`: the transforms only, written as a transforms file with a report per frame.
struct AlignRunOptions {
	std::vector<std::string> inputs;
	std::filesystem::path output;               // the transforms file
	std::optional<std::string> reference;       // as for run
	MotionModel align = MotionModel::homography;
	std::optional<std::filesystem::path> mask;
	AlignFailure on_align_failure = AlignFailure::skip;
	double max_residual = 2.0;
	int local_grid = 0;                         // > 0: a displacement field per frame, as for run
	bool tca = false;                           // also measure the lens's chromatic aberration (tca.hpp)
	int threads = 0;
	std::optional<std::filesystem::path> work_dir; // default: beside the output file
};

struct AlignRunResult {
	TransformSet transforms;                    // as written, rejected frames included
	int rejected = 0;
};

AlignRunResult align_stack(const AlignRunOptions &options, Progress &progress);

// Resolves --reference when it is `first`, an index or a file among `frames`; nothing for `sharpest`,
// which needs the pixels. Throws Error(usage).
std::optional<int> resolve_reference(const std::optional<std::string> &reference,
	const std::vector<std::filesystem::path> &frames);

} // namespace superstack
