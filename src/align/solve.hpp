// solve -- small dense linear systems (the normal equations of the fits), by Gaussian elimination
// with partial pivoting. Header-only: N is known at compile time (3, 4 or 8).
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <optional>

namespace superstack::align {

// x with a x = b; nothing when a pivot is negligible against the matrix's scale (singular system).
template <int N>
std::optional<std::array<double, N>> solve(std::array<std::array<double, N>, N> a, std::array<double, N> b)
{
	double scale = 0;
	for (const auto &row : a)
		for (double v : row)
			scale = std::max(scale, std::abs(v));
	if (scale == 0)
		return std::nullopt;
	for (int c = 0; c < N; c++) {
		int pivot = c;
		for (int r = c + 1; r < N; r++)
			if (std::abs(a[r][c]) > std::abs(a[pivot][c]))
				pivot = r;
		if (std::abs(a[pivot][c]) <= 1e-14 * scale)
			return std::nullopt;
		std::swap(a[c], a[pivot]);
		std::swap(b[c], b[pivot]);
		for (int r = c + 1; r < N; r++) {
			const double f = a[r][c] / a[c][c];
			for (int k = c; k < N; k++)
				a[r][k] -= f * a[c][k];
			b[r] -= f * b[c];
		}
	}
	std::array<double, N> x{};
	for (int r = N - 1; r >= 0; r--) {
		double s = b[r];
		for (int k = r + 1; k < N; k++)
			s -= a[r][k] * x[k];
		x[r] = s / a[r][r];
	}
	return x;
}

} // namespace superstack::align
