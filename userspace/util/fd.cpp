#include "util/fd.h"

#include "util/error.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

namespace fh {

UniqueFd::~UniqueFd()
{
	if (fd_ >= 0)
		close(fd_);
}

UniqueFd &UniqueFd::operator=(UniqueFd &&o) noexcept
{
	if (this != &o) {
		if (fd_ >= 0)
			close(fd_);
		fd_ = o.release();
	}
	return *this;
}

bool write_all(int fd, const std::string &text)
{
	size_t done = 0;
	while (done < text.size()) {
		ssize_t n = ::write(fd, text.data() + done, text.size() - done);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return false;
		}
		done += static_cast<size_t>(n);
	}
	return true;
}

UniqueFd open_private_dir(const std::string &path, const std::string &what, unsigned *owner,
			  bool make_parent)
{
	size_t slash = path.find_last_of('/');
	if (make_parent && slash != std::string::npos && slash > 0)
		mkdir(path.substr(0, slash).c_str(), 0700);
	if (mkdir(path.c_str(), 0700) != 0 && errno != EEXIST)
		throw sys_error("creating " + what + " " + path, errno);
	UniqueFd dir(open(path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
	if (!dir) {
		int e = errno;
		if (e == ELOOP || e == ENOTDIR)
			throw Error(what + " " + path +
					    " is a symbolic link or not a directory: give the directory itself",
				    e);
		throw sys_error("opening " + what + " " + path, e);
	}
	struct stat st;
	if (fstat(dir.get(), &st) != 0)
		throw sys_error("reading " + what + " " + path, errno);
	if (st.st_uid != geteuid() || (st.st_mode & (S_IWGRP | S_IWOTH))) {
		char mode[8];
		std::snprintf(mode, sizeof(mode), "%04o", static_cast<unsigned>(st.st_mode & 07777));
		throw Error(what + " " + path + " is owned by uid " + std::to_string(st.st_uid) +
				    " with mode " + mode +
				    ": it must be fh-bpf's user's own and writable by it alone (chmod go-w)",
			    EPERM);
	}
	*owner = st.st_uid;
	return dir;
}

bool is_private_file(int fd, unsigned owner)
{
	struct stat st;
	return fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == owner &&
	       (st.st_mode & 07777) == 0600 && st.st_nlink == 1;
}

std::vector<DirFile> owned_files(int dir, unsigned owner,
				 const std::function<bool(const std::string &)> &wanted)
{
	std::vector<DirFile> out;
	int fd = dup(dir);
	DIR *d = fd >= 0 ? fdopendir(fd) : nullptr;
	if (!d) {
		if (fd >= 0)
			close(fd);
		return out;
	}
	rewinddir(d); // the descriptor's offset is shared with dir's
	while (struct dirent *e = readdir(d)) {
		DirFile f{e->d_name, {}};
		if (wanted(f.name) && fstatat(dir, f.name.c_str(), &f.st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    S_ISREG(f.st.st_mode) && f.st.st_uid == owner)
			out.push_back(std::move(f));
	}
	closedir(d);
	return out;
}

} // namespace fh
