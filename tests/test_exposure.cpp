// Exposure normalization: the robust estimator against known gains and offsets through outliers, and a
// burst whose frames vary by +-30% in exposure stacking as well as the same burst without the variation.
#include "synth_fixtures.hpp"
#include "temp_dir.hpp"

#include "superstack/exposure.hpp"
#include "superstack/score.hpp"
#include "superstack/stack.hpp"
#include "superstack/synth.hpp"

#include <doctest/doctest.h>
#include <fmt/core.h>

#include <cmath>
#include <random>

using namespace superstack;
using namespace superstack::test;
namespace fs = std::filesystem;

namespace {

// Pairs (r, g r + o + noise), a fraction of them replaced by outliers anywhere in [0, 1].
std::pair<std::vector<float>, std::vector<float>> pairs(double gain, double offset, double noise, double outliers, int n,
	std::uint32_t seed)
{
	std::mt19937 rng(seed);
	std::uniform_real_distribution<double> u(0.05, 0.9), any(0.0, 1.0);
	std::normal_distribution<double> e(0.0, noise);
	std::vector<float> r, f;
	for (int i = 0; i < n; i++) {
		const double x = u(rng);
		r.push_back(static_cast<float>(x));
		f.push_back(static_cast<float>(any(rng) < outliers ? any(rng) : gain * x + offset + e(rng)));
	}
	return {r, f};
}

} // namespace

TEST_CASE("exposure fit: exact data give the exact line; noise and 30% outliers barely move it")
{
	{
		const auto [r, f] = pairs(0.7, 0.0, 0.0, 0.0, 500, 1);
		const auto fit = fit_exposure(r, f, false);
		REQUIRE(fit);
		CHECK(fit->gain == doctest::Approx(0.7).epsilon(1e-6));
		CHECK(fit->offset == 0.0);
	}
	{
		const auto [r, f] = pairs(1.25, 0.03, 0.0, 0.0, 500, 2);
		const auto fit = fit_exposure(r, f, true);
		REQUIRE(fit);
		CHECK(fit->gain == doctest::Approx(1.25).epsilon(1e-6));
		CHECK(std::fabs(fit->offset - 0.03) < 1e-6);
	}
	for (std::uint32_t seed : {3u, 4u, 5u}) {
		CAPTURE(seed);
		// Gain only: 30% outliers, noise 1% of full scale.
		const auto [r, f] = pairs(0.72, 0.0, 0.01, 0.3, 20000, seed);
		const auto fit = fit_exposure(r, f, false);
		REQUIRE(fit);
		CHECK(std::fabs(fit->gain - 0.72) < 0.002);
		CHECK(fit->inliers < 0.8 * fit->pairs); // the outliers carry no weight
		// Gain and offset.
		const auto [r2, f2] = pairs(1.3, -0.04, 0.01, 0.3, 20000, seed + 10);
		const auto fit2 = fit_exposure(r2, f2, true);
		REQUIRE(fit2);
		CHECK(std::fabs(fit2->gain - 1.3) < 0.004);
		CHECK(std::fabs(fit2->offset + 0.04) < 0.002);
		// Least squares, for contrast, is pulled far off by the same outliers.
		double sr = 0, sf = 0, srr = 0, srf = 0;
		for (std::size_t i = 0; i < r2.size(); i++)
			sr += r2[i], sf += f2[i], srr += r2[i] * r2[i], srf += r2[i] * f2[i];
		const double n = static_cast<double>(r2.size());
		const double ls_gain = (n * srf - sr * sf) / (n * srr - sr * sr);
		CHECK(std::fabs(ls_gain - 1.3) > 0.2);
	}
	// Too few pairs, or no scale: no estimate.
	CHECK_FALSE(fit_exposure(std::vector<float>(10, 0.5f), std::vector<float>(10, 0.5f), false));
	CHECK_FALSE(fit_exposure(std::vector<float>(1000, 0.0f), std::vector<float>(1000, 0.2f), false));
}

TEST_CASE("exposure: frames varying by +-30% stack within 0.2 dB of the same burst without the variation")
{
	TempDir dir("exposure");
	NoProgress quiet;
	// A scene with headroom (the chart, blurred, at 0.7 of full scale), so that +30% does not clip:
	// clipped pixels are lost whatever the normalization.
	SynthOptions chart;
	chart.frames = 1;
	chart.width = 240, chart.height = 180;
	chart.noise = 0;
	chart.out_dir = dir / "chart";
	const SynthResult c = synthesize(chart, quiet);
	const fs::path source = dir / "scene.tif";
	(vips::VImage::new_from_file(c.truth.c_str()).gaussblur(1.2) * 0.7).cast(VIPS_FORMAT_USHORT).tiffsave(source.c_str());

	SynthOptions steady;
	steady.frames = 12;
	steady.source = source;
	steady.noise = 0.01;
	steady.seed = 3;
	steady.out_dir = dir / "steady";
	SynthOptions varying = steady;
	varying.exposure_variation = 0.3;
	varying.out_dir = dir / "varying";
	const SynthResult a = synthesize(steady, quiet), b = synthesize(varying, quiet);
	double lowest = 2, highest = 0;
	for (double e : b.exposures)
		lowest = std::min(lowest, e), highest = std::max(highest, e);
	MESSAGE(fmt::format("exposures from {:.3f} to {:.3f}", lowest, highest));
	CHECK(lowest < 0.8);
	CHECK(highest > 1.2);

	auto stack = [&](const SynthResult &burst, Normalize normalize, const std::string &name) {
		RunOptions o = burst_run_options(burst, dir / name);
		o.statistics = {Statistic::mean};
		o.normalize = normalize;
		const RunResult r = run_stack(o, quiet);
		return std::pair{score_images(o.out_dir / "mean.tif", burst.truth, 16).psnr, r};
	};
	const auto [steady_psnr, steady_run] = stack(a, Normalize::gain, "steady-out");
	const auto [gain_psnr, gain_run] = stack(b, Normalize::gain, "gain-out");
	const auto [offset_psnr, offset_run] = stack(b, Normalize::gain_offset, "offset-out");
	const auto [none_psnr, none_run] = stack(b, Normalize::none, "none-out");
	MESSAGE(fmt::format("mean PSNR: steady {:.3f} dB; +-30% with gain {:.3f} ({:+.3f}), gain-offset {:.3f} ({:+.3f}), none {:.3f} ({:+.3f})",
		steady_psnr, gain_psnr, gain_psnr - steady_psnr, offset_psnr, offset_psnr - steady_psnr, none_psnr, none_psnr - steady_psnr));
	CHECK(std::fabs(gain_psnr - steady_psnr) < 0.2);
	CHECK(std::fabs(offset_psnr - steady_psnr) < 0.2);
	CHECK(none_psnr < steady_psnr - 1.0); // the variation matters: without normalization it costs dB
	// The estimated gains are the true ones, and the report says so.
	double worst = 0;
	const TransformSet report = read_transforms(gain_run.report);
	for (std::size_t i = 0; i < b.frames.size(); i++) {
		REQUIRE(gain_run.exposures[i]);
		worst = std::max(worst, std::fabs(gain_run.exposures[i]->gain / b.exposures[i] - 1));
		REQUIRE(report.frames[i].stacking);
		CHECK(report.frames[i].stacking->gain.value_or(0) == doctest::Approx(gain_run.exposures[i]->gain).epsilon(1e-5));
	}
	MESSAGE(fmt::format("worst relative gain error {:.5f}", worst));
	CHECK(worst < 0.003);
}
