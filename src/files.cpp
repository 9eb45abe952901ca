// files -- fsync, rename and statvfs, each failure an Error naming the file.
#include "superstack/files.hpp"

#include "superstack/budget.hpp"
#include "superstack/error.hpp"

#include <fcntl.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace superstack {

namespace fs = std::filesystem;

void sync_path(const fs::path &path)
{
	const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		throw_error(ExitCode::processing, "{}: cannot open to sync ({})", path.string(), std::strerror(errno));
	const int status = fsync(fd);
	const int error = errno;
	close(fd);
	// Some file systems cannot sync a folder (EINVAL): nothing more can be done there.
	if (status != 0 && error != EINVAL)
		throw_error(ExitCode::processing, "{}: cannot write to disk ({}){}", path.string(), std::strerror(error),
			disk_full_note(path.parent_path()));
}

fs::path temporary_name(const fs::path &path)
{
	return path.parent_path() / fmt::format(".{}.part", path.filename().string());
}

void commit_file(const fs::path &tmp, const fs::path &path)
{
	std::error_code ec;
	try {
		sync_path(tmp);
	} catch (const Error &) {
		fs::remove(tmp, ec);
		throw;
	}
	fs::rename(tmp, path, ec);
	if (ec) {
		fs::remove(tmp, ec);
		throw_error(ExitCode::processing, "{}: cannot rename into place ({})", path.string(), ec.message());
	}
	const fs::path dir = path.parent_path().empty() ? fs::path(".") : path.parent_path();
	sync_path(dir);
}

void write_file_atomically(const fs::path &path, std::string_view content)
{
	const fs::path tmp = temporary_name(path);
	const int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		throw_error(ExitCode::processing, "{}: cannot write ({})", path.string(), std::strerror(errno));
	std::size_t done = 0;
	while (done < content.size()) {
		const ssize_t n = write(fd, content.data() + done, content.size() - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			const int error = errno;
			close(fd);
			std::error_code ec;
			fs::remove(tmp, ec);
			throw_error(ExitCode::processing, "{}: cannot write ({}){}", path.string(), std::strerror(error),
				disk_full_note(path.parent_path()));
		}
		done += static_cast<std::size_t>(n);
	}
	close(fd);
	commit_file(tmp, path);
}

void append_line_durably(const fs::path &path, std::string_view line)
{
	std::error_code ec;
	const bool created = !fs::exists(path, ec);
	const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (fd < 0)
		throw_error(ExitCode::processing, "{}: cannot write ({})", path.string(), std::strerror(errno));
	const std::string record = std::string(line) + "\n";
	std::size_t done = 0;
	int error = 0;
	while (done < record.size() && error == 0) {
		const ssize_t n = write(fd, record.data() + done, record.size() - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			error = n < 0 ? errno : ENOSPC;
		else
			done += static_cast<std::size_t>(n);
	}
	if (error == 0 && fdatasync(fd) != 0)
		error = errno;
	close(fd);
	if (error != 0)
		throw_error(ExitCode::processing, "{}: cannot write ({}){}", path.string(), std::strerror(error),
			disk_full_note(path.parent_path()));
	if (created)
		sync_path(path.parent_path().empty() ? fs::path(".") : path.parent_path());
}

std::uint64_t free_bytes(const fs::path &dir)
{
	struct statvfs s {};
	if (statvfs(dir.empty() ? "." : dir.c_str(), &s) != 0)
		return UINT64_MAX;
	return static_cast<std::uint64_t>(s.f_bavail) * s.f_frsize;
}

void check_free_space(const fs::path &dir, std::uint64_t need, std::string_view what)
{
	const std::uint64_t free = free_bytes(dir);
	if (free < need)
		throw_error(ExitCode::processing, "{}: not enough free disk space ({} needed for {}, {} free)", dir.string(),
			format_bytes(need), what, format_bytes(free));
}

std::string disk_full_note(const fs::path &dir, std::uint64_t margin)
{
	const std::uint64_t free = free_bytes(dir);
	return free < margin ? fmt::format(" (the disk is full: {} free)", format_bytes(free)) : std::string();
}

} // namespace superstack
