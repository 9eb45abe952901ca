// field -- iteratively reweighted, regularised least squares on the field's grid, by conjugate gradients.
#include "field.hpp"

#include <algorithm>
#include <cmath>

namespace superstack::align {

namespace {

using Stencil = DisplacementField::Stencil;

// One term of the prior: weight x (sum_k coefficient_k D_node_k)^2, per axis.
struct PriorTerm {
	std::array<std::size_t, 4> node{};
	std::array<double, 4> coefficient{};
	int count = 0;
	double weight = 0;
};

// The prior's terms: the bending energy (second differences along x and y, and twice the squared
// cross difference: a plane costs nothing, so a field that tilts is not flattened) and a membrane a
// hundredth as strong (first differences: keeps extrapolation beyond the patches level, not
// running off along the last slope).
std::vector<PriorTerm> prior_terms(const DisplacementField &g, double bending)
{
	std::vector<PriorTerm> terms;
	auto at = [&](int i, int j) { return static_cast<std::size_t>(j) * g.columns + i; };
	for (int j = 0; j < g.rows; j++)
		for (int i = 0; i < g.columns; i++) {
			if (i + 2 < g.columns)
				terms.push_back({{at(i, j), at(i + 1, j), at(i + 2, j)}, {1, -2, 1}, 3, bending});
			if (j + 2 < g.rows)
				terms.push_back({{at(i, j), at(i, j + 1), at(i, j + 2)}, {1, -2, 1}, 3, bending});
			if (i + 1 < g.columns && j + 1 < g.rows)
				terms.push_back({{at(i, j), at(i + 1, j), at(i, j + 1), at(i + 1, j + 1)}, {1, -1, -1, 1}, 4, 2 * bending});
			if (i + 1 < g.columns)
				terms.push_back({{at(i, j), at(i + 1, j)}, {1, -1}, 2, 0.01 * bending});
			if (j + 1 < g.rows)
				terms.push_back({{at(i, j), at(i, j + 1)}, {1, -1}, 2, 0.01 * bending});
		}
	return terms;
}

// y = A x for the normal equations: sum_i w_i B_i^T W_i B_i + the prior + ridge I, x interleaved (dx, dy) per node.
void apply_normal(const std::vector<FieldMeasurement> &m, const std::vector<Stencil> &stencils, const std::vector<double> &w,
	const std::vector<PriorTerm> &prior, double ridge, const std::vector<double> &x, std::vector<double> &y)
{
	std::fill(y.begin(), y.end(), 0.0);
	for (std::size_t i = 0; i < m.size(); i++) {
		if (!(w[i] > 0))
			continue;
		const Stencil &s = stencils[i];
		double bx = 0, by = 0;
		for (int k = 0; k < 4; k++)
			bx += s.weight[k] * x[2 * s.node[k]], by += s.weight[k] * x[2 * s.node[k] + 1];
		const auto &W = m[i].information;
		const double ex = w[i] * (W[0] * bx + W[1] * by), ey = w[i] * (W[1] * bx + W[2] * by);
		for (int k = 0; k < 4; k++)
			y[2 * s.node[k]] += s.weight[k] * ex, y[2 * s.node[k] + 1] += s.weight[k] * ey;
	}
	for (const PriorTerm &t : prior)
		for (int c = 0; c < 2; c++) {
			double v = 0;
			for (int k = 0; k < t.count; k++)
				v += t.coefficient[k] * x[2 * t.node[k] + c];
			v *= t.weight;
			for (int k = 0; k < t.count; k++)
				y[2 * t.node[k] + c] += t.coefficient[k] * v;
		}
	for (std::size_t k = 0; k < x.size(); k++)
		y[k] += ridge * x[k];
}

double dot(const std::vector<double> &a, const std::vector<double> &b)
{
	double s = 0;
	for (std::size_t k = 0; k < a.size(); k++)
		s += a[k] * b[k];
	return s;
}

double median_of(std::vector<double> v)
{
	const std::size_t h = v.size() / 2;
	std::nth_element(v.begin(), v.begin() + h, v.end());
	const double upper = v[h];
	if (v.size() % 2)
		return upper;
	return 0.5 * (upper + *std::max_element(v.begin(), v.begin() + h));
}

// The normalised median test of particle image velocimetry (Westerweel and Scarano 2005): a
// measurement whose shift strays from its neighbours' median (those within 1.5 spacings) by more than
// `threshold` times their median distance from that median (plus `epsilon` px, the measurements'
// own noise) is an outlier: a patch that locked onto the wrong period of a texture, or an occlusion.
std::vector<char> median_test(const DisplacementField &g, const std::vector<FieldMeasurement> &m, double threshold, double epsilon)
{
	std::vector<char> keep(m.size(), 1);
	const double radius2 = 2.25 * g.spacing * g.spacing;
	std::vector<double> xs, ys, spread;
	for (std::size_t i = 0; i < m.size(); i++) {
		xs.clear(), ys.clear();
		for (std::size_t j = 0; j < m.size(); j++) {
			const double dx = m[j].at.x - m[i].at.x, dy = m[j].at.y - m[i].at.y;
			if (j != i && dx * dx + dy * dy <= radius2)
				xs.push_back(m[j].shift.x), ys.push_back(m[j].shift.y);
		}
		if (xs.size() < 3)
			continue;
		const double mx = median_of(xs), my = median_of(ys);
		spread.clear();
		for (std::size_t k = 0; k < xs.size(); k++)
			spread.push_back(std::hypot(xs[k] - mx, ys[k] - my));
		const double typical = median_of(spread);
		keep[i] = std::hypot(m[i].shift.x - mx, m[i].shift.y - my) <= threshold * (typical + epsilon);
	}
	return keep;
}

} // namespace

DisplacementField fit_field(const DisplacementField &grid, const std::vector<FieldMeasurement> &m, const FieldOptions &o,
	std::vector<double> *weights)
{
	DisplacementField field = grid;
	const std::size_t nodes = static_cast<std::size_t>(grid.columns) * grid.rows, n = 2 * nodes;
	std::vector<Stencil> stencils;
	stencils.reserve(m.size());
	for (const auto &meas : m)
		stencils.push_back(grid.stencil(meas.at));
	const std::vector<PriorTerm> prior = prior_terms(grid, o.smoothness);
	// The ridge: a millionth of the smoothness, so it only decides what nothing else does.
	const double ridge = 1e-6 * std::max(o.smoothness, 1e-9);
	// Outliers first (the reweighting only settles near a good start), then Cauchy's weights.
	const std::vector<char> keep = median_test(grid, m, o.median_threshold, o.median_epsilon);
	std::vector<double> w(m.size()), x(n, 0.0), r(n), p(n), ap(n), b(n);
	for (std::size_t i = 0; i < m.size(); i++)
		w[i] = keep[i] ? 1.0 : 0.0;
	for (int pass = 0; pass <= o.reweightings; pass++) {
		std::fill(b.begin(), b.end(), 0.0);
		for (std::size_t i = 0; i < m.size(); i++) {
			const auto &W = m[i].information;
			const double ex = w[i] * (W[0] * m[i].shift.x + W[1] * m[i].shift.y), ey = w[i] * (W[1] * m[i].shift.x + W[2] * m[i].shift.y);
			for (int k = 0; k < 4; k++)
				b[2 * stencils[i].node[k]] += stencils[i].weight[k] * ex, b[2 * stencils[i].node[k] + 1] += stencils[i].weight[k] * ey;
		}
		// Conjugate gradients from the last pass's field.
		apply_normal(m, stencils, w, prior, ridge, x, ap);
		for (std::size_t k = 0; k < n; k++)
			r[k] = b[k] - ap[k], p[k] = r[k];
		double rr = dot(r, r);
		const double stop = 1e-20 * std::max(dot(b, b), 1e-300);
		for (std::size_t it = 0; it < 4 * n + 100 && rr > stop; it++) {
			apply_normal(m, stencils, w, prior, ridge, p, ap);
			const double alpha = rr / dot(p, ap);
			for (std::size_t k = 0; k < n; k++)
				x[k] += alpha * p[k], r[k] -= alpha * ap[k];
			const double next = dot(r, r);
			for (std::size_t k = 0; k < n; k++)
				p[k] = r[k] + next / rr * p[k];
			rr = next;
		}
		if (pass == o.reweightings)
			break;
		// Cauchy's weights of the Mahalanobis residuals.
		for (std::size_t i = 0; i < m.size(); i++) {
			double bx = 0, by = 0;
			for (int k = 0; k < 4; k++)
				bx += stencils[i].weight[k] * x[2 * stencils[i].node[k]], by += stencils[i].weight[k] * x[2 * stencils[i].node[k] + 1];
			const double ex = bx - m[i].shift.x, ey = by - m[i].shift.y;
			const auto &W = m[i].information;
			const double d2 = ex * (W[0] * ex + W[1] * ey) + ey * (W[1] * ex + W[2] * ey);
			w[i] = keep[i] ? 1 / (1 + d2 / (o.scale * o.scale)) : 0.0;
		}
	}
	field.dx.assign(nodes, 0.0);
	field.dy.assign(nodes, 0.0);
	for (std::size_t k = 0; k < nodes; k++)
		field.dx[k] = x[2 * k], field.dy[k] = x[2 * k + 1];
	if (weights)
		*weights = w;
	return field;
}

} // namespace superstack::align
