// reduce -- the streaming reducer: a lazy libvips image whose every pixel is a statistic of the
// aligned samples of all frames covering it.
//
// For each output tile the reducer visits, in frame order, only the frames whose footprint touches
// it, pulls their warped pixels for the overlap, keeps the samples that the frame really covers, and
// reduces. Output bands (band_groups() names them): for each requested statistic, C float bands in
// working units; then, when asked, one band holding the per-pixel sample count; then, when asked, one
// band per rejecting statistic (in the order requested) holding how many samples it left out of the
// pixel (the most of any colour band). A pixel no frame covers is 0 with count 0. Results do not
// depend on tile size or thread count: each pixel's samples enter in frame order.
//
// The statistics, exactly (src/reduce/kernels.hpp implements each, and README.md shows them):
//   mean        sum x / n                                   running, no sample buffer
//   weighted    sum w_f x / sum w_f (frame weights >= 0)    running
//   min, max                                               running
//   median      the middle value; even n: mean of the two middle values
//   sigma-clip  kappa-sigma clipping around the median, mean of the kept samples (rejects)
//   winsorized  winsorized sigma clipping, mean of the kept samples (rejects)
//   trimmed     mean without floor(trim n) lowest and highest samples (rejects)
#pragma once

#include "superstack/budget.hpp"
#include "superstack/frame_map.hpp"
#include "superstack/geometry.hpp"
#include "superstack/regression.hpp"
#include "superstack/transform.hpp"

#include <vips/vips8>

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace superstack {

enum class Statistic { mean, median, sigma_clip, winsorized, trimmed, weighted, min, max };

Statistic parse_statistic(std::string_view name); // throws Error(usage)
std::string_view statistic_name(Statistic statistic);
// Every statistic's name, comma-separated, for help and error messages.
std::string_view statistic_names();
// Needs every sample of a pixel at once (the per-tile sample buffer): the order statistics.
bool needs_all_samples(Statistic statistic);
// Leaves samples out of its value, so it has a band in the reject map.
bool rejects_samples(Statistic statistic);

// How a frame's pixels reach the output grid. interpolate: the frame resampled onto the grid (warp.hpp),
// one sample per output pixel it covers. drizzle: its own pixels, each shrunk to pixfrac of its side,
// mapped onto the grid and added to the output pixels they overlap by the area of overlap
// (src/reduce/drizzle.hpp); the frame's sample at an output pixel is the overlap-weighted mean of its
// drops there (when they weigh a tenth of a pixel or more), and `mean` is the drizzled mean, the sum of
// value x overlap x robustness over all frames over the sum of overlap x robustness. The robustness
// is the kernel merge's (below; 1 everywhere with robustness 0, plain drizzle): a frame whose local
// mean strays from the median of all frames' local means by more than the noise explains counts less
// there, so a thing in a few frames leaves no ghost. kernel: its own pixels are samples that
// each output pixel weighs by a steering kernel (narrow across edges, long along them, wide where
// the image is flat) and by the frame's robustness there (how well its local mean agrees with the
// median of all frames' local means); the frame's sample at an output pixel is its kernel-weighted
// mean there (when its weights reach a tenth), and `mean` is the robust kernel regression, the
// weighted sum over all frames over the weights (src/reduce/kernel_regression.hpp).
enum class Merge { interpolate, drizzle, kernel };

Merge parse_merge(std::string_view name); // throws Error(usage)
std::string_view merge_name(Merge merge);

// The parameters of the rejecting statistics.
struct ClipOptions {
	double kappa = 3.0;     // sigma-clip, winsorized: reject beyond kappa sigma of the median (> 0)
	int iterations = 5;     // sigma-clip, winsorized: at most this many rejection passes (>= 1)
	double trim = 0.2;      // trimmed: fraction dropped at each end, in [0, 0.5)
};

// What the reducer knows of one frame for any output tile: its transform and footprint, its pixels
// as a warp onto the output grid, and its own unwarped pixels (for merges that read them directly).
struct StackFrame {
	vips::VImage working;      // the frame in its own geometry (working layout, see frame.hpp)
	vips::VImage warped;       // `working` resampled onto the output grid
	FrameMap output_to_frame;  // output pixel -> frame pixel coordinates (and back)
	int width = 0, height = 0; // of the frame
	bool alpha = false;        // last band of `working`/`warped` is premultiplied alpha
	Rect footprint;            // output pixels this frame can cover
	double weight = 1.0;       // its weight in the `weighted` statistic (>= 0)
	bool reference = false;    // the reference frame: the only one counted under `reference_only`
};

struct ReduceSpec {
	OutputGeometry geometry;
	int colour_bands = 1;
	std::vector<Statistic> statistics;
	ClipOptions clip;
	Merge merge = Merge::interpolate;
	double pixfrac = 0.5;      // drizzle: the drop's side over the input pixel's, in (0, 1]
	RegressionOptions regression; // kernel: the kernel's shape, the robustness and the frames' noise
	bool coverage = false;     // append the sample-count band
	bool rejects = false;      // append the reject map: one band per rejecting statistic
	bool weights = false;      // drizzle, kernel: append the merge's weight sum per pixel (see band_groups)
	bool displaced = false;    // some frame has a displacement field (the kernel merge keeps its samples' positions)
	// 1 band uchar on the output grid (lazy): where it is non-zero and the reference frame covers the
	// pixel, only the reference's sample counts (--mask-reduce: a moving subject from one frame).
	std::optional<vips::VImage> reference_only;
	MemoryPlan plan;
	// When set, the reducer adds the output pixels it computes (a pixel computed twice counts twice):
	// what proves that nothing downstream makes it compute the reduction again.
	std::shared_ptr<std::atomic<std::uint64_t>> computed_pixels;
};

// The merge measures the frames' consensus (their local means' median) and each frame's robustness
// against it: the kernel merge, and drizzle with a robustness above 0 (robust drizzle).
inline bool measures_consensus(const ReduceSpec &spec)
{
	return spec.merge == Merge::kernel || (spec.merge == Merge::drizzle && spec.regression.robustness > 0);
}

// Throws Error(usage) for a kappa, iteration count or trim out of range.
void check_clip_options(const ClipOptions &clip);
// Throws Error(usage) for a kernel shape or robustness out of range.
void check_regression_options(const RegressionOptions &options);

// A group of the reduced image's bands, as one output file: `name`.tif.
struct BandGroup {
	std::string name;          // the statistic's name, "coverage", "rejects" or "weights"
	int first = 0, count = 0;  // bands [first, first + count)
	bool is_count = false;     // counts or weight sums, not values in working units
};

// The reduced image's bands in order: statistics, then coverage, then rejects, then weights: the
// merge's weight sum per output pixel (drizzle: the overlaps, in output pixel areas, times the frames'
// robustness; kernel: the steering kernels' weights times the robustness).
std::vector<BandGroup> band_groups(const ReduceSpec &spec);
int reduced_bands(const ReduceSpec &spec);

// Fills the fields of `request` that depend on the reduction: whether it keeps every sample, its
// running state per pixel and its output bands (spec.plan is not read).
void describe_reduction(const ReduceSpec &spec, BudgetRequest &request);

// The reduced image (float, lazy). `frames` must outlive nothing: the image keeps what it needs.
vips::VImage reduce_stack(std::vector<StackFrame> frames, const ReduceSpec &spec);

} // namespace superstack
