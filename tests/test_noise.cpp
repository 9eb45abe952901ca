// The frames' noise from the frames against each other: the low-pass's gain against white noise
// through libvips itself, and the estimate against the noise synth put in (its model on a flat
// scene, the reference less the truth on the chart), where one frame alone reads detail as noise.
#include "synth_fixtures.hpp"
#include "temp_dir.hpp"

#include "superstack/noise.hpp"
#include "superstack/sharpness.hpp"
#include "superstack/synth.hpp"

#include <doctest/doctest.h>
#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <random>

using namespace superstack;
using namespace superstack::test;
namespace fs = std::filesystem;

namespace {

vips::VImage frame_pixels(const fs::path &file)
{
	return vips::VImage::new_from_file(file.c_str()).cast(VIPS_FORMAT_FLOAT) / 65535.0;
}

// Every frame of the burst as the estimate sees it; the reference (frame 0) first.
std::vector<NoiseFrame> noise_frames(const SynthResult &burst)
{
	const TransformSet set = read_transforms(burst.transforms);
	std::vector<NoiseFrame> frames;
	for (std::size_t i = 0; i < burst.frames.size(); i++)
		frames.push_back({frame_pixels(burst.frames[i]), false, set.frames[i].matrix, 1.0});
	return frames;
}

NoiseEstimate estimate(const std::vector<NoiseFrame> &frames, const std::optional<vips::VImage> &mask = std::nullopt)
{
	const std::optional<NoiseEstimate> e = estimate_noise(frames[0], {frames.begin() + 1, frames.end()}, mask);
	REQUIRE(e);
	return *e;
}

// clipped_sigma() of the image's pixels.
double robust_sigma(const vips::VImage &image)
{
	const vips::VImage m = image.cast(VIPS_FORMAT_FLOAT).copy_memory();
	const auto *p = static_cast<const float *>(m.data());
	std::vector<float> a(static_cast<std::size_t>(m.width()) * m.height());
	std::transform(p, p + a.size(), a.begin(), [](float v) { return std::abs(v); });
	return clipped_sigma(a);
}

} // namespace

TEST_CASE("noise: the clipped sd of normal samples, 30% of them gross outliers, is their sd; the median alone is not")
{
	std::mt19937_64 random(3);
	std::normal_distribution<float> normal(0.0f, 0.02f);
	std::uniform_real_distribution<float> far(0.2f, 0.9f);
	std::vector<float> magnitudes;
	for (int i = 0; i < 200000; i++)
		magnitudes.push_back(std::abs(i % 10 < 3 ? far(random) : normal(random)));
	std::vector<float> sorted = magnitudes;
	std::nth_element(sorted.begin(), sorted.begin() + 100000, sorted.end());
	const double median_sd = 1.4826 * sorted[100000];
	MESSAGE(fmt::format("clipped {:.5f}, from the median {:.5f}, true 0.02", clipped_sigma(magnitudes), median_sd));
	CHECK(clipped_sigma(magnitudes) == doctest::Approx(0.02).epsilon(0.01));
	CHECK(median_sd > 0.03);
	CHECK(clipped_sigma({}) == 0.0);
}

TEST_CASE("noise: the low-pass's noise gain is what libvips' gaussblur does to white noise")
{
	const vips::VImage white = vips::VImage::gaussnoise(1024, 1024, vips::VImage::option()->set("sigma", 1.0)->set("seed", 7));
	const vips::VImage blurred = white.gaussblur(kNoiseLowPass,
		vips::VImage::option()->set("min_ampl", kNoiseMinAmplitude)->set("precision", VIPS_PRECISION_FLOAT));
	const double measured = std::pow(blurred.crop(16, 16, 992, 992).deviate(), 2);
	const double gain = gaussian_noise_gain(kNoiseLowPass);
	MESSAGE(fmt::format("gain {:.5f}, measured on white noise {:.5f}, continuous Gaussian 1 / (4 pi sd^2) {:.5f}", gain, measured,
		1 / (4 * std::acos(-1.0) * kNoiseLowPass * kNoiseLowPass)));
	CHECK(measured == doctest::Approx(gain).epsilon(0.03));
}

TEST_CASE("noise: on a flat scene half clipped to white, the estimate is synth's noise, the clipped half left out")
{
	// Grey 0.5 on the left, white on the right: frame noise there is clamped at 1 (a clipped
	// highlight has almost none). Synth's band noise at 0.5 is noise x sqrt(0.25 + 1.5 x 0.5) = noise;
	// the luminance (the mean of 3 independent bands) has noise / sqrt(3).
	TempDir dir("noise-flat");
	NoProgress quiet;
	const fs::path source = dir / "half.tif";
	const vips::VImage grey = vips::VImage::black(640, 480, vips::VImage::option()->set("bands", 3)) + 32768;
	(vips::VImage::xyz(640, 480).extract_band(0) < 320).ifthenelse(grey, 65535).cast(VIPS_FORMAT_USHORT).tiffsave(source.c_str());
	SynthOptions s = burst_options(dir / "burst", 5, 320, 240, 0.02, 5);
	s.source = source;
	const std::vector<NoiseFrame> frames = noise_frames(synthesize(s, quiet));
	const NoiseEstimate e = estimate(frames);
	const double truth = 0.02 / std::sqrt(3.0);
	MESSAGE(fmt::format("estimate {:.5f} from {} pairs, {} samples; synth's {:.5f}", e.sigma, e.pairs, e.samples, truth));
	CHECK(e.pairs == 4);
	CHECK(e.sigma == doctest::Approx(truth).epsilon(0.04));
	// Only the grey half is measured (blocks over the edge lose the low-pass's reach beside it).
	CHECK(e.samples > 4 * 9000);
	CHECK(e.samples < 4 * 320 * 240 / 2);
	// White noise on a flat scene: the reference's own finest Laplacian reads it as the pairs do (the
	// clipped half left out of it too), and `fine` is the smaller.
	MESSAGE(fmt::format("at the pixel scale {:.5f}", e.fine));
	CHECK(e.fine <= e.sigma);
	CHECK(e.fine == doctest::Approx(truth).epsilon(0.05));
	// No detail: the signal's Laplacian power is at its floor.
	CHECK(e.signal == doctest::Approx(kMinSignal * kLaplacianNoiseGain * e.fine * e.fine));
}

TEST_CASE("noise: on the chart, frames against each other measure the noise; one frame alone reads detail as noise")
{
	// Synth's noise is signal dependent, so the truth is the same robust sd (clipped_sigma) of the
	// reference less the truth box-averaged onto the reference's pixels.
	TempDir dir("noise-chart");
	NoProgress quiet;
	for (const double noise : {0.01, 0.03}) {
		CAPTURE(noise);
		const SynthResult burst = synthesize(burst_options(dir / fmt::format("burst-{}", noise), 8, 320, 240, noise, 3), quiet);
		const std::vector<NoiseFrame> frames = noise_frames(burst);
		const vips::VImage truth = frame_pixels(burst.truth).shrink(2, 2).bandmean();
		const vips::VImage reference = frames[0].working.bandmean();
		const double true_sigma = robust_sigma((reference - truth).crop(8, 8, 304, 224));
		const NoiseEstimate e = estimate(frames);
		const double one_frame = measure_sharpness(reference).noise;
		MESSAGE(fmt::format("truth {:.5f}: frame pairs {:.5f} ({:.2f}x, {} samples), one frame {:.5f} ({:.2f}x)", true_sigma, e.sigma,
			e.sigma / true_sigma, e.samples, one_frame, one_frame / true_sigma));
		CHECK(e.sigma > 0.97 * true_sigma);
		CHECK(e.sigma < 1.4 * true_sigma);
		// The signal's Laplacian power: the noise-free reference's (the truth on its pixels).
		const vips::VImage laplacian = truth.conv(vips::VImage::new_matrixv(3, 3, 0.0, 1.0, 0.0, 1.0, -4.0, 1.0, 0.0, 1.0, 0.0),
			vips::VImage::option()->set("precision", VIPS_PRECISION_FLOAT));
		const double true_signal = std::pow(laplacian.crop(8, 8, 304, 224).deviate(), 2);
		MESSAGE(fmt::format("signal Laplacian power: truth {:.5f}, estimate {:.5f}", true_signal, e.signal));
		CHECK(e.signal == doctest::Approx(true_signal).epsilon(0.1));
		CHECK(e.sigma / true_sigma - 1 < 0.5 * (one_frame / true_sigma - 1));

		// A moving object in every frame (15% of the area; without the clipping, 1.4x the estimate
		// without it), and a mask over the left half.
		if (noise == 0.01) {
			SynthOptions s = burst_options(dir / "moving", 8, 320, 240, noise, 3);
			s.moving_object = 0.15;
			const NoiseEstimate moving = estimate(noise_frames(synthesize(s, quiet)));
			const vips::VImage mask = (vips::VImage::xyz(320, 240).extract_band(0) < 160).cast(VIPS_FORMAT_UCHAR);
			const NoiseEstimate masked = estimate(frames, mask);
			MESSAGE(fmt::format("with a moving object {:.5f}; masked {:.5f} from {} samples", moving.sigma, masked.sigma, masked.samples));
			CHECK(moving.sigma == doctest::Approx(e.sigma).epsilon(0.1));
			CHECK(masked.sigma == doctest::Approx(e.sigma).epsilon(0.1));
			CHECK(masked.samples < e.samples * 3 / 4);
			CHECK(masked.samples > e.samples / 4);
		}
	}
}

TEST_CASE("noise: the same estimate whatever the thread count; nothing from the reference alone")
{
	TempDir dir("noise-threads");
	NoProgress quiet;
	const std::vector<NoiseFrame> frames = noise_frames(synthesize(burst_options(dir / "burst", 4, 320, 240, 0.02, 9), quiet));
	const int threads = vips_concurrency_get();
	vips_concurrency_set(1);
	const NoiseEstimate one = estimate(frames);
	vips_concurrency_set(4);
	const NoiseEstimate four = estimate(frames);
	vips_concurrency_set(threads);
	CHECK(one.sigma == four.sigma);
	CHECK(one.samples == four.samples);
	CHECK_FALSE(estimate_noise(frames[0], {}, std::nullopt));
}
