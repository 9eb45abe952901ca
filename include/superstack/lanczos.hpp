// lanczos -- a Lanczos-3 VipsInterpolate, so vips_affine and vips_mapim can warp with it.
//
// libvips offers lanczos3 only inside vips_reduce/vips_resize (pure scaling); its interpolators for
// arbitrary transforms stop at bicubic. This class adds the missing one as a libvips plug-in: a 6x6
// separable stencil, weights tabulated at 1/1024 pixel and normalised to sum to 1. Float input only
// (the warp casts first). Memory: one 1025x6 weight table, shared. The table, and a vectorised
// stencil for 1 or 2 bands, are here too, inline, for code that samples its own pixels many times
// (the aligner's patch atlas).
#pragma once

#include <vips/vips8>

#include <array>
#include <cstddef>

namespace superstack {

inline constexpr int kLanczosSteps = 1024; // subpixel positions tabulated: 1/1024 px, far below alignment error
inline constexpr int kLanczosTaps = 6;
// Row i: the six taps' weights at x - floor(x) = i / kLanczosSteps (tap k at floor(x) + k - 2),
// normalised to sum to 1.
using LanczosWeights = std::array<std::array<float, kLanczosTaps>, kLanczosSteps + 1>;
const LanczosWeights &lanczos3_weights(); // built on first use (thread-safe)

namespace detail {

// floor() without the libm call (it cost 4.6% of a run): truncate, then step down for negatives.
inline int floor_int(double v)
{
	return static_cast<int>(v) - (v < static_cast<int>(v));
}

// The six taps' weights at x, whose floor is `ix`: the table's row nearest x - ix.
inline const std::array<float, kLanczosTaps> &lanczos3_taps(const LanczosWeights &weights, double x, int ix)
{
	return weights[static_cast<std::size_t>((x - ix) * kLanczosSteps + 0.5)];
}

} // namespace detail

// Lanczos-3 of 1- or 2-band float pixels (`pixels`: the buffer's first pixel, `line` floats a row)
// at (x, y), into `out` (`Bands` floats). The stencil, pixels floor(x) - 2 to floor(x) + 3 and the
// same in y, must lie inside the buffer; nothing outside it is read. The interpolator's weights, in
// 4-lane vectors: each row's taps weighted by the row's weight are summed over the rows, then weighted
// by the taps (the interpolator sums the other way round: the same up to the floats' last bits).
template <int Bands>
inline void lanczos3_at(const LanczosWeights &weights, const float *pixels, std::size_t line, double x, double y, float *out)
{
	static_assert(Bands == 1 || Bands == 2);
	typedef float v4 __attribute__((vector_size(16)));
	const int ix = detail::floor_int(x), iy = detail::floor_int(y);
	const auto &wx = detail::lanczos3_taps(weights, x, ix);
	const auto &wy = detail::lanczos3_taps(weights, y, iy);
	const float *p = pixels + static_cast<std::ptrdiff_t>(iy - 2) * static_cast<std::ptrdiff_t>(line) + static_cast<std::ptrdiff_t>(ix - 2) * Bands;
	if constexpr (Bands == 1) {
		// Lanes: taps 0-3, and taps 2-5 of which the first two weigh 0 (no read past the stencil).
		v4 a = {0, 0, 0, 0}, b = {0, 0, 0, 0};
		for (int j = 0; j < kLanczosTaps; j++) {
			v4 ra, rb;
			__builtin_memcpy(&ra, p + j * line, sizeof(v4));
			__builtin_memcpy(&rb, p + j * line + 2, sizeof(v4));
			a += wy[static_cast<std::size_t>(j)] * ra;
			b += wy[static_cast<std::size_t>(j)] * rb;
		}
		const v4 wa = {wx[0], wx[1], wx[2], wx[3]}, wb = {0, 0, wx[4], wx[5]};
		const v4 s = a * wa + b * wb;
		out[0] = (s[0] + s[1]) + (s[2] + s[3]);
	} else {
		// Lanes: (value, alpha) of taps 0-1, 2-3 and 4-5.
		v4 a = {0, 0, 0, 0}, b = {0, 0, 0, 0}, c = {0, 0, 0, 0};
		for (int j = 0; j < kLanczosTaps; j++) {
			v4 ra, rb, rc;
			__builtin_memcpy(&ra, p + j * line, sizeof(v4));
			__builtin_memcpy(&rb, p + j * line + 4, sizeof(v4));
			__builtin_memcpy(&rc, p + j * line + 8, sizeof(v4));
			const float w = wy[static_cast<std::size_t>(j)];
			a += w * ra, b += w * rb, c += w * rc;
		}
		const v4 wa = {wx[0], wx[0], wx[1], wx[1]}, wb = {wx[2], wx[2], wx[3], wx[3]}, wc = {wx[4], wx[4], wx[5], wx[5]};
		const v4 s = a * wa + b * wb + c * wc;
		out[0] = s[0] + s[2];
		out[1] = s[1] + s[3];
	}
}

// A new Lanczos-3 interpolator (registers the GType on first use; thread-safe).
vips::VInterpolate lanczos3_interpolator();

// The Lanczos-3 kernel value at distance x (0 outside |x| < 3). For tests and oracles.
double lanczos3(double x);

} // namespace superstack
