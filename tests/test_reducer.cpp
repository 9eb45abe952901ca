// The reducer against a brute-force oracle: exact medians, a bounded mean error, counts, coverage.
#include "stack_fixtures.hpp"

#include "../src/reduce/kernels.hpp"
#include "superstack/budget.hpp"

#include <doctest/doctest.h>

#include <cmath>

using namespace superstack;
using namespace superstack::test;

namespace {

MemoryPlan plan_for(int frames, int bands, int tile_limit_bytes_per_thread, int threads = 1)
{
	BudgetRequest r;
	r.frames = frames;
	r.colour_bands = bands;
	r.threads = threads;
	r.scale = 1;
	r.output_width = 64;
	r.memory_bytes = static_cast<std::uint64_t>(tile_limit_bytes_per_thread) * threads + saver_bytes_for(r);
	return plan_memory(r);
}

void check_against_oracle(int n, int bands, bool alpha, std::uint32_t seed, int budget)
{
	std::mt19937 rng(seed);
	const int w = 37, h = 29; // odd sizes: tiles never divide them evenly
	const OutputGeometry g = OutputGeometry::for_reference(w, h, 1.0);
	std::vector<MemoryFrame> frames;
	std::uniform_int_distribution<int> shift(-6, 6);
	for (int i = 0; i < n; i++)
		frames.push_back(random_frame(rng, w, h, bands, alpha, i == 0 ? 0 : shift(rng), i == 0 ? 0 : shift(rng)));
	std::vector<StackFrame> stack;
	for (const auto &f : frames)
		stack.push_back(to_stack_frame(f, g));
	ReduceSpec spec;
	spec.geometry = g;
	spec.colour_bands = bands;
	spec.statistics = {Statistic::mean, Statistic::median};
	spec.coverage = true;
	spec.plan = plan_for(n, bands, budget);
	const std::vector<float> out = read_all(reduce_stack(stack, spec));
	const int ob = 2 * bands + 1;
	int partial = 0, mismatches = 0;
	double worst_mean = 0;
	for (int y = 0; y < h; y++)
		for (int x = 0; x < w; x++) {
			const float *p = &out[(static_cast<std::size_t>(y) * w + x) * ob];
			const auto s0 = oracle_samples(frames, x, y, 0);
			CHECK(p[2 * bands] == static_cast<float>(s0.size()));
			if (static_cast<int>(s0.size()) < n)
				partial++;
			for (int b = 0; b < bands; b++) {
				const auto s = oracle_samples(frames, x, y, b);
				if (p[bands + b] != oracle_median(s))
					mismatches++;
				worst_mean = std::max(worst_mean, static_cast<double>(std::fabs(p[b] - oracle_mean(s))));
			}
		}
	CHECK(mismatches == 0);
	CHECK(worst_mean < 1e-6);
	if (n > 1)
		CHECK(partial > 0); // the shifts and holes really exercised partial coverage
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
	spec.plan = plan_for(n, 1, 40'000'000);
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
