// transform -- 3x3 matrix algebra (double precision), displacement fields and the JSON transforms file.
#include "superstack/transform.hpp"

#include "superstack/error.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <iterator>
#include <numbers>

namespace superstack {

Matrix3 Matrix3::translation(double tx, double ty)
{
	return Matrix3({{{1, 0, tx}, {0, 1, ty}, {0, 0, 1}}});
}

Matrix3 Matrix3::scaling(double sx, double sy)
{
	return Matrix3({{{sx, 0, 0}, {0, sy, 0}, {0, 0, 1}}});
}

Matrix3 Matrix3::similarity(double degrees, double scale, Point centre, double tx, double ty)
{
	const double r = degrees * std::numbers::pi / 180.0;
	const double c = std::cos(r) * scale, s = std::sin(r) * scale;
	const Matrix3 rotate({{{c, -s, 0}, {s, c, 0}, {0, 0, 1}}});
	return translation(centre.x + tx, centre.y + ty) * rotate * translation(-centre.x, -centre.y);
}

Matrix3 Matrix3::operator*(const Matrix3 &b) const
{
	Rows r{};
	for (int i = 0; i < 3; i++)
		for (int j = 0; j < 3; j++) {
			double sum = 0;
			for (int k = 0; k < 3; k++)
				sum += m_[i][k] * b.m_[k][j];
			r[i][j] = sum;
		}
	return Matrix3(r);
}

Matrix3 Matrix3::inverse() const
{
	const auto &a = m_;
	const double c00 = a[1][1] * a[2][2] - a[1][2] * a[2][1];
	const double c01 = a[1][2] * a[2][0] - a[1][0] * a[2][2];
	const double c02 = a[1][0] * a[2][1] - a[1][1] * a[2][0];
	const double det = a[0][0] * c00 + a[0][1] * c01 + a[0][2] * c02;
	// Singular relative to Hadamard's bound, |det| <= |row 0| |row 1| |row 2|: the largest entry cubed
	// called a frame 7600 px away from the reference singular (1e-12 x 7600^3 is above its det of 1).
	double bound = 1;
	for (const auto &row : a)
		bound *= std::hypot(row[0], row[1], row[2]);
	if (!std::isfinite(det) || !(std::abs(det) > 1e-12 * bound))
		throw_error(ExitCode::bad_input, "transform matrix is singular");
	const double inv = 1.0 / det;
	Rows r{};
	r[0][0] = c00 * inv;
	r[1][0] = c01 * inv;
	r[2][0] = c02 * inv;
	r[0][1] = (a[0][2] * a[2][1] - a[0][1] * a[2][2]) * inv;
	r[1][1] = (a[0][0] * a[2][2] - a[0][2] * a[2][0]) * inv;
	r[2][1] = (a[0][1] * a[2][0] - a[0][0] * a[2][1]) * inv;
	r[0][2] = (a[0][1] * a[1][2] - a[0][2] * a[1][1]) * inv;
	r[1][2] = (a[0][2] * a[1][0] - a[0][0] * a[1][2]) * inv;
	r[2][2] = (a[0][0] * a[1][1] - a[0][1] * a[1][0]) * inv;
	return Matrix3(r);
}

Point Matrix3::apply(Point p) const
{
	const double w = m_[2][0] * p.x + m_[2][1] * p.y + m_[2][2];
	return {(m_[0][0] * p.x + m_[0][1] * p.y + m_[0][2]) / w,
		(m_[1][0] * p.x + m_[1][1] * p.y + m_[1][2]) / w};
}

Matrix3 Matrix3::normalised() const
{
	Rows r = m_;
	const double w = m_[2][2];
	for (auto &row : r)
		for (double &v : row)
			v /= w;
	return Matrix3(r);
}

bool Matrix3::is_affine() const
{
	const Matrix3 n = normalised();
	return std::abs(n(2, 0)) < 1e-12 && std::abs(n(2, 1)) < 1e-12;
}

DisplacementField::Stencil DisplacementField::stencil(Point p) const
{
	const double u = std::clamp((p.x - left) / spacing, 0.0, columns - 1.0);
	const double v = std::clamp((p.y - top) / spacing, 0.0, rows - 1.0);
	const int i = std::min(static_cast<int>(u), std::max(0, columns - 2));
	const int j = std::min(static_cast<int>(v), std::max(0, rows - 2));
	const double fu = u - i, fv = v - j;
	const int i1 = std::min(i + 1, columns - 1), j1 = std::min(j + 1, rows - 1);
	auto at = [&](int a, int b) { return static_cast<std::size_t>(b) * columns + a; };
	return {{at(i, j), at(i1, j), at(i, j1), at(i1, j1)}, {(1 - fu) * (1 - fv), fu * (1 - fv), (1 - fu) * fv, fu * fv}};
}

Point DisplacementField::at(Point p) const
{
	const Stencil s = stencil(p);
	Point d;
	for (int k = 0; k < 4; k++)
		d.x += s.weight[k] * dx[s.node[k]], d.y += s.weight[k] * dy[s.node[k]];
	return d;
}

double DisplacementField::max_magnitude() const
{
	double most = 0;
	for (std::size_t k = 0; k < dx.size(); k++)
		most = std::max(most, std::hypot(dx[k], dy[k]));
	return most;
}

double DisplacementField::max_gradient() const
{
	double most = 0;
	for (const auto *d : {&dx, &dy})
		for (int j = 0; j < rows; j++)
			for (int i = 0; i < columns; i++) {
				const double v = (*d)[static_cast<std::size_t>(j) * columns + i];
				if (i + 1 < columns)
					most = std::max(most, std::abs((*d)[static_cast<std::size_t>(j) * columns + i + 1] - v));
				if (j + 1 < rows)
					most = std::max(most, std::abs((*d)[static_cast<std::size_t>(j + 1) * columns + i] - v));
			}
	return most / spacing;
}

namespace {

using nlohmann::json;

// The map p -> p + d(p) is inverted by fixed-point iteration (frame_map.hpp), which converges when d's
// Jacobian has a norm below 1: at most 2 x max_gradient(), so this bound leaves a factor of 2 per step.
constexpr double kMaxDisplacementGradient = 0.25;
constexpr double kMaxDisplacement = 1e4;          // reference pixels
constexpr std::size_t kMaxDisplacementNodes = 1 << 24;

// Rounded to 1e-4 px, as the residuals.
json displacement_json(const DisplacementField &d)
{
	auto rounded = [](const std::vector<double> &v) {
		json out = json::array();
		for (double x : v)
			out.push_back(std::round(x * 1e4) / 1e4);
		return out;
	};
	return {{"left", d.left}, {"top", d.top}, {"spacing", d.spacing}, {"columns", d.columns}, {"rows", d.rows}, {"dx", rounded(d.dx)},
		{"dy", rounded(d.dy)}};
}

DisplacementField parse_displacement(const json &value, const std::string &where)
{
	const std::string at = where + ": \"displacement\"";
	if (!value.is_object())
		throw_error(ExitCode::bad_input, "{} must be an object", at);
	auto number = [&](const char *key, double lo, double hi) {
		if (!value.contains(key) || !value[key].is_number() || !(value[key].get<double>() >= lo && value[key].get<double>() <= hi))
			throw_error(ExitCode::bad_input, "{}: \"{}\" must be a number in [{}, {}]", at, key, lo, hi);
		return value[key].get<double>();
	};
	auto count = [&](const char *key) {
		if (!value.contains(key) || !value[key].is_number_integer() || value[key].get<long long>() < 1 ||
			value[key].get<long long>() > 1 << 20)
			throw_error(ExitCode::bad_input, "{}: \"{}\" must be a whole number from 1 to {}", at, key, 1 << 20);
		return static_cast<int>(value[key].get<long long>());
	};
	DisplacementField d;
	d.left = number("left", -1e8, 1e8);
	d.top = number("top", -1e8, 1e8);
	d.spacing = number("spacing", 1, 1e8);
	d.columns = count("columns");
	d.rows = count("rows");
	const auto nodes = static_cast<std::size_t>(d.columns) * static_cast<std::size_t>(d.rows);
	if (nodes > kMaxDisplacementNodes)
		throw_error(ExitCode::bad_input, "{}: {} x {} nodes is more than {}", at, d.columns, d.rows, kMaxDisplacementNodes);
	for (const char *key : {"dx", "dy"}) {
		if (!value.contains(key) || !value[key].is_array() || value[key].size() != nodes)
			throw_error(ExitCode::bad_input, "{}: \"{}\" must hold columns x rows = {} numbers", at, key, nodes);
		std::vector<double> &out = key[1] == 'x' ? d.dx : d.dy;
		for (const json &v : value[key]) {
			if (!v.is_number() || !(std::abs(v.get<double>()) <= kMaxDisplacement))
				throw_error(ExitCode::bad_input, "{}: \"{}\" holds a value that is not a number within +-{} px", at, key,
					kMaxDisplacement);
			out.push_back(v.get<double>());
		}
	}
	if (d.max_gradient() > kMaxDisplacementGradient)
		throw_error(ExitCode::bad_input, "{}: changes by {:.3g} px per pixel between nodes, more than {} (it would fold the frame)",
			at, d.max_gradient(), kMaxDisplacementGradient);
	return d;
}

Matrix3 parse_matrix(const json &value, const std::string &where)
{
	if (!value.is_array() || value.size() != 3)
		throw_error(ExitCode::bad_input, "{}: \"matrix\" must be 3 rows of 3 numbers", where);
	Matrix3::Rows rows{};
	for (int i = 0; i < 3; i++) {
		const json &row = value[i];
		if (!row.is_array() || row.size() != 3)
			throw_error(ExitCode::bad_input, "{}: \"matrix\" row {} must hold 3 numbers", where, i);
		for (int j = 0; j < 3; j++) {
			if (!row[j].is_number())
				throw_error(ExitCode::bad_input, "{}: \"matrix\"[{}][{}] is not a number", where, i, j);
			rows[i][j] = row[j].get<double>();
			if (!std::isfinite(rows[i][j]))
				throw_error(ExitCode::bad_input, "{}: \"matrix\"[{}][{}] is not finite", where, i, j);
		}
	}
	const Matrix3 given(rows);
	if (std::abs(given(2, 2)) < 1e-300)
		throw_error(ExitCode::bad_input, "{}: \"matrix\"[2][2] must not be 0", where);
	// Normalising can overflow ([[1e300,..],..,[..,1e-249]]), and the warp converts mapped coordinates
	// to integers: every entry of the matrix and of its inverse must stay well inside a pixel range.
	const auto plausible = [](const Matrix3 &a) {
		for (const auto &row : a.rows())
			for (double v : row)
				if (!(std::abs(v) <= 1e8))
					return false;
		return true;
	};
	const auto implausible = [&] {
		throw_error(ExitCode::bad_input, "{}: \"matrix\" is implausible (an entry of it or its inverse beyond 1e8)",
			where);
	};
	const Matrix3 m = given.normalised();
	if (!plausible(m))
		implausible();
	Matrix3 inverse;
	try {
		inverse = m.inverse();
	} catch (const Error &) {
		throw_error(ExitCode::bad_input, "{}: \"matrix\" is singular", where);
	}
	if (!plausible(inverse))
		implausible();
	return m;
}

} // namespace

std::string displacement_to_json(const DisplacementField &field)
{
	return displacement_json(field).dump();
}

DisplacementField displacement_from_json(std::string_view text, const std::string &where)
{
	json value;
	try {
		value = json::parse(text);
	} catch (const json::exception &e) {
		throw_error(ExitCode::bad_input, "{}: not valid JSON ({})", where, e.what());
	}
	return parse_displacement(value, where);
}

TransformSet read_transforms(const std::filesystem::path &path)
{
	std::error_code ec;
	if (std::filesystem::is_directory(path, ec))
		throw_error(ExitCode::bad_input, "{}: is a directory, not a transforms file", path.string());
	if (std::filesystem::exists(path, ec) && !std::filesystem::is_regular_file(path, ec))
		throw_error(ExitCode::bad_input, "{}: not a regular file (a FIFO, device or socket)", path.string());
	std::ifstream in(path, std::ios::binary);
	if (!in)
		throw_error(ExitCode::bad_input, "{}: cannot open transforms file", path.string());
	const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
	if (in.bad())
		throw_error(ExitCode::bad_input, "{}: cannot read transforms file", path.string());
	return parse_transforms(text, path.string());
}

TransformSet parse_transforms(std::string_view text, const std::string &where)
{
	json doc;
	try {
		doc = json::parse(text);
	} catch (const json::exception &e) {
		throw_error(ExitCode::bad_input, "{}: not valid JSON ({})", where, e.what());
	}
	if (!doc.is_object())
		throw_error(ExitCode::bad_input, "{}: the top level must be an object", where);
	if (!doc.contains("version") || !doc["version"].is_number_integer() || doc["version"].get<long>() != 1)
		throw_error(ExitCode::bad_input, "{}: \"version\" must be 1", where);
	if (!doc.contains("frames") || !doc["frames"].is_array() || doc["frames"].empty())
		throw_error(ExitCode::bad_input, "{}: \"frames\" must be a non-empty array", where);
	TransformSet set;
	const json &frames = doc["frames"];
	for (std::size_t i = 0; i < frames.size(); i++) {
		const json &f = frames[i];
		const std::string at = fmt::format("{}: frames[{}]", where, i);
		if (!f.is_object() || !f.contains("file") || !f["file"].is_string() || !f.contains("matrix"))
			throw_error(ExitCode::bad_input, "{}: needs a \"file\" string and a \"matrix\"", at);
		FrameTransform entry{f["file"].get<std::string>(), parse_matrix(f["matrix"], at), std::nullopt};
		if (f.contains("displacement"))
			entry.displacement = parse_displacement(f["displacement"], at);
		auto string_field = [&](const char *key) {
			if (!f.contains(key))
				return std::string();
			if (!f[key].is_string())
				throw_error(ExitCode::bad_input, "{}: \"{}\" must be a string", at, key);
			return f[key].get<std::string>();
		};
		// A finite number, >= 0 unless `signed_value`.
		auto number = [&](const char *key, bool signed_value = false) {
			if (!f.contains(key))
				return 0.0;
			if (!f[key].is_number() || !std::isfinite(f[key].get<double>()) || (!signed_value && f[key].get<double>() < 0))
				throw_error(ExitCode::bad_input, "{}: \"{}\" must be a number{}", at, key, signed_value ? "" : " >= 0");
			return f[key].get<double>();
		};
		if (f.contains("status")) {
			AlignmentReport r;
			const json &status = f["status"];
			if (!status.is_string() || (status != "ok" && status != "rejected" && status != "dropped"))
				throw_error(ExitCode::bad_input, "{}: \"status\" must be \"ok\", \"rejected\" or \"dropped\"", at);
			r.ok = status != "rejected";
			r.model = string_field("model");
			if (!r.ok)
				r.reason = string_field("reason");
			r.patches = static_cast<int>(std::min(number("patches"), 1e9));
			r.inliers = static_cast<int>(std::min(number("inliers"), 1e9));
			r.residual_rms = number("residual_rms");
			if (f.contains("local_residual_rms"))
				r.local = LocalReport{static_cast<int>(std::min(number("local_patches"), 1e9)), number("local_residual_rms"),
					number("matrix_residual_rms")};
			entry.report = r;
			if (status == "dropped")
				entry.stacking = StackingReport{.dropped = string_field("reason")};
		}
		auto optional_number = [&](const char *key, bool signed_value = false) {
			return f.contains(key) ? std::optional<double>(number(key, signed_value)) : std::nullopt;
		};
		StackingReport stacking = entry.stacking.value_or(StackingReport{});
		stacking.gain = optional_number("gain");
		stacking.offset = optional_number("offset", true);
		stacking.sharpness = optional_number("sharpness");
		stacking.noise = optional_number("noise");
		if (stacking != StackingReport{})
			entry.stacking = stacking;
		set.frames.push_back(std::move(entry));
	}
	if (doc.contains("reference")) {
		const json &r = doc["reference"];
		if (!r.is_number_integer() || r.get<long>() < 0 || r.get<long>() >= static_cast<long>(set.frames.size()))
			throw_error(ExitCode::bad_input, "{}: \"reference\" must be a frame index below {}", where,
				set.frames.size());
		set.reference = r.get<int>();
	}
	if (doc.contains("tca")) {
		const json &t = doc["tca"];
		if (!t.is_object() || !t.contains("red") || !t.contains("blue"))
			throw_error(ExitCode::bad_input, "{}: \"tca\" must hold a \"red\" and a \"blue\" matrix", where);
		set.tca = ChannelTransforms{parse_matrix(t["red"], where + ": tca.red"), parse_matrix(t["blue"], where + ": tca.blue")};
	}
	return set;
}

void write_transforms(const std::filesystem::path &path, const TransformSet &set)
{
	json doc;
	doc["version"] = 1;
	doc["reference"] = set.reference;
	doc["frames"] = json::array();
	auto rows_of = [](const Matrix3 &m) {
		json rows = json::array();
		for (const auto &row : m.rows())
			rows.push_back({row[0], row[1], row[2]});
		return rows;
	};
	for (const auto &f : set.frames) {
		json entry = {{"file", f.file}, {"matrix", rows_of(f.matrix)}};
		if (f.displacement)
			entry["displacement"] = displacement_json(*f.displacement);
		if (f.report) {
			const AlignmentReport &r = *f.report;
			entry["model"] = r.model;
			entry["patches"] = r.patches;
			entry["inliers"] = r.inliers;
			// Rounded to 1e-4 px: more digits would be noise.
			entry["residual_rms"] = std::round(r.residual_rms * 1e4) / 1e4;
			if (r.local) {
				entry["local_patches"] = r.local->patches;
				entry["local_residual_rms"] = std::round(r.local->residual_rms * 1e4) / 1e4;
				entry["matrix_residual_rms"] = std::round(r.local->matrix_residual_rms * 1e4) / 1e4;
			}
			entry["status"] = r.ok ? "ok" : "rejected";
			if (!r.ok)
				entry["reason"] = r.reason;
		}
		if (f.stacking) {
			const StackingReport &s = *f.stacking;
			// Rounded to what is worth reading: gains to 1e-6, offsets to 1e-7 of full scale.
			if (s.gain)
				entry["gain"] = std::round(*s.gain * 1e6) / 1e6;
			if (s.offset)
				entry["offset"] = std::round(*s.offset * 1e7) / 1e7;
			if (s.sharpness)
				entry["sharpness"] = *s.sharpness;
			if (s.noise)
				entry["noise"] = *s.noise;
			if (s.dropped && (!f.report || f.report->ok)) {
				entry["status"] = "dropped";
				entry["reason"] = *s.dropped;
			}
		}
		doc["frames"].push_back(entry);
	}
	if (set.tca)
		doc["tca"] = {{"red", rows_of(set.tca->red)}, {"blue", rows_of(set.tca->blue)}};
	const auto tmp = std::filesystem::path(path.string() + ".part");
	{
		std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
		if (!out)
			throw_error(ExitCode::processing, "{}: cannot write transforms file", path.string());
		out << doc.dump(2) << '\n';
		if (!out.flush())
			throw_error(ExitCode::processing, "{}: write failed", path.string());
	}
	std::filesystem::rename(tmp, path);
}

std::optional<std::size_t> find_transform(const TransformSet &set, const std::filesystem::path &frame_path)
{
	std::error_code ec;
	for (std::size_t i = 0; i < set.frames.size(); i++)
		if (std::filesystem::equivalent(set.frames[i].file, frame_path, ec))
			return i;
	const auto name = frame_path.filename();
	std::optional<std::size_t> found;
	for (std::size_t i = 0; i < set.frames.size(); i++)
		if (std::filesystem::path(set.frames[i].file).filename() == name) {
			if (found)
				throw_error(ExitCode::bad_input, "transforms file names {} more than once", name.string());
			found = i;
		}
	return found;
}

} // namespace superstack
