// stack_fixtures -- small random stacks built in memory, and a brute-force oracle to check against.
#pragma once

#include "estimator_oracles.hpp"
#include "superstack/reduce.hpp"
#include "superstack/warp.hpp"

#include <vips/vips8>

#include <algorithm>
#include <random>
#include <vector>

namespace superstack::test {

// A vips-owned copy of interleaved pixels: the image outlives `pixels`. (The C++ API of libvips 8.14
// has no new_from_memory_copy, and copy_memory() of a memory image is that same image, not a copy.)
template <typename T>
vips::VImage image_from(const std::vector<T> &pixels, int width, int height, int bands, VipsBandFormat format)
{
	VipsImage *copy = vips_image_new_from_memory_copy(pixels.data(), pixels.size() * sizeof(T), width, height, bands, format);
	if (!copy)
		throw vips::VError();
	return vips::VImage(copy, vips::STEAL);
}

// One in-memory frame: `bands` float colour bands (+ alpha when `alpha`), and an integer shift that
// places it on the output grid (scale 1, nearest: the warp is an exact copy).
struct MemoryFrame {
	int width = 0, height = 0, bands = 1;
	bool alpha = false;
	int dx = 0, dy = 0;          // frame pixel (u, v) lands on output (u - dx, v - dy)
	std::vector<float> pixels;   // interleaved, colour premultiplied by alpha when alpha
	std::vector<float> colour;   // the un-premultiplied colour the oracle sees

	float value(int u, int v, int b) const { return colour[(static_cast<std::size_t>(v) * width + u) * bands + b]; }
	float alpha_at(int u, int v) const
	{
		return alpha ? pixels[(static_cast<std::size_t>(v) * width + u) * (bands + 1) + bands] : 1.0f;
	}
};

inline MemoryFrame random_frame(std::mt19937 &rng, int width, int height, int bands, bool alpha, int dx, int dy,
	bool quantise_8bit = false)
{
	MemoryFrame f;
	f.width = width, f.height = height, f.bands = bands, f.alpha = alpha, f.dx = dx, f.dy = dy;
	std::uniform_real_distribution<float> u(0.0f, 1.0f);
	std::uniform_int_distribution<int> q(0, 255);
	const int stride = bands + (alpha ? 1 : 0);
	f.pixels.resize(static_cast<std::size_t>(width) * height * stride);
	f.colour.resize(static_cast<std::size_t>(width) * height * bands);
	for (int i = 0; i < width * height; i++) {
		// Alpha: a hole (0) in about one pixel in five, otherwise opaque.
		const float a = alpha ? (u(rng) < 0.2f ? 0.0f : 1.0f) : 1.0f;
		for (int b = 0; b < bands; b++) {
			const float v = quantise_8bit ? q(rng) / 255.0f : u(rng);
			f.colour[static_cast<std::size_t>(i) * bands + b] = v;
			f.pixels[static_cast<std::size_t>(i) * stride + b] = v * a;
		}
		if (alpha)
			f.pixels[static_cast<std::size_t>(i) * stride + bands] = a;
	}
	return f;
}

inline StackFrame to_stack_frame(const MemoryFrame &m, const OutputGeometry &g)
{
	const int stride = m.bands + (m.alpha ? 1 : 0);
	StackFrame f;
	f.working = image_from(m.pixels, m.width, m.height, stride, VIPS_FORMAT_FLOAT);
	f.width = m.width, f.height = m.height, f.alpha = m.alpha;
	f.output_to_frame = Matrix3::translation(m.dx, m.dy);
	f.footprint = frame_footprint(f.output_to_frame, m.width, m.height, g);
	f.warped = warp_to_output(f.working, f.output_to_frame, g, Kernel::nearest);
	return f;
}

// The brute-force oracle: for each output pixel, the covered samples in frame order (and, when asked,
// the index of the frame each came from).
inline std::vector<float> oracle_samples(const std::vector<MemoryFrame> &frames, int x, int y, int band,
	std::vector<std::size_t> *from = nullptr)
{
	std::vector<float> s;
	for (const auto &f : frames) {
		const int u = x + f.dx, v = y + f.dy;
		if (u < 0 || v < 0 || u >= f.width || v >= f.height)
			continue;
		if (f.alpha_at(u, v) < 0.5f)
			continue;
		s.push_back(f.value(u, v, band));
		if (from)
			from->push_back(static_cast<std::size_t>(&f - frames.data()));
	}
	return s;
}

// The whole reduced image as floats (small images only: tests).
inline std::vector<float> read_all(const vips::VImage &image)
{
	vips::VImage mem = image.copy_memory();
	const auto *p = static_cast<const float *>(mem.data());
	return std::vector<float>(p, p + static_cast<std::size_t>(mem.width()) * mem.height() * mem.bands());
}

} // namespace superstack::test
