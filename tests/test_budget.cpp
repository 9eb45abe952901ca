// The memory plan as an invariant: tiles cover the image exactly once, and threads x per-thread bytes
// plus the saver stay within the limit, for many shapes of stack.
#include "superstack/budget.hpp"
#include "superstack/error.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <vector>

using namespace superstack;

TEST_CASE("memory plan: tiles cover the output exactly once and the plan fits the limit")
{
	int plans = 0;
	for (std::uint64_t memory : {64ull << 20, 512ull << 20, 1ull << 30, 4ull << 30})
		for (int threads : {1, 2, 4, 16})
			for (int frames : {1, 2, 16, 100, 500})
				for (int bands : {1, 3})
					for (bool order : {false, true}) {
						BudgetRequest r;
						r.memory_bytes = memory;
						r.threads = threads;
						r.frames = frames;
						r.colour_bands = bands;
						r.order_statistics = order;
						r.output_width = 20000;
						r.output_bytes_per_pixel = 2 * (2 * bands + 1);
						MemoryPlan plan;
						try {
							plan = plan_memory(r);
						} catch (const Error &e) {
							// Only a limit below the smallest tile may fail, and it says so.
							CHECK(thread_bytes_for_tile(r, kMinTile) * threads + saver_bytes_for(r) > memory);
							continue;
						}
						plans++;
						CAPTURE(plan.describe());
						CHECK(plan.total_bytes() <= memory);
						CHECK(plan.tile >= kMinTile);
						CHECK(plan.tile <= kMaxTile);
						// The largest tile that fits: one step larger would not.
						if (plan.tile < kMaxTile)
							CHECK(thread_bytes_for_tile(r, plan.tile + kMinTile) * threads + plan.saver_bytes > memory);
						// Cover a ragged area exactly once.
						const Rect area{3, 5, 1000 + frames, 333};
						std::vector<unsigned char> hit(static_cast<std::size_t>(area.width) * area.height, 0);
						for (const Rect &t : plan.tiles(area)) {
							CHECK(t.width <= plan.tile);
							CHECK(t.height <= plan.tile);
							CHECK(t.intersect(area) == t);
							for (int y = t.top; y < t.bottom(); y++)
								for (int x = t.left; x < t.right(); x++)
									hit[static_cast<std::size_t>(y - area.top) * area.width + (x - area.left)]++;
						}
						CHECK(std::all_of(hit.begin(), hit.end(), [](unsigned char c) { return c == 1; }));
					}
	CHECK(plans > 200);
}

TEST_CASE("memory plan: more frames or threads never grow the tile, and a tiny limit is refused")
{
	BudgetRequest r;
	r.memory_bytes = 256ull << 20;
	r.colour_bands = 3;
	r.output_width = 8000;
	int last = kMaxTile + 1;
	for (int frames : {2, 8, 32, 128, 512, 2048}) {
		r.frames = frames;
		const int tile = plan_memory(r).tile;
		CHECK(tile <= last);
		last = tile;
	}
	CHECK(last < kMaxTile);
	r.memory_bytes = 1 << 20;
	r.frames = 5000;
	CHECK_THROWS_AS(plan_memory(r), Error);
}

TEST_CASE("sizes parse with units and reject nonsense")
{
	CHECK(parse_size("512M", "--memory") == 512ull << 20);
	CHECK(parse_size("2G", "--memory") == 2ull << 30);
	CHECK(parse_size("1.5GiB", "--memory") == 3ull << 29);
	CHECK(parse_size("4096", "--memory") == 4096);
	CHECK(parse_size("64k", "--memory") == 64 * 1024);
	CHECK_THROWS_AS(parse_size("lots", "--memory"), Error);
	CHECK_THROWS_AS(parse_size("12X", "--memory"), Error);
	CHECK_THROWS_AS(parse_size("-5M", "--memory"), Error);
	CHECK_THROWS_AS(parse_size("0", "--memory"), Error);
}
