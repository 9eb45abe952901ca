// frame_map -- the output -> frame map and its inverse (fixed-point iteration through the field).
#include "superstack/frame_map.hpp"

#include <algorithm>
#include <cmath>

namespace superstack {

double largest_stretch(const Matrix3 &m, std::initializer_list<Point> points)
{
	double most = 0;
	for (const Point p : points) {
		const Point o = m.apply(p), ex = m.apply({p.x + 1, p.y}), ey = m.apply({p.x, p.y + 1});
		const double a = ex.x - o.x, b = ey.x - o.x, c = ex.y - o.y, d = ey.y - o.y;
		// The largest singular value of [[a, b], [c, d]].
		const double s1 = a * a + b * b + c * c + d * d, det = a * d - b * c;
		most = std::max(most, std::sqrt(0.5 * (s1 + std::sqrt(std::max(0.0, s1 * s1 - 4 * det * det)))));
	}
	return most * (m.is_affine() ? 1.0 : 1.1);
}

FrameMap::FrameMap(const Matrix3 &output_to_frame)
	: matrix_(output_to_frame), inverse_(output_to_frame.inverse()), affine_(output_to_frame.is_affine())
{
}

FrameMap::FrameMap(const Matrix3 &reference_to_frame, std::shared_ptr<const DisplacementField> field, const OutputGeometry &geometry)
	: matrix_((reference_to_frame * geometry.output_to_reference()).normalised()), field_(std::move(field))
{
	inverse_ = matrix_.inverse();
	affine_ = matrix_.is_affine();
	if (!field_)
		return;
	output_to_reference_ = geometry.output_to_reference();
	reference_to_output_ = output_to_reference_.inverse();
	reference_to_frame_ = reference_to_frame.normalised();
	frame_to_reference_ = reference_to_frame_.inverse();
	reach_ = field_->max_magnitude() * geometry.scale;
	stretch_ = 1 + 2 * field_->max_gradient();
	const double w = geometry.reference_width, h = geometry.reference_height;
	const double most = largest_stretch(reference_to_frame_, {{0, 0}, {w, 0}, {0, h}, {w, h}, {0.5 * w, 0.5 * h}});
	frame_reach_ = field_->max_magnitude() * most;
}

Point FrameMap::apply(Point output) const
{
	if (!field_)
		return matrix_.apply(output);
	const Point p = output_to_reference_.apply(output);
	const Point d = field_->at(p);
	return reference_to_frame_.apply({p.x + d.x, p.y + d.y});
}

Point FrameMap::to_output(Point frame) const
{
	if (!field_)
		return inverse_.apply(frame);
	const Point q = frame_to_reference_.apply(frame);
	Point p = q;
	// At most 60 steps: the error at least halves per step, so 60 take any start within 1e8 px to 1e-9.
	for (int step = 0; step < 60; step++) {
		const Point d = field_->at(p);
		const Point next{q.x - d.x, q.y - d.y};
		const double moved = std::abs(next.x - p.x) + std::abs(next.y - p.y);
		p = next;
		if (!(moved > 1e-9))
			break;
	}
	return reference_to_output_.apply(p);
}

} // namespace superstack
