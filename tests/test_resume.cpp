// Overnight runs that survive: the reduction in bands (assembled byte-identically), --resume after
// kill -9 and after Ctrl-C, the same bytes whatever --threads or --memory, a full disk, a folder that
// cannot be written, and --on-error for a frame that fails to decode mid-run.
#include "process.hpp"
#include "temp_dir.hpp"

#include "superstack/bands.hpp"
#include "superstack/error.hpp"
#include "superstack/work.hpp"
#include "superstack/synth.hpp"
#include "superstack/transform.hpp"

#include <doctest/doctest.h>
#include <fmt/core.h>
#include <nlohmann/json.hpp>
#include <vips/vips8>

#include <sys/mount.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <iterator>
#include <regex>

using namespace superstack;
using namespace superstack::test;
namespace fs = std::filesystem;

namespace {

std::string slurp(const fs::path &path)
{
	std::ifstream in(path, std::ios::binary);
	return std::string((std::istreambuf_iterator<char>(in)), {});
}

// Every file under `dir` (recursively, hidden ones too), relative, sorted.
std::vector<std::string> files_in(const fs::path &dir)
{
	std::vector<std::string> names;
	std::error_code ec;
	for (auto &e : fs::recursive_directory_iterator(dir, ec))
		if (e.is_regular_file())
			names.push_back(fs::relative(e.path(), dir).string());
	std::sort(names.begin(), names.end());
	return names;
}

int count_bands(const fs::path &work)
{
	int n = 0;
	std::error_code ec;
	for (auto &e : fs::directory_iterator(work, ec))
		n += e.path().filename().string().starts_with("band-") && e.path().extension() == ".raw";
	return n;
}

bool any_part_file(const fs::path &dir)
{
	const auto names = files_in(dir);
	return std::any_of(names.begin(), names.end(), [](const std::string &n) { return n.ends_with(".part"); });
}

// A synthetic burst of `frames` frames (superstack synth), the frames alone in `dir`.
void make_burst(const fs::path &dir, int frames, int width, int height)
{
	SynthOptions o;
	o.out_dir = dir;
	o.frames = frames;
	o.width = width;
	o.height = height;
	NoProgress quiet;
	synthesize(o, quiet);
	fs::remove(dir / "truth.tif");
	fs::remove(dir / "transforms.json");
}

const std::vector<std::string> kResults{"mean.tif", "median.tif", "transforms.json"};

// Every result of `b` is byte-identical to `a`'s.
void check_same_results(const fs::path &a, const fs::path &b)
{
	for (const auto &f : kResults) {
		CAPTURE(f);
		REQUIRE(fs::exists(b / f));
		CHECK(same_bytes(a / f, b / f));
	}
}

int resumed_bands(const std::string &out)
{
	std::smatch m;
	return std::regex_search(out, m, std::regex("resumed: ([0-9]+) of ([0-9]+) bands reused")) ? std::stoi(m[1]) : 0;
}

// A small tmpfs at `dir` for the disk tests: needs root and CAP_SYS_ADMIN (else false: skipped).
class Tmpfs {
public:
	Tmpfs(const fs::path &dir, const std::string &options) : dir_(dir)
	{
		fs::create_directories(dir);
		mounted_ = mount("tmpfs", dir.c_str(), "tmpfs", 0, options.c_str()) == 0;
	}
	~Tmpfs()
	{
		if (mounted_)
			umount2(dir_.c_str(), MNT_DETACH);
	}
	bool mounted() const { return mounted_; }
	void remount_read_only() { mounted_ = mount("tmpfs", dir_.c_str(), "tmpfs", MS_REMOUNT | MS_RDONLY, nullptr) == 0 && mounted_; }

private:
	fs::path dir_;
	bool mounted_ = false;
};

} // namespace

TEST_CASE("bands: a band of any height is the same rows of the whole image, and the bands assemble to it byte for byte")
{
	TempDir dir("bands");
	// A lazy float image of 3 bands, 101 x 77: rows of random values.
	const vips::VImage xyz = vips::VImage::xyz(101, 77).cast(VIPS_FORMAT_FLOAT);
	const vips::VImage image = vips::VImage::bandjoin(
		{vips::VImage::gaussnoise(101, 77, vips::VImage::option()->set("seed", 7)), xyz.extract_band(0), xyz.extract_band(1)});
	REQUIRE(image.bands() == 3);
	REQUIRE(image.format() == VIPS_FORMAT_FLOAT);
	std::size_t size = 0;
	void *whole_data = image.write_to_memory(&size);
	const std::string whole(static_cast<const char *>(whole_data), size);
	g_free(whole_data);
	OutputGeometry g;
	g.width = 101;
	g.height = 77;
	for (int rows : {1, 7, 64, 76, 77, 200}) {
		CAPTURE(rows);
		const std::vector<Band> bands = split_into_bands(g, rows);
		// The bands cover every row once, in order.
		int next = 0;
		for (const Band &b : bands) {
			CHECK(b.top == next);
			CHECK(b.height >= 1);
			CHECK(b.height <= rows);
			next = b.bottom();
		}
		CHECK(next == 77);
		CHECK(bands.size() == static_cast<std::size_t>((77 + rows - 1) / rows));
		std::vector<fs::path> files;
		NoProgress quiet;
		for (const Band &b : bands) {
			files.push_back(dir / fmt::format("r{}-{}.raw", rows, b.index));
			reduce_band(image, b, files.back(), quiet, "band");
			CHECK(fs::file_size(files.back()) == static_cast<std::uintmax_t>(101) * b.height * 3 * 4);
		}
		const vips::VImage assembled = assemble_bands(files, bands, 101, 3, VIPS_FORMAT_FLOAT);
		CHECK(assembled.width() == 101);
		CHECK(assembled.height() == 77);
		void *data = assembled.write_to_memory(&size);
		CHECK(std::string(static_cast<const char *>(data), size) == whole);
		g_free(data);
	}
	CHECK(default_band_rows(960) == 64);
	CHECK(default_band_rows(40000) == 625); // at most 64 bands
	// No temporaries are left beside the band files.
	CHECK_FALSE(any_part_file(dir.path()));
}

TEST_CASE("bands: writing the outputs from many band files stays within --memory (the rows asked for, not a buffer per band file)")
{
	if (!have_binary()) {
		MESSAGE("skipped: SUPERSTACK_BIN is not set");
		return;
	}
	TempDir dir("band-memory");
	make_burst(dir / "burst", 3, 1500, 1000);
	// 3000 x 2000 out, 13 bands (4 statistics x 3 and the count) in float: 312 MB of band files in 250
	// bands of 8 rows. The band files were one libvips image each, joined: libvips kept regions and
	// buffers per file and thread: the run peaked at 471 MiB (83 MiB now).
	constexpr long kBudgetMiB = 128;
	constexpr long kBoundMiB = kBudgetMiB + 100; // README: a fixed 60 to 150 MB on top of the budget
	const ProcessResult r = run_superstack({"run", (dir / "burst").string(), "-o", (dir / "out").string(), "--align", "none",
						       "--reduce", "mean,median,sigma-clip,winsorized", "--depth", "float", "--band-rows", "8",
						       "--memory", fmt::format("{}M", kBudgetMiB), "--threads", "2", "-q"},
		300);
	CAPTURE(r.err);
	REQUIRE_FALSE(r.timed_out);
	REQUIRE(r.exit_code == 0);
	CHECK(vips::VImage::new_from_file((dir / "out" / "winsorized.tif").c_str()).height() == 2000);
	MESSAGE(fmt::format("250 bands: peak RSS {} MiB (bound {} MiB)", r.peak_rss_kib / 1024, kBoundMiB));
	CHECK(r.peak_rss_kib > 0);
	CHECK(r.peak_rss_kib / 1024 < kBoundMiB);
}

TEST_CASE("repeatability: threads 1 and 4, two --memory values, killed (-9) then resumed, Ctrl-C then resumed: the same bytes")
{
	if (!have_binary())
		return;
	TempDir dir("repeat");
	make_burst(dir / "burst", 6, 320, 240);
	const std::vector<std::string> common{"run", (dir / "burst").string(), "--band-rows", "16"};
	auto run = [&](const std::string &out, std::vector<std::string> extra) {
		std::vector<std::string> args = common;
		args.insert(args.end(), {"-o", (dir / out).string()});
		args.insert(args.end(), extra.begin(), extra.end());
		return args;
	};
	const ProcessResult reference = run_superstack(run("t1", {"--threads", "1", "-v"}), 120);
	CAPTURE(reference.err);
	REQUIRE(reference.exit_code == 0);
	CHECK(files_in(dir / "t1") == kResults); // the work folder is gone
	const ProcessResult t4 = run_superstack(run("t4", {"--threads", "4", "-v"}), 120);
	REQUIRE(t4.exit_code == 0);
	check_same_results(dir / "t1", dir / "t4");
	// A memory limit that changes the reducer's tile.
	const ProcessResult small = run_superstack(run("m24", {"--threads", "2", "--memory", "24M", "-v"}), 120);
	REQUIRE(small.exit_code == 0);
	check_same_results(dir / "t1", dir / "m24");
	const std::regex tile("tile ([0-9]+)x");
	std::smatch a, b;
	REQUIRE(std::regex_search(reference.err, a, tile));
	REQUIRE(std::regex_search(small.err, b, tile));
	CHECK(std::stoi(a[1]) > std::stoi(b[1]));

	// kill -9 once 3 of the 30 bands are finished; then --resume with other threads and memory.
	const fs::path killed = dir / "killed";
	const fs::path work = killed / ".superstack-work";
	const ProcessResult k = run_superstack_until(run("killed", {"--threads", "1"}), [&] { return count_bands(work) >= 3; }, SIGKILL);
	CHECK(k.exit_code == 128 + SIGKILL);
	const int kept = count_bands(work);
	CHECK(kept >= 3);
	CHECK(kept < 30);
	for (const auto &f : kResults)
		CHECK_FALSE(fs::exists(killed / f)); // nothing under a final name
	const ProcessResult resumed = run_superstack(run("killed", {"--threads", "2", "--memory", "24M", "--resume"}), 120);
	CAPTURE(resumed.err);
	REQUIRE(resumed.exit_code == 0);
	CHECK(resumed_bands(resumed.out) >= kept);
	check_same_results(dir / "t1", killed);
	CHECK(files_in(killed) == kResults);

	// kill -9 during alignment, once a frame's alignment is saved (a whole line: the file exists
	// from its open, before the line is written): the resumed run reuses it.
	const fs::path cut = dir / "cut-align";
	const ProcessResult c = run_superstack_until(run("cut-align", {"--threads", "1"}),
		[&] {
			std::ifstream in(cut / ".superstack-work" / "align.jsonl", std::ios::binary);
			std::string line;
			return std::getline(in, line) && !in.eof();
		},
		SIGKILL);
	CHECK(c.exit_code == 128 + SIGKILL);
	const ProcessResult after = run_superstack(run("cut-align", {"--resume", "-v"}), 120);
	CAPTURE(after.err);
	REQUIRE(after.exit_code == 0);
	std::smatch saved;
	REQUIRE(std::regex_search(after.err, saved, std::regex("([0-9]+) alignments saved")));
	CHECK(std::stoi(saved[1]) >= 1);
	check_same_results(dir / "t1", cut);

	// Ctrl-C (SIGINT) mid-reduction: exit 130 within seconds, no output under a final name, no
	// temporaries, the finished bands kept and said so; --resume finishes it, the same bytes.
	const fs::path interrupted = dir / "interrupted";
	const ProcessResult i = run_superstack_until(run("interrupted", {"--threads", "1"}),
		[&] { return count_bands(interrupted / ".superstack-work") >= 2; }, SIGINT);
	CAPTURE(i.err);
	CHECK(i.exit_code == 130);
	MESSAGE("stopped " << i.stop_seconds << " s after SIGINT");
	CHECK(i.stop_seconds < 3.0);
	CHECK(i.err.find("rerun with --resume") != std::string::npos);
	CHECK(i.err.find("superstack: error: interrupted") != std::string::npos);
	for (const auto &f : kResults)
		CHECK_FALSE(fs::exists(interrupted / f));
	CHECK_FALSE(any_part_file(interrupted));
	CHECK_FALSE(fs::exists(interrupted / ".superstack-work" / "spool"));
	CHECK(count_bands(interrupted / ".superstack-work") >= 2);
	const ProcessResult finished = run_superstack(run("interrupted", {"--resume"}), 120);
	REQUIRE(finished.exit_code == 0);
	CHECK(resumed_bands(finished.out) >= 2);
	check_same_results(dir / "t1", interrupted);

	// SIGTERM too; and a run without --resume starts afresh (the kept bands are discarded).
	const fs::path termed = dir / "termed";
	const ProcessResult t = run_superstack_until(run("termed", {"--threads", "1"}),
		[&] { return count_bands(termed / ".superstack-work") >= 1; }, SIGTERM);
	CHECK(t.exit_code == 130);
	CHECK(t.stop_seconds < 3.0);
	const ProcessResult fresh = run_superstack(run("termed", {}), 120);
	REQUIRE(fresh.exit_code == 0);
	CHECK(resumed_bands(fresh.out) == 0);
	check_same_results(dir / "t1", termed);
}

TEST_CASE("resume: --resume refuses the work of a run with other options or an older engine, and a second run on the same folder is refused")
{
	if (!have_binary())
		return;
	TempDir dir("resume-key");
	make_burst(dir / "burst", 4, 160, 120);
	const std::string out = (dir / "out").string();
	const ProcessResult k = run_superstack_until({"run", (dir / "burst").string(), "-o", out, "--align", "none", "--threads", "1", "--band-rows", "8"},
		[&] { return count_bands(dir / "out" / ".superstack-work") >= 1; }, SIGKILL);
	REQUIRE(k.exit_code == 128 + SIGKILL);
	const ProcessResult other = run_superstack({"run", (dir / "burst").string(), "-o", out, "--align", "none", "--scale", "1.5", "--resume"}, 60);
	CHECK(other.exit_code == 1);
	CHECK(other.err.find("differs: scale") != std::string::npos);
	CHECK(count_bands(dir / "out" / ".superstack-work") >= 1); // untouched
	// Work left by an older superstack, whose key has no "engine" (session 14 and before), is not
	// resumed into a mix of two definitions of the results, with the same options.
	const fs::path record = dir / "out" / ".superstack-work" / "run.json";
	nlohmann::json recorded = nlohmann::json::parse(std::ifstream(record));
	REQUIRE(recorded["key"].contains("engine"));
	recorded["key"].erase("engine");
	std::ofstream(record) << recorded.dump(1) << "\n";
	const ProcessResult older = run_superstack({"run", (dir / "burst").string(), "-o", out, "--align", "none", "--resume"}, 60);
	CHECK(older.exit_code == 1);
	CHECK(older.err.find("differs: engine") != std::string::npos);
	// --resume with nothing to resume starts afresh.
	const ProcessResult nothing = run_superstack({"run", (dir / "burst").string(), "-o", (dir / "new").string(), "--align", "none", "--resume"}, 60);
	CHECK(nothing.exit_code == 0);
	CHECK(files_in(dir / "new") == kResults);
}

TEST_CASE("faults: no room before the work, a disk filling up mid-run, an output folder that cannot be written")
{
	if (!have_binary())
		return;
	TempDir dir("faults");
	make_burst(dir / "burst", 6, 320, 240);
	const std::vector<std::string> args{"run", (dir / "burst").string(), "--align", "none", "--threads", "1", "--band-rows", "16"};
	auto with_out = [&](const fs::path &out, std::vector<std::string> extra = {}) {
		std::vector<std::string> a = args;
		a.insert(a.end(), {"-o", out.string()});
		a.insert(a.end(), extra.begin(), extra.end());
		return a;
	};
	const ProcessResult reference = run_superstack(with_out(dir / "reference"), 120);
	REQUIRE(reference.exit_code == 0);

	// An output folder that cannot be created (a file is in the way): exit 3 before any work.
	std::ofstream(dir / "file") << "x";
	const ProcessResult blocked = run_superstack(with_out(dir / "file" / "out"), 60);
	CHECK(blocked.exit_code == 3);
	CHECK(blocked.err.find("cannot create output folder") != std::string::npos);

	Tmpfs small(dir / "small", "size=1m");
	if (!small.mounted()) {
		MESSAGE("skipping the disk tests: cannot mount a tmpfs here (" << std::strerror(errno) << ")");
		return;
	}
	// Not enough room for the estimated work files and outputs: exit 3 before any work, nothing left.
	const ProcessResult room = run_superstack(with_out(dir / "small" / "out"), 60);
	CAPTURE(room.err);
	CHECK(room.exit_code == 3);
	CHECK(room.err.find("not enough free disk space") != std::string::npos);
	CHECK(files_in(dir / "small").empty());

	// A read-only file system: exit 3, "not writable".
	fs::create_directories(dir / "small" / "ro");
	small.remount_read_only();
	const ProcessResult ro = run_superstack(with_out(dir / "small" / "ro"), 60);
	CAPTURE(ro.err);
	CHECK(ro.exit_code == 3);
	CHECK(ro.err.find("not writable") != std::string::npos);

	// The disk fills up mid-run (another file takes every free byte once the first band is written):
	// exit 3 naming the full disk, no output under a final name, no temporary, finished bands kept.
	Tmpfs fs16(dir / "disk", "size=16m");
	REQUIRE(fs16.mounted());
	const fs::path out = dir / "disk" / "out";
	const fs::path filler = dir / "disk" / "filler";
	const ProcessResult full = run_superstack_until(with_out(out),
		[&] {
			if (count_bands(out / ".superstack-work") < 1)
				return false;
			std::ofstream f(filler, std::ios::binary);
			const std::string block(1 << 16, '\0');
			while (f.write(block.data(), block.size()))
				;
			return true;
		},
		0); // signal 0: nothing is sent
	CAPTURE(full.err);
	CHECK(full.exit_code == 3);
	CHECK(full.err.find("the disk is full") != std::string::npos);
	for (const auto &f : kResults)
		CHECK_FALSE(fs::exists(out / f));
	CHECK_FALSE(any_part_file(out));
	const int kept = count_bands(out / ".superstack-work");
	CHECK(kept >= 1);
	// Room made again: --resume finishes it, byte-identical to the run that never failed.
	fs::remove(filler);
	const ProcessResult resumed = run_superstack(with_out(out, {"--resume"}), 120);
	CAPTURE(resumed.err);
	REQUIRE(resumed.exit_code == 0);
	CHECK(resumed_bands(resumed.out) == kept);
	check_same_results(dir / "reference", out);
}

TEST_CASE("--on-error: a frame that fails to decode mid-run fails the run by default, or is left out and named")
{
	if (!have_binary())
		return;
	TempDir dir("on-error");
	make_burst(dir / "burst", 4, 160, 120);
	// A 640x480 JPEG cut at 60%: its header reads, its pixels do not (found while decoding, mid-run).
	vips::VImage::gaussnoise(640, 480, vips::VImage::option()->set("mean", 128.0)->set("sigma", 30.0))
		.cast(VIPS_FORMAT_UCHAR)
		.jpegsave((dir / "whole.jpg").c_str());
	const std::string bytes = slurp(dir / "whole.jpg");
	std::ofstream(dir / "burst" / "frame_002b.jpg", std::ios::binary) << bytes.substr(0, bytes.size() * 6 / 10);
	std::ofstream(dir / "burst" / "frame_003b.tif"); // zero bytes: cannot even be loaded
	const std::string burst = (dir / "burst").string();

	const ProcessResult fail = run_superstack({"run", burst, "-o", (dir / "fail").string(), "--align", "none", "-q"}, 60);
	CAPTURE(fail.err);
	CHECK(fail.exit_code == 2);
	CHECK(fail.err.find("frame_003b.tif") != std::string::npos); // the first bad one, found when probing
	CHECK(files_in(dir / "fail").empty());
	const ProcessResult fail_decode = run_superstack({"run", burst + "/frame_000.tif", burst + "/frame_002b.jpg", "-o",
		(dir / "fail2").string(), "--align", "none", "-q"}, 60);
	CHECK(fail_decode.exit_code == 2);
	CHECK(fail_decode.err.find("frame_002b.jpg") != std::string::npos);
	CHECK(fail_decode.err.find("frame 1: ") != std::string::npos); // found while decoding: the header was fine
	CHECK(files_in(dir / "fail2").empty());

	const ProcessResult skip = run_superstack({"run", burst, "-o", (dir / "skip").string(), "--on-error", "skip"}, 60);
	CAPTURE(skip.err);
	REQUIRE(skip.exit_code == 0);
	CHECK(skip.err.find("frame_002b.jpg") != std::string::npos);
	CHECK(skip.err.find("frame_003b.tif") != std::string::npos);
	CHECK(skip.out.find("4 frames stacked, 2 left out") != std::string::npos);
	const TransformSet report = read_transforms(dir / "skip" / "transforms.json");
	REQUIRE(report.frames.size() == 6);
	int unreadable = 0;
	for (const auto &f : report.frames) {
		const bool bad = f.file.ends_with("b.jpg") || f.file.ends_with("b.tif");
		CHECK(f.report.has_value());
		if (bad) {
			unreadable++;
			CHECK_FALSE(f.report->ok);
			CHECK(f.report->reason.starts_with("cannot be read"));
		} else {
			CHECK(f.report->ok);
		}
	}
	CHECK(unreadable == 2);
	// The same four good frames alone give the same pixels.
	const ProcessResult good = run_superstack({"run", burst + "/frame_000.tif", burst + "/frame_001.tif", burst + "/frame_002.tif",
		burst + "/frame_003.tif", "-o", (dir / "good").string(), "-q"}, 60);
	REQUIRE(good.exit_code == 0);
	CHECK(same_bytes(dir / "good" / "median.tif", dir / "skip" / "median.tif"));
	CHECK(same_bytes(dir / "good" / "mean.tif", dir / "skip" / "mean.tif"));
}

TEST_CASE("work folder: alignments survive as appended lines, a torn last line is ignored, another run's key discards them")
{
	TempDir dir("work-folder");
	const fs::path work = dir / "w";
	const std::string key = R"({"scale": 2})";
	FrameAlignment a;
	a.matrix = Matrix3::similarity(1.25, 1.001, {3.5, 2.25}, 0.1 / 3, -7.0 / 9); // digits that must survive
	a.model = MotionModel::similarity;
	a.patches = 90;
	a.inliers = 71;
	a.residual_rms = 0.0123456789;
	a.displacement = DisplacementField{1.5, -2, 16, 2, 2, {0.25, -0.5, 0.125, 1}, {0, 0.0625, -0.75, 0.5}};
	a.local_patches = 40;
	a.local_residual_rms = 0.21;
	a.matrix_residual_rms = 0.55;
	FrameAlignment rejected;
	rejected.ok = false;
	rejected.reason = "only 3 of 80 patches match";
	NoProgress quiet;
	{
		WorkFolder w(work, key, Resume::off, quiet);
		w.save_alignment("f1.tif", "f0.tif", a);
		w.save_alignment("f2.tif", "f0.tif", rejected);
	} // not finished: kept, as after a crash
	std::ofstream(work / "align.jsonl", std::ios::app) << R"({"reference": "f0.tif", "file": "f3.tif", "matr)"; // torn
	{
		WorkFolder w(work, key, Resume::on, quiet);
		const auto saved = w.saved_alignments({"f1.tif", "f2.tif", "f3.tif"}, "f0.tif");
		REQUIRE(saved[0].has_value());
		for (int r = 0; r < 3; r++)
			for (int c = 0; c < 3; c++)
				CHECK(saved[0]->matrix(r, c) == a.matrix(r, c)); // exactly
		CHECK(saved[0]->model == MotionModel::similarity);
		CHECK(saved[0]->inliers == 71);
		CHECK(saved[0]->residual_rms == a.residual_rms);
		REQUIRE(saved[0]->displacement.has_value()); // the field too (its values are to 1e-4 px: these are exact)
		CHECK(*saved[0]->displacement == *a.displacement);
		CHECK(saved[0]->local_patches == 40);
		CHECK(saved[0]->local_residual_rms == 0.21);
		CHECK(saved[0]->matrix_residual_rms == 0.55);
		REQUIRE(saved[1].has_value());
		CHECK_FALSE(saved[1]->displacement.has_value());
		CHECK_FALSE(saved[1]->ok);
		CHECK(saved[1]->reason == rejected.reason);
		CHECK_FALSE(saved[2].has_value());
		// Against another reference, nothing is known.
		CHECK_FALSE(w.saved_alignments({"f1.tif"}, "f2.tif")[0].has_value());
	}
	{
		WorkFolder w(work, R"({"scale": 3})", Resume::automatic, quiet); // another run: discarded
		CHECK_FALSE(w.saved_alignments({"f1.tif"}, "f0.tif")[0].has_value());
		CHECK_THROWS_AS(WorkFolder(work, key, Resume::on, quiet), Error); // locked by `w`
	}
	CHECK_FALSE(fs::exists(work)); // nothing resumable: removed
}
