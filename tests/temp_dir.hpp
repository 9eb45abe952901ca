// temp_dir -- a folder for one test, removed afterwards.
#pragma once

#include <filesystem>
#include <string>

#include <unistd.h>

namespace superstack::test {

class TempDir {
public:
	explicit TempDir(const std::string &name)
	{
		path_ = std::filesystem::temp_directory_path() / ("superstack-test-" + name + "-" + std::to_string(getpid()));
		std::filesystem::remove_all(path_);
		std::filesystem::create_directories(path_);
	}
	~TempDir()
	{
		std::error_code ec;
		std::filesystem::remove_all(path_, ec);
	}
	const std::filesystem::path &path() const { return path_; }
	std::filesystem::path operator/(const std::string &name) const { return path_ / name; }

private:
	std::filesystem::path path_;
};

// Byte-for-byte file equality.
bool same_bytes(const std::filesystem::path &a, const std::filesystem::path &b);

} // namespace superstack::test
