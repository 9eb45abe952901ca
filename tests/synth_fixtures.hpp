// synth_fixtures -- the options of a run on a `superstack synth` burst with its true transforms.
#pragma once

#include "superstack/stack.hpp"
#include "superstack/synth.hpp"

#include <cstdint>
#include <filesystem>

namespace superstack::test {

// A burst of `frames` frames of width x height at scale 2 in `out_dir`; the rest at the defaults.
inline SynthOptions burst_options(const std::filesystem::path &out_dir, int frames, int width, int height, double noise, std::uint64_t seed)
{
	SynthOptions s;
	s.out_dir = out_dir;
	s.frames = frames;
	s.width = width;
	s.height = height;
	s.noise = noise;
	s.seed = seed;
	return s;
}

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
