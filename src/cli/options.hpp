// options -- the command line (Boost.Program_options) turned into the engine's plain option structs.
#pragma once

#include "progress_bar.hpp"
#include "superstack/batch.hpp"
#include "superstack/stack.hpp"
#include "superstack/synth.hpp"

#include <string>
#include <variant>
#include <vector>

namespace superstack::cli {

struct ScoreCommand {
	std::string image, truth;
	int crop = 0;
	bool json = false;
};

struct CheckCommand {
	std::vector<std::string> inputs;
	int threads = 0;
	bool json = false;
};

struct BatchCommand {
	BatchOptions options;
	bool dry_run = false;
};

struct HelpText {
	std::string text; // printed to stdout, exit 0
};

struct Command {
	std::variant<HelpText, RunOptions, AlignRunOptions, SynthOptions, ScoreCommand, CheckCommand, BatchCommand> action;
	Verbosity verbosity = Verbosity::normal;
};

// Throws Error(usage) with a one-line reason for anything malformed.
Command parse_command_line(int argc, char **argv);

} // namespace superstack::cli
