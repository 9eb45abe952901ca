// Matrices and the transforms file: algebra against hand-computed values, round trips, and errors.
#include "temp_dir.hpp"

#include "superstack/error.hpp"
#include "superstack/transform.hpp"

#include <doctest/doctest.h>

#include <fstream>

using namespace superstack;
using namespace superstack::test;

TEST_CASE("matrix algebra: products, inverses and similarity about a centre")
{
	const Matrix3 s = Matrix3::similarity(90.0, 2.0, {10, 20}, 1, -1);
	// (11, 20) is one pixel right of the centre: rotated 90 deg (y down) and doubled -> (10, 22), then shifted.
	const Point p = s.apply({11, 20});
	CHECK(p.x == doctest::Approx(11.0));
	CHECK(p.y == doctest::Approx(21.0));
	const Point c = s.apply({10, 20});
	CHECK(c.x == doctest::Approx(11.0));
	CHECK(c.y == doctest::Approx(19.0));
	const Matrix3 h(Matrix3::Rows{{{1.1, 0.2, 3}, {-0.1, 0.9, 4}, {1e-3, 2e-3, 1}}});
	const Matrix3 id = h * h.inverse();
	for (int i = 0; i < 3; i++)
		for (int j = 0; j < 3; j++)
			CHECK(id(i, j) == doctest::Approx(i == j ? 1.0 : 0.0).epsilon(1e-12));
	CHECK_FALSE(h.is_affine());
	CHECK(s.is_affine());
	CHECK_THROWS_AS(Matrix3(Matrix3::Rows{{{1, 2, 0}, {2, 4, 0}, {0, 0, 1}}}).inverse(), Error);
}

TEST_CASE("transforms file: round trip, lookup by file name, and one-line errors naming the file")
{
	TempDir dir("transforms");
	TransformSet set;
	set.reference = 1;
	set.frames.push_back({"a.tif", Matrix3::translation(1.25, -3.5)});
	set.frames.push_back({"b.tif", Matrix3::similarity(1.0, 1.01, {5, 5}, 0.5, 0.25)});
	write_transforms(dir / "t.json", set);
	const TransformSet back = read_transforms(dir / "t.json");
	CHECK(back.reference == 1);
	REQUIRE(back.frames.size() == 2);
	for (int i = 0; i < 3; i++)
		for (int j = 0; j < 3; j++)
			CHECK(back.frames[1].matrix(i, j) == set.frames[1].matrix(i, j));
	CHECK(find_transform(back, "/somewhere/else/b.tif").value() == 1);
	CHECK_FALSE(find_transform(back, "c.tif").has_value());
	CHECK_FALSE(back.tca.has_value());
	// The chromatic aberration, when there is one, goes and comes back exactly.
	set.tca = ChannelTransforms{Matrix3::similarity(0, 1.0008, {319.5, 239.5}, 0.1, 0), Matrix3::similarity(0, 0.9993, {319.5, 239.5}, 0, 0)};
	write_transforms(dir / "t.json", set);
	const TransformSet with_tca = read_transforms(dir / "t.json");
	REQUIRE(with_tca.tca);
	for (int i = 0; i < 3; i++)
		for (int j = 0; j < 3; j++) {
			CHECK(with_tca.tca->red(i, j) == set.tca->red(i, j));
			CHECK(with_tca.tca->blue(i, j) == set.tca->blue(i, j));
		}

	auto expect_error = [&](const std::string &text, const std::string &needle) {
		std::ofstream(dir / "bad.json") << text;
		try {
			read_transforms(dir / "bad.json");
			FAIL("no error for: " << text);
		} catch (const Error &e) {
			CHECK(e.code() == ExitCode::bad_input);
			const std::string what = e.what();
			CHECK(what.find("bad.json") != std::string::npos);
			CHECK(what.find(needle) != std::string::npos);
			CHECK(what.find('\n') == std::string::npos);
		}
	};
	expect_error("{", "not valid JSON");
	expect_error("[]", "top level");
	expect_error(R"({"version": 2, "frames": []})", "version");
	expect_error(R"({"version": 1, "frames": []})", "frames");
	expect_error(R"({"version": 1, "frames": [{"file": "a.tif"}]})", "matrix");
	expect_error(R"({"version": 1, "frames": [{"file": "a", "matrix": [[1,0,0],[0,1,0]]}]})", "3 rows");
	expect_error(R"({"version": 1, "frames": [{"file": "a", "matrix": [[1,0,0],[0,1,"x"],[0,0,1]]}]})", "not a number");
	expect_error(R"({"version": 1, "frames": [{"file": "a", "matrix": [[1,2,0],[2,4,0],[0,0,1]]}]})", "singular");
	// Found by the fuzzer: each entry finite, but normalising by [2][2] = 1e-249 overflows to inf.
	expect_error(R"({"version": 1, "frames": [{"file": "a", "matrix": [[1e300,0,0],[0,1,0],[0,0,1e-249]]}]})",
		"implausible");
	expect_error(R"({"version": 1, "frames": [{"file": "a", "matrix": [[1e-9,0,0],[0,1e-9,0],[0,0,1]]}]})",
		"implausible");
	expect_error(R"({"version": 1, "reference": 3, "frames": [{"file": "a", "matrix": [[1,0,0],[0,1,0],[0,0,1]]}]})",
		"reference");
	expect_error(R"({"version": 1, "frames": [{"file": "a", "matrix": [[1,0,0],[0,1,0],[0,0,1]]}], "tca": {"red": [[1,0,0],[0,1,0],[0,0,1]]}})",
		"tca");
	expect_error(R"({"version": 1, "frames": [{"file": "a", "matrix": [[1,0,0],[0,1,0],[0,0,1]]}], "tca": {"red": [[1,0,0],[0,1,0],[0,0,1]], "blue": [[0,0,0],[0,0,0],[0,0,1]]}})",
		"tca.blue");
	try {
		read_transforms(dir / "missing.json");
		FAIL("no error for a missing file");
	} catch (const Error &e) {
		CHECK(std::string(e.what()).find("missing.json") != std::string::npos);
	}
}

TEST_CASE("transforms file: the stacking report (gain, offset, sharpness, noise, dropped) round-trips; older files still read")
{
	TempDir dir("transforms-report");
	TransformSet set;
	set.frames.push_back({"a.tif", Matrix3::identity(), std::nullopt, StackingReport{.gain = 1.0, .offset = 0.0}});
	AlignmentReport aligned{"similarity", 90, 80, 0.02, true, ""};
	set.frames.push_back({"b.tif", Matrix3::translation(1, 2), aligned,
		StackingReport{.gain = 0.8123456, .offset = -0.0125, .sharpness = 0.25, .noise = 0.01, .dropped = "blurry: reasons"}});
	write_transforms(dir / "t.json", set);
	const TransformSet back = read_transforms(dir / "t.json");
	REQUIRE(back.frames[0].stacking);
	CHECK(*back.frames[0].stacking->gain == 1.0);
	CHECK_FALSE(back.frames[0].report); // no status written for it
	REQUIRE(back.frames[1].stacking);
	const StackingReport &s = *back.frames[1].stacking;
	CHECK(*s.gain == doctest::Approx(0.812346).epsilon(1e-9)); // rounded to 1e-6
	CHECK(*s.offset == doctest::Approx(-0.0125));
	CHECK(*s.sharpness == 0.25);
	CHECK(*s.noise == 0.01);
	CHECK(*s.dropped == "blurry: reasons");
	REQUIRE(back.frames[1].report);
	CHECK(back.frames[1].report->ok); // dropped, not rejected: its alignment stands
	CHECK(back.frames[1].report->model == "similarity");
	// A file from before the stacking report (version 1, no such fields) reads as before.
	std::ofstream(dir / "old.json") << R"({"version": 1, "reference": 0, "frames": [{"file": "a.tif", "matrix": [[1,0,0],[0,1,0],[0,0,1]]},
		{"file": "b.tif", "matrix": [[1,0,2],[0,1,3],[0,0,1]], "model": "translation", "patches": 9, "inliers": 9,
		 "residual_rms": 0.1, "status": "rejected", "reason": "too far"}]})";
	const TransformSet old = read_transforms(dir / "old.json");
	CHECK_FALSE(old.frames[0].stacking);
	CHECK_FALSE(old.frames[1].stacking);
	CHECK_FALSE(old.frames[1].report->ok);
	CHECK(old.frames[1].report->reason == "too far");
}
