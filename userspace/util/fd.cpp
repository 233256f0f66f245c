#include "util/fd.h"

#include <unistd.h>

#include <cerrno>

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

} // namespace fh
