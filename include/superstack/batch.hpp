// batch -- many stacks in one overnight job. Every folder under ROOT that holds images is one stack,
// run as `run` would into OUTROOT/<folder>. A journal (OUTROOT/batch.json, written atomically) records
// each stack's state as it changes, so the same command run again skips what is done and retries what
// failed or was cut off (resuming its finished bands, work.hpp). A failing stack does not stop the batch.
#pragma once

#include "superstack/stack.hpp"

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace superstack {

struct BatchOptions {
	std::filesystem::path root, out_root;
	RunOptions run;        // for every stack; its inputs and out_dir are set per stack
};

enum class StackState { pending, in_progress, done, failed };
std::string_view stack_state_name(StackState state); // "pending", "in-progress", "done", "failed"

// One stack's entry in the journal, and in the summary.
struct StackOutcome {
	std::string name;              // the folder relative to ROOT ("." for ROOT itself)
	StackState state = StackState::pending;
	std::string reason;            // failed: the one-line error
	int exit_code = 0;             // failed: the code `run` would have exited with
	int frames = 0;                // stacked
	std::vector<std::string> left_out; // frames left out (unreadable, unaligned, dropped), with why
	std::vector<std::string> outputs;  // file names in OUTROOT/<name>
	double seconds = 0;
	int bands_reused = 0;          // finished by an interrupted run
	bool skipped = false;          // done by an earlier batch, not run again
};

struct BatchResult {
	std::vector<StackOutcome> stacks;
	std::filesystem::path journal;
	bool interrupted = false;      // stopped by SIGINT/SIGTERM: the stack in progress stays in-progress
	int count(StackState state) const;
};

// The stacks under `root`, sorted: folders (ROOT itself included) holding at least one image, hidden
// folders, symbolic links to folders and `out_root` (with everything under it) left out.
std::vector<std::string> find_stacks(const std::filesystem::path &root, const std::filesystem::path &out_root);

// The journal at OUTROOT/batch.json, by stack name (empty when there is none). Throws Error(processing)
// for a journal that cannot be read.
std::vector<StackOutcome> read_journal(const std::filesystem::path &out_root);

// Runs every stack not done yet. Throws Error(usage) for run options that cannot apply to every
// stack (--transforms, --mask), Error(bad_input) when ROOT holds no stack, Error(processing) when OUTROOT
// cannot be written. Progress stages are prefixed with the stack's name.
BatchResult run_batch(const BatchOptions &options, Progress &progress);

// --dry-run: each stack, its state in the journal and what running it would need (or why it cannot run).
struct StackPlan {
	std::string name;
	StackState state = StackState::pending; // from the journal
	std::optional<RunEstimate> estimate;
	std::string error;                      // when the estimate failed
};
std::vector<StackPlan> plan_batch(const BatchOptions &options);

} // namespace superstack
