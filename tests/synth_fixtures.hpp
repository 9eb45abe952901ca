// synth_fixtures -- the options of a run on a `superstack synth` burst with its true transforms.
#pragma once

#include "superstack/stack.hpp"
#include "superstack/synth.hpp"

#include <filesystem>

namespace superstack::test {

// Every frame of `burst`, its true transforms, outputs in `out_dir`; the rest at the defaults.
inline RunOptions burst_run_options(const SynthResult &burst, const std::filesystem::path &out_dir)
{
	RunOptions o;
	for (const auto &f : burst.frames)
		o.inputs.push_back(f.string());
	o.out_dir = out_dir;
	o.transforms = burst.transforms;
	return o;
}

} // namespace superstack::test
