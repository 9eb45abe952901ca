// budget -- how big a reducer tile may be so that every thread's buffers fit in --memory.
//
// One explicit object (logged with -v, tested as an invariant): for a tile of T x T output pixels a
// thread holds
//   samples   T^2 * N * C * 4   (every frame's sample of every pixel, for exact order statistics)
//   running   T^2 * R                 (R bytes of running state per pixel: sums in double, counts, ...)
//   merge     (T + 2a)^2 * N * F      (the kernel merge's per-frame state over the tile and its apron)
//   pipeline  one frame's warp chain at a time: output, interpolation window and conversion buffers
// and, once for the process, the saver's line buffers (2 x lines x output width x bytes per pixel).
// The tile is the largest that keeps threads x per-thread + saver within the limit. When even the
// smallest tile cannot, the plan fails with the figure that would fit. The number of frames held at
// once is one per thread: frames are visited in turn per tile, so N never multiplies anything but
// the 4-byte samples.
#pragma once

#include "superstack/geometry.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace superstack {

struct BudgetRequest {
	std::uint64_t memory_bytes = 1ull << 30;
	int threads = 1;
	int frames = 1;
	int colour_bands = 1;           // C
	bool order_statistics = true;   // median (or any estimator needing all samples)
	// From the reduction (describe_reduction() in reduce.hpp); the defaults are mean and median of
	// one band with the coverage band.
	int running_bytes_per_pixel = 12; // R: running state per output pixel
	int reduced_bands = 3;            // float bands of the reducer's output
	int frame_bytes_per_pixel = 0;    // per frame and output pixel of the tile and its apron (kernel merge)
	int apron = 0;                    // output px around a tile whose state the merge also holds
	std::uint64_t fixed_bytes = 0;    // held once for the process (the sharpening's tile cache)
	double scale = 2;               // output pixels per input pixel (window size of the warp)
	int output_width = 0;           // for the saver's line buffers
	int output_bytes_per_pixel = 2; // of everything the saver writes in one pass
};

struct MemoryPlan {
	BudgetRequest request;
	int tile = 0;                      // side of the square reducer tile, output pixels
	std::uint64_t per_thread_bytes = 0;
	std::uint64_t saver_bytes = 0;
	std::uint64_t total_bytes() const { return per_thread_bytes * request.threads + saver_bytes; }

	// Tiles of at most tile x tile covering `area` exactly once, row by row.
	std::vector<Rect> tiles(const Rect &area) const;
	std::string describe() const;
};

inline constexpr int kMinTile = 8;
inline constexpr int kMaxTile = 256;
inline constexpr int kSaverLines = 256; // lines libvips' sink may buffer per pass (double-buffered)

std::uint64_t thread_bytes_for_tile(const BudgetRequest &request, int tile);
std::uint64_t saver_bytes_for(const BudgetRequest &request);

// Throws Error(usage) when --memory cannot hold even the smallest tile.
MemoryPlan plan_memory(const BudgetRequest &request);

// "512M", "2G", "1.5GiB", "800000" -> bytes. Throws Error(usage, "<option>: ...").
std::uint64_t parse_size(const std::string &text, const std::string &option);
std::string format_bytes(std::uint64_t bytes);

} // namespace superstack
