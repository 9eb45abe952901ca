// fuzz_transforms -- libFuzzer target: the transforms file (`run --transforms`), untrusted JSON.
//
// The contract: parse_transforms either returns a set whose every matrix is finite and invertible (the
// warp divides by and inverts them), with a reference index inside the frames, and whose every
// displacement field is whole (columns x rows finite values per axis, a positive spacing) and does
// not fold (the inverse map's fixed-point iteration needs a slope <= 0.25), or throws
// Error(bad_input). Anything else -- another exception, a crash, a sanitizer report -- is a bug.
#include "superstack/error.hpp"
#include "superstack/transform.hpp"

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

using namespace superstack;

namespace {

[[noreturn]] void fail(const char *what)
{
	std::fprintf(stderr, "fuzz_transforms: contract broken: %s\n", what);
	std::abort();
}

void check_matrix(const Matrix3 &m)
{
	for (const auto &row : m.rows())
		for (double v : row)
			if (!std::isfinite(v))
				fail("a matrix entry is not finite");
	Matrix3 inverse;
	try {
		inverse = m.inverse();
	} catch (const Error &) {
		fail("an accepted matrix is singular");
	}
	for (const auto &row : inverse.rows())
		for (double v : row)
			if (!std::isfinite(v))
				fail("an accepted matrix has a non-finite inverse");
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size)
{
	const std::string_view text(reinterpret_cast<const char *>(data), size);
	try {
		const TransformSet set = parse_transforms(text, "fuzz.json");
		if (set.frames.empty())
			fail("no frames accepted");
		if (set.reference < 0 || set.reference >= static_cast<int>(set.frames.size()))
			fail("reference index outside the frames");
		for (const FrameTransform &f : set.frames) {
			check_matrix(f.matrix);
			if (f.displacement) {
				const DisplacementField &d = *f.displacement;
				if (d.columns < 1 || d.rows < 1 || !(d.spacing >= 1) || !std::isfinite(d.left) || !std::isfinite(d.top))
					fail("a displacement field's grid out of range");
				const auto nodes = static_cast<std::size_t>(d.columns) * static_cast<std::size_t>(d.rows);
				if (d.dx.size() != nodes || d.dy.size() != nodes)
					fail("a displacement field's values do not fill its grid");
				if (!std::isfinite(d.max_magnitude()) || !(d.max_gradient() <= 0.25))
					fail("an accepted displacement field is not finite or folds");
			}
			if (f.report && (f.report->patches < 0 || f.report->inliers < 0 || !(f.report->residual_rms >= 0)))
				fail("a report field out of range");
		}
		if (set.tca) {
			check_matrix(set.tca->red);
			check_matrix(set.tca->blue);
		}
	} catch (const Error &e) {
		if (e.code() != ExitCode::bad_input)
			fail("an error other than bad_input");
		if (std::string_view(e.what()).find("fuzz.json") == std::string_view::npos)
			fail("an error that does not name the file");
	}
	return 0;
}
