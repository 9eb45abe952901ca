// coarse -- a first similarity between two small proxies, robust to large motion and exposure.
//
// Fourier-Mellin: the magnitude of a spectrum ignores shifts, and in log-polar coordinates a rotation
// and a zoom of the image become a plain shift, found by phase correlation (fft.hpp, libvips mapim).
// With rotation and scale known, a phase correlation of the whole proxies gives the shift. Three
// candidates are tried (the estimate, the same turned by 180 degrees, and no rotation at all); the one
// whose shift peak is strongest wins. Memory: a few complex copies of a proxy (512 x 512 at most).
#pragma once

#include "phase.hpp"

#include "superstack/transform.hpp"

namespace superstack::align {

struct CoarseEstimate {
	Matrix3 matrix;   // reference proxy pixels -> frame proxy pixels
	double peak = 0;  // phase correlation peak of the shift, 0..1
	double degrees = 0, scale = 1;
};

CoarseEstimate estimate_coarse(const Grey &reference, const Grey &frame);

// `image` resampled (bilinear) at m * (x, y) for every pixel of a width x height grid; outside the
// image, the nearest edge pixel.
Grey resample(const Grey &image, const Matrix3 &m, int width, int height);

} // namespace superstack::align
