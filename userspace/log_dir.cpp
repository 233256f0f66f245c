#include "log_dir.h"

#include "error.h"
#include "sink.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>
#include <vector>

namespace fh {

namespace {

constexpr const char *kTempPrefix = ".fh-bpf-tmp-";

bool ends_with(const std::string &s, const char *suffix)
{
	size_t n = std::strlen(suffix);
	return s.size() >= n && s.compare(s.size() - n, n, suffix) == 0;
}

} // namespace

bool is_incident_file(const std::string &name)
{
	// 20261201T103107.123456Z-...(.txt|.json)
	if (name.size() < 24 || name[8] != 'T' || name[15] != '.' || name[22] != 'Z' ||
	    name[23] != '-')
		return false;
	for (size_t i : {0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14, 16, 17, 18, 19, 20, 21})
		if (name[i] < '0' || name[i] > '9')
			return false;
	return ends_with(name, ".txt") || ends_with(name, ".json");
}

LogDir::LogDir(const std::string &dir, uint32_t keep, uint64_t max_bytes)
	: path_(dir), keep_(keep), max_bytes_(max_bytes)
{
	if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)
		throw sys_error("creating the log directory " + dir, errno);
	dir_ = UniqueFd(open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
	if (!dir_)
		throw sys_error("opening the log directory " + dir, errno);
	// What an fh-bpf that died mid-write left: never an incident.
	int fd = dup(dir_.get());
	DIR *d = fd >= 0 ? fdopendir(fd) : nullptr;
	if (!d) {
		if (fd >= 0)
			close(fd);
		throw sys_error("reading the log directory " + dir, errno);
	}
	rewinddir(d);
	while (struct dirent *e = readdir(d))
		if (std::strncmp(e->d_name, kTempPrefix, std::strlen(kTempPrefix)) == 0)
			unlinkat(dir_.get(), e->d_name, 0);
	closedir(d);
}

std::string LogDir::write(const std::string &stem, const std::string &ext,
			  const std::string &content)
{
	std::string temp = std::string(kTempPrefix) + std::to_string(getpid()) + "-" +
			   std::to_string(serial_++);
	UniqueFd fd(openat(dir_.get(), temp.c_str(),
			   O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
	if (!fd)
		throw sys_error("creating a file in " + path_, errno);
	if (!write_all(fd.get(), content) || fsync(fd.get()) != 0) {
		int e = errno;
		unlinkat(dir_.get(), temp.c_str(), 0);
		throw sys_error("writing an incident file in " + path_, e);
	}
	fd = UniqueFd();
	// Into place, never over anything: a name taken gets a suffix.
	for (int n = 0; n < 1000; n++) {
		std::string name = stem + (n ? "-" + std::to_string(n) : "") + "." + ext;
		if (renameat2(dir_.get(), temp.c_str(), dir_.get(), name.c_str(), RENAME_NOREPLACE) ==
		    0) {
			retain(name);
			return name;
		}
		if (errno != EEXIST) {
			int e = errno;
			unlinkat(dir_.get(), temp.c_str(), 0);
			throw sys_error("naming an incident file in " + path_, e);
		}
	}
	unlinkat(dir_.get(), temp.c_str(), 0);
	throw Error("no free name for an incident file in " + path_, EEXIST);
}

void LogDir::retain(const std::string &newest)
{
	int fd = dup(dir_.get());
	DIR *d = fd >= 0 ? fdopendir(fd) : nullptr;
	if (!d) {
		if (fd >= 0)
			close(fd);
		return;
	}
	rewinddir(d); // the descriptor's offset is shared with dir_'s
	std::vector<std::pair<std::string, uint64_t>> files; // name, size
	uint64_t total = 0;
	while (struct dirent *e = readdir(d)) {
		std::string name = e->d_name;
		struct stat st;
		if (!is_incident_file(name) ||
		    fstatat(dir_.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 ||
		    !S_ISREG(st.st_mode))
			continue;
		files.emplace_back(name, static_cast<uint64_t>(st.st_size));
		total += static_cast<uint64_t>(st.st_size);
	}
	closedir(d);
	// The names sort by time: the oldest first.
	std::sort(files.begin(), files.end());
	size_t count = files.size();
	for (const auto &[name, size] : files) {
		if (count <= keep_ && total <= max_bytes_)
			break;
		if (name == newest)
			continue;
		if (unlinkat(dir_.get(), name.c_str(), 0) == 0) {
			removed_++;
			count--;
			total -= size;
		}
	}
}

} // namespace fh
