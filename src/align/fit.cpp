// fit -- least squares per model, and RANSAC + IRLS around it.
#include "fit.hpp"
#include "solve.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <numeric>
#include <random>

namespace superstack::align {

namespace {

// Accumulates weighted normal equations for rows of length N.
template <int N>
struct Normal {
	std::array<std::array<double, N>, N> ata{};
	std::array<double, N> atb{};
	void add(const std::array<double, N> &row, double rhs, double w)
	{
		for (int i = 0; i < N; i++) {
			for (int j = 0; j < N; j++)
				ata[i][j] += w * row[i] * row[j];
			atb[i] += w * row[i] * rhs;
		}
	}
	std::optional<std::array<double, N>> solve() const { return align::solve<N>(ata, atb); }
};

// Centre and scale: p' = (p - c) * s, the same s for both sides.
struct Normalisation {
	Point ref_centre, frame_centre;
	double s = 1;
};

Normalisation normalisation_of(const std::vector<Correspondence> &pts, const std::vector<double> &w)
{
	Normalisation n;
	double total = 0;
	for (std::size_t i = 0; i < pts.size(); i++) {
		const double wi = w.empty() ? 1.0 : w[i];
		n.ref_centre.x += wi * pts[i].ref.x, n.ref_centre.y += wi * pts[i].ref.y;
		n.frame_centre.x += wi * pts[i].frame.x, n.frame_centre.y += wi * pts[i].frame.y;
		total += wi;
	}
	if (total <= 0)
		return n;
	n.ref_centre.x /= total, n.ref_centre.y /= total;
	n.frame_centre.x /= total, n.frame_centre.y /= total;
	double spread = 0;
	for (std::size_t i = 0; i < pts.size(); i++) {
		const double wi = w.empty() ? 1.0 : w[i];
		spread += wi * std::hypot(pts[i].ref.x - n.ref_centre.x, pts[i].ref.y - n.ref_centre.y);
	}
	spread /= total;
	n.s = spread > 1e-9 ? std::sqrt(2.0) / spread : 1.0;
	return n;
}

Matrix3 homography_from(const std::array<double, 8> &h)
{
	return Matrix3({{{h[0], h[1], h[2]}, {h[3], h[4], h[5]}, {h[6], h[7], 1.0}}});
}

// Gauss-Newton on the transfer error, from `h` (normalised coordinates).
std::optional<std::array<double, 8>> refine_homography(std::array<double, 8> h,
	const std::vector<Correspondence> &q, const std::vector<double> &w)
{
	for (int iteration = 0; iteration < 6; iteration++) {
		Normal<8> n;
		for (std::size_t i = 0; i < q.size(); i++) {
			const double wi = w.empty() ? 1.0 : w[i];
			if (wi <= 0)
				continue;
			const double x = q[i].ref.x, y = q[i].ref.y;
			const double d = h[6] * x + h[7] * y + 1;
			if (std::abs(d) < 1e-9)
				return std::nullopt;
			const double u = (h[0] * x + h[1] * y + h[2]) / d, v = (h[3] * x + h[4] * y + h[5]) / d;
			// d(u)/dh and d(v)/dh
			const std::array<double, 8> ju{x / d, y / d, 1 / d, 0, 0, 0, -u * x / d, -u * y / d};
			const std::array<double, 8> jv{0, 0, 0, x / d, y / d, 1 / d, -v * x / d, -v * y / d};
			n.add(ju, q[i].frame.x - u, wi);
			n.add(jv, q[i].frame.y - v, wi);
		}
		const auto step = n.solve();
		if (!step)
			return std::nullopt;
		double size = 0;
		for (int k = 0; k < 8; k++)
			h[k] += (*step)[k], size = std::max(size, std::abs((*step)[k]));
		if (size < 1e-12)
			break;
	}
	return h;
}

} // namespace

int minimal_points(MotionModel model)
{
	switch (model) {
	case MotionModel::none: return 0;
	case MotionModel::translation: return 1;
	case MotionModel::euclidean:
	case MotionModel::similarity: return 2;
	case MotionModel::affine: return 3;
	case MotionModel::homography: return 4;
	}
	return 4;
}

double transfer_error(const Matrix3 &m, const Correspondence &c)
{
	const Point p = m.apply(c.ref);
	const double d = std::hypot(p.x - c.frame.x, p.y - c.frame.y);
	return std::isfinite(d) ? d : 1e30;
}

std::optional<Matrix3> fit_least_squares(MotionModel model, const std::vector<Correspondence> &points,
	const std::vector<double> &weights)
{
	if (model == MotionModel::none)
		return Matrix3::identity();
	int used = 0;
	for (std::size_t i = 0; i < points.size(); i++)
		used += weights.empty() || weights[i] > 0;
	if (used < minimal_points(model))
		return std::nullopt;
	const Normalisation n = normalisation_of(points, weights);
	std::vector<Correspondence> q(points.size());
	for (std::size_t i = 0; i < points.size(); i++) {
		q[i].ref = {(points[i].ref.x - n.ref_centre.x) * n.s, (points[i].ref.y - n.ref_centre.y) * n.s};
		q[i].frame = {(points[i].frame.x - n.frame_centre.x) * n.s, (points[i].frame.y - n.frame_centre.y) * n.s};
	}
	auto w = [&](std::size_t i) { return weights.empty() ? 1.0 : weights[i]; };
	Matrix3 fitted; // in normalised coordinates
	switch (model) {
	case MotionModel::none:
	case MotionModel::translation: {
		// Both sides are centred on their weighted means: the normalised shift is 0.
		fitted = Matrix3::identity();
		break;
	}
	case MotionModel::euclidean:
	case MotionModel::similarity: {
		double dot = 0, cross = 0, norm = 0;
		for (std::size_t i = 0; i < q.size(); i++) {
			dot += w(i) * (q[i].ref.x * q[i].frame.x + q[i].ref.y * q[i].frame.y);
			cross += w(i) * (q[i].ref.x * q[i].frame.y - q[i].ref.y * q[i].frame.x);
			norm += w(i) * (q[i].ref.x * q[i].ref.x + q[i].ref.y * q[i].ref.y);
		}
		if (norm <= 1e-12)
			return std::nullopt;
		double a = dot / norm, b = cross / norm;
		if (model == MotionModel::euclidean) {
			const double r = std::hypot(dot, cross);
			if (r <= 1e-12)
				return std::nullopt;
			a = dot / r, b = cross / r;
		}
		fitted = Matrix3({{{a, -b, 0}, {b, a, 0}, {0, 0, 1}}});
		break;
	}
	case MotionModel::affine: {
		Normal<3> nx, ny;
		for (std::size_t i = 0; i < q.size(); i++) {
			const std::array<double, 3> row{q[i].ref.x, q[i].ref.y, 1};
			nx.add(row, q[i].frame.x, w(i));
			ny.add(row, q[i].frame.y, w(i));
		}
		const auto px = nx.solve(), py = ny.solve();
		if (!px || !py)
			return std::nullopt;
		fitted = Matrix3({{{(*px)[0], (*px)[1], (*px)[2]}, {(*py)[0], (*py)[1], (*py)[2]}, {0, 0, 1}}});
		break;
	}
	case MotionModel::homography: {
		Normal<8> lin; // x' (g x + h y + 1) = a x + b y + c, and the same for y'
		for (std::size_t i = 0; i < q.size(); i++) {
			const double x = q[i].ref.x, y = q[i].ref.y, u = q[i].frame.x, v = q[i].frame.y;
			lin.add({x, y, 1, 0, 0, 0, -x * u, -y * u}, u, w(i));
			lin.add({0, 0, 0, x, y, 1, -x * v, -y * v}, v, w(i));
		}
		auto h = lin.solve();
		if (!h)
			return std::nullopt;
		if (q.size() > 4)
			h = refine_homography(*h, q, weights);
		if (!h)
			return std::nullopt;
		fitted = homography_from(*h);
		break;
	}
	}
	// Back to pixel coordinates: frame = Nf^-1 * fitted * Nr.
	const Matrix3 nr = Matrix3::scaling(n.s, n.s) * Matrix3::translation(-n.ref_centre.x, -n.ref_centre.y);
	const Matrix3 nf_inv = Matrix3::translation(n.frame_centre.x, n.frame_centre.y) * Matrix3::scaling(1 / n.s, 1 / n.s);
	const Matrix3 m = (nf_inv * fitted * nr).normalised();
	for (const auto &row : m.rows())
		for (double v : row)
			if (!std::isfinite(v))
				return std::nullopt;
	return m;
}

RobustFit fit_robust(MotionModel model, const std::vector<Correspondence> &points, const RobustOptions &o)
{
	RobustFit result;
	const int n = static_cast<int>(points.size());
	const int m = minimal_points(model);
	result.inlier.assign(points.size(), false);
	result.residual.assign(points.size(), 0.0);
	if (n < std::max(m, 1))
		return result;

	// RANSAC with the MSAC score (truncated squared error): the sample whose model explains the
	// most points well. Deterministic: a seeded generator, a fixed number of samples.
	std::mt19937_64 rng(o.seed);
	const double t2 = o.threshold * o.threshold;
	double best_cost = std::numeric_limits<double>::max();
	std::optional<Matrix3> best;
	std::vector<Correspondence> sample(static_cast<std::size_t>(m));
	const int samples = n == m ? 1 : o.iterations;
	for (int s = 0; s < samples; s++) {
		std::array<int, 4> pick{};
		for (int k = 0; k < m; k++) {
			bool repeated = true;
			while (repeated) {
				pick[k] = static_cast<int>(rng() % static_cast<std::uint64_t>(n));
				repeated = std::find(pick.begin(), pick.begin() + k, pick[k]) != pick.begin() + k;
			}
			sample[k] = points[pick[k]];
		}
		const auto candidate = fit_least_squares(model, sample);
		if (!candidate)
			continue;
		double cost = 0;
		for (const auto &c : points)
			cost += std::min(t2, std::pow(transfer_error(*candidate, c), 2));
		if (cost < best_cost)
			best_cost = cost, best = candidate;
	}
	if (!best)
		return result;

	// Least squares on the consensus set, then Tukey reweighting with a robust (MAD) scale.
	std::vector<double> weights(points.size());
	for (int i = 0; i < n; i++)
		weights[i] = transfer_error(*best, points[i]) < o.threshold ? 1.0 : 0.0;
	Matrix3 current = fit_least_squares(model, points, weights).value_or(*best);
	double sigma = o.min_sigma;
	for (int iteration = 0; iteration < 10; iteration++) {
		std::vector<double> r;
		for (int i = 0; i < n; i++)
			if (transfer_error(current, points[i]) < o.threshold)
				r.push_back(transfer_error(current, points[i]));
		if (r.size() < static_cast<std::size_t>(m))
			break;
		std::nth_element(r.begin(), r.begin() + r.size() / 2, r.end());
		// The median distance of a 2-D Gaussian error is 1.1774 sigma.
		sigma = std::max(o.min_sigma, r[r.size() / 2] / 1.1774);
		const double c = 4.685 * sigma;
		for (int i = 0; i < n; i++) {
			const double e = transfer_error(current, points[i]) / c;
			weights[i] = e < 1 ? (1 - e * e) * (1 - e * e) : 0.0;
		}
		const auto next = fit_least_squares(model, points, weights);
		if (!next)
			break;
		current = *next;
	}
	result.matrix = current;
	double sum = 0;
	const double cut = std::min(o.threshold, std::max(3.0 * sigma, 3.0 * o.min_sigma));
	for (int i = 0; i < n; i++) {
		result.residual[i] = transfer_error(current, points[i]);
		result.inlier[i] = result.residual[i] < cut;
		if (result.inlier[i])
			result.inliers++, sum += result.residual[i] * result.residual[i];
	}
	result.rms = result.inliers ? std::sqrt(sum / result.inliers) : 0.0;
	result.ok = result.inliers >= m;
	return result;
}

namespace {

int parameters(MotionModel model)
{
	switch (model) {
	case MotionModel::none: return 0;
	case MotionModel::translation: return 2;
	case MotionModel::euclidean: return 3;
	case MotionModel::similarity: return 4;
	case MotionModel::affine: return 6;
	case MotionModel::homography: return 8;
	}
	return 8;
}

} // namespace

std::pair<MotionModel, RobustFit> simplest_sufficient(MotionModel most_general, const std::vector<Correspondence> &points,
	const RobustFit &fit, const RobustOptions &options)
{
	constexpr double kTruncation = 9.21; // chi-square, 2 degrees of freedom, 99%
	const int n = static_cast<int>(points.size());
	if (!fit.ok || fit.inliers < 2)
		return {most_general, fit};
	// The per-axis noise variance from the most general model's inliers.
	const double s2 = std::max(fit.rms * fit.rms / 2, 1e-10);
	auto score = [&](const RobustFit &f, MotionModel m) {
		double cost = 0;
		for (double e : f.residual)
			cost += std::min(e * e / s2, kTruncation);
		return cost + 2 * std::log(std::max(n, 2)) * parameters(m);
	};
	MotionModel best = most_general;
	RobustFit best_fit = fit;
	double best_score = score(fit, most_general);
	for (MotionModel m : {MotionModel::translation, MotionModel::euclidean, MotionModel::similarity, MotionModel::affine}) {
		if (parameters(m) >= parameters(most_general))
			break;
		RobustFit candidate = fit_robust(m, points, options);
		if (!candidate.ok)
			continue;
		const double sc = score(candidate, m);
		if (sc < best_score)
			best = m, best_score = sc, best_fit = std::move(candidate);
	}
	return {best, best_fit};
}

} // namespace superstack::align
