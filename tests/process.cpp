// process -- fork/exec with a deadline.
#include "process.hpp"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <thread>

namespace superstack::test {

bool have_binary()
{
	const char *bin = std::getenv("SUPERSTACK_BIN");
	return bin && access(bin, X_OK) == 0;
}

namespace {
std::string slurp(const std::string &path)
{
	std::ifstream in(path, std::ios::binary);
	return std::string((std::istreambuf_iterator<char>(in)), {});
}
// VmHWM of `pid` in KiB once it runs `name` (after the exec), else 0.
long peak_rss_of(pid_t pid, const std::string &name)
{
	std::ifstream in("/proc/" + std::to_string(pid) + "/status");
	std::string key, value;
	bool ours = false;
	long kib = 0;
	while (in >> key) {
		if (key == "Name:") {
			in >> value;
			ours = name.rfind(value, 0) == 0; // the kernel's comm is the name's first 15 characters
		} else if (key == "VmHWM:") {
			in >> kib;
		}
		std::getline(in, value);
	}
	return ours ? kib : 0;
}

} // namespace

namespace {

// Runs the binary, sending `signal` once `ready(elapsed seconds)` holds, every `poll_ms`.
ProcessResult run_with(const std::vector<std::string> &args, double timeout_s, const std::function<bool(double)> &ready,
	int signal, int poll_ms, int max_open_files)
{
	ProcessResult result;
	const char *bin = std::getenv("SUPERSTACK_BIN");
	char out_path[] = "/tmp/superstack-test-out-XXXXXX";
	char err_path[] = "/tmp/superstack-test-err-XXXXXX";
	const int out_fd = mkstemp(out_path), err_fd = mkstemp(err_path);
	const pid_t pid = fork();
	if (pid == 0) {
		dup2(out_fd, STDOUT_FILENO);
		dup2(err_fd, STDERR_FILENO);
		const int null_fd = open("/dev/null", O_RDONLY);
		dup2(null_fd, STDIN_FILENO);
		if (max_open_files > 0) {
			const rlimit limit{static_cast<rlim_t>(max_open_files), static_cast<rlim_t>(max_open_files)};
			setrlimit(RLIMIT_NOFILE, &limit);
		}
		std::vector<char *> argv{const_cast<char *>(bin)};
		for (const auto &a : args)
			argv.push_back(const_cast<char *>(a.c_str()));
		argv.push_back(nullptr);
		execv(bin, argv.data());
		_exit(127);
	}
	close(out_fd);
	close(err_fd);
	const auto start = std::chrono::steady_clock::now();
	std::chrono::steady_clock::time_point signalled_at;
	int status = 0;
	const std::string name = std::filesystem::path(bin).filename().string();
	for (;;) {
		// Monotonic while the process lives: the last poll before it ends holds its peak.
		result.peak_rss_kib = std::max(result.peak_rss_kib, peak_rss_of(pid, name));
		const pid_t done = waitpid(pid, &status, WNOHANG);
		if (done == pid)
			break;
		const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
		if (ready && !result.signalled && ready(elapsed)) {
			kill(pid, signal);
			result.signalled = true;
			signalled_at = std::chrono::steady_clock::now();
		}
		if (elapsed > timeout_s) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			result.timed_out = true;
			break;
		}
		std::this_thread::sleep_for(std::chrono::milliseconds(poll_ms));
	}
	if (result.signalled)
		result.stop_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - signalled_at).count();
	result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	result.out = slurp(out_path);
	result.err = slurp(err_path);
	unlink(out_path);
	unlink(err_path);
	return result;
}

} // namespace

ProcessResult run_superstack(const std::vector<std::string> &args, double timeout_s, double interrupt_after_s,
	int max_open_files)
{
	std::function<bool(double)> ready;
	if (interrupt_after_s >= 0)
		ready = [=](double elapsed) { return elapsed >= interrupt_after_s; };
	return run_with(args, timeout_s, ready, SIGINT, 20, max_open_files);
}

ProcessResult run_superstack_until(const std::vector<std::string> &args, const std::function<bool()> &ready, int signal,
	double timeout_s)
{
	return run_with(args, timeout_s, [&](double) { return ready(); }, signal, 2, 0);
}

std::vector<std::string> left_in(const std::filesystem::path &dir)
{
	namespace fs = std::filesystem;
	std::vector<std::string> names;
	std::error_code ec;
	if (!fs::exists(dir, ec))
		return names;
	for (auto &e : fs::recursive_directory_iterator(dir, ec))
		names.push_back(fs::relative(e.path(), dir).string());
	std::sort(names.begin(), names.end());
	return names;
}

void check_one_line_error(const ProcessResult &r, const std::string &needle)
{
	CAPTURE(r.err);
	REQUIRE(!r.err.empty());
	CHECK(r.err.back() == '\n');
	const auto start = r.err.rfind('\n', r.err.size() - 2);
	const std::string last = r.err.substr(start == std::string::npos ? 0 : start + 1);
	CHECK(last.rfind("superstack: error: ", 0) == 0);
	CHECK(last.find(needle) != std::string::npos);
	std::size_t errors = 0;
	for (std::size_t at = 0; (at = r.err.find("superstack: error:", at)) != std::string::npos; at++)
		errors++;
	CHECK(errors == 1);
}

} // namespace superstack::test
