// batch -- stacks found by folder, run one after another, each state change journalled atomically.
#include "superstack/batch.hpp"

#include "superstack/cancel.hpp"
#include "superstack/error.hpp"
#include "superstack/files.hpp"
#include "superstack/frame.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <map>

namespace superstack {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

constexpr const char *kJournal = "batch.json";

StackState parse_state(const std::string &text)
{
	for (StackState s : {StackState::pending, StackState::in_progress, StackState::done, StackState::failed})
		if (stack_state_name(s) == text)
			return s;
	throw_error(ExitCode::processing, "unknown stack state '{}'", text);
}

json to_json(const StackOutcome &s)
{
	json j = {{"state", std::string(stack_state_name(s.state))}};
	if (s.state == StackState::failed) {
		j["reason"] = s.reason;
		j["exit_code"] = s.exit_code;
	}
	if (s.state == StackState::done) {
		j["frames"] = s.frames;
		j["outputs"] = s.outputs;
		j["seconds"] = std::round(s.seconds * 10) / 10;
		if (s.bands_reused > 0)
			j["bands_reused"] = s.bands_reused;
	}
	if (!s.left_out.empty())
		j["left_out"] = s.left_out;
	return j;
}

// The journal: every stack's entry, by name, written whole at each change.
class Journal {
public:
	Journal(const fs::path &out_root) : path_(out_root / kJournal)
	{
		for (StackOutcome &s : read_journal(out_root))
			entries_[s.name] = std::move(s);
	}
	const StackOutcome *find(const std::string &name) const
	{
		auto at = entries_.find(name);
		return at == entries_.end() ? nullptr : &at->second;
	}
	void set(const StackOutcome &s)
	{
		entries_[s.name] = s;
		json stacks = json::object();
		for (const auto &[name, entry] : entries_)
			stacks[name] = to_json(entry);
		write_file_atomically(path_, json{{"version", 1}, {"stacks", stacks}}.dump(2) + "\n");
	}
	const fs::path &path() const { return path_; }

private:
	fs::path path_;
	std::map<std::string, StackOutcome> entries_;
};

// Prefixes every stage with the stack's name and place in the batch.
class StackProgress final : public Progress {
public:
	StackProgress(Progress &outer, std::string prefix) : outer_(outer), prefix_(std::move(prefix)) {}
	void update(std::string_view stage, double fraction, double eta) override
	{
		outer_.update(fmt::format("{} {}", prefix_, stage), fraction, eta);
	}
	void note(std::string_view message) override { outer_.note(fmt::format("{} {}", prefix_, message)); }
	void warn(std::string_view message) override { outer_.warn(fmt::format("{} {}", prefix_, message)); }

private:
	Progress &outer_;
	std::string prefix_;
};

void check_batch_options(const BatchOptions &o)
{
	if (o.run.transforms)
		throw_error(ExitCode::usage, "batch: --transforms names one stack's frames; align each stack instead");
	if (o.run.mask)
		throw_error(ExitCode::usage, "batch: --mask is in one stack's geometry; use run for a masked stack");
	std::error_code ec;
	if (!fs::is_directory(o.root, ec))
		throw_error(ExitCode::bad_input, "{}: not a folder", o.root.string());
}

RunOptions options_for(const BatchOptions &o, const std::string &name)
{
	RunOptions run = o.run;
	run.inputs = {(o.root / name).lexically_normal().string()};
	run.out_dir = (o.out_root / name).lexically_normal();
	return run;
}

} // namespace

std::string_view stack_state_name(StackState state)
{
	switch (state) {
	case StackState::pending: return "pending";
	case StackState::in_progress: return "in-progress";
	case StackState::done: return "done";
	case StackState::failed: return "failed";
	}
	return "pending";
}

int BatchResult::count(StackState state) const
{
	return static_cast<int>(std::count_if(stacks.begin(), stacks.end(), [&](const StackOutcome &s) { return s.state == state; }));
}

std::vector<std::string> find_stacks(const fs::path &root, const fs::path &out_root)
{
	std::error_code ec;
	const fs::path out = fs::weakly_canonical(fs::absolute(out_root, ec), ec);
	std::vector<std::string> stacks;
	auto holds_images = [](const fs::path &dir) {
		try {
			return !expand_inputs({dir.string()}).empty();
		} catch (const Error &) {
			return false; // no images (or unreadable): not a stack
		}
	};
	if (holds_images(root))
		stacks.push_back(".");
	// Symbolic links to folders are not followed (the iterator's default): no loops, no stack twice.
	for (auto it = fs::recursive_directory_iterator(root, fs::directory_options::skip_permission_denied, ec);
		!ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
		const fs::directory_entry &e = *it;
		if (e.is_symlink(ec) || !e.is_directory(ec))
			continue;
		const std::string name = e.path().filename().string();
		if (name.starts_with(".") || fs::weakly_canonical(e.path(), ec) == out) {
			it.disable_recursion_pending();
			continue;
		}
		if (holds_images(e.path()))
			stacks.push_back(fs::relative(e.path(), root, ec).generic_string());
	}
	std::sort(stacks.begin(), stacks.end());
	return stacks;
}

std::vector<StackOutcome> read_journal(const fs::path &out_root)
{
	const fs::path path = out_root / kJournal;
	std::error_code ec;
	if (!fs::exists(path, ec))
		return {};
	std::ifstream in(path, std::ios::binary);
	std::vector<StackOutcome> out;
	try {
		const json doc = json::parse(in);
		for (const auto &[name, j] : doc.at("stacks").items()) {
			StackOutcome s;
			s.name = name;
			s.state = parse_state(j.at("state").get<std::string>());
			s.reason = j.value("reason", "");
			s.exit_code = j.value("exit_code", 0);
			s.frames = j.value("frames", 0);
			s.outputs = j.value("outputs", std::vector<std::string>{});
			s.left_out = j.value("left_out", std::vector<std::string>{});
			s.seconds = j.value("seconds", 0.0);
			s.bands_reused = j.value("bands_reused", 0);
			out.push_back(std::move(s));
		}
	} catch (const json::exception &e) {
		throw_error(ExitCode::processing, "{}: not a batch journal ({}); move it away to start the batch afresh", path.string(),
			e.what());
	}
	return out;
}

BatchResult run_batch(const BatchOptions &o, Progress &progress)
{
	check_batch_options(o);
	const std::vector<std::string> names = find_stacks(o.root, o.out_root);
	if (names.empty())
		throw_error(ExitCode::bad_input, "{}: no folder holds images", o.root.string());
	std::error_code ec;
	fs::create_directories(o.out_root, ec);
	if (!fs::is_directory(o.out_root, ec))
		throw_error(ExitCode::processing, "{}: cannot create output folder", o.out_root.string());
	Journal journal(o.out_root);
	BatchResult result;
	result.journal = journal.path();
	for (std::size_t k = 0; k < names.size(); k++) {
		const std::string &name = names[k];
		const RunOptions run = options_for(o, name);
		StackOutcome s;
		s.name = name;
		// Done before, with its outputs still there: skipped.
		if (const StackOutcome *before = journal.find(name); before && before->state == StackState::done) {
			const bool whole = std::all_of(before->outputs.begin(), before->outputs.end(),
				[&](const std::string &f) { return fs::is_regular_file(run.out_dir / f, ec); });
			if (whole && !before->outputs.empty()) {
				s = *before;
				s.skipped = true;
				result.stacks.push_back(s);
				continue;
			}
		}
		if (cancel_requested()) {
			result.interrupted = true;
			break;
		}
		s.state = StackState::in_progress;
		journal.set(s);
		StackProgress stack_progress(progress, fmt::format("[{}/{} {}]", k + 1, names.size(), name));
		const auto start = std::chrono::steady_clock::now();
		try {
			RunOptions resumable = run;
			resumable.resume = Resume::automatic; // a stack cut off before continues where it was
			const RunResult r = run_stack(resumable, stack_progress);
			s.state = StackState::done;
			s.frames = r.frames;
			for (const auto &path : r.outputs)
				s.outputs.push_back(path.filename().string());
			s.outputs.push_back(r.report.filename().string());
			for (const UnreadableFrame &u : r.unreadable)
				s.left_out.push_back(fmt::format("{}: cannot be read: {}", u.file.filename().string(), u.reason));
			for (const auto &f : r.rejected)
				s.left_out.push_back(fmt::format("{}: cannot be aligned", f.filename().string()));
			for (const auto &f : r.dropped)
				s.left_out.push_back(fmt::format("{}: dropped by frame selection", f.filename().string()));
			s.bands_reused = r.bands_reused;
		} catch (const std::exception &e) {
			const ErrorReport report = describe(e);
			if (cancel_requested() || report.code == ExitCode::interrupted) {
				// Cut off: stays in-progress in the journal, so the next batch resumes it.
				s.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
				s.reason = "interrupted";
				result.stacks.push_back(s);
				result.interrupted = true;
				break;
			}
			s.state = StackState::failed;
			s.reason = report.message;
			s.exit_code = static_cast<int>(report.code);
			progress.warn(fmt::format("[{}/{} {}] failed: {}", k + 1, names.size(), name, report.message));
		}
		s.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
		journal.set(s);
		result.stacks.push_back(s);
	}
	return result;
}

std::vector<StackPlan> plan_batch(const BatchOptions &o)
{
	check_batch_options(o);
	std::map<std::string, StackState> before;
	for (const StackOutcome &s : read_journal(o.out_root))
		before[s.name] = s.state;
	std::vector<StackPlan> plans;
	for (const std::string &name : find_stacks(o.root, o.out_root)) {
		StackPlan p;
		p.name = name;
		if (auto at = before.find(name); at != before.end())
			p.state = at->second;
		try {
			p.estimate = estimate_run(options_for(o, name));
		} catch (const std::exception &e) {
			p.error = describe(e).message;
		}
		plans.push_back(std::move(p));
	}
	return plans;
}

} // namespace superstack
