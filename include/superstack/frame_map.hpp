// frame_map -- where each output pixel lands in a frame, and back: the frame's matrix composed with
// the output grid, refined by the frame's displacement field when it has one.
//
// Output point X sits at reference point p = R X (R: OutputGeometry::output_to_reference()); the frame
// sees it at H (p + d(p)) (H: the frame's matrix, d: its field, transform.hpp). Without a field the map
// is the single matrix H R, exactly as before fields existed (every caller's rigid path is unchanged).
// The inverse solves p + d(p) = H^-1 f by fixed-point iteration, p <- H^-1 f - d(p): a contraction,
// since the transforms file bounds d's gradient (its Jacobian's norm is at most 1/2), so each step at
// least halves the error; it stops when a step moves less than 1e-9 px.
#pragma once

#include "superstack/geometry.hpp"
#include "superstack/transform.hpp"

#include <initializer_list>
#include <memory>

namespace superstack {

// The most pixels of m's target that one pixel of its source spans at any of `points`: the largest
// singular value of m's Jacobian there (for a projective m, with a margin of 10% for between them).
double largest_stretch(const Matrix3 &m, std::initializer_list<Point> points);

class FrameMap {
public:
	FrameMap() = default;
	// Rigid: output -> frame by one matrix.
	FrameMap(const Matrix3 &output_to_frame); // NOLINT(google-explicit-constructor): a matrix is a rigid map
	// A frame's transform onto `geometry`'s grid; `field` may be null (rigid).
	FrameMap(const Matrix3 &reference_to_frame, std::shared_ptr<const DisplacementField> field, const OutputGeometry &geometry);

	Point apply(Point output) const;
	Point to_output(Point frame) const; // the inverse of apply()

	// Output -> frame without the field (the whole map when rigid()).
	const Matrix3 &matrix() const { return matrix_; }
	const Matrix3 &matrix_inverse() const { return inverse_; } // frame -> output without the field
	bool rigid() const { return !field_; }
	bool is_affine() const { return !field_ && affine_; } // the whole map is one affine matrix
	// The most the field moves a point, in output pixels (0 when rigid): footprints grow by it.
	double reach() const { return reach_; }
	// The same in frame pixels: how far the field can move a frame point from matrix()'s.
	double frame_reach() const { return frame_reach_; }
	// The most the field stretches a length (1 when rigid): 1 + 2 x its largest gradient.
	double stretch() const { return stretch_; }
	const DisplacementField *field() const { return field_.get(); }
	// The pieces of the map with a field: output -> reference, reference -> frame.
	const Matrix3 &output_to_reference() const { return output_to_reference_; }
	const Matrix3 &reference_to_frame() const { return reference_to_frame_; }

private:
	Matrix3 matrix_, inverse_, output_to_reference_, reference_to_output_, reference_to_frame_, frame_to_reference_;
	std::shared_ptr<const DisplacementField> field_;
	bool affine_ = true;
	double reach_ = 0, frame_reach_ = 0, stretch_ = 1;
};

} // namespace superstack
