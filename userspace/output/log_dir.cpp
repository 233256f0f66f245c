#include "output/log_dir.h"

#include "util/error.h"
#include "output/sink.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <utility>
#include <vector>

namespace fh {

namespace {

constexpr const char *kTempPrefix = ".fh-bpf-tmp-";
constexpr size_t kStampLength = 23; // 20261201T103107.123456Z

bool ends_with(const std::string &s, const char *suffix)
{
	size_t n = std::strlen(suffix);
	return s.size() >= n && s.compare(s.size() - n, n, suffix) == 0;
}

// The "-N" write() adds to a name taken (a stem itself ends with a signal,
// "timeout" or "dump"), or 0.
uint64_t name_suffix(const std::string &name)
{
	size_t dot = name.rfind('.');
	size_t dash = name.rfind('-', dot);
	if (dot == std::string::npos || dash == std::string::npos || dot - dash < 2 || dot - dash > 5)
		return 0;
	uint64_t n = 0;
	for (size_t i = dash + 1; i < dot; i++) {
		if (name[i] < '0' || name[i] > '9')
			return 0;
		n = n * 10 + static_cast<uint64_t>(name[i] - '0');
	}
	return n;
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
	unsigned owner = 0;
	dir_ = open_private_dir(dir, "the log directory", &owner);
	owner_ = owner;
	// What an fh-bpf that died mid-write left: never an incident. Another
	// one still running may be writing its own.
	int fd = dup(dir_.get());
	DIR *d = fd >= 0 ? fdopendir(fd) : nullptr;
	if (!d) {
		if (fd >= 0)
			close(fd);
		throw sys_error("reading the log directory " + dir, errno);
	}
	rewinddir(d);
	size_t prefix = std::strlen(kTempPrefix);
	while (struct dirent *e = readdir(d)) {
		if (std::strncmp(e->d_name, kTempPrefix, prefix) != 0)
			continue;
		long pid = std::strtol(e->d_name + prefix, nullptr, 10);
		if (pid > 0 && pid != getpid() && kill(static_cast<pid_t>(pid), 0) == 0)
			continue;
		unlinkat(dir_.get(), e->d_name, 0);
	}
	closedir(d);
}

std::string LogDir::write(const std::string &stem, const std::string &ext,
			  const std::string &whole)
{
	// Its share of the directory at most.
	std::string cut_text;
	uint64_t limit = file_limit();
	if (whole.size() > limit && ext != "txt") {
		refused_++;
		throw Error(stem + "." + ext + ": " + std::to_string(whole.size()) +
				    " bytes, more than an eighth of --log-max-size: not written",
			    EFBIG);
	}
	if (whole.size() > limit) {
		// Its start and its end (where the notes on what was lost are),
		// at line ends, and a line in between on what was left out.
		std::string note = "fh-bpf: this file was cut to an eighth of --log-max-size (" +
				   std::to_string(limit) + " bytes): XXXXXXXXXXXXXXXXXXXX bytes "
				   "left out here\n";
		size_t room = limit > note.size() ? static_cast<size_t>(limit) - note.size() : 0;
		size_t tail = whole.size() - std::min(whole.size(), room / 4);
		size_t at = whole.find('\n', tail);
		tail = at == std::string::npos || at + 1 - tail > room / 8 ? tail : at + 1;
		size_t head_room = room - (whole.size() - tail);
		size_t head = head_room ? whole.rfind('\n', head_room - 1) : std::string::npos;
		head = head == std::string::npos ? 0 : head + 1;
		note.replace(note.find("XXXXXXXXXXXXXXXXXXXX"), 20, std::to_string(tail - head));
		cut_text = whole.substr(0, head) + note + whole.substr(tail);
		cut_++;
	}
	const std::string &content = whole.size() > limit ? cut_text : whole;
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
		if (place(temp, name)) {
			fsync(dir_.get()); // the name, too, survives a crash of the host
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

// renameat2(RENAME_NOREPLACE), or where the file system has no such rename
// (some network and FUSE ones), a hard link (which never replaces either)
// and the temporary name's removal. false with errno EEXIST: name taken.
bool LogDir::place(const std::string &temp, const std::string &name)
{
	if (!no_rename2_) {
		if (renameat2(dir_.get(), temp.c_str(), dir_.get(), name.c_str(), RENAME_NOREPLACE) ==
		    0)
			return true;
		if (errno != EINVAL && errno != ENOSYS)
			return false;
		no_rename2_ = true;
	}
	if (linkat(dir_.get(), temp.c_str(), dir_.get(), name.c_str(), 0) != 0)
		return false;
	unlinkat(dir_.get(), temp.c_str(), 0);
	return true;
}

void LogDir::retain(const std::string &newest)
{
	struct File {
		std::string name;
		uint64_t size;
		uint64_t suffix;
	};
	std::vector<File> files;
	uint64_t total = 0;
	for (auto &f : owned_files(dir_.get(), owner_, is_incident_file)) {
		files.push_back({f.name, static_cast<uint64_t>(f.st.st_size), name_suffix(f.name)});
		total += static_cast<uint64_t>(f.st.st_size);
	}
	// The oldest first: by the time in the name, then by the suffix a name
	// taken got ("-1" after none, "-10" after "-9").
	std::sort(files.begin(), files.end(), [](const File &a, const File &b) {
		int c = a.name.compare(0, kStampLength, b.name, 0, kStampLength);
		if (c != 0)
			return c < 0;
		if (a.suffix != b.suffix)
			return a.suffix < b.suffix;
		return a.name < b.name;
	});
	size_t count = files.size();
	for (const auto &[name, size, suffix] : files) {
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
