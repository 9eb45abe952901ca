// selection -- ranking by sharpness, dropping the least sharp, and `check`.
#include "superstack/selection.hpp"

#include "superstack/cancel.hpp"
#include "superstack/error.hpp"
#include "superstack/frame.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <thread>

namespace superstack {

void check_selection_options(const SelectionOptions &o)
{
	if (!(o.reject_fraction >= 0 && o.reject_fraction < 1))
		throw_error(ExitCode::usage, "--reject-blurry must be in [0, 1) (got {})", o.reject_fraction);
	if (o.min_sharpness && !(*o.min_sharpness >= 0 && std::isfinite(*o.min_sharpness)))
		throw_error(ExitCode::usage, "--min-sharpness must be a number >= 0 (got {})", *o.min_sharpness);
	if (!(o.reject_misaligned == 0 || (o.reject_misaligned >= 1 && std::isfinite(o.reject_misaligned))))
		throw_error(ExitCode::usage, "--reject-misaligned must be 0 (off) or a ratio >= 1 (got {})", o.reject_misaligned);
}

namespace {

// Indices from the sharpest down; equal sharpness in index order.
std::vector<int> sharpest_first(const std::vector<Sharpness> &measured)
{
	std::vector<int> order(measured.size());
	std::iota(order.begin(), order.end(), 0);
	std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return measured[a].sharpness > measured[b].sharpness; });
	return order;
}

} // namespace

std::vector<int> sharpness_ranks(const std::vector<Sharpness> &measured)
{
	const std::vector<int> order = sharpest_first(measured);
	std::vector<int> rank(measured.size());
	for (std::size_t i = 0; i < order.size(); i++)
		rank[order[i]] = static_cast<int>(i) + 1;
	return rank;
}

std::vector<Dropped> select_frames(const std::vector<Sharpness> &measured, const std::vector<bool> &candidate,
	int reference, const SelectionOptions &o)
{
	check_selection_options(o);
	const int n = static_cast<int>(std::count(candidate.begin(), candidate.end(), true));
	// floor(F N), nudged like --trim: 0.2 x 15 is 3 exactly, not 2.9999999999999996.
	const int fraction_count = static_cast<int>(std::floor(o.reject_fraction * n + 1e-9));
	std::vector<Dropped> dropped;
	std::vector<int> order = sharpest_first(measured);
	std::reverse(order.begin(), order.end()); // least sharp first
	int by_fraction = 0;
	for (int i : order) {
		if (!candidate[i] || i == reference)
			continue;
		if (by_fraction < fraction_count) {
			by_fraction++;
			dropped.push_back({i, fmt::format("blurry: among the {} least sharp of {} frames (--reject-blurry {}), sharpness {:.4g}",
						      fraction_count, n, o.reject_fraction, measured[i].sharpness)});
		} else if (o.min_sharpness && measured[i].sharpness < *o.min_sharpness) {
			dropped.push_back({i, fmt::format("blurry: sharpness {:.4g} below --min-sharpness {}", measured[i].sharpness,
						      *o.min_sharpness)});
		}
	}
	std::sort(dropped.begin(), dropped.end(), [](const Dropped &a, const Dropped &b) { return a.index < b.index; });
	return dropped;
}

std::vector<Dropped> select_misaligned(const std::vector<std::optional<double>> &residual, int reference, double ratio)
{
	std::vector<Dropped> dropped;
	if (ratio == 0)
		return dropped;
	std::vector<double> others;
	for (std::size_t i = 0; i < residual.size(); i++)
		if (residual[i] && static_cast<int>(i) != reference)
			others.push_back(*residual[i]);
	if (others.size() < 2)
		return dropped;
	std::sort(others.begin(), others.end());
	const double good = others[(others.size() - 1) / 4]; // the lower quartile, nearest rank below
	const double limit = std::max(kMisalignedFloor, ratio * good);
	for (std::size_t i = 0; i < residual.size(); i++)
		if (residual[i] && static_cast<int>(i) != reference && *residual[i] > limit)
			dropped.push_back({static_cast<int>(i),
				fmt::format("misaligned: its fit leaves {:.2f} px, {:.1f}x the burst's good fits ({:.2f} px; --reject-misaligned {}): "
					    "another viewpoint (parallax) or shake", *residual[i], *residual[i] / std::max(good, 1e-9), good, ratio)});
	return dropped;
}

std::vector<FrameCheck> check_frames(const std::vector<std::string> &inputs, int threads, Progress &progress)
{
	vips_concurrency_set(threads > 0 ? threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
	const std::vector<std::filesystem::path> files = expand_inputs(inputs);
	std::vector<FrameInfo> infos;
	for (const auto &f : files)
		infos.push_back(probe_frame(f)); // a broken frame fails before any heavy work
	std::vector<FrameCheck> checks;
	std::vector<Sharpness> measured;
	for (std::size_t i = 0; i < files.size(); i++) {
		if (cancel_requested())
			throw_error(ExitCode::interrupted, "interrupted");
		progress.update("sharpness", static_cast<double>(i) / files.size(), -1);
		try {
			measured.push_back(measure_sharpness(working_luminance(stream_working_frame(infos[i]), infos[i].alpha)));
		} catch (const vips::VError &) {
			throw Error(ExitCode::bad_input, about_file(files[i].string(), vips_error_line()));
		}
		checks.push_back({files[i], measured.back(), 0});
	}
	progress.update("sharpness", 1.0, 0);
	const std::vector<int> ranks = sharpness_ranks(measured);
	for (std::size_t i = 0; i < checks.size(); i++)
		checks[i].rank = ranks[i];
	return checks;
}

} // namespace superstack
