// The command line as users meet it: exit codes, one-line errors naming the file, no output left
// behind on failure, help with examples, interruption, and the bad-input corpus never crashing.
#include "process.hpp"
#include "temp_dir.hpp"

#include "superstack/align.hpp"
#include "superstack/transform.hpp"

#include <doctest/doctest.h>
#include <fmt/core.h>
#include <fmt/ranges.h>
#include <vips/vips8>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <regex>

using namespace superstack::test;
using namespace superstack;
namespace fs = std::filesystem;

namespace {

void write_frame(const fs::path &path, int seed, int w = 64, int h = 48)
{
	vips::VImage noise = vips::VImage::gaussnoise(w, h, vips::VImage::option()->set("seed", seed)->set("mean", 128.0)->set("sigma", 30.0));
	vips::VImage::bandjoin({noise, noise, noise})
		.cast(VIPS_FORMAT_UCHAR)
		.copy(vips::VImage::option()->set("interpretation", VIPS_INTERPRETATION_sRGB))
		.write_to_file(path.c_str());
}

} // namespace

TEST_CASE("cli: bad input gives one line naming the file, the documented exit code, and no output")
{
	if (!have_binary()) {
		MESSAGE("SUPERSTACK_BIN not set: skipping CLI tests (run them through meson test)");
		return;
	}
	TempDir dir("cli-bad");
	write_frame(dir / "good1.tif", 1);
	write_frame(dir / "good2.jpg", 2);
	{
		std::ofstream(dir / "notes.tif") << "this is not an image\n";
		std::ifstream in(dir / "good2.jpg", std::ios::binary);
		std::string bytes((std::istreambuf_iterator<char>(in)), {});
		std::ofstream(dir / "cut.jpg", std::ios::binary) << bytes.substr(0, bytes.size() / 2);
		fs::create_directories(dir / "empty");
		std::ofstream(dir / "empty" / "readme.txt") << "no images here\n";
	}
	const fs::path out = dir / "out";
	struct Case {
		std::vector<std::string> args;
		int code;
		std::string needle;
	};
	const std::vector<Case> cases{
		{{"run", (dir / "good1.tif").string(), (dir / "missing.tif").string(), "-o", out.string()}, 2, "missing.tif"},
		{{"run", (dir / "good1.tif").string(), (dir / "notes.tif").string(), "-o", out.string()}, 2, "notes.tif"},
		{{"run", (dir / "good1.tif").string(), (dir / "cut.jpg").string(), "-o", out.string()}, 2, "cut.jpg"},
		{{"run", (dir / "empty").string(), "-o", out.string()}, 2, "empty"},
		{{"run", "-o", out.string()}, 1, "no input"},
		{{"run", (dir / "good1.tif").string()}, 1, "-o"},
		{{"run", (dir / "good1.tif").string(), "-o", out.string(), "--scale", "0.5"}, 1, "--scale"},
		{{"run", (dir / "good1.tif").string(), "-o", out.string(), "--memory", "lots"}, 1, "--memory"},
		{{"run", (dir / "good1.tif").string(), "-o", out.string(), "--reduce", "mode"}, 1, "mode"},
		{{"run", (dir / "good1.tif").string(), "-o", out.string(), "--reduce", "sigma-clip", "--kappa", "0"}, 1, "--kappa"},
		{{"run", (dir / "good1.tif").string(), "-o", out.string(), "--reduce", "winsorized", "--kappa", "nan"}, 1, "--kappa"},
		{{"run", (dir / "good1.tif").string(), "-o", out.string(), "--reduce", "sigma-clip", "--iterations", "0"}, 1, "--iterations"},
		{{"run", (dir / "good1.tif").string(), "-o", out.string(), "--reduce", "trimmed", "--trim", "0.5"}, 1, "--trim"},
		{{"run", (dir / "good1.tif").string(), "-o", out.string(), "--reduce", "weighted", "--weight", "fwhm"}, 1, "--weight"},
		{{"run", (dir / "good1.tif").string(), "-o", out.string(), "--reduce", "median", "--kappa", "2"}, 1, "--kappa"},
		{{"run", (dir / "good1.tif").string(), "-o", out.string(), "--reduce", "mean", "--trim", "0.1"}, 1, "--trim"},
		{{"run", (dir / "good1.tif").string(), "-o", out.string(), "--weight", "noise"}, 1, "--weight"},
		{{"run", (dir / "good1.tif").string(), "-o", out.string(), "--save-rejects"}, 1, "--save-rejects"},
		{{"run", (dir / "good1.tif").string(), "-o", out.string(), "--save-weights"}, 1, "--save-weights"},
		{{"run", (dir / "good1.tif").string(), "-o", out.string(), "--transforms", (dir / "none.json").string()}, 2, "none.json"},
		{{"run", (dir / "good1.tif").string(), "-o", out.string(), "--bogus"}, 1, "bogus"},
		{{"run", (dir / "good1.tif").string(), "-o", out.string(), "--merge", "kernel", "--kernel-denoise", "0.5"}, 1, "--kernel-denoise"},
		{{"run", (dir / "good1.tif").string(), "-o", out.string(), "--merge", "kernel", "--kernel-detail", "5"}, 1, "--kernel-detail"},
		{{"run", (dir / "good1.tif").string(), "-o", out.string(), "--align", "bogus"}, 1, "--align"},
		{{"run", (dir / "good1.tif").string(), "-o", out.string(), "--on-align-failure", "maybe"}, 1, "--on-align-failure"},
		{{"run", (dir / "good1.tif").string(), "-o", out.string(), "--max-residual", "0"}, 1, "--max-residual"},
		{{"run", (dir / "good1.tif").string(), "-o", out.string(), "--mask", (dir / "nomask.png").string()}, 2, "nomask.png"},
		{{"run", (dir / "good1.tif").string(), "-o", out.string(), "--mask", (dir / "notes.tif").string()}, 2, "notes.tif"},
		{{"run", (dir / "good1.tif").string(), "-o", out.string(), "--reference", "sharpest", "--transforms",
			 (dir / "none.json").string(), "--align", "affine"}, 1, "--transforms"},
		{{"run", (dir / "good1.tif").string(), "-o", out.string(), "--normalize", "exposure"}, 1, "--normalize"},
		{{"run", (dir / "good1.tif").string(), "-o", out.string(), "--reject-blurry", "1"}, 1, "--reject-blurry"},
		{{"run", (dir / "good1.tif").string(), "-o", out.string(), "--reject-blurry", "-0.1"}, 1, "--reject-blurry"},
		{{"run", (dir / "good1.tif").string(), "-o", out.string(), "--min-sharpness", "-1"}, 1, "--min-sharpness"},
		{{"run", (dir / "good1.tif").string(), "-o", out.string(), "--linear", "yes"}, 1, "--linear"},
		{{"run", (dir / "good1.tif").string(), "-o", out.string(), "--crop", "union"}, 1, "--crop"},
		{{"run", (dir / "good1.tif").string(), "-o", out.string(), "--mask-reduce"}, 1, "--mask-reduce"},
		{{"check"}, 1, "no input"},
		{{"check", (dir / "good1.tif").string(), (dir / "cut.jpg").string()}, 2, "cut.jpg"},
		{{"synth", "-o", out.string(), "--blur-frames", "1,x"}, 1, "--blur-frames"},
		{{"synth", "-o", out.string(), "--frames", "4", "--blur-frames", "4"}, 1, "--blur-frames"},
		{{"synth", "-o", out.string(), "--exposure-variation", "1"}, 1, "--exposure-variation"},
		{{"align", (dir / "good1.tif").string()}, 1, "-o"},
		{{"align", (dir / "good1.tif").string(), "-o", (out / "t.json").string(), "--align", "none"}, 1, "none"},
		{{"align", (dir / "good1.tif").string(), (dir / "cut.jpg").string(), "-o", (out / "t.json").string()}, 2, "cut.jpg"},
		{{"frobnicate"}, 1, "frobnicate"},
		{{"score", (dir / "good1.tif").string(), (dir / "missing.tif").string()}, 2, "missing.tif"},
	};
	for (const auto &c : cases) {
		CAPTURE(fmt::format("{}", fmt::join(c.args, " ")));
		const ProcessResult r = run_superstack(c.args, 60);
		CHECK_FALSE(r.timed_out);
		CHECK(r.exit_code == c.code);
		check_one_line_error(r, c.needle);
		// Nothing under a final name, no temporaries, no spool.
		CHECK(left_in(out).empty());
	}
}

TEST_CASE("cli: help for every command shows examples; run writes exactly the results")
{
	if (!have_binary())
		return;
	for (const char *command : {"run", "batch", "align", "synth", "score", "check"}) {
		const ProcessResult r = run_superstack({command, "--help"}, 30);
		CHECK(r.exit_code == 0);
		CHECK(r.out.find("examples:") != std::string::npos);
		CHECK(r.out.find("superstack " + std::string(command)) != std::string::npos);
		// Defaults read as they were written: "(=0.15)", never the double's 17 digits.
		const std::regex long_default(R"(\(=-?[0-9]*\.[0-9]{7,}\))");
		std::smatch found;
		CHECK_MESSAGE(!std::regex_search(r.out, found, long_default), (std::string(command) + " --help shows " + found.str()));
	}
	CHECK(run_superstack({"--version"}, 30).out.find("superstack") == 0);
	TempDir dir("cli-good");
	write_frame(dir / "a.tif", 1);
	write_frame(dir / "b.tif", 2);
	write_frame(dir / "c.tif", 3);
	const ProcessResult r = run_superstack({"run", dir.path().string(), "-o", (dir / "out").string(), "--align", "none", "-q"}, 60);
	CHECK(r.exit_code == 0);
	CHECK(r.err.empty());
	CHECK(left_in(dir / "out") == std::vector<std::string>{"mean.tif", "median.tif", "transforms.json"});
	vips::VImage median = vips::VImage::new_from_file((dir / "out" / "median.tif").c_str());
	CHECK(median.width() == 128);
	CHECK(median.height() == 96);
	CHECK(median.format() == VIPS_FORMAT_USHORT);
	CHECK(median.bands() == 3);
	// Every statistic by name, each into OUTDIR/<name>.tif, and the reject map (a band per rejecting
	// statistic, in --reduce order).
	const ProcessResult all = run_superstack({"run", dir.path().string(), "-o", (dir / "all").string(), "--align", "none",
							 "--reduce", "max,trimmed,weighted,min,winsorized,sigma-clip,median,mean", "--kappa", "2.5",
							 "--iterations", "3", "--trim", "0.3", "--weight", "sharpness", "--save-rejects", "-q"},
		60);
	CAPTURE(all.err);
	CHECK(all.exit_code == 0);
	CHECK(left_in(dir / "all") == std::vector<std::string>{"max.tif", "mean.tif", "median.tif", "min.tif", "rejects.tif",
					   "sigma-clip.tif", "transforms.json", "trimmed.tif", "weighted.tif", "winsorized.tif"});
	vips::VImage rejects = vips::VImage::new_from_file((dir / "all" / "rejects.tif").c_str());
	CHECK(rejects.bands() == 3);
	// trimmed: floor(0.3 x 3) = 0 dropped at each end.
	CHECK(rejects.extract_band(0).max() == 0.0);
	CHECK(vips::VImage::new_from_file((dir / "all" / "min.tif").c_str()).avg() <
		vips::VImage::new_from_file((dir / "all" / "max.tif").c_str()).avg());
}

TEST_CASE("cli: check prints a table ranked by sharpness, or JSON; run names the frames it drops")
{
	if (!have_binary())
		return;
	TempDir dir("cli-check");
	REQUIRE(run_superstack({"synth", "-o", (dir / "burst").string(), "--frames", "4", "--size", "160x120", "--noise", "0.01",
				       "--blur-frames", "2", "-q"}, 60).exit_code == 0);
	std::vector<std::string> frames;
	for (int i = 0; i < 4; i++)
		frames.push_back((dir / "burst" / fmt::format("frame_{:03}.tif", i)).string());
	std::vector<std::string> args{"check"};
	args.insert(args.end(), frames.begin(), frames.end());
	const ProcessResult table = run_superstack(args, 60);
	CAPTURE(table.err);
	REQUIRE(table.exit_code == 0);
	CHECK(table.out.rfind("rank", 0) == 0);
	CHECK(table.out.find("sharpness") != std::string::npos);
	CHECK(table.out.find("noise") != std::string::npos);
	// The blurred frame is on the last line, rank 4.
	const auto last = table.out.substr(table.out.rfind('\n', table.out.size() - 2) + 1);
	CHECK(last.find("   4  ") == 0);
	CHECK(last.find("frame_002.tif") != std::string::npos);
	args.push_back("--json");
	const ProcessResult json = run_superstack(args, 60);
	REQUIRE(json.exit_code == 0);
	CHECK(json.out.find("\"rank\": 4") != std::string::npos);
	// run --reject-blurry 0.25: one frame of 4, named on stderr.
	std::vector<std::string> run{"run"};
	run.insert(run.end(), frames.begin(), frames.end());
	for (const char *a : {"-o", "", "--transforms", "", "--reject-blurry", "0.25"})
		run.push_back(a);
	run[6] = (dir / "out").string();
	run[8] = (dir / "burst" / "transforms.json").string();
	const ProcessResult r = run_superstack(run, 60);
	CAPTURE(r.err);
	REQUIRE(r.exit_code == 0);
	CHECK(r.err.find("frame_002.tif: left out, blurry") != std::string::npos);
	CHECK(r.out.find("(3 frames stacked, 1 left out)") != std::string::npos);
}

TEST_CASE("cli: align writes the transforms file with a report per frame")
{
	if (!have_binary())
		return;
	TempDir dir("cli-align");
	REQUIRE(run_superstack({"synth", "-o", (dir / "burst").string(), "--frames", "3", "--size", "320x240", "--noise", "0.01",
				       "--max-shift", "10", "-q"},
			60)
			.exit_code == 0);
	const ProcessResult r = run_superstack({"align", (dir / "burst" / "frame_000.tif").string(),
						       (dir / "burst" / "frame_001.tif").string(), (dir / "burst" / "frame_002.tif").string(),
						       "-o", (dir / "t.json").string(), "--align", "similarity"},
		120);
	CAPTURE(r.err);
	REQUIRE(r.exit_code == 0);
	CHECK(r.out.find("t.json (3 frames aligned, 0 rejected)") != std::string::npos);
	const TransformSet t = read_transforms(dir / "t.json");
	REQUIRE(t.frames.size() == 3);
	for (const auto &f : t.frames) {
		REQUIRE(f.report);
		CHECK(f.report->ok);
	}
	// The true shifts are up to 10 px; the estimate is within a tenth of a pixel of them.
	const TransformSet truth = read_transforms(dir / "burst" / "transforms.json");
	for (int i = 0; i < 3; i++)
		CHECK(mapping_rms(t.frames[i].matrix, truth.frames[i].matrix, 320, 240) < 0.1);
}

TEST_CASE("cli: 500 frames stack with only 64 file descriptors allowed, and the median is exact")
{
	if (!have_binary())
		return;
	TempDir dir("cli-500");
	// Frame i is a constant (i % 7) * 10 + i / 7 (8-bit grey): the median over all 500 is known.
	std::vector<int> values;
	for (int i = 0; i < 500; i++) {
		const int v = (i % 7) * 10 + i / 7;
		values.push_back(v);
		(vips::VImage::black(24, 16) + v).cast(VIPS_FORMAT_UCHAR).write_to_file((dir / fmt::format("f{:03}.tif", i)).c_str());
	}
	const ProcessResult r = run_superstack({"run", dir.path().string(), "-o", (dir / "out").string(), "--scale", "1",
						       "--depth", "float", "--align", "none", "--linear", "off", "--normalize", "none", "-q"},
		300, -1, 64);
	CAPTURE(r.err);
	REQUIRE(r.exit_code == 0);
	std::sort(values.begin(), values.end());
	const double median = (values[249] + values[250]) / 2.0 / 255.0;
	vips::VImage out = vips::VImage::new_from_file((dir / "out" / "median.tif").c_str());
	CHECK(out.min() == doctest::Approx(median).epsilon(1e-6));
	CHECK(out.max() == doctest::Approx(median).epsilon(1e-6));
}

TEST_CASE("cli: SIGINT stops a run with exit 130 and leaves no output, and no work files but a resumable state")
{
	if (!have_binary())
		return;
	TempDir dir("cli-interrupt");
	for (int i = 0; i < 12; i++)
		write_frame(dir / fmt::format("f{:02}.tif", i), i + 1, 1200, 900);
	const ProcessResult r = run_superstack({"run", dir.path().string(), "-o", (dir / "out").string(), "--scale", "3",
						       "--threads", "1", "--align", "none", "-q"},
		120, 1.0);
	CAPTURE(r.err);
	CHECK_FALSE(r.timed_out);
	CHECK(r.exit_code == 130);
	// Nothing under a final name, no temporary; at most the resumable state (test_resume.cpp).
	for (const std::string &name : left_in(dir / "out")) {
		CAPTURE(name);
		CHECK(name.starts_with(".superstack-work"));
		CHECK(name.find("spool") == std::string::npos);
		CHECK(name.find(".part") == std::string::npos);
	}
}
