// error -- libvips' error buffer turned into one line, and nested exceptions into one report.
#include "superstack/error.hpp"

#include <vips/vips8>

#include <exception>
#include <string_view>

namespace superstack {

std::string vips_error_line()
{
	std::string buffer = vips_error_buffer();
	vips_error_clear();
	// libvips appends one "domain: message\n" per failure, outermost last; the first is the cause.
	std::string_view text = buffer;
	while (!text.empty() && (text.back() == '\n' || text.back() == ' '))
		text.remove_suffix(1);
	auto nl = text.find('\n');
	std::string line(nl == std::string_view::npos ? text : text.substr(0, nl));
	return line.empty() ? std::string("unknown libvips error") : line;
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
