// crop -- exact row spans of the frames' coverage, the largest common rectangle, the union's bounds.
#include "superstack/crop.hpp"

#include "superstack/error.hpp"
#include "superstack/warp.hpp"

#include <algorithm>
#include <climits>

namespace superstack {

Crop parse_crop(std::string_view text)
{
	if (text == "common") return Crop::common;
	if (text == "reference") return Crop::reference;
	if (text == "none") return Crop::none;
	throw_error(ExitCode::usage, "--crop must be common, reference or none (got '{}')", text);
}

std::string_view crop_name(Crop crop)
{
	switch (crop) {
	case Crop::common: return "common";
	case Crop::reference: return "reference";
	case Crop::none: return "none";
	}
	return "?";
}

std::vector<RowSpan> common_spans(const std::vector<FrameArea> &frames, const Rect &area)
{
	std::vector<RowSpan> spans(static_cast<std::size_t>(std::max(0, area.height)), RowSpan{area.left, area.right()});
	for (const FrameArea &f : frames) {
		const Matrix3 &m = f.output_to_frame.matrix();
		const bool affine = m.is_affine();
		// With a displacement field: the pixels surely covered, those whose matrix point lies the
		// field's reach inside the frame (the common area stays convex).
		const double inset = f.output_to_frame.frame_reach();
		for (int i = 0; i < area.height; i++) {
			RowSpan &s = spans[static_cast<std::size_t>(i)];
			if (s.empty())
				continue;
			const auto [x0, x1] = covered_span(m, f.width, f.height, affine, area.top + i, s.x0, s.x1, inset);
			s = {x0, x1};
		}
	}
	return spans;
}

Rect largest_rectangle(const std::vector<RowSpan> &spans, const Rect &area)
{
	Rect best;
	long long best_area = 0;
	const int rows = static_cast<int>(spans.size());
	for (int y0 = 0; y0 < rows; y0++) {
		if (spans[y0].empty())
			continue;
		for (int y1 = y0; y1 < rows && !spans[y1].empty(); y1++) {
			const int x0 = std::max(spans[y0].x0, spans[y1].x0), x1 = std::min(spans[y0].x1, spans[y1].x1);
			// Disjoint first and last rows: any row beyond shares with y0 only what row y1 has (convexity).
			if (x1 <= x0)
				break;
			const long long a = static_cast<long long>(x1 - x0) * (y1 - y0 + 1);
			if (a > best_area)
				best_area = a, best = Rect{x0, area.top + y0, x1 - x0, y1 - y0 + 1};
		}
	}
	return best;
}

Rect union_bounds(const std::vector<FrameArea> &frames)
{
	int l = INT_MAX, t = INT_MAX, r = INT_MIN, b = INT_MIN;
	for (const FrameArea &f : frames) {
		// With a displacement field, a superset: the frame grown by the field's reach.
		const Rect extent = frame_extent(f.output_to_frame, f.width, f.height);
		for (int y = extent.top; y < extent.bottom(); y++) {
			const auto [x0, x1] = covered_span(f.output_to_frame, f.width, f.height, y, extent.left, extent.right());
			if (x1 <= x0)
				continue;
			l = std::min(l, x0), r = std::max(r, x1);
			t = std::min(t, y), b = std::max(b, y + 1);
		}
	}
	return l < r ? Rect{l, t, r - l, b - t} : Rect{};
}

OutputGeometry crop_geometry(Crop crop, const OutputGeometry &full, const std::vector<FrameArea> &frames)
{
	Rect area = full.bounds();
	if (crop == Crop::common)
		area = largest_rectangle(common_spans(frames, full.bounds()), full.bounds());
	else if (crop == Crop::none)
		area = union_bounds(frames);
	if (area.empty())
		throw_error(ExitCode::bad_input, "--crop {}: the frames have no pixel in common", crop_name(crop));
	if (static_cast<long long>(area.width) * area.height > 4ll * 1000 * 1000 * 1000)
		throw_error(ExitCode::usage, "--crop {}: an output of {}x{} pixels is too large", crop_name(crop), area.width, area.height);
	return full.cropped(area);
}

} // namespace superstack
