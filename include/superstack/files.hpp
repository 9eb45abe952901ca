// files -- durable writes: a file exists under its final name only when it is whole and on disk, and
// the disk's room is checked (and a full disk named) rather than discovered as a corrupt file.
//
// A run killed by a power cut must find, on restart, either a complete file or none: so a file is
// written under a temporary name beside its final one, fsync()ed, renamed (atomic on POSIX), and its
// folder fsync()ed so the rename itself survives.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

namespace superstack {

// fsync() a file or a folder. Throws Error(processing) naming it.
void sync_path(const std::filesystem::path &path);

// `tmp` (complete) made durable and renamed to `path`; the folder synced. Throws Error(processing);
// `tmp` is removed on failure.
void commit_file(const std::filesystem::path &tmp, const std::filesystem::path &path);

// `content` written to `path` through a temporary name (".<name>.part"), durably. Throws Error(processing).
void write_file_atomically(const std::filesystem::path &path, std::string_view content);

// `line` and a newline appended to `path` (created if missing) and synced before returning: a journal
// that grows by one record at a time. After a crash only the last line can be torn (it then lacks its
// newline: readers ignore it). Throws Error(processing).
void append_line_durably(const std::filesystem::path &path, std::string_view line);

// The temporary name commit_file() expects for `path`: a hidden ".<name>.part" in the same folder.
std::filesystem::path temporary_name(const std::filesystem::path &path);

// Free bytes for an unprivileged writer at `dir` (UINT64_MAX when unknown).
std::uint64_t free_bytes(const std::filesystem::path &dir);

// Throws Error(processing) when `dir` has less than `need` bytes free, saying what needs them.
void check_free_space(const std::filesystem::path &dir, std::uint64_t need, std::string_view what);

// " (the disk is full: N free)" when `dir` has less than `margin` bytes left, else "": appended to a
// write error so that a full disk is named as such.
std::string disk_full_note(const std::filesystem::path &dir, std::uint64_t margin = 1u << 20);

} // namespace superstack
