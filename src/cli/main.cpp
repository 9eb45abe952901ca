// main -- starts libvips, parses the command line, runs one command, and maps errors to exit codes.
#include "options.hpp"
#include "progress_bar.hpp"
#include "superstack/cancel.hpp"
#include "superstack/error.hpp"
#include "superstack/score.hpp"
#include "superstack/stack.hpp"
#include "superstack/synth.hpp"

#include <fmt/core.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>
#include <vips/vips8>

#include <algorithm>
#include <csignal>
#include <cmath>
#include <cstdio>

#include <unistd.h>

using namespace superstack;

namespace {

// The first SIGINT/SIGTERM asks the engine to stop (it does within seconds, cleaning up); a second
// one ends the process at once (hidden temporaries may then stay behind, never a partial final file).
extern "C" void on_signal(int)
{
	if (cancel_requested())
		_exit(static_cast<int>(ExitCode::interrupted));
	request_cancel();
}

void install_signal_handlers()
{
	struct sigaction sa {};
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, nullptr);
	sigaction(SIGTERM, &sa, nullptr);
}

std::string db(double psnr)
{
	return std::isinf(psnr) ? std::string("inf") : fmt::format("{:.3f}", psnr);
}

int run(const RunOptions &options, cli::Verbosity verbosity)
{
	cli::ProgressBar progress(verbosity);
	RunResult result = run_stack(options, progress);
	progress.finish();
	if (verbosity != cli::Verbosity::quiet) {
		for (const auto &path : result.outputs)
			fmt::print("{}\n", path.string());
		fmt::print("{} ({} frames stacked, {} left out{})\n", result.report.string(), result.frames,
			result.rejected.size() + result.dropped.size() + result.unreadable.size(),
			result.bands_reused > 0 ? fmt::format("; resumed: {} of {} bands reused", result.bands_reused, result.bands) : "");
	}
	return 0;
}

std::string seconds(double s)
{
	return s < 60 ? fmt::format("{:.1f} s", s) : s < 3600 ? fmt::format("{:.1f} min", s / 60) : fmt::format("{:.2f} h", s / 3600);
}

// --dry-run: what each stack would need.
int batch_plan(const BatchOptions &options)
{
	const std::vector<StackPlan> plans = plan_batch(options);
	std::size_t width = 5;
	for (const StackPlan &p : plans)
		width = std::max(width, p.name.size());
	fmt::print("{:<{}}  {:<11}  {:>6}  {:>11}  {:>10}  {:>10}  {:>10}\n", "stack", width, "state", "frames", "output px",
		"outputs", "work disk", "memory");
	std::uint64_t outputs = 0, work = 0, memory = 0;
	for (const StackPlan &p : plans) {
		const std::string state(p.state == StackState::done ? "done (skip)" : stack_state_name(p.state));
		if (!p.estimate) {
			fmt::print("{:<{}}  {:<11}  cannot run: {}\n", p.name, width, state, p.error);
			continue;
		}
		const RunEstimate &e = *p.estimate;
		const std::uint64_t disk = e.spool_bytes + e.band_bytes;
		fmt::print("{:<{}}  {:<11}  {:>6}  {:>11}  {:>10}  {:>10}  {:>10}\n", p.name, width, state, e.frames,
			fmt::format("{}x{}", e.geometry.width, e.geometry.height), format_bytes(e.output_bytes), format_bytes(disk),
			format_bytes(e.plan.total_bytes()));
		if (p.state != StackState::done) {
			outputs += e.output_bytes;
			work = std::max(work, disk);
			memory = std::max(memory, e.plan.total_bytes());
		}
	}
	fmt::print("to run: {} of outputs; at most {} of work files and {} of reduction memory at once (plus 60 to 200 MB fixed)\n",
		format_bytes(outputs), format_bytes(work), format_bytes(memory));
	return 0;
}

// The summary table after a batch, and its exit code: 0 every stack done, 4 some failed, 130 interrupted.
int batch(const cli::BatchCommand &command, cli::Verbosity verbosity)
{
	if (command.dry_run)
		return batch_plan(command.options);
	cli::ProgressBar progress(verbosity);
	const BatchResult result = run_batch(command.options, progress);
	progress.finish();
	std::size_t width = 5;
	for (const StackOutcome &s : result.stacks)
		width = std::max(width, s.name.size());
	if (verbosity != cli::Verbosity::quiet || result.count(StackState::failed) > 0) {
		fmt::print("{:<{}}  {:<11}  {:>6}  {:>9}  {}\n", "stack", width, "state", "frames", "time", "details");
		for (const StackOutcome &s : result.stacks) {
			std::string details = s.state == StackState::failed ? fmt::format("exit {}: {}", s.exit_code, s.reason)
				: s.skipped                                     ? "done by an earlier batch"
				: s.state == StackState::in_progress            ? "interrupted: the same command continues it"
										: fmt::format("{}", fmt::join(s.outputs, " "));
			if (!s.left_out.empty())
				details += fmt::format("; left out: {}", fmt::join(s.left_out, "; "));
			if (s.bands_reused > 0)
				details += fmt::format("; resumed ({} bands reused)", s.bands_reused);
			fmt::print("{:<{}}  {:<11}  {:>6}  {:>9}  {}\n", s.name, width, stack_state_name(s.state),
				s.state == StackState::done ? fmt::format("{}", s.frames) : "-", s.skipped ? "-" : seconds(s.seconds), details);
		}
		fmt::print("{} stacks: {} done, {} failed{}; journal {}\n", result.stacks.size(), result.count(StackState::done),
			result.count(StackState::failed), result.interrupted ? ", interrupted" : "", result.journal.string());
	}
	if (result.interrupted) {
		fmt::print(stderr, "superstack: error: interrupted (run the same command to continue)\n");
		return static_cast<int>(ExitCode::interrupted);
	}
	return result.count(StackState::failed) > 0 ? static_cast<int>(ExitCode::batch_failures) : 0;
}

int align(const AlignRunOptions &options, cli::Verbosity verbosity)
{
	cli::ProgressBar progress(verbosity);
	AlignRunResult result = align_stack(options, progress);
	progress.finish();
	if (verbosity != cli::Verbosity::quiet)
		fmt::print("{} ({} frames aligned, {} rejected)\n", options.output.string(),
			result.transforms.frames.size() - result.rejected, result.rejected);
	return 0;
}

int synth(const SynthOptions &options, cli::Verbosity verbosity)
{
	cli::ProgressBar progress(verbosity);
	SynthResult result = synthesize(options, progress);
	progress.finish();
	if (verbosity != cli::Verbosity::quiet)
		fmt::print("{} frames, truth {}, transforms {}\n", result.frames.size(), result.truth.string(),
			result.transforms.string());
	return 0;
}

// The ranking as a table (or JSON): the engine measures, the CLI formats.
int check(const cli::CheckCommand &command, cli::Verbosity verbosity)
{
	cli::ProgressBar progress(verbosity);
	std::vector<FrameCheck> checks = check_frames(command.inputs, command.threads, progress);
	progress.finish();
	std::sort(checks.begin(), checks.end(), [](const FrameCheck &a, const FrameCheck &b) { return a.rank < b.rank; });
	if (command.json) {
		nlohmann::json doc = nlohmann::json::array();
		for (const FrameCheck &c : checks)
			doc.push_back({{"file", c.file.string()}, {"rank", c.rank}, {"sharpness", c.measure.sharpness}, {"noise", c.measure.noise}});
		fmt::print("{}\n", doc.dump(2));
		return 0;
	}
	std::size_t width = 5;
	for (const FrameCheck &c : checks)
		width = std::max(width, c.file.string().size());
	fmt::print("{:>4}  {:<{}}  {:>12}  {:>10}\n", "rank", "frame", width, "sharpness", "noise");
	for (const FrameCheck &c : checks)
		fmt::print("{:>4}  {:<{}}  {:>12.5g}  {:>10.5f}\n", c.rank, c.file.string(), width, c.measure.sharpness, c.measure.noise);
	return 0;
}

int score(const cli::ScoreCommand &command)
{
	const Score s = score_images(command.image, command.truth, command.crop);
	if (command.json) {
		fmt::print("{{\"image\": \"{}\", \"truth\": \"{}\", \"psnr\": {}, \"ssim\": {:.6f}, \"channels\": [", command.image,
			command.truth, std::isinf(s.psnr) ? std::string("null") : db(s.psnr), s.ssim);
		for (std::size_t i = 0; i < s.channels.size(); i++)
			fmt::print("{}{{\"psnr\": {}, \"ssim\": {:.6f}}}", i ? ", " : "",
				std::isinf(s.channels[i].psnr) ? std::string("null") : db(s.channels[i].psnr), s.channels[i].ssim);
		fmt::print("]}}\n");
		return 0;
	}
	fmt::print("{}: PSNR {} dB, SSIM {:.4f} (luminance)", command.image, db(s.psnr), s.ssim);
	for (std::size_t i = 0; i < s.channels.size(); i++)
		fmt::print("; band {}: {} dB, {:.4f}", i, db(s.channels[i].psnr), s.channels[i].ssim);
	fmt::print("\n");
	return 0;
}

} // namespace

int main(int argc, char **argv)
{
	if (VIPS_INIT(argv[0])) {
		fmt::print(stderr, "superstack: error: cannot start libvips: {}\n", vips_error_line());
		return static_cast<int>(ExitCode::processing);
	}
	capture_vips_warnings();
	vips_cache_set_max(0);
	install_signal_handlers();
	int status = 0;
	try {
		const cli::Command command = cli::parse_command_line(argc, argv);
		if (auto help = std::get_if<cli::HelpText>(&command.action)) {
			fmt::print("{}", help->text);
		} else if (auto r = std::get_if<RunOptions>(&command.action)) {
			status = run(*r, command.verbosity);
		} else if (auto a = std::get_if<AlignRunOptions>(&command.action)) {
			status = align(*a, command.verbosity);
		} else if (auto s = std::get_if<SynthOptions>(&command.action)) {
			status = synth(*s, command.verbosity);
		} else if (auto c = std::get_if<cli::CheckCommand>(&command.action)) {
			status = check(*c, command.verbosity);
		} else if (auto b = std::get_if<cli::BatchCommand>(&command.action)) {
			status = batch(*b, command.verbosity);
		} else if (auto sc = std::get_if<cli::ScoreCommand>(&command.action)) {
			status = score(*sc);
		}
	} catch (const std::exception &e) {
		ErrorReport report = describe(e);
		if (cancel_requested())
			report = {"interrupted", ExitCode::interrupted};
		fmt::print(stderr, "superstack: error: {}\n", report.message);
		status = static_cast<int>(report.code);
	}
	vips_shutdown();
	return status;
}
