// work -- the folder a run keeps its resumable state in, so a run killed in the middle (kill -9, power
// cut, Ctrl-C, a full disk) continues with --resume from where it was.
//
// Layout of the folder (every file written atomically, files.hpp):
//   lock          held (flock) while a run uses the folder: two runs never share one
//   run.json      what the results depend on (the options and the inputs' sizes and times): `key`
//   align.jsonl   each frame's alignment, appended (one line, synced) as it is made
//   bands.json    the band layout of the reduction (geometry, rows per band, frames stacked)
//   band-NNNNN.raw  one finished band of the encoded reduction (bands.hpp)
//   spool/        the frame spool (spool.hpp): made afresh by every run, removed when it ends
// A resumed run reuses the alignments and the finished bands when its key (and, for bands, its layout)
// is the one recorded; anything else is discarded. On success the folder is removed. On failure or
// interruption the resumable state (alignments, finished bands) is kept, with a warning saying so, and
// the rest removed; a folder with nothing resumable in it is removed whole.
#pragma once

#include "superstack/align.hpp"
#include "superstack/bands.hpp"
#include "superstack/progress.hpp"

#include <vips/vips8>

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace superstack {

// off: any earlier state is discarded. on: it must be this run's (a different key is a usage error);
// none at all starts afresh. automatic: reused when it is this run's, else discarded (batch retries).
enum class Resume { off, on, automatic };

class WorkFolder {
public:
	// Opens `dir` (creating it), locks it, and keeps or discards the state found there by `resume`
	// and `key` (JSON text). Throws Error(processing) when another run holds it, Error(usage) for
	// Resume::on with a key of another run.
	WorkFolder(std::filesystem::path dir, std::string key, Resume resume, Progress &progress);
	~WorkFolder();
	WorkFolder(const WorkFolder &) = delete;
	WorkFolder &operator=(const WorkFolder &) = delete;

	const std::filesystem::path &dir() const { return dir_; }
	std::filesystem::path spool_dir() const { return dir_ / "spool"; }

	// The alignments saved for these frames (by path) against `reference`, nothing for the others.
	std::vector<std::optional<FrameAlignment>> saved_alignments(const std::vector<std::filesystem::path> &files,
		const std::filesystem::path &reference) const;
	// Saves one frame's alignment against `reference` (atomically, with those saved before).
	void save_alignment(const std::filesystem::path &file, const std::filesystem::path &reference,
		const FrameAlignment &alignment);

	// The bands of the reduction laid out by `layout` (JSON text: geometry, encoding, frames) in `rows`
	// rows each. When the recorded layout is the same, its bands (and finished band files) are kept,
	// whatever `rows` says now; otherwise finished band files are discarded and this layout recorded.
	std::vector<Band> bands(const std::string &layout, const OutputGeometry &geometry, int rows);
	std::filesystem::path band_file(const Band &band) const;
	bool band_done(const Band &band) const;
	int bands_done() const;
	// Bytes of the finished band files.
	std::uint64_t kept_bytes() const;

	// Success: removes the folder and everything in it.
	void finish();
	// "N of M bands" kept, for messages; empty when nothing resumable is kept.
	std::string kept_summary() const;

private:
	std::filesystem::path dir_;
	Progress &progress_;
	int lock_fd_ = -1;
	bool finished_ = false;
	int band_count_ = 0;
	std::map<std::string, FrameAlignment> alignments_; // align.jsonl: by "reference\nframe" paths
	void discard_state();
};

// The work folder of a run writing to `out_dir`: OUTDIR/.superstack-work, or with --work-dir
// WORKDIR/.superstack-work-<name>-<hash of OUTDIR's absolute path> (one per output folder).
std::filesystem::path work_folder_for(const std::filesystem::path &out_dir,
	const std::optional<std::filesystem::path> &work_dir);

// The 64-bit FNV-1a digest of `bytes`: names and layouts in the work folder (not a cryptographic hash).
std::uint64_t fnv1a(std::string_view bytes);

} // namespace superstack
