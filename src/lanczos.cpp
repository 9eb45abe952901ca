// lanczos -- the Lanczos-3 interpolator class for libvips.
#include "superstack/lanczos.hpp"

#include <array>
#include <cmath>
#include <cstring>
#include <numbers>

namespace superstack {

double lanczos3(double x)
{
	x = std::abs(x);
	if (x < 1e-12)
		return 1.0;
	if (x >= 3.0)
		return 0.0;
	const double px = std::numbers::pi * x;
	return 3.0 * std::sin(px) * std::sin(px / 3.0) / (px * px);
}

namespace {

LanczosWeights build_weights()
{
	LanczosWeights t{};
	for (int i = 0; i <= kLanczosSteps; i++) {
		const double f = static_cast<double>(i) / kLanczosSteps; // x - floor(x)
		double w[kLanczosTaps], sum = 0;
		for (int k = 0; k < kLanczosTaps; k++) {
			// tap k sits at floor(x) + k - 2
			w[k] = lanczos3(f - (k - 2));
			sum += w[k];
		}
		for (int k = 0; k < kLanczosTaps; k++)
			t[i][k] = static_cast<float>(w[k] / sum);
	}
	return t;
}

// Set once, before any interpolator exists (lanczos3_interpolator() builds it): the per-pixel path
// reads a plain pointer instead of a guarded function-local static.
const LanczosWeights *weight_table = nullptr;

} // namespace

const LanczosWeights &lanczos3_weights()
{
	static const LanczosWeights table = build_weights();
	return table;
}

extern "C" {

typedef struct _SuperstackLanczos3 {
	VipsInterpolate parent_object;
} SuperstackLanczos3;

typedef struct _SuperstackLanczos3Class {
	VipsInterpolateClass parent_class;
} SuperstackLanczos3Class;

G_DEFINE_TYPE(SuperstackLanczos3, superstack_lanczos3, VIPS_TYPE_INTERPOLATE)

} // extern "C"

namespace {

// The 6x6 stencil for a known band count (0: any, `bands`): each tap's bands are contiguous, so the
// inner loops run over adjacent floats and unroll. `p`: the stencil's top-left pixel.
template <int Bands>
void interpolate_bands(float *q, const float *p, std::size_t line, const std::array<float, kLanczosTaps> &wx,
	const std::array<float, kLanczosTaps> &wy, int bands)
{
	constexpr int fixed = Bands > 0 ? Bands : 1;
	const int nb = Bands > 0 ? Bands : bands;
	for (int b0 = 0; b0 < nb; b0 += fixed) {
		float sum[fixed] = {};
		for (int j = 0; j < kLanczosTaps; j++) {
			const float *row = p + j * line + b0;
			float h[fixed] = {};
			for (int k = 0; k < kLanczosTaps; k++)
				for (int b = 0; b < fixed; b++)
					h[b] += wx[k] * row[k * nb + b];
			for (int b = 0; b < fixed; b++)
				sum[b] += wy[j] * h[b];
		}
		for (int b = 0; b < fixed; b++)
			q[b0 + b] = sum[b];
	}
}

// Three or four bands: one 4-lane vector per tap holds all of a pixel's bands. With three bands the
// fourth lane carries the next pixel's first band and is discarded; taps 0-4 always have a next pixel
// inside the stencil, and the last tap loads from one float earlier and shifts its lanes down, so
// nothing outside the stencil is read.
template <int Bands>
void interpolate_vector(float *q, const float *p, std::size_t line, const std::array<float, kLanczosTaps> &wx,
	const std::array<float, kLanczosTaps> &wy)
{
	typedef float v4 __attribute__((vector_size(16)));
	v4 sum = {0, 0, 0, 0};
	for (int j = 0; j < kLanczosTaps; j++) {
		const float *row = p + j * line;
		v4 h = {0, 0, 0, 0};
		for (int k = 0; k < kLanczosTaps - 1; k++) {
			v4 px;
			__builtin_memcpy(&px, row + k * Bands, sizeof(v4));
			h += wx[k] * px;
		}
		v4 last;
		if constexpr (Bands == 4) {
			__builtin_memcpy(&last, row + (kLanczosTaps - 1) * Bands, sizeof(v4));
		} else {
			v4 before;
			__builtin_memcpy(&before, row + (kLanczosTaps - 1) * Bands - 1, sizeof(v4));
			last = __builtin_shufflevector(before, before, 1, 2, 3, 0); // gcc >= 12 and clang
		}
		h += wx[kLanczosTaps - 1] * last;
		sum += wy[j] * h;
	}
	float out[4];
	__builtin_memcpy(out, &sum, sizeof(out));
	for (int b = 0; b < Bands; b++)
		q[b] = out[b];
}

} // namespace

extern "C" {

static void superstack_lanczos3_interpolate(VipsInterpolate *, void *out, VipsRegion *in, double x, double y)
{
	const int ix = detail::floor_int(x), iy = detail::floor_int(y);
	const auto &wx = detail::lanczos3_taps(*weight_table, x, ix);
	const auto &wy = detail::lanczos3_taps(*weight_table, y, iy);
	const int bands = in->im->Bands;
	const std::size_t line = VIPS_REGION_LSKIP(in) / sizeof(float);
	const float *p = reinterpret_cast<const float *>(VIPS_REGION_ADDR(in, ix - 2, iy - 2));
	float *q = static_cast<float *>(out);
	switch (bands) {
	case 1: interpolate_bands<1>(q, p, line, wx, wy, bands); break;
	case 2: interpolate_bands<2>(q, p, line, wx, wy, bands); break;
	case 3: interpolate_vector<3>(q, p, line, wx, wy); break;
	case 4: interpolate_vector<4>(q, p, line, wx, wy); break;
	default: interpolate_bands<0>(q, p, line, wx, wy, bands); break;
	}
}

static void superstack_lanczos3_class_init(SuperstackLanczos3Class *klass)
{
	VipsObjectClass *object_class = VIPS_OBJECT_CLASS(klass);
	VipsInterpolateClass *interpolate_class = VIPS_INTERPOLATE_CLASS(klass);
	object_class->nickname = "superstack_lanczos3";
	object_class->description = "Lanczos-3 interpolation (float images)";
	interpolate_class->interpolate = superstack_lanczos3_interpolate;
	interpolate_class->window_size = kLanczosTaps;
	interpolate_class->window_offset = 2;
}

static void superstack_lanczos3_init(SuperstackLanczos3 *) {}

} // extern "C"

vips::VInterpolate lanczos3_interpolator()
{
	weight_table = &lanczos3_weights();
	VipsObject *object = vips_object_new(superstack_lanczos3_get_type(), nullptr, nullptr, nullptr);
	return vips::VInterpolate(VIPS_INTERPOLATE(object), vips::STEAL);
}

} // namespace superstack
