// budget -- the reducer's tile size from --memory, threads, frames and bands.
#include "superstack/budget.hpp"

#include "superstack/error.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>

namespace superstack {

std::uint64_t thread_bytes_for_tile(const BudgetRequest &r, int tile)
{
	const std::uint64_t px = static_cast<std::uint64_t>(tile) * tile;
	const std::uint64_t c = r.colour_bands;
	const std::uint64_t samples = r.order_statistics ? px * r.frames * c * 4 : 0;
	const std::uint64_t running = px * static_cast<std::uint64_t>(r.running_bytes_per_pixel);
	const std::uint64_t side = static_cast<std::uint64_t>(tile) + 2 * static_cast<std::uint64_t>(r.apron);
	const std::uint64_t merge = side * side * r.frames * static_cast<std::uint64_t>(r.frame_bytes_per_pixel);
	// The warp chain of one frame: the warped tile (C+1 float bands), and about five buffers of the
	// input window (tile/scale plus the 6-tap kernel's reach) along cast/convert/premultiply steps.
	// libvips keeps freed buffers per thread for reuse, so count the chain twice.
	const std::uint64_t window = static_cast<std::uint64_t>(std::ceil(tile / std::max(1.0, r.scale))) + 8;
	const std::uint64_t chain = px * (c + 1) * 4 + 5 * window * window * (c + 1) * 4;
	// The output region the sink asks for (all outputs, float) and a reduce scratch column.
	const std::uint64_t out = px * static_cast<std::uint64_t>(r.reduced_bands) * 4 + static_cast<std::uint64_t>(r.frames) * 4;
	return samples + running + merge + 2 * chain + out;
}

std::uint64_t saver_bytes_for(const BudgetRequest &r)
{
	// Double-buffered lines in the sink, and the TIFF writer's strip of the same size.
	return 3ull * kSaverLines * static_cast<std::uint64_t>(r.output_width) * r.output_bytes_per_pixel;
}

MemoryPlan plan_memory(const BudgetRequest &request)
{
	if (request.threads < 1 || request.frames < 1 || request.colour_bands < 1)
		throw_error(ExitCode::usage, "memory plan needs at least one thread, frame and band");
	MemoryPlan plan;
	plan.request = request;
	plan.saver_bytes = saver_bytes_for(request) + request.fixed_bytes;
	for (int tile = kMaxTile; tile >= kMinTile; tile -= kMinTile) {
		const std::uint64_t per_thread = thread_bytes_for_tile(request, tile);
		if (per_thread * request.threads + plan.saver_bytes <= request.memory_bytes) {
			plan.tile = tile;
			plan.per_thread_bytes = per_thread;
			return plan;
		}
	}
	const std::uint64_t need = thread_bytes_for_tile(request, kMinTile) * request.threads + plan.saver_bytes;
	throw_error(ExitCode::usage, "--memory {} is too small for {} frames on {} threads: at least {} is needed",
		format_bytes(request.memory_bytes), request.frames, request.threads, format_bytes(need));
}

std::vector<Rect> MemoryPlan::tiles(const Rect &area) const
{
	std::vector<Rect> out;
	for (int y = area.top; y < area.bottom(); y += tile)
		for (int x = area.left; x < area.right(); x += tile)
			out.push_back({x, y, std::min(tile, area.right() - x), std::min(tile, area.bottom() - y)});
	return out;
}

std::string MemoryPlan::describe() const
{
	return fmt::format("memory plan: limit {}, {} thread(s) x {} per thread (tile {}x{}, {} frames x {} "
			   "band(s){}) + saver and caches {} = {}",
		format_bytes(request.memory_bytes), request.threads, format_bytes(per_thread_bytes), tile, tile,
		request.frames, request.colour_bands, request.order_statistics ? ", all samples kept" : ", running only",
		format_bytes(saver_bytes), format_bytes(total_bytes()));
}

std::uint64_t parse_size(const std::string &text, const std::string &option)
{
	std::size_t pos = 0;
	double value = 0;
	try {
		value = std::stod(text, &pos);
	} catch (const std::exception &) {
		throw_error(ExitCode::usage, "{}: '{}' is not a size (e.g. 512M, 2G)", option, text);
	}
	std::string unit = text.substr(pos);
	std::transform(unit.begin(), unit.end(), unit.begin(), [](unsigned char ch) { return std::toupper(ch); });
	if (unit.ends_with("IB"))
		unit = unit.substr(0, unit.size() - 2);
	else if (unit.size() > 1 && unit.back() == 'B')
		unit.pop_back();
	double factor = 1;
	if (unit.empty() || unit == "B") factor = 1;
	else if (unit == "K") factor = 1024.0;
	else if (unit == "M") factor = 1024.0 * 1024;
	else if (unit == "G") factor = 1024.0 * 1024 * 1024;
	else if (unit == "T") factor = 1024.0 * 1024 * 1024 * 1024;
	else
		throw_error(ExitCode::usage, "{}: '{}' has an unknown unit (use K, M, G or T)", option, text);
	const double bytes = value * factor;
	if (!std::isfinite(bytes) || bytes < 1 || bytes > 1e18)
		throw_error(ExitCode::usage, "{}: '{}' is out of range", option, text);
	return static_cast<std::uint64_t>(bytes);
}

std::string format_bytes(std::uint64_t bytes)
{
	const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
	double v = static_cast<double>(bytes);
	int u = 0;
	while (v >= 1024 && u < 4)
		v /= 1024, u++;
	return u == 0 ? fmt::format("{} B", bytes) : fmt::format("{:.1f} {}", v, units[u]);
}

} // namespace superstack
