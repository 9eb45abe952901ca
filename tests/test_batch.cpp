// batch: stacks found by folder, a journal that makes the job restartable, a failing stack that does
// not stop the others, the summary and exit code, --dry-run, and a stack cut off then resumed.
#include "process.hpp"
#include "temp_dir.hpp"

#include "superstack/batch.hpp"
#include "superstack/synth.hpp"

#include <doctest/doctest.h>
#include <fmt/core.h>
#include <nlohmann/json.hpp>
#include <vips/vips8>

#include <fstream>
#include <iterator>

using namespace superstack;
using namespace superstack::test;
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

void write_frame(const fs::path &path, int seed, int w = 64, int h = 48)
{
	fs::create_directories(path.parent_path());
	vips::VImage noise = vips::VImage::gaussnoise(w, h, vips::VImage::option()->set("seed", seed)->set("mean", 128.0)->set("sigma", 30.0));
	vips::VImage::bandjoin({noise, noise, noise})
		.cast(VIPS_FORMAT_UCHAR)
		.copy(vips::VImage::option()->set("interpretation", VIPS_INTERPRETATION_sRGB))
		.write_to_file(path.c_str());
}

json journal_of(const fs::path &out_root)
{
	std::ifstream in(out_root / "batch.json");
	return json::parse(in);
}

} // namespace

TEST_CASE("batch: every image folder is a stack; a failing one does not stop the rest; the journal, the summary and the exit code say so")
{
	if (!have_binary())
		return;
	TempDir dir("batch");
	const fs::path root = dir / "shoots";
	for (int i = 0; i < 3; i++) {
		write_frame(root / "a" / fmt::format("f{}.tif", i), i + 1);
		write_frame(root / "d" / "e" / fmt::format("f{}.tif", i), i + 11);
		write_frame(root / "b" / fmt::format("f{}.jpg", i), i + 21);
		write_frame(root / ".hidden" / fmt::format("f{}.tif", i), i + 31);
	}
	// b: one frame cut in half, found while decoding: left out (--on-error skip is batch's default).
	{
		std::ifstream in(root / "b" / "f2.jpg", std::ios::binary);
		const std::string bytes((std::istreambuf_iterator<char>(in)), {});
		std::ofstream(root / "b" / "f9.jpg", std::ios::binary) << bytes.substr(0, bytes.size() / 2);
	}
	// c: nothing readable: the stack fails (exit 2 for it), the others go on.
	fs::create_directories(root / "c");
	std::ofstream(root / "c" / "f0.tif") << "not an image";
	std::ofstream(root / "c" / "f1.tif");
	fs::create_directories(root / "empty");
	std::ofstream(root / "empty" / "notes.txt") << "no images here";
	fs::create_directory_symlink(root / "a", root / "link-to-a"); // not followed: a is not stacked twice
	fs::create_directory_symlink(root, root / "d" / "loop");      // and no loop
	const fs::path out = root / "stacked"; // inside ROOT: never taken for a stack

	const std::vector<std::string> args{"batch", root.string(), "-o", out.string(), "--align", "none", "--scale", "1"};
	const ProcessResult plan = run_superstack({"batch", root.string(), "-o", out.string(), "--scale", "1", "--dry-run"}, 60);
	CAPTURE(plan.out);
	CHECK(plan.exit_code == 0);
	for (const char *name : {"a ", "b ", "c ", "d/e "})
		CHECK(plan.out.find(std::string("\n") + name) != std::string::npos);
	CHECK(plan.out.find("64x48") != std::string::npos);
	CHECK(plan.out.find(".hidden") == std::string::npos);
	CHECK(plan.out.find("link-to-a") == std::string::npos);
	CHECK(plan.out.find("empty") == std::string::npos);
	CHECK(plan.out.find("cannot run") != std::string::npos); // c
	CHECK_FALSE(fs::exists(out / "batch.json"));              // a dry run writes nothing

	const ProcessResult first = run_superstack(args, 120);
	CAPTURE(first.out);
	CAPTURE(first.err);
	CHECK(first.exit_code == 4);
	CHECK(first.out.find("4 stacks: 3 done, 1 failed") != std::string::npos);
	json j = journal_of(out);
	CHECK(j["stacks"].size() == 4);
	CHECK(j["stacks"]["a"]["state"] == "done");
	CHECK(j["stacks"]["a"]["frames"] == 3);
	CHECK(j["stacks"]["d/e"]["state"] == "done");
	CHECK(j["stacks"]["b"]["state"] == "done");
	CHECK(j["stacks"]["b"]["frames"] == 3);
	REQUIRE(j["stacks"]["b"]["left_out"].size() == 1);
	CHECK(j["stacks"]["b"]["left_out"][0].get<std::string>().find("f9.jpg") != std::string::npos);
	CHECK(j["stacks"]["c"]["state"] == "failed");
	CHECK(j["stacks"]["c"]["exit_code"] == 2);
	CHECK(j["stacks"]["c"]["reason"].get<std::string>().find("c/f") != std::string::npos);
	for (const char *stack : {"a", "b", "d/e"})
		for (const char *file : {"mean.tif", "median.tif", "transforms.json"})
			CHECK(fs::is_regular_file(out / stack / file));
	CHECK_FALSE(fs::exists(out / "c" / "mean.tif"));
	// The batch's outputs equal `run` on the same folder.
	const ProcessResult single = run_superstack({"run", (root / "a").string(), "-o", (dir / "a-run").string(), "--align", "none",
		"--scale", "1", "-q"}, 60);
	REQUIRE(single.exit_code == 0);
	CHECK(same_bytes(dir / "a-run" / "median.tif", out / "a" / "median.tif"));

	// Again, with c repaired: a, b and d/e are skipped (untouched), c is retried and done: exit 0.
	const auto before = fs::last_write_time(out / "a" / "median.tif");
	fs::remove(root / "c" / "f0.tif");
	fs::remove(root / "c" / "f1.tif");
	for (int i = 0; i < 3; i++)
		write_frame(root / "c" / fmt::format("f{}.tif", i), i + 41);
	const ProcessResult second = run_superstack(args, 120);
	CAPTURE(second.out);
	CHECK(second.exit_code == 0);
	CHECK(second.out.find("4 stacks: 4 done, 0 failed") != std::string::npos);
	CHECK(second.out.find("done by an earlier batch") != std::string::npos);
	CHECK(fs::last_write_time(out / "a" / "median.tif") == before);
	j = journal_of(out);
	CHECK(j["stacks"]["c"]["state"] == "done");
	CHECK(fs::is_regular_file(out / "c" / "median.tif"));

	// With --on-error fail, b's cut frame fails b (a new output root).
	std::vector<std::string> strict = {"batch", root.string(), "-o", (dir / "strict").string(), "--align", "none", "--scale", "1",
		"--on-error", "fail", "-q"};
	const ProcessResult s = run_superstack(strict, 120);
	CHECK(s.exit_code == 4);
	CHECK(journal_of(dir / "strict")["stacks"]["b"]["state"] == "failed");
	CHECK(journal_of(dir / "strict")["stacks"]["b"]["reason"].get<std::string>().find("f9.jpg") != std::string::npos);

	// Options that name one stack's files are usage errors.
	CHECK(run_superstack({"batch", root.string(), "-o", out.string(), "--transforms", "t.json"}, 30).exit_code == 1);
}

TEST_CASE("batch: a stack cut off (kill -9) stays in-progress in the journal; the same command resumes it, the same bytes")
{
	if (!have_binary())
		return;
	TempDir dir("batch-cut");
	SynthOptions o;
	o.out_dir = dir / "root" / "big";
	o.frames = 6;
	o.width = 320;
	o.height = 240;
	NoProgress quiet;
	synthesize(o, quiet);
	fs::remove(o.out_dir / "truth.tif");
	const fs::path out = dir / "out";
	const std::vector<std::string> args{"batch", (dir / "root").string(), "-o", out.string(), "--align", "none", "--threads", "1",
		"--band-rows", "16"};
	const fs::path work = out / "big" / ".superstack-work";
	const ProcessResult cut = run_superstack_until(args, [&] { return fs::exists(work / "band-00002.raw"); }, SIGKILL);
	CHECK(cut.exit_code == 128 + SIGKILL);
	CHECK(journal_of(out)["stacks"]["big"]["state"] == "in-progress");
	const ProcessResult again = run_superstack(args, 120);
	CAPTURE(again.out);
	CAPTURE(again.err);
	CHECK(again.exit_code == 0);
	CHECK(again.out.find("bands reused") != std::string::npos);
	CHECK(journal_of(out)["stacks"]["big"]["state"] == "done");
	CHECK(journal_of(out)["stacks"]["big"]["bands_reused"].get<int>() >= 3);
	const ProcessResult plain = run_superstack({"run", o.out_dir.string(), "-o", (dir / "plain").string(), "--align", "none", "-q"}, 120);
	REQUIRE(plain.exit_code == 0);
	for (const char *file : {"mean.tif", "median.tif", "transforms.json"})
		CHECK(same_bytes(dir / "plain" / file, out / "big" / file));
}
