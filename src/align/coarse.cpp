// coarse -- Fourier-Mellin rotation and scale, then a global phase correlation for the shift.
#include "coarse.hpp"

#include "fft.hpp"

#include "superstack/geometry.hpp"
#include "superstack/warp.hpp"

#include <vips/vips8>

#include <algorithm>
#include <bit>
#include <complex>
#include <cmath>
#include <cstring>
#include <numbers>

namespace superstack::align {

namespace {

using vips::VImage;

constexpr int kAngles = 360;  // over 180 degrees: half a degree per column
constexpr int kRadii = 128;
constexpr int kLongSide = 256; // the estimate works on proxies no larger (FFT planning grows with size)

// The proxy, mean removed and Hann-tapered, centred on a size x size canvas of zeros.
Grey canvas_of(const Grey &p, int size)
{
	double mean = 0;
	for (float v : p.pixels)
		mean += v;
	mean /= static_cast<double>(p.pixels.size());
	Grey c;
	c.width = c.height = size;
	c.pixels.assign(static_cast<std::size_t>(size) * size, 0.0f);
	const int ox = (size - p.width) / 2, oy = (size - p.height) / 2;
	const std::vector<double> hx = hann_window(p.width), hy = hann_window(p.height);
	for (int y = 0; y < p.height; y++) {
		const double wy = hy[static_cast<std::size_t>(y)];
		for (int x = 0; x < p.width; x++) {
			const double wx = hx[static_cast<std::size_t>(x)];
			c.pixels[static_cast<std::size_t>(y + oy) * size + x + ox] = static_cast<float>((p.at(x, y) - mean) * wx * wy);
		}
	}
	return c;
}

// The high-passed log magnitude spectrum, resampled on a log-polar grid: column = angle over
// [0, 180) degrees, row = log radius from 2 to 0.45 size.
Grey log_polar_spectrum(const Grey &canvas, double &log_step)
{
	const int n = canvas.width;
	const double c = n / 2.0; // the DC term after wrap
	const double r0 = 2.0, r1 = 0.45 * n;
	log_step = std::log(r1 / r0) / (kRadii - 1);
	std::vector<float> index(static_cast<std::size_t>(kAngles) * kRadii * 2);
	for (int j = 0; j < kRadii; j++) {
		const double r = r0 * std::exp(j * log_step);
		for (int i = 0; i < kAngles; i++) {
			const double t = std::numbers::pi * i / kAngles;
			float *p = &index[(static_cast<std::size_t>(j) * kAngles + i) * 2];
			p[0] = static_cast<float>(c + r * std::cos(t));
			p[1] = static_cast<float>(c + r * std::sin(t));
		}
	}
	// log(1 + |F|) with the zero frequency moved to (c, c), times the high-pass; the half spectrum
	// holds the rest by symmetry, |F(-u, -v)| = |F(u, v)|.
	const Spectrum spectrum = forward_fft(std::vector<double>(canvas.pixels.begin(), canvas.pixels.end()), n, n);
	const int half = n / 2 + 1;
	std::vector<float> weighted(static_cast<std::size_t>(n) * n);
	for (int y = 0; y < n; y++)
		for (int x = 0; x < n; x++) {
			const int u = (x + n / 2) % n, v = (y + n / 2) % n; // the frequency shown at (x, y)
			const std::complex<double> f = u < half ? spectrum[static_cast<std::size_t>(v) * half + u]
								: spectrum[static_cast<std::size_t>((n - v) % n) * half + (n - u)];
			const double xi = (x - c) / n, eta = (y - c) / n;
			const double q = std::cos(std::numbers::pi * xi) * std::cos(std::numbers::pi * eta);
			weighted[static_cast<std::size_t>(y) * n + x] = static_cast<float>(std::log(1 + std::abs(f)) * (1 - q) * (2 - q));
		}
	const VImage image = VImage::new_from_memory(weighted.data(), weighted.size() * sizeof(float), n, n, 1, VIPS_FORMAT_FLOAT);
	const VImage idx = VImage::new_from_memory(index.data(), index.size() * sizeof(float), kAngles, kRadii, 2, VIPS_FORMAT_FLOAT);
	return grey_of(image.mapim(idx, VImage::option()->set("interpolate", vips::VInterpolate::new_from_name("bilinear"))));
}

} // namespace

Grey resample(const Grey &image, const Matrix3 &m, int width, int height)
{
	OutputGeometry g;
	g.width = width;
	g.height = height;
	return grey_of(warp_to_output(image_of(image), m, g, Kernel::linear));
}

CoarseEstimate estimate_coarse(const Grey &ref_proxy, const Grey &frame_proxy)
{
	// Box-shrunk by f when larger than kLongSide: pixel i covers [if, if+f), centred at (i+0.5)f-0.5.
	// Never below one pixel: a reference of a few pixels against a larger frame keeps its size (the
	// canvas then grows past kLongSide, to the frame proxy's 960 px at most).
	const int f = std::clamp((std::max({ref_proxy.width, ref_proxy.height, frame_proxy.width, frame_proxy.height}) +
		kLongSide - 1) / kLongSide, 1, std::min({ref_proxy.width, ref_proxy.height, frame_proxy.width, frame_proxy.height}));
	const Grey ref = f == 1 ? ref_proxy : grey_of(image_of(ref_proxy).shrink(f, f));
	const Grey frame = f == 1 ? frame_proxy : grey_of(image_of(frame_proxy).shrink(f, f));
	const Matrix3 up = Matrix3::translation(-0.5, -0.5) * Matrix3::scaling(f, f) * Matrix3::translation(0.5, 0.5);

	const int size = static_cast<int>(std::bit_ceil(static_cast<unsigned>(
		std::max({ref.width, ref.height, frame.width, frame.height}))));
	double log_step = 0;
	const Grey lr = log_polar_spectrum(canvas_of(ref, size), log_step);
	const Grey lf = log_polar_spectrum(canvas_of(frame, size), log_step);
	PhaseOptions polar;
	polar.window_x = false; // the angle axis is periodic (180 degrees)
	const Shift s = phase_correlate(lr, lf, polar);
	// |F|(theta, log r) = |R|(theta - phi, log r + log s): the frame's log-polar image is the
	// reference's moved by (+phi, -log s).
	const double degrees = s.dx * 180.0 / kAngles;
	const double scale = std::exp(-s.dy * log_step);

	const Point cr{(ref.width - 1) / 2.0, (ref.height - 1) / 2.0};
	const Point cf{(frame.width - 1) / 2.0, (frame.height - 1) / 2.0};
	CoarseEstimate best;
	best.peak = -1;
	const double candidates[][2] = {{degrees, scale}, {degrees + 180.0, scale}, {0.0, 1.0}};
	for (const auto &candidate : candidates) {
		// ref proxy p -> frame proxy A (p - cr) + cf
		const Matrix3 a = Matrix3::translation(cf.x, cf.y) *
			Matrix3::similarity(candidate[0], candidate[1], {0, 0}, 0, 0) * Matrix3::translation(-cr.x, -cr.y);
		const Grey g = resample(frame, a, ref.width, ref.height);
		const Shift t = phase_correlate(ref, g);
		// g(x) = ref(x - d): ref(q) = g(q + d) = frame(a (q + d)).
		if (t.peak > best.peak) {
			best.peak = t.peak;
			best.matrix = (up * a * Matrix3::translation(t.dx, t.dy) * up.inverse()).normalised();
			best.degrees = candidate[0];
			best.scale = candidate[1];
		}
	}
	return best;
}

} // namespace superstack::align
