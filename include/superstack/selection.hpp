// selection -- which frames are sharp enough to stack, by the noise-compensated sharpness
// (sharpness.hpp: the variance of a Laplacian less the part the frame's own noise explains).
//
// `superstack check` ranks frames without stacking them; `run --reject-blurry F` drops the floor(F N)
// least sharp of the N frames alignment kept, and `--min-sharpness X` every frame below X. The
// reference is never dropped: it is passed over and the next least sharp frame goes instead.
// Memory: one streaming pass per frame (libvips' tile buffers and a histogram).
#pragma once

#include "superstack/progress.hpp"
#include "superstack/sharpness.hpp"

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace superstack {

struct SelectionOptions {
	double reject_fraction = 0;          // in [0, 1)
	std::optional<double> min_sharpness; // >= 0
	bool active() const { return reject_fraction > 0 || min_sharpness.has_value(); }
};

// Throws Error(usage) for a fraction outside [0, 1) or a negative minimum.
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

// `superstack check`: every input's sharpness and noise, and its rank.
struct FrameCheck {
	std::filesystem::path file;
	Sharpness measure;
	int rank = 0;
};
std::vector<FrameCheck> check_frames(const std::vector<std::string> &inputs, int threads, Progress &progress);

} // namespace superstack
