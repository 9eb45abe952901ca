// error -- the exceptions the engine throws, each tied to a documented exit code.
//
// The engine throws; only main() catches, and maps the kind to the exit code (README, "Exit codes").
// Context is added at layer boundaries with std::throw_with_nested, so one line can say
// "frame 7 (IMG_0123.jpg): truncated JPEG".
#pragma once

#include <fmt/core.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

namespace superstack {

enum class ExitCode : int {
	success = 0,
	usage = 1,       // bad command line or option value
	bad_input = 2,   // an input file is missing, unreadable, corrupt or incompatible
	processing = 3,  // anything that went wrong while computing or writing
	batch_failures = 4, // batch: some stacks failed (the others are done)
	interrupted = 130,
};

class Error : public std::runtime_error {
public:
	Error(ExitCode code, const std::string &what) : std::runtime_error(what), code_(code) {}
	ExitCode code() const noexcept { return code_; }

private:
	ExitCode code_;
};

template <typename... Args>
[[noreturn]] void throw_error(ExitCode code, fmt::format_string<Args...> f, Args &&...args)
{
	throw Error(code, fmt::format(f, std::forward<Args>(args)...));
}

// The libvips error buffer as one line (its first message), and clears it. When it is empty, the last
// warning libvips logged (see remember_warning), since some decoders report only that way.
std::string vips_error_line();

// Keeps `message` as the most recent libvips warning (the handler of capture_vips_warnings calls it).
void remember_warning(std::string_view message);
// Routes libvips' warnings to remember_warning instead of stderr: a decoder that fails without an
// error message has said why in a warning, and the one-line error promise holds. Call once, after
// VIPS_INIT.
void capture_vips_warnings();
// How many "error in tile" warnings libvips has logged. libvips 8.14's thread pool can lose a tile's
// failure when a worker fails after another has ended the pool (a 1x1 PNG with a bad IDAT CRC saves
// "successfully" about one time in four with two threads): a sink that returns 0 while this count
// moved has failed all the same.
std::uint64_t tile_failure_count();
// Drops the remembered warning (before decoding a new file, so no warning outlives its file).
void forget_warning();

// "<file>: <reason>", without repeating the file when the reason already starts with it.
std::string about_file(const std::string &file, const std::string &reason);

// Throws Error(code, "<context>: <libvips' message>") when a libvips C call returned non-zero.
void vips_check(int status, ExitCode code, const std::string &context);

// Walks a nested exception chain into "outer: inner: innermost" and the innermost Error's code
// (processing when none is an Error).
struct ErrorReport {
	std::string message;
	ExitCode code;
};
ErrorReport describe(const std::exception &e);

} // namespace superstack
