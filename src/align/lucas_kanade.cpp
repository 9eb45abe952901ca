// lucas_kanade -- one Gauss-Newton step of translation + gain + offset.
#include "lucas_kanade.hpp"
#include "solve.hpp"

#include <cmath>
#include <optional>

namespace superstack::align {

LucasKanade::LucasKanade(const Grey &r, const std::vector<float> *weight) : reference_(r)
{
	weight_.assign(static_cast<std::size_t>(r.width) * r.height, 0.0);
	const std::vector<double> hx = hann_window(r.width), hy = hann_window(r.height);
	for (int y = 1; y + 1 < r.height; y++) {
		const double wy = hy[static_cast<std::size_t>(y)];
		for (int x = 1; x + 1 < r.width; x++) {
			const std::size_t i = static_cast<std::size_t>(y) * r.width + x;
			const double wx = hx[static_cast<std::size_t>(x)];
			weight_[i] = wx * wy * (weight ? (*weight)[i] : 1.0f);
		}
	}
}

LucasKanade::Step LucasKanade::step(const Grey &f, double gain) const
{
	const Grey &r = reference_;
	std::array<std::array<double, 4>, 4> normal{};
	std::array<double, 4> rhs{};
	for (int y = 1; y + 1 < r.height; y++)
		for (int x = 1; x + 1 < r.width; x++) {
			const std::size_t i = static_cast<std::size_t>(y) * r.width + x;
			const double w = weight_[i];
			if (w <= 0)
				continue;
			const double gx = 0.5 * (gain * 0.5 * (r.at(x + 1, y) - r.at(x - 1, y)) + 0.5 * (f.at(x + 1, y) - f.at(x - 1, y)));
			const double gy = 0.5 * (gain * 0.5 * (r.at(x, y + 1) - r.at(x, y - 1)) + 0.5 * (f.at(x, y + 1) - f.at(x, y - 1)));
			const double v[4] = {r.at(x, y), 1.0, -gx, -gy};
			const double value = f.at(x, y);
			for (int a = 0; a < 4; a++) {
				rhs[a] += w * v[a] * value;
				for (int b = 0; b < 4; b++)
					normal[a][b] += w * v[a] * v[b];
			}
		}
	Step s;
	const auto x = solve<4>(normal, rhs); // (gain, offset, dx, dy)
	if (!x || !((*x)[0] > 0.05))
		return s;
	s.gain = (*x)[0];
	s.dx = (*x)[2];
	s.dy = (*x)[3];
	s.ok = std::isfinite(s.dx) && std::isfinite(s.dy);
	return s;
}

} // namespace superstack::align
