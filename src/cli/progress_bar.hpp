// progress_bar -- the CLI's Progress: a bar on a terminal, periodic plain lines in a log, or nothing.
#pragma once

#include "superstack/progress.hpp"

#include <chrono>
#include <mutex>
#include <string>

namespace superstack::cli {

enum class Verbosity { quiet, normal, verbose };

class ProgressBar final : public Progress {
public:
	explicit ProgressBar(Verbosity verbosity);
	~ProgressBar() override;
	void update(std::string_view stage, double fraction, double eta_seconds) override;
	void note(std::string_view message) override;
	void warn(std::string_view message) override;
	void finish();

private:
	Verbosity verbosity_;
	bool terminal_;
	std::mutex mutex_;
	std::string stage_;
	bool bar_open_ = false;
	int last_percent_ = -1;
	std::chrono::steady_clock::time_point last_line_{};

	void line(std::string_view text); // a line of its own, below an open bar
};

} // namespace superstack::cli
