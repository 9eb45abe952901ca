// process -- runs the superstack binary as a user would, with a time limit, capturing its output.
#pragma once

#include <csignal>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace superstack::test {

struct ProcessResult {
	int exit_code = -1;   // the exit status; 128+N when killed by signal N
	bool timed_out = false;
	std::string out, err;
	bool signalled = false;
	double stop_seconds = -1; // from the signal sent to the process's end
	// The binary's peak resident set (VmHWM of /proc/PID/status, polled while it runs; not getrusage,
	// whose ru_maxrss would count the test process's pages the child held between fork and exec).
	long peak_rss_kib = 0;
};

// Runs $SUPERSTACK_BIN with `args`; kills it after `timeout_s`. With `interrupt_after_s` >= 0, sends
// SIGINT at that time.
// With `max_open_files` > 0, the child's RLIMIT_NOFILE is lowered to it before exec.
ProcessResult run_superstack(const std::vector<std::string> &args, double timeout_s = 120,
	double interrupt_after_s = -1, int max_open_files = 0);

// Runs $SUPERSTACK_BIN with `args`, and sends `signal` as soon as `ready()` holds (polled every 2 ms):
// e.g. SIGKILL once a band file exists.
ProcessResult run_superstack_until(const std::vector<std::string> &args, const std::function<bool()> &ready, int signal,
	double timeout_s = 120);

// $SUPERSTACK_BIN is set (meson test sets it).
bool have_binary();

// The files a run left in `dir` (recursively, hidden ones included), sorted.
std::vector<std::string> left_in(const std::filesystem::path &dir);

// Checks (doctest) that stderr ends with exactly one error line, "superstack: error: ...", containing
// `needle`. (Progress lines for logs may come before it.)
void check_one_line_error(const ProcessResult &r, const std::string &needle);

} // namespace superstack::test
