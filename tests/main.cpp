// The doctest runner: starts libvips once for every test.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include "superstack/error.hpp"

#include <vips/vips8>

int main(int argc, char **argv)
{
	if (VIPS_INIT(argv[0]))
		return 1;
	vips_cache_set_max(0);
	superstack::capture_vips_warnings(); // as the CLI does
	doctest::Context context(argc, argv);
	const int status = context.run();
	vips_shutdown();
	return status;
}
