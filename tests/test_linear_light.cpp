// Linear light: the bias that averaging sRGB code values puts into a stack, and its removal. The
// expected values are worked out by hand from the sRGB curve (linear_light.hpp).
#include "stack_fixtures.hpp"
#include "temp_dir.hpp"

#include "superstack/linear_light.hpp"
#include "superstack/stack.hpp"

#include <doctest/doctest.h>
#include <fmt/core.h>

using namespace superstack;
using namespace superstack::test;

TEST_CASE("linear light: a black and a white frame average to 50% light (0.7354 encoded), not to code value 0.5")
{
	TempDir dir("linear");
	// Two 8-bit sRGB grey frames, 16 x 8: in the left half one is 0 and the other 255; in the right
	// half one is 50 and the other 200; a middle grey 128 row at the bottom in both.
	const int w = 16, h = 8;
	std::vector<std::uint8_t> a(w * h), b(w * h);
	for (int y = 0; y < h; y++)
		for (int x = 0; x < w; x++) {
			const bool left = x < w / 2, grey = y == h - 1;
			a[y * w + x] = grey ? 128 : left ? 0 : 50;
			b[y * w + x] = grey ? 128 : left ? 255 : 200;
		}
	image_from(a, w, h, 1, VIPS_FORMAT_UCHAR).copy(vips::VImage::option()->set("interpretation", VIPS_INTERPRETATION_B_W))
		.pngsave((dir / "a.png").c_str());
	image_from(b, w, h, 1, VIPS_FORMAT_UCHAR).copy(vips::VImage::option()->set("interpretation", VIPS_INTERPRETATION_B_W))
		.pngsave((dir / "b.png").c_str());
	auto stack = [&](LinearLight linear, const std::string &name) {
		RunOptions o;
		o.inputs = {(dir / "a.png").string(), (dir / "b.png").string()};
		o.out_dir = dir / name;
		o.align = MotionModel::none;
		o.normalize = Normalize::none;
		o.scale = 1;
		o.kernel = Kernel::nearest;
		o.statistics = {Statistic::mean};
		o.save.depth = Depth::f32;
		o.linear = linear;
		NoProgress quiet;
		const RunResult r = run_stack(o, quiet);
		CHECK(r.linear_light == (linear != LinearLight::off)); // auto: on for 8-bit sRGB
		return read_all(vips::VImage::new_from_file((dir / name / "mean.tif").c_str()));
	};
	const auto gamma = stack(LinearLight::off, "off");
	const auto light = stack(LinearLight::automatic, "auto");
	// By hand: linear(v) = ((v + 0.055) / 1.055)^2.4, encode(l) = 1.055 l^(1/2.4) - 0.055.
	//   0 and 255:   linear 0 and 1, mean 0.5, encoded 1.055 x 0.749154 - 0.055 = 0.735357
	//   50 and 200:  0.196078 -> 0.031896, 0.784314 -> 0.577580, mean 0.304738, encoded 0.588016
	// The code-value means are 0.5 and 125 / 255 = 0.490196: biased dark by 0.235 and 0.098.
	CHECK(gamma[0] == doctest::Approx(0.5).epsilon(1e-6));
	CHECK(gamma[w - 1] == doctest::Approx(125.0 / 255).epsilon(1e-6));
	CHECK(std::fabs(light[0] - 0.735357) < 2e-5);
	CHECK(std::fabs(light[w - 1] - 0.588016) < 2e-5);
	MESSAGE(fmt::format("black+white: code-value mean {:.6f}, linear-light mean {:.6f} (bias {:.6f}); 50+200: {:.6f} / {:.6f} (bias {:.6f})",
		gamma[0], light[0], light[0] - gamma[0], gamma[w - 1], light[w - 1], light[w - 1] - gamma[w - 1]));
	// Equal samples round-trip: the middle grey row is 128/255 either way.
	CHECK(std::fabs(light[(h - 1) * w] - 128.0 / 255) < 1e-6);
	CHECK(std::fabs(gamma[(h - 1) * w] - 128.0 / 255) < 1e-6);
}

TEST_CASE("linear light: the curve and its inverse, on a ramp, with alpha and with resampling's negative ringing")
{
	std::vector<float> ramp;
	for (int i = 0; i <= 255; i++)
		ramp.push_back(i / 255.0f);
	const vips::VImage v = image_from(ramp, 256, 1, 1, VIPS_FORMAT_FLOAT);
	const auto back = read_all(linear_to_srgb(srgb_to_linear(v, false)));
	double worst = 0;
	for (int i = 0; i <= 255; i++)
		worst = std::max(worst, static_cast<double>(std::fabs(back[i] - ramp[i])));
	CHECK(worst < 2e-6);
	// Premultiplied by alpha 0.5: the colour is decoded unpremultiplied, then premultiplied again.
	const std::vector<float> pa{0.5f * 0.5f, 0.5f, 0.0f, 0.0f};
	const auto linear = read_all(srgb_to_linear(image_from(pa, 2, 1, 2, VIPS_FORMAT_FLOAT), true));
	CHECK(linear[0] == doctest::Approx(0.5 * 0.214041).epsilon(1e-4)); // linear(0.5) = 0.214041
	CHECK(linear[1] == 0.5f);
	CHECK(linear[2] == 0.0f);
	// A negative value stays on the linear toe.
	const auto toe = read_all(linear_to_srgb(image_from(std::vector<float>{-0.01f}, 1, 1, 1, VIPS_FORMAT_FLOAT)));
	CHECK(toe[0] == doctest::Approx(-0.1292).epsilon(1e-5));
}
