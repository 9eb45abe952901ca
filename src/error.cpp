// error -- libvips' error buffer turned into one line, and nested exceptions into one report.
#include "superstack/error.hpp"

#include <vips/vips8>

#include <atomic>
#include <exception>
#include <mutex>
#include <string_view>

namespace superstack {

namespace {
std::mutex warning_mutex;
std::string last_warning;
std::atomic<std::uint64_t> tile_failures{0};
} // namespace

void remember_warning(std::string_view message)
{
	// The first warning since forget_warning() is the cause; libvips' own "error in tile" that
	// follows a decoder's failure says nothing of it, but proves a tile failed (see tile_failure_count).
	if (message.find("error in tile") != std::string_view::npos) {
		tile_failures.fetch_add(1, std::memory_order_relaxed);
		return;
	}
	while (!message.empty() && (message.back() == '\n' || message.back() == ' '))
		message.remove_suffix(1);
	std::lock_guard lock(warning_mutex);
	if (last_warning.empty())
		last_warning.assign(message);
}

std::uint64_t tile_failure_count()
{
	return tile_failures.load(std::memory_order_relaxed);
}

void capture_vips_warnings()
{
	g_log_set_handler("VIPS", static_cast<GLogLevelFlags>(G_LOG_LEVEL_WARNING | G_LOG_LEVEL_MESSAGE),
		[](const gchar *, GLogLevelFlags, const gchar *message, gpointer) { remember_warning(message); }, nullptr);
}

void forget_warning()
{
	std::lock_guard lock(warning_mutex);
	last_warning.clear();
}

std::string vips_error_line()
{
	std::string buffer = vips_error_buffer();
	vips_error_clear();
	std::string warning;
	{
		std::lock_guard lock(warning_mutex);
		warning.swap(last_warning); // used once: it belongs to this failure
	}
	// Some decoders report only through warnings (libpng's "IDAT: CRC error" and the like).
	if (buffer.empty())
		buffer = warning.empty() ? std::string("cannot decode: corrupt or unsupported data") : warning;
	// libvips appends one "domain: message\n" per failure, outermost last; the first is the cause.
	std::string_view text = buffer;
	while (!text.empty() && (text.back() == '\n' || text.back() == ' '))
		text.remove_suffix(1);
	auto nl = text.find('\n');
	std::string line(nl == std::string_view::npos ? text : text.substr(0, nl));
	if (line.empty())
		return "cannot decode: corrupt or unsupported data";
	// libpng's "read error" says nothing; the warning it logged before says what (a CRC error, ...).
	if (line.ends_with("read error") && !warning.empty() && warning.find('\n') == std::string::npos)
		line += " (" + warning + ")";
	return line;
}

std::string about_file(const std::string &file, const std::string &reason)
{
	std::string_view r = reason;
	if (r.starts_with(file)) {
		r.remove_prefix(file.size());
		while (!r.empty() && (r.front() == ':' || r.front() == ' '))
			r.remove_prefix(1);
	}
	return file + ": " + std::string(r);
}

void vips_check(int status, ExitCode code, const std::string &context)
{
	if (status != 0)
		throw Error(code, context + ": " + vips_error_line());
}

namespace {

void unwind(const std::exception &e, ErrorReport &report)
{
	if (!report.message.empty())
		report.message += ": ";
	report.message += e.what();
	if (auto error = dynamic_cast<const Error *>(&e))
		report.code = error->code();
	else if (auto vips = dynamic_cast<const vips::VError *>(&e)) {
		(void)vips;
		// A C++-binding failure: name libvips' reason, not the binding's wrapper text.
	}
	try {
		std::rethrow_if_nested(e);
	} catch (const std::exception &inner) {
		unwind(inner, report);
	} catch (...) {
	}
}

} // namespace

ErrorReport describe(const std::exception &e)
{
	ErrorReport report{"", ExitCode::processing};
	unwind(e, report);
	// One line, whatever the libraries put in their messages.
	for (auto &c : report.message)
		if (c == '\n' || c == '\r')
			c = ' ';
	return report;
}

} // namespace superstack
