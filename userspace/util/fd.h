#pragma once

// File descriptors: an owner, and whole writes.

#include <string>

namespace fh {

// Move-only owner of a file descriptor.
class UniqueFd {
public:
	UniqueFd() = default;
	explicit UniqueFd(int fd) : fd_(fd) {}
	~UniqueFd();
	UniqueFd(UniqueFd &&o) noexcept : fd_(o.release()) {}
	UniqueFd &operator=(UniqueFd &&o) noexcept;
	UniqueFd(const UniqueFd &) = delete;
	UniqueFd &operator=(const UniqueFd &) = delete;

	int get() const { return fd_; }
	int release()
	{
		int fd = fd_;
		fd_ = -1;
		return fd;
	}
	explicit operator bool() const { return fd_ >= 0; }

private:
	int fd_ = -1;
};

// Write all of text to fd, retrying short writes and EINTR.
bool write_all(int fd, const std::string &text);

} // namespace fh
