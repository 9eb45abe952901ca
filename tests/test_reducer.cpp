// The reducer against a brute-force oracle: every statistic, counts, coverage and the reject map.
#include "stack_fixtures.hpp"

#include "../src/reduce/kernels.hpp"
#include "superstack/budget.hpp"

#include <doctest/doctest.h>

#include <cmath>

using namespace superstack;
using namespace superstack::test;

namespace {

MemoryPlan plan_for(const ReduceSpec &spec, int frames, int tile_limit_bytes_per_thread, int threads = 1)
{
	BudgetRequest r;
	describe_reduction(spec, r);
	r.frames = frames;
	r.threads = threads;
	r.scale = 1;
	r.output_width = 64;
	r.memory_bytes = static_cast<std::uint64_t>(tile_limit_bytes_per_thread) * threads + saver_bytes_for(r);
	return plan_memory(r);
}

const std::vector<Statistic> kEveryStatistic{Statistic::mean, Statistic::median, Statistic::sigma_clip,
	Statistic::winsorized, Statistic::trimmed, Statistic::weighted, Statistic::min, Statistic::max};

// Every statistic, the coverage and the reject map of a random stack (partial coverage from shifts,
// alpha holes) against the oracles, per pixel.
void check_against_oracle(int n, int bands, bool alpha, std::uint32_t seed, int budget)
{
	std::mt19937 rng(seed);
	const int w = 37, h = 29; // odd sizes: tiles never divide them evenly
	const OutputGeometry g = OutputGeometry::for_reference(w, h, 1.0);
	std::vector<MemoryFrame> frames;
	std::vector<double> weights;
	std::uniform_int_distribution<int> shift(-6, 6);
	std::uniform_real_distribution<double> weight(0.0, 1.0);
	for (int i = 0; i < n; i++) {
		frames.push_back(random_frame(rng, w, h, bands, alpha, i == 0 ? 0 : shift(rng), i == 0 ? 0 : shift(rng)));
		weights.push_back(i == 1 ? 0.0 : weight(rng)); // one frame of weight 0
	}
	std::vector<StackFrame> stack;
	for (std::size_t i = 0; i < frames.size(); i++) {
		stack.push_back(to_stack_frame(frames[i], g));
		stack.back().weight = weights[i];
	}
	ReduceSpec spec;
	spec.geometry = g;
	spec.colour_bands = bands;
	spec.statistics = kEveryStatistic;
	spec.clip = {1.5, 3, 0.2}; // uniform samples: kappa 1.5 rejects often
	spec.coverage = true;
	spec.rejects = true;
	spec.plan = plan_for(spec, n, budget);
	const std::vector<float> out = read_all(reduce_stack(stack, spec));
	const int ob = reduced_bands(spec);
	REQUIRE(ob == 8 * bands + 1 + 3);
	int partial = 0, mismatches = 0, rejected = 0;
	double worst = 0;
	for (int y = 0; y < h; y++)
		for (int x = 0; x < w; x++) {
			const float *p = &out[(static_cast<std::size_t>(y) * w + x) * ob];
			const float *count = p + 8 * bands, *rejects = count + 1;
			const auto s0 = oracle_samples(frames, x, y, 0);
			CHECK(*count == static_cast<float>(s0.size()));
			if (static_cast<int>(s0.size()) < n)
				partial++;
			std::uint32_t most[3] = {0, 0, 0};
			for (int b = 0; b < bands; b++) {
				std::vector<std::size_t> from;
				const auto s = oracle_samples(frames, x, y, b, &from);
				std::vector<double> sw;
				for (std::size_t f : from)
					sw.push_back(weights[f]);
				const OracleEstimate clip[3] = {oracle_sigma_clip(s, 1.5, 3), oracle_winsorized(s, 1.5, 3), oracle_trimmed(s, 0.2)};
				auto at = [&](int statistic) { return static_cast<long double>(p[statistic * bands + b]); };
				const long double expected[8] = {oracle_mean(s), oracle_median(s), clip[0].value, clip[1].value, clip[2].value,
					oracle_weighted(s, sw), s.empty() ? 0.0f : *std::min_element(s.begin(), s.end()),
					s.empty() ? 0.0f : *std::max_element(s.begin(), s.end())};
				for (int i = 0; i < 8; i++) {
					const long double error = std::fabs(at(i) - expected[i]);
					worst = std::max(worst, static_cast<double>(error));
					// Median, min and max are exact; the rest round a double once to float.
					mismatches += (i == 1 || i >= 6) ? error != 0 : error > 1.2e-7L;
				}
				for (int r = 0; r < 3; r++)
					most[r] = std::max(most[r], clip[r].rejected);
			}
			for (int r = 0; r < 3; r++) {
				CHECK(rejects[r] == static_cast<float>(most[r]));
				rejected += most[r] > 0;
			}
		}
	CHECK(mismatches == 0);
	CHECK(worst < 1.2e-7);
	if (n > 1)
		CHECK(partial > 0); // the shifts and holes really exercised partial coverage
	if (n > 3)
		CHECK(rejected > 0);
}

} // namespace

TEST_CASE("reducer matches the brute-force oracle: odd and even N, 1 and 3 bands, alpha holes, small tiles")
{
	for (int n : {1, 2, 3, 4, 7, 10})
		for (int bands : {1, 3})
			for (bool alpha : {false, true}) {
				CAPTURE(n);
				CAPTURE(bands);
				CAPTURE(alpha);
				// A budget that forces tiles far smaller than the image, and one that does not.
				check_against_oracle(n, bands, alpha, 1000u + n * 10 + bands + alpha, 200'000);
				check_against_oracle(n, bands, alpha, 2000u + n * 10 + bands + alpha, 40'000'000);
			}
}

TEST_CASE("median kernel: exact, and the mean of the two middle values for even counts")
{
	std::mt19937 rng(7);
	std::uniform_real_distribution<float> u(-1000.0f, 1000.0f);
	for (std::uint32_t n = 1; n <= 64; n++) {
		std::vector<float> v(n);
		for (auto &x : v)
			x = u(rng);
		std::vector<float> copy = v;
		CHECK(kernels::median_inplace(copy.data(), n) == oracle_median(v));
	}
	float two[] = {1.0f, 4.0f};
	CHECK(kernels::median_inplace(two, 2) == 2.5f);
	float dup[] = {3.0f, 3.0f, 1.0f, 9.0f};
	CHECK(kernels::median_inplace(dup, 4) == 3.0f);
}

TEST_CASE("running mean stays within a tight bound of a long double oracle over 1000 frames")
{
	// A large offset with small variations: a naive float sum would lose the variations.
	std::mt19937 rng(11);
	std::normal_distribution<double> noise(0.0, 1e-3);
	double worst = 0;
	for (int trial = 0; trial < 50; trial++) {
		double running = 0;
		long double sum = 0;
		for (std::uint32_t k = 1; k <= 1000; k++) {
			const float x = static_cast<float>(0.73 + noise(rng));
			running += x;
			sum += x;
		}
		const double mean = kernels::mean_of(running, 1000);
		worst = std::max(worst, static_cast<double>(std::fabs(mean - sum / 1000.0L)));
	}
	// The bound the kernel's comment promises: N * 2^-53 relative, about 1.1e-13 for N = 1000.
	CHECK(worst < 1000 * 0x1p-53);

	// And through the reducer: 1000 frames of a tiny image, float output.
	const int n = 1000, w = 5, h = 4;
	const OutputGeometry g = OutputGeometry::for_reference(w, h, 1.0);
	std::vector<MemoryFrame> frames;
	std::vector<StackFrame> stack;
	for (int i = 0; i < n; i++) {
		frames.push_back(random_frame(rng, w, h, 1, false, 0, 0));
		stack.push_back(to_stack_frame(frames.back(), g));
	}
	ReduceSpec spec;
	spec.geometry = g;
	spec.colour_bands = 1;
	spec.statistics = {Statistic::mean, Statistic::median};
	spec.plan = plan_for(spec, n, 40'000'000);
	const auto out = read_all(reduce_stack(stack, spec));
	for (int y = 0; y < h; y++)
		for (int x = 0; x < w; x++) {
			const auto s = oracle_samples(frames, x, y, 0);
			const std::size_t i = (static_cast<std::size_t>(y) * w + x) * 2;
			// The float output rounds the double mean: within half an ulp of 1.0 of the oracle.
			CHECK(std::fabs(out[i] - static_cast<double>(oracle_mean(s))) <= 6e-8);
			CHECK(out[i + 1] == oracle_median(s));
		}
}

TEST_CASE("memory plan follows the statistics: the sample buffer only for order statistics, every output band counted")
{
	ReduceSpec spec;
	spec.colour_bands = 3;
	BudgetRequest r;
	spec.statistics = {Statistic::mean, Statistic::max, Statistic::min, Statistic::weighted};
	describe_reduction(spec, r);
	CHECK_FALSE(r.order_statistics);
	CHECK(r.running_bytes_per_pixel == 4 + 3 * 8 + (3 * 8 + 8) + 3 * 8); // count, sums, weighted sums, extremes
	CHECK(r.reduced_bands == 12);
	spec.statistics = {Statistic::median};
	describe_reduction(spec, r);
	CHECK(r.order_statistics);
	CHECK(r.running_bytes_per_pixel == 4 + 3 * 8);
	CHECK(r.reduced_bands == 3);
	spec.statistics = kEveryStatistic;
	spec.coverage = spec.rejects = true;
	describe_reduction(spec, r);
	CHECK(r.reduced_bands == 8 * 3 + 1 + 3);
	// The reject map has a band only for statistics that reject.
	spec.statistics = {Statistic::mean, Statistic::median};
	CHECK(reduced_bands(spec) == 2 * 3 + 1);
	CHECK(band_groups(spec).back().name == "coverage");

	// 100 frames in 48 MiB on 2 threads: mean and max keep the largest tile, the median cannot.
	r.memory_bytes = 48ull << 20;
	r.threads = 2;
	r.frames = 100;
	r.output_width = 4000;
	spec.coverage = spec.rejects = false;
	spec.statistics = {Statistic::mean, Statistic::max};
	describe_reduction(spec, r);
	const int running_tile = plan_memory(r).tile;
	spec.statistics = {Statistic::median};
	describe_reduction(spec, r);
	const int order_tile = plan_memory(r).tile;
	CHECK(running_tile == kMaxTile);
	CHECK(order_tile <= running_tile / 2);
}
