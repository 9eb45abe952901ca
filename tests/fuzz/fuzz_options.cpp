// fuzz_options -- libFuzzer target: the command line, where sizes (--memory 1.5GiB, --size 640x480),
// lists (--reduce mean,median, --blur-frames 3,7) and numbers arrive as untrusted text.
//
// The input is split at newlines into arguments after "superstack". The contract: the parser returns
// a command whose values are in range, or throws Error(usage) (exit 1). Any other exception would
// reach the user as a processing failure (exit 3): a bug, as is a crash or a sanitizer report.
#include "src/cli/options.hpp"
#include "superstack/budget.hpp"
#include "superstack/error.hpp"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

using namespace superstack;

namespace {

[[noreturn]] void fail(const char *what)
{
	std::fprintf(stderr, "fuzz_options: contract broken: %s\n", what);
	std::abort();
}

void check(const cli::Command &command)
{
	if (const auto *r = std::get_if<RunOptions>(&command.action)) {
		if (r->inputs.empty() || r->out_dir.empty())
			fail("run without inputs or output");
		if (!(r->scale >= 1 && r->scale <= 16))
			fail("--scale out of range");
		if (r->memory_bytes < 1)
			fail("--memory below one byte");
		if (r->statistics.empty())
			fail("--reduce accepted an empty list");
		for (std::size_t i = 0; i < r->statistics.size(); i++)
			if (std::count(r->statistics.begin(), r->statistics.end(), r->statistics[i]) != 1)
				fail("--reduce accepted a statistic twice");
		if (!(r->pixfrac > 0 && r->pixfrac <= 1))
			fail("--pixfrac out of range");
	} else if (const auto *s = std::get_if<SynthOptions>(&command.action)) {
		if (s->width < 1 || s->height < 1)
			fail("--size accepted a size below 1x1");
	}
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data, std::size_t size)
{
	std::vector<std::string> args{"superstack"};
	std::string current;
	for (std::size_t i = 0; i < size; i++) {
		if (data[i] == '\n') {
			args.push_back(current);
			current.clear();
		} else {
			current.push_back(static_cast<char>(data[i]));
		}
	}
	args.push_back(current);
	std::vector<char *> argv;
	for (auto &a : args)
		argv.push_back(a.data());
	argv.push_back(nullptr);
	try {
		check(cli::parse_command_line(static_cast<int>(args.size()), argv.data()));
	} catch (const Error &e) {
		if (e.code() != ExitCode::usage)
			fail("an error other than usage");
	}
	// The size parser on its own, as --memory and any later size option use it.
	try {
		const std::uint64_t bytes = parse_size(args.size() > 1 ? args[1] : std::string(), "--memory");
		if (bytes < 1 || bytes > 1000000000000000000ull)
			fail("parse_size accepted a size out of range");
	} catch (const Error &e) {
		if (e.code() != ExitCode::usage)
			fail("parse_size threw an error other than usage");
	}
	return 0;
}
