// transform -- 3x3 projective matrices, displacement fields and the transforms file shared by
// `synth`, `run` and `align`.
//
// A frame's matrix maps a point in the reference frame's input pixel coordinates to the same scene
// point in that frame's input pixel coordinates; pixel centres sit at integer coordinates. A frame
// may also carry a displacement field d (what one matrix cannot say: parallax, rolling shutter, a
// scene that bends): reference point p is then frame point matrix(p + d(p)).
#pragma once

#include <array>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace superstack {

struct Point {
	double x = 0, y = 0;
};

class Matrix3 {
public:
	using Rows = std::array<std::array<double, 3>, 3>;

	Matrix3() : m_{{{1, 0, 0}, {0, 1, 0}, {0, 0, 1}}} {}
	explicit Matrix3(const Rows &rows) : m_(rows) {}

	static Matrix3 identity() { return Matrix3(); }
	static Matrix3 translation(double tx, double ty);
	static Matrix3 scaling(double sx, double sy);
	// Rotation by `degrees` (counter-clockwise on screen is negative y-up; we use image axes, y down)
	// and uniform `scale` about `centre`, then a shift by (tx, ty).
	static Matrix3 similarity(double degrees, double scale, Point centre, double tx, double ty);

	double operator()(int row, int col) const { return m_[row][col]; }
	const Rows &rows() const { return m_; }

	Matrix3 operator*(const Matrix3 &right) const;
	Matrix3 inverse() const; // throws Error(bad_input) when singular
	Point apply(Point p) const;

	// True when the bottom row is (0, 0, 1) up to rounding, after normalising by m[2][2].
	bool is_affine() const;
	Matrix3 normalised() const; // divided by m[2][2]

private:
	Rows m_;
};

// A smooth displacement in reference pixels, known at the nodes of a regular grid and bilinear
// between them: node (i, j) sits at reference (left + i spacing, top + j spacing); beyond the outer
// nodes the field keeps the nearest edge's value (coordinates clamped to the grid).
struct DisplacementField {
	double left = 0, top = 0, spacing = 0;
	int columns = 0, rows = 0;
	std::vector<double> dx, dy; // row-major, columns x rows each

	// The four nodes (row-major indices; some the same at an edge) and bilinear weights that at() blends.
	struct Stencil {
		std::array<std::size_t, 4> node{};
		std::array<double, 4> weight{};
	};
	Stencil stencil(Point reference) const;
	Point at(Point reference) const;
	double max_magnitude() const; // the largest |d| at any node (so anywhere)
	// The largest change of d per reference pixel along x or y between neighbouring nodes (so anywhere:
	// bilinear is linear along each axis): the map p -> p + d(p) stretches lengths by at most 1 + 2x it.
	double max_gradient() const;
	bool operator==(const DisplacementField &) const = default;
};

// How well a frame's displacement field (align --local-grid) predicts patches it was not fitted to.
struct LocalReport {
	int patches = 0;             // "local_patches": the textured patches that judged it
	double residual_rms = 0;     // "local_residual_rms": their RMS distance from the field, input pixels
	double matrix_residual_rms = 0; // "matrix_residual_rms": the same patches' from the matrix alone
	bool operator==(const LocalReport &) const = default;
};

// What `align` says of a frame's transform (optional in the file: hand-written files have none).
struct AlignmentReport {
	std::string model;        // the motion model fitted
	int patches = 0;          // local patches measured
	int inliers = 0;          // patches that agree with the fit
	double residual_rms = 0;  // of the inliers, input pixels
	bool ok = true;           // "status": "ok" or "rejected"
	std::string reason;       // why it was rejected
	std::optional<LocalReport> local; // with a displacement field from `align`
};

// What `run` says of a frame besides its alignment (all optional; files from `align` or by hand have
// none). `run --transforms` reads them back but decides afresh: a dropped frame is a candidate again.
struct StackingReport {
	std::optional<double> gain, offset;     // exposure: frame = gain x reference + offset (exposure.hpp)
	std::optional<double> sharpness, noise; // measured for frame selection or weights (sharpness.hpp)
	std::optional<std::string> dropped;     // why frame selection left it out ("status": "dropped")
	bool operator==(const StackingReport &) const = default;
};

struct FrameTransform {
	std::string file;         // as written in the file; matched against inputs by path or file name
	Matrix3 matrix;
	std::optional<AlignmentReport> report;
	std::optional<StackingReport> stacking;
	std::optional<DisplacementField> displacement; // "displacement" (see DisplacementField)
};

// A lens's transverse chromatic aberration (tca.hpp), the same for every frame: for each of red and
// blue, the matrix from green's pixel coordinates to that channel's (in any frame's own pixels).
struct ChannelTransforms {
	Matrix3 red, blue;
};

struct TransformSet {
	int reference = 0;
	std::vector<FrameTransform> frames;
	std::optional<ChannelTransforms> tca; // "tca": {"red": matrix, "blue": matrix}
};

// Reads and validates a transforms file (schema version 1). Errors name the file and the reason.
// Entries with "status": "rejected" are kept (with their report): callers decide. "status": "dropped"
// (frame selection) reads as aligned, with the reason in `stacking`.
TransformSet read_transforms(const std::filesystem::path &path);
// The same, from the file's text; `where` names it in errors. Throws only Error(bad_input).
TransformSet parse_transforms(std::string_view text, const std::string &where);
void write_transforms(const std::filesystem::path &path, const TransformSet &set);

// A frame's "displacement" object as JSON text (values to 1e-4 px), and back, validated as in a
// transforms file (errors, Error(bad_input), name `where`).
std::string displacement_to_json(const DisplacementField &field);
DisplacementField displacement_from_json(std::string_view text, const std::string &where);

// The index in `set` of the entry for `frame_path`: the same path, else the same file name.
std::optional<std::size_t> find_transform(const TransformSet &set, const std::filesystem::path &frame_path);

} // namespace superstack
