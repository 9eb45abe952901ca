// lanczos -- a Lanczos-3 VipsInterpolate, so vips_affine and vips_mapim can warp with it.
//
// libvips offers lanczos3 only inside vips_reduce/vips_resize (pure scaling); its interpolators for
// arbitrary transforms stop at bicubic. This class adds the missing one as a libvips plug-in: a 6x6
// separable stencil, weights tabulated at 1/1024 pixel and normalised to sum to 1. Float input only
// (the warp casts first). Memory: one 1025x6 weight table, shared.
#pragma once

#include <vips/vips8>

namespace superstack {

// A new Lanczos-3 interpolator (registers the GType on first use; thread-safe).
vips::VInterpolate lanczos3_interpolator();

// The Lanczos-3 kernel value at distance x (0 outside |x| < 3). For tests and oracles.
double lanczos3(double x);

} // namespace superstack
