#include "sink.h"

#include "error.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

namespace fh {

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
