// fft -- FFTW plans cached by size; planning locked, execution concurrent.
#include "fft.hpp"

#include "superstack/error.hpp"

#include <fftw3.h>

#include <map>
#include <mutex>
#include <tuple>

namespace superstack::align {

namespace {

struct Plans {
	std::mutex lock; // FFTW's planner is not thread-safe; fftw_execute_dft_* on a made plan is
	std::map<std::tuple<int, int, bool>, fftw_plan> made;

	~Plans()
	{
		for (auto &entry : made)
			fftw_destroy_plan(entry.second);
	}
};

Plans &plans()
{
	static Plans p;
	return p;
}

// The plan for a w x h transform in one direction. FFTW_ESTIMATE: no trial runs (a patch-sized
// transform takes microseconds; measuring would cost more than it saves); FFTW_UNALIGNED: executed
// on whatever vectors the callers own.
fftw_plan plan_for(int width, int height, bool forward)
{
	Plans &p = plans();
	std::lock_guard guard(p.lock);
	const auto key = std::make_tuple(width, height, forward);
	if (auto it = p.made.find(key); it != p.made.end())
		return it->second;
	std::vector<double> real(static_cast<std::size_t>(width) * height);
	Spectrum half(static_cast<std::size_t>(width / 2 + 1) * height);
	auto *complex = reinterpret_cast<fftw_complex *>(half.data());
	const unsigned flags = FFTW_ESTIMATE | FFTW_UNALIGNED | (forward ? 0u : FFTW_DESTROY_INPUT);
	fftw_plan plan = forward ? fftw_plan_dft_r2c_2d(height, width, real.data(), complex, flags)
				 : fftw_plan_dft_c2r_2d(height, width, complex, real.data(), flags);
	if (!plan)
		throw_error(ExitCode::processing, "FFTW could not plan a {}x{} transform", width, height);
	p.made.emplace(key, plan);
	return plan;
}

} // namespace

Spectrum forward_fft(const std::vector<double> &data, int width, int height)
{
	const fftw_plan plan = plan_for(width, height, true);
	std::vector<double> in = data; // r2c may use its input as scratch
	Spectrum out(static_cast<std::size_t>(width / 2 + 1) * height);
	fftw_execute_dft_r2c(plan, in.data(), reinterpret_cast<fftw_complex *>(out.data()));
	return out;
}

std::vector<double> inverse_fft(const Spectrum &spectrum, int width, int height)
{
	const fftw_plan plan = plan_for(width, height, false);
	Spectrum in = spectrum; // c2r destroys its input
	std::vector<double> out(static_cast<std::size_t>(width) * height);
	fftw_execute_dft_c2r(plan, reinterpret_cast<fftw_complex *>(in.data()), out.data());
	return out;
}

} // namespace superstack::align
