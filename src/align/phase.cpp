// phase -- windowed, low-pass weighted phase correlation.
#include "phase.hpp"

#include "fft.hpp"

#include "superstack/error.hpp"

#include <vips/vips8>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <complex>

namespace superstack::align {

namespace {

std::vector<double> window_of(int width, int height, const PhaseOptions &o, const std::vector<float> *weight)
{
	std::vector<double> w(static_cast<std::size_t>(width) * height);
	const std::vector<double> hx = hann_window(width), hy = hann_window(height);
	for (int y = 0; y < height; y++) {
		const double wy = o.window_y ? hy[static_cast<std::size_t>(y)] : 1.0;
		for (int x = 0; x < width; x++) {
			const double wx = o.window_x ? hx[static_cast<std::size_t>(x)] : 1.0;
			const std::size_t i = static_cast<std::size_t>(y) * width + x;
			w[i] = wx * wy * (weight ? (*weight)[i] : 1.0f);
		}
	}
	return w;
}

// (p - weighted mean) * window, as a double image.
std::vector<double> tapered(const Grey &p, const std::vector<double> &w)
{
	double sum = 0, total = 0;
	for (std::size_t i = 0; i < w.size(); i++)
		sum += w[i] * p.pixels[i], total += w[i];
	const double mean = total > 0 ? sum / total : 0.0;
	std::vector<double> out(w.size());
	for (std::size_t i = 0; i < w.size(); i++)
		out[i] = (p.pixels[i] - mean) * w[i];
	return out;
}

} // namespace

Grey grey_of(const vips::VImage &image)
{
	const vips::VImage band = image.bands() > 1 ? image.extract_band(0) : image;
	Grey g;
	g.width = band.width();
	g.height = band.height();
	std::size_t bytes = 0;
	void *mem = band.cast(VIPS_FORMAT_FLOAT).write_to_memory(&bytes);
	g.pixels.resize(bytes / sizeof(float));
	std::memcpy(g.pixels.data(), mem, bytes);
	g_free(mem);
	return g;
}

vips::VImage image_of(const Grey &g)
{
	return vips::VImage::new_from_memory(const_cast<float *>(g.pixels.data()), g.pixels.size() * sizeof(float), g.width,
		g.height, 1, VIPS_FORMAT_FLOAT);
}

namespace {

// Signed frequency of index i on an n-point FFT, in cycles per pixel.
double frequency(int i, int n)
{
	return (i <= n / 2 ? i : i - n) / static_cast<double>(n);
}

// The peak offset from samples at -1, 0, 1: the vertex of a Gaussian through them (exact for the
// near-Gaussian peak the low-pass weighting makes), else of a parabola; within half a pixel.
double peak_offset(double l, double c, double r)
{
	if (l > 0 && c > 0 && r > 0) {
		const double ll = std::log(l), lc = std::log(c), lr = std::log(r);
		const double d = ll - 2 * lc + lr;
		if (d < 0)
			return std::clamp(0.5 * (ll - lr) / d, -0.5, 0.5);
	}
	const double d = l - 2 * c + r;
	if (d >= 0)
		return 0; // not a maximum
	return std::clamp(0.5 * (l - r) / d, -0.5, 0.5);
}

} // namespace

Shift phase_correlate(const Grey &a, const Grey &b, const PhaseOptions &o, const std::vector<float> *weight)
{
	const int w = a.width, h = a.height;
	const std::vector<double> win = window_of(w, h, o, weight);
	const auto fa = forward_fft(tapered(a, win), w, h);
	const auto fb = forward_fft(tapered(b, win), w, h);
	// Half spectra: column x stands for itself and, when 0 < x < w/2 (or x = w/2 with w odd), for
	// its mirror -x too, which the weight total counts.
	const int half = w / 2 + 1;
	Spectrum cross(fa.size());
	double total = 0;
	const double k = o.cutoff > 0 ? 1.0 / (2 * o.cutoff * o.cutoff) : 0.0;
	for (int y = 0; y < h; y++)
		for (int x = 0; x < half; x++) {
			const std::size_t i = static_cast<std::size_t>(y) * half + x;
			const std::complex<double> c = fa[i] * std::conj(fb[i]);
			const double magnitude = std::abs(c);
			if (magnitude <= 1e-30 || (x == 0 && y == 0)) {
				cross[i] = 0;
				continue;
			}
			const double fx = frequency(x, w), fy = frequency(y, h);
			// Band-pass: the Gaussian low-pass, times a high-pass that removes the few lowest
			// frequencies, where the window's own spectrum (the same in both patches, so a false
			// peak at zero shift) outweighs the content.
			const double cx = fx * w, cy = fy * h; // cycles per patch
			const double g = std::exp(-(fx * fx + fy * fy) * k) * (1 - std::exp(-(cx * cx + cy * cy) / 4));
			// b(x) = a(x - d): A conj(B) = |A|^2 e^{+i 2 pi f d}, whose inverse peaks at -d; the
			// conjugate's peaks at +d.
			cross[i] = std::conj(c) / magnitude * g;
			total += (x == 0 || 2 * x == w) ? g : 2 * g;
		}
	const std::vector<double> surface = inverse_fft(cross, w, h);
	std::size_t best = 0;
	for (std::size_t i = 1; i < surface.size(); i++)
		if (surface[i] > surface[best])
			best = i;
	const int px = static_cast<int>(best % w), py = static_cast<int>(best / w);
	auto at = [&](int x, int y) { return surface[static_cast<std::size_t>((y + h) % h) * w + (x + w) % w]; };
	Shift s;
	const double c = at(px, py);
	s.dx = (px <= w / 2 ? px : px - w) + peak_offset(at(px - 1, py), c, at(px + 1, py));
	s.dy = (py <= h / 2 ? py : py - h) + peak_offset(at(px, py - 1), c, at(px, py + 1));
	// The inverse is not normalised: the sum of the weights is the value a perfect match reaches.
	s.peak = total > 0 ? c / total : 0.0;
	return s;
}

double window_ncc(const Grey &a, const Grey &b, const std::vector<float> *weight)
{
	const std::vector<double> win = window_of(a.width, a.height, PhaseOptions{}, weight);
	const std::vector<double> ta = tapered(a, win), tb = tapered(b, win);
	double ab = 0, aa = 0, bb = 0;
	// tapered() multiplied by the window once; the weighted correlation needs it once more in total
	// (sum w (a-ma)(b-mb)) so divide one factor back out.
	for (std::size_t i = 0; i < win.size(); i++) {
		if (win[i] <= 0)
			continue;
		ab += ta[i] * tb[i] / win[i];
		aa += ta[i] * ta[i] / win[i];
		bb += tb[i] * tb[i] / win[i];
	}
	return aa > 0 && bb > 0 ? ab / std::sqrt(aa * bb) : 0.0;
}

} // namespace superstack::align
