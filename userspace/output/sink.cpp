#include "output/sink.h"

#include "util/error.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

namespace fh {

Sink::Sink(const std::string &path) : path_(path)
{
	if (path.empty())
		return;
	file_ = open_file(path);
}

void Sink::reopen()
{
	if (!path_.empty())
		file_ = open_file(path_); // the old one stays if this throws
}

UniqueFd Sink::open_file(const std::string &path)
{
	// O_NONBLOCK: a FIFO planted at the path must not hang the open; it
	// is refused below with everything else that is not a regular file.
	int fd = open(path.c_str(),
		      O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK, 0600);
	if (fd < 0) {
		int e = errno;
		if (e == ELOOP)
			throw Error("refusing to write to " + path + ": it is a symbolic link", e);
		if (e == ENXIO) // a FIFO without a reader
			throw Error("refusing to write to " + path + ": not a regular file", e);
		throw sys_error("opening " + path, e);
	}
	UniqueFd file(fd);
	struct stat st;
	if (fstat(fd, &st) != 0)
		throw sys_error("checking " + path, errno);
	if (!S_ISREG(st.st_mode))
		throw Error("refusing to write to " + path + ": not a regular file", EINVAL);
	// fh-bpf writes command lines and memory contents there, often as
	// root: only into a file of its own user's that no one else can write
	// to (and so read back through, or truncate, or have planted), and
	// that is not another file's second name.
	if (st.st_uid != geteuid() || (st.st_mode & (S_IWGRP | S_IWOTH)) || st.st_nlink > 1) {
		char mode[8];
		std::snprintf(mode, sizeof(mode), "%04o", static_cast<unsigned>(st.st_mode & 07777));
		throw Error("refusing to write to " + path + ": owned by uid " +
				    std::to_string(st.st_uid) + " with mode " + mode + " and " +
				    std::to_string(st.st_nlink) +
				    (st.st_nlink == 1 ? " link" : " links") +
				    "; it must be fh-bpf's user's own, writable by it alone "
				    "(chmod go-w) and have one name",
			    EPERM);
	}
	if (fcntl(fd, F_SETFL, O_APPEND) != 0)
		throw sys_error("setting up " + path, errno);
	return file;
}

void Sink::write(const std::string &text)
{
	int fd = file_ ? file_.get() : STDERR_FILENO;
	if (!write_all(fd, text))
		throw sys_error("writing " + (file_ ? path_ : std::string("stderr")), errno);
}

} // namespace fh
