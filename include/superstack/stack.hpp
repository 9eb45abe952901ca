// stack -- `run` as a library call: frames -> transforms -> memory plan -> one reduction pass ->
// results on disk. The data flows one way; every stage is lazy until the savers pull.
#pragma once

#include "superstack/budget.hpp"
#include "superstack/geometry.hpp"
#include "superstack/output.hpp"
#include "superstack/progress.hpp"
#include "superstack/reduce.hpp"
#include "superstack/warp.hpp"

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace superstack {

struct RunOptions {
	std::vector<std::string> inputs;            // files and directories
	std::filesystem::path out_dir;
	std::optional<std::string> reference;       // index (0-based) or file; default the first frame
	double scale = 2;
	Kernel kernel = Kernel::lanczos3;
	std::vector<Statistic> statistics{Statistic::mean, Statistic::median};
	std::optional<std::filesystem::path> transforms;
	std::uint64_t memory_bytes = 1ull << 30;
	int threads = 0;                            // 0: one per core
	SaveOptions save;
	bool save_coverage = false;
	std::optional<std::filesystem::path> work_dir; // default: a hidden folder in out_dir
};

struct RunResult {
	std::vector<std::filesystem::path> outputs;
	MemoryPlan plan;
	OutputGeometry geometry;
	int frames = 0;
	int reference = 0;
	std::uint64_t spool_bytes = 0;
};

RunResult run_stack(const RunOptions &options, Progress &progress);

// Resolves --reference (an index or a file among `frames`). Throws Error(usage).
int resolve_reference(const std::optional<std::string> &reference, const std::vector<std::filesystem::path> &frames);

} // namespace superstack
