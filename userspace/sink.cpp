#include "sink.h"

#include "error.h"

#include <fcntl.h>
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
	int fd = open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		int e = errno;
		if (e == ELOOP)
			throw Error("refusing to write to " + path + ": it is a symbolic link", e);
		throw sys_error("opening " + path, e);
	}
	file_ = UniqueFd(fd);
}

void Sink::write(const std::string &text)
{
	int fd = file_ ? file_.get() : STDERR_FILENO;
	if (!write_all(fd, text))
		throw sys_error("writing " + (file_ ? path_ : std::string("stderr")), errno);
}

} // namespace fh
