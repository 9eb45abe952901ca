// work -- the resumable state of a run: a locked folder of small JSON records and finished band files.
#include "superstack/work.hpp"

#include "superstack/error.hpp"
#include "superstack/files.hpp"

#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>

namespace superstack {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

std::optional<json> read_json(const fs::path &path)
{
	std::ifstream in(path, std::ios::binary);
	if (!in)
		return std::nullopt;
	try {
		return json::parse(in);
	} catch (const json::exception &) {
		return std::nullopt; // a record that cannot be read is not reused
	}
}

// The top-level keys whose values differ, for a message.
std::string differences(const json &a, const json &b)
{
	std::string out;
	if (!a.is_object() || !b.is_object())
		return "everything";
	json keys = a;
	keys.update(b);
	for (const auto &[key, value] : keys.items()) {
		if (a.contains(key) && b.contains(key) && a[key] == b[key])
			continue;
		out += (out.empty() ? "" : ", ") + key;
	}
	return out;
}

json matrix_json(const Matrix3 &m)
{
	json rows = json::array();
	for (const auto &row : m.rows())
		rows.push_back({row[0], row[1], row[2]});
	return rows;
}

Matrix3 matrix_from(const json &rows)
{
	Matrix3::Rows m{};
	for (int r = 0; r < 3; r++)
		for (int c = 0; c < 3; c++)
			m[r][c] = rows.at(r).at(c).get<double>();
	return Matrix3(m);
}

} // namespace

std::uint64_t fnv1a(std::string_view text)
{
	std::uint64_t h = 1469598103934665603ull;
	for (unsigned char ch : text)
		h = (h ^ ch) * 1099511628211ull;
	return h;
}

fs::path work_folder_for(const fs::path &out_dir, const std::optional<fs::path> &work_dir)
{
	if (!work_dir)
		return out_dir / ".superstack-work";
	std::error_code ec;
	const fs::path absolute = fs::weakly_canonical(fs::absolute(out_dir, ec), ec);
	std::string name = absolute.filename().string();
	if (name.empty())
		name = "out";
	return *work_dir / fmt::format(".superstack-work-{}-{:08x}", name, fnv1a(absolute.string()) & 0xffffffffu);
}

WorkFolder::WorkFolder(fs::path dir, std::string key, Resume resume, Progress &progress)
	: dir_(std::move(dir)), progress_(progress)
{
	std::error_code ec;
	fs::create_directories(dir_, ec);
	if (!fs::is_directory(dir_, ec))
		throw_error(ExitCode::processing, "{}: cannot create work folder", dir_.string());
	lock_fd_ = open((dir_ / "lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (lock_fd_ < 0)
		throw_error(ExitCode::processing, "{}: cannot write in the work folder ({})", dir_.string(), std::strerror(errno));
	if (flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
		close(lock_fd_);
		throw_error(ExitCode::processing, "{}: another superstack run is using this work folder (same output folder?)",
			dir_.string());
	}
	const json current = json::parse(key);
	const std::optional<json> recorded = read_json(dir_ / "run.json");
	const bool same = recorded && recorded->contains("key") && (*recorded)["key"] == current;
	try {
		if (resume == Resume::on && recorded && !same)
			throw_error(ExitCode::usage,
				"--resume: {} was left by a run with other options or inputs (differs: {}); run without --resume to start afresh",
				dir_.string(), differences((*recorded).value("key", json::object()), current));
		if (resume != Resume::off && same) {
			// One record per line; a last line without its newline was torn by a crash and is ignored.
			std::ifstream in(dir_ / "align.jsonl", std::ios::binary);
			for (std::string line; std::getline(in, line) && !in.eof();) {
				try {
					const json a = json::parse(line);
					FrameAlignment f;
					f.matrix = matrix_from(a.at("matrix"));
					f.model = parse_motion_model(a.at("model").get<std::string>());
					f.patches = a.at("patches").get<int>();
					f.inliers = a.at("inliers").get<int>();
					f.residual_rms = a.at("residual_rms").get<double>();
					f.ok = a.at("ok").get<bool>();
					f.reason = a.at("reason").get<std::string>();
					if (a.contains("displacement"))
						f.displacement = displacement_from_json(a.at("displacement").dump(), "align.jsonl");
					if (a.contains("local_patches")) {
						f.local_patches = a.at("local_patches").get<int>();
						f.local_residual_rms = a.at("local_residual_rms").get<double>();
						f.matrix_residual_rms = a.at("matrix_residual_rms").get<double>();
					}
					alignments_[a.at("reference").get<std::string>() + "\n" + a.at("file").get<std::string>()] = f;
				} catch (const std::exception &) {
					continue; // a record that cannot be read is aligned again
				}
			}
			fs::remove_all(spool_dir(), ec);
			progress.note(fmt::format("resuming from {}: {} alignments saved", dir_.string(), alignments_.size()));
		} else {
			if (resume == Resume::on)
				progress.warn(fmt::format("--resume: nothing to resume in {}; starting afresh", dir_.string()));
			discard_state();
			write_file_atomically(dir_ / "run.json", json{{"version", 1}, {"key", current}}.dump(1) + "\n");
		}
	} catch (...) {
		close(lock_fd_);
		lock_fd_ = -1;
		throw;
	}
}

void WorkFolder::discard_state()
{
	std::error_code ec;
	for (const auto &entry : fs::directory_iterator(dir_, ec))
		if (entry.path().filename() != "lock")
			fs::remove_all(entry.path(), ec);
	alignments_.clear();
}

WorkFolder::~WorkFolder()
{
	std::error_code ec;
	if (!finished_ && lock_fd_ >= 0) {
		// Keep what a resumed run can use; the rest (the spool, temporaries) goes.
		const bool resumable = bands_done() > 0 || !alignments_.empty();
		if (!resumable) {
			fs::remove_all(dir_, ec);
		} else {
			fs::remove_all(spool_dir(), ec);
			for (const auto &entry : fs::directory_iterator(dir_, ec))
				if (entry.path().extension() == ".part")
					fs::remove(entry.path(), ec);
			progress_.warn(kept_summary() + ": rerun with --resume to continue");
		}
	}
	if (lock_fd_ >= 0)
		close(lock_fd_);
}

std::vector<std::optional<FrameAlignment>> WorkFolder::saved_alignments(const std::vector<fs::path> &files,
	const fs::path &reference) const
{
	std::vector<std::optional<FrameAlignment>> out;
	for (const auto &f : files) {
		auto at = alignments_.find(reference.string() + "\n" + f.string());
		out.push_back(at == alignments_.end() ? std::nullopt : std::optional<FrameAlignment>(at->second));
	}
	return out;
}

void WorkFolder::save_alignment(const fs::path &file, const fs::path &reference, const FrameAlignment &a)
{
	alignments_[reference.string() + "\n" + file.string()] = a;
	// Appended, not rewritten: saving stays O(1) per frame for stacks of thousands.
	json record = {{"reference", reference.string()}, {"file", file.string()}, {"matrix", matrix_json(a.matrix)},
		{"model", std::string(motion_model_name(a.model))}, {"patches", a.patches}, {"inliers", a.inliers},
		{"residual_rms", a.residual_rms}, {"ok", a.ok}, {"reason", a.reason}};
	if (a.displacement)
		record["displacement"] = json::parse(displacement_to_json(*a.displacement));
	if (a.local_patches > 0) {
		record["local_patches"] = a.local_patches;
		record["local_residual_rms"] = a.local_residual_rms;
		record["matrix_residual_rms"] = a.matrix_residual_rms;
	}
	append_line_durably(dir_ / "align.jsonl", record.dump());
}

std::vector<Band> WorkFolder::bands(const std::string &layout, const OutputGeometry &geometry, int rows)
{
	const json wanted = json::parse(layout);
	const std::optional<json> recorded = read_json(dir_ / "bands.json");
	if (recorded && recorded->contains("layout") && (*recorded)["layout"] == wanted && recorded->contains("rows") &&
		(*recorded)["rows"].is_number_integer() && (*recorded)["rows"].get<int>() > 0) {
		rows = (*recorded)["rows"].get<int>();
	} else {
		std::error_code ec;
		for (const auto &entry : fs::directory_iterator(dir_, ec))
			if (entry.path().filename().string().starts_with("band-"))
				fs::remove(entry.path(), ec);
		write_file_atomically(dir_ / "bands.json", json{{"layout", wanted}, {"rows", rows}}.dump(1) + "\n");
	}
	const std::vector<Band> out = split_into_bands(geometry, rows);
	band_count_ = static_cast<int>(out.size());
	return out;
}

fs::path WorkFolder::band_file(const Band &band) const
{
	return dir_ / fmt::format("band-{:05d}.raw", band.index);
}

bool WorkFolder::band_done(const Band &band) const
{
	std::error_code ec;
	return fs::is_regular_file(band_file(band), ec);
}

int WorkFolder::bands_done() const
{
	int done = 0;
	std::error_code ec;
	for (const auto &entry : fs::directory_iterator(dir_, ec)) {
		const std::string name = entry.path().filename().string();
		done += name.starts_with("band-") && name.ends_with(".raw");
	}
	return done;
}

std::uint64_t WorkFolder::kept_bytes() const
{
	std::uint64_t bytes = 0;
	std::error_code ec;
	for (const auto &entry : fs::directory_iterator(dir_, ec)) {
		const std::string name = entry.path().filename().string();
		if (name.starts_with("band-") && name.ends_with(".raw"))
			bytes += entry.file_size(ec);
	}
	return bytes;
}

void WorkFolder::finish()
{
	std::error_code ec;
	fs::remove_all(dir_, ec);
	finished_ = true;
}

std::string WorkFolder::kept_summary() const
{
	const int done = bands_done();
	if (done == 0 && alignments_.empty())
		return {};
	const std::string of = band_count_ > 0 ? fmt::format(" of {}", band_count_) : std::string();
	return fmt::format("{}{} bands and {} frame alignments kept in {}", done, of, alignments_.size(), dir_.string());
}

} // namespace superstack
