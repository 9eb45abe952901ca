// selection -- which frames are sharp enough to stack, by the noise-compensated sharpness
// (sharpness.hpp: the variance of a Laplacian less the part the frame's own noise explains), and
// which the alignment's model fits much worse than the rest of the burst.
//
// `superstack check` ranks frames without stacking them; `run --reject-blurry F` drops the floor(F N)
// least sharp of the N frames alignment kept, and `--min-sharpness X` every frame below X. The
// reference is never dropped: it is passed over and the next least sharp frame goes instead.
// Memory: one streaming pass per frame (libvips' tile buffers and a histogram).
//
// `run --reject-misaligned R` (on by default) drops a frame whose alignment residual is more than R
// times the burst's typical good fit and more than kMisalignedFloor px: the frames of a handheld
// burst taken from another viewpoint (the photographer moved: parallax the model cannot follow,
// things seen past an edge that hides them in the reference) or smeared by shake. Stacked, they
// soften every edge and leave ghosts that neither the median nor the robust merges remove when they
// are half the burst. It costs nothing: the residuals come with the alignment.
#pragma once

#include "superstack/progress.hpp"
#include "superstack/sharpness.hpp"

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace superstack {

inline constexpr double kDefaultRejectMisaligned = 2.5;
// Residuals at or below this are kept whatever the ratio (px): what the fit of a sharp frame from
// the reference's viewpoint leaves on a noisy phone JPEG (0.16-0.17 on the still life in
// ../shared; 0.03-0.13 on the synthetic bursts, blurred frames included).
inline constexpr double kMisalignedFloor = 0.3;

struct SelectionOptions {
	double reject_fraction = 0;          // in [0, 1)
	std::optional<double> min_sharpness; // >= 0
	double reject_misaligned = kDefaultRejectMisaligned; // 0: off; else >= 1
	// Selection by sharpness (it needs a measuring pass over the frames).
	bool active() const { return reject_fraction > 0 || min_sharpness.has_value(); }
};

// Throws Error(usage) for a fraction outside [0, 1), a negative minimum or a ratio in (0, 1).
void check_selection_options(const SelectionOptions &options);

// Ranks by sharpness, 1 the sharpest; equal sharpness ranks by index.
std::vector<int> sharpness_ranks(const std::vector<Sharpness> &measured);

// The frames to drop among those marked `candidate` (never `reference`), with the reason for each.
struct Dropped {
	int index = 0;
	std::string reason;
};
std::vector<Dropped> select_frames(const std::vector<Sharpness> &measured, const std::vector<bool> &candidate,
	int reference, const SelectionOptions &options);

// The frames to drop for `ratio` (--reject-misaligned; 0: none). `residual`: each aligned frame's
// fit residual (input px), nothing for frames alignment left out or files without a report. The
// burst's good fit is the lower quartile of the other frames' residuals (the reference's, 0 by
// definition, does not count): a burst where most frames fit badly keeps them, and one frame that
// happens to fit well does not condemn the rest. Never the reference; none with fewer than 2 others.
std::vector<Dropped> select_misaligned(const std::vector<std::optional<double>> &residual, int reference, double ratio);

// `superstack check`: every input's sharpness and noise, and its rank.
struct FrameCheck {
	std::filesystem::path file;
	Sharpness measure;
	int rank = 0;
};
std::vector<FrameCheck> check_frames(const std::vector<std::string> &inputs, int threads, Progress &progress);

} // namespace superstack
