// tca -- the red and blue channels of the reference aligned to its green one.
#include "superstack/tca.hpp"

#include "superstack/align.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace superstack {

TcaEstimate estimate_tca(const vips::VImage &working, bool alpha, const std::optional<vips::VImage> &mask, int threads,
	Progress &progress)
{
	TcaEstimate out;
	if (working.bands() - (alpha ? 1 : 0) != 3) {
		out.reason = "the frames have no colour channels";
		return out;
	}
	auto channel = [&](int band, const char *name) {
		vips::VImage c = working.extract_band(band);
		if (alpha)
			c = vips::VImage::bandjoin({c, working.extract_band(3)});
		return AlignFrame{c, alpha, name};
	};
	const std::vector<AlignFrame> channels{channel(1, "green"), channel(0, "red"), channel(2, "blue")};
	AlignOptions options;
	options.model = MotionModel::similarity;
	options.threads = threads;
	// Between the channels of one exposure nothing moves, so the residual is the patches' own noise:
	// up to 0.6 px on the real JPEG bursts (chroma kept at half resolution). Above 1 px the channels
	// do not share their texture, and there is no aberration to read.
	options.max_residual = 1.0;
	const std::vector<FrameAlignment> aligned = align_frames(channels, 0, mask, options, progress);
	for (std::size_t i = 1; i < aligned.size(); i++)
		if (!aligned[i].ok) {
			out.reason = fmt::format("the {} channel cannot be aligned to green: {}", channels[i].name, aligned[i].reason);
			return out;
		}
	out.channels = ChannelTransforms{aligned[1].matrix, aligned[2].matrix};
	progress.note(fmt::format("tca: red {:.4f} px, blue {:.4f} px at the corners ({} and {} patches)",
		corner_displacement(aligned[1].matrix, working.width(), working.height()),
		corner_displacement(aligned[2].matrix, working.width(), working.height()), aligned[1].inliers, aligned[2].inliers));
	return out;
}

double corner_displacement(const Matrix3 &channel, int width, int height)
{
	double most = 0;
	for (const Point p : {Point{0, 0}, Point{width - 1.0, 0}, Point{0, height - 1.0}, Point{width - 1.0, height - 1.0}}) {
		const Point q = channel.apply(p);
		most = std::max(most, std::hypot(q.x - p.x, q.y - p.y));
	}
	return most;
}

} // namespace superstack
