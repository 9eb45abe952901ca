// progress_bar -- bar with percentage and ETA on a terminal; a line every 10 s otherwise.
#include "progress_bar.hpp"

#include <fmt/core.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace superstack::cli {

namespace {
std::string clock_text(double seconds)
{
	if (seconds < 0 || !std::isfinite(seconds))
		return "--:--";
	const long s = std::lround(seconds);
	return s >= 3600 ? fmt::format("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
			 : fmt::format("{}:{:02}", s / 60, s % 60);
}
} // namespace

ProgressBar::ProgressBar(Verbosity verbosity) : verbosity_(verbosity), terminal_(isatty(STDERR_FILENO) == 1) {}

ProgressBar::~ProgressBar()
{
	finish();
}

void ProgressBar::finish()
{
	std::lock_guard lock(mutex_);
	if (bar_open_)
		std::fputc('\n', stderr);
	bar_open_ = false;
}

void ProgressBar::update(std::string_view stage, double fraction, double eta_seconds)
{
	if (verbosity_ == Verbosity::quiet)
		return;
	std::lock_guard lock(mutex_);
	const int percent = static_cast<int>(std::clamp(fraction, 0.0, 1.0) * 100.0);
	const bool new_stage = stage != stage_;
	if (!new_stage && percent == last_percent_)
		return;
	const auto now = std::chrono::steady_clock::now();
	if (terminal_) {
		if (new_stage && bar_open_)
			std::fputc('\n', stderr);
		constexpr int width = 30;
		const int filled = percent * width / 100;
		fmt::print(stderr, "\r{:<14} [{}{}] {:3}%  ETA {:<8}", stage, std::string(filled, '#'),
			std::string(width - filled, ' '), percent, clock_text(eta_seconds));
		std::fflush(stderr);
		bar_open_ = true;
	} else if (new_stage || percent == 100 || now - last_line_ >= std::chrono::seconds(10)) {
		fmt::print(stderr, "superstack: {} {}% (eta {})\n", stage, percent, clock_text(eta_seconds));
		last_line_ = now;
	}
	stage_ = stage;
	last_percent_ = percent;
}

void ProgressBar::line(std::string_view text)
{
	std::lock_guard lock(mutex_);
	if (bar_open_)
		std::fputc('\n', stderr);
	bar_open_ = false;
	stage_.clear(); // the bar starts again below the line
	fmt::print(stderr, "superstack: {}\n", text);
}

void ProgressBar::note(std::string_view message)
{
	if (verbosity_ == Verbosity::verbose)
		line(message);
}

void ProgressBar::warn(std::string_view message)
{
	if (verbosity_ != Verbosity::quiet)
		line(fmt::format("warning: {}", message));
}

} // namespace superstack::cli
