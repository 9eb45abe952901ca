// fft -- 2-D discrete Fourier transforms of small real patches, with FFTW plans made once per size.
//
// Why not libvips' fwfft/invfft: in 8.14 they plan with FFTW_MEASURE on every call (a third of an
// alignment's time went to timing trial transforms, and 1.3 s to the first proxy's plans) and plan
// without a lock, so concurrent calls from our worker threads needed a process-wide mutex. FFTW
// itself (the library libvips links; libvips-dev depends on libfftw3-dev) lets a plan be made once,
// under a lock, and then executed on new arrays from any number of threads at once.
//
// Layout: the half spectrum of a real w x h image, h rows of w/2 + 1 complex values (FFTW's r2c
// layout); entry (x, y) is the frequency (x/w, f(y)/h) with f(y) = y or y - h. The inverse is not
// normalised: inverse(forward(a)) = w h a.
#pragma once

#include <complex>
#include <vector>

namespace superstack::align {

using Spectrum = std::vector<std::complex<double>>;

// The half spectrum of `data` (w x h, row-major).
Spectrum forward_fft(const std::vector<double> &data, int width, int height);

// The real w x h image whose half spectrum is `spectrum` (unnormalised).
std::vector<double> inverse_fft(const Spectrum &spectrum, int width, int height);

} // namespace superstack::align
