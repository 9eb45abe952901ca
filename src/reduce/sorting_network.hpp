// sorting_network -- sorts a short float array without branches: Batcher's odd-even merge sort as a
// fixed list of compare-exchanges, unrolled at compile time.
//
// Why: a pixel's stack is usually 4 to 32 samples in no useful order, and an insertion sort of 16
// values mispredicts about one branch in two (measured: 274 ns per pixel-band for 16 real samples;
// it was the order estimators' largest cost after the winsorized steps). A network does the same
// compare-exchanges whatever the data: 63 min/max pairs for 16 values, which the compiler keeps in
// registers. Costs no memory beyond a local array of N floats.
//
// The result is the ascending order of the values (a sort is unique as a sequence of values; only
// +0 and -0, equal as floats, may change places). NaN has no order: with a NaN the output is
// unspecified (a value may be repeated in place of another; deterministic, and never a read or write
// outside the array), as any comparison sort's is.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <utility>

namespace superstack::kernels::network {

// The loops of Batcher's odd-even merge sort for n = 2^k inputs; `visit(i, j)` for each compare-exchange.
template <typename Visit>
constexpr void batcher(std::size_t n, Visit visit)
{
	for (std::size_t p = 1; p < n; p *= 2)
		for (std::size_t k = p; k >= 1; k /= 2)
			for (std::size_t j = k % p; j + k < n; j += 2 * k)
				for (std::size_t i = 0; i < k && i + j + k < n; i++)
					if ((i + j) / (2 * p) == (i + j + k) / (2 * p))
						visit(i + j, i + j + k);
}

constexpr std::size_t batcher_size(std::size_t n)
{
	std::size_t count = 0;
	batcher(n, [&](std::size_t, std::size_t) { count++; });
	return count;
}

template <std::size_t N>
constexpr auto batcher_pairs()
{
	std::array<std::array<std::uint8_t, 2>, batcher_size(N)> pairs{};
	std::size_t at = 0;
	batcher(N, [&](std::size_t i, std::size_t j) { pairs[at++] = {static_cast<std::uint8_t>(i), static_cast<std::uint8_t>(j)}; });
	return pairs;
}

template <std::size_t N>
inline constexpr auto kPairs = batcher_pairs<N>();

static_assert(kPairs<16>.size() == 63 && kPairs<8>.size() == 19);

// std::min and std::max compile to minss and maxss. (The same swap written with one condition, which
// would keep a NaN's place, compiles to a compare and a branch: 8x slower on random data, measured.)
inline void compare_exchange(float &a, float &b)
{
	const float x = a, y = b;
	a = std::min(x, y);
	b = std::max(x, y);
}

template <std::size_t N, std::size_t... I>
inline void run(std::array<float, N> &w, std::index_sequence<I...>)
{
	(compare_exchange(w[kPairs<N>[I][0]], w[kPairs<N>[I][1]]), ...);
}

// Sorts v[0..n) ascending, n <= N (N a power of 2): the missing values are +inf while sorting.
template <std::size_t N>
inline void sort(float *v, std::uint32_t n)
{
	std::array<float, N> w;
	for (std::size_t i = 0; i < N; i++)
		w[i] = i < n ? v[i] : HUGE_VALF;
	run(w, std::make_index_sequence<kPairs<N>.size()>{});
	for (std::size_t i = 0; i < n; i++)
		v[i] = w[i];
}

} // namespace superstack::kernels::network
