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

// A directory fh-bpf keeps files of its own in (its caches), opened with no
// symbolic link followed; created 0700 (and its parent) when missing.
// Throws Error (naming it as `what`) when it is not fh-bpf's user's own or
// others can write to it.  Its owner in *owner.
UniqueFd open_private_dir(const std::string &path, const std::string &what, unsigned *owner);

// A regular file of that owner, mode 0600, with one name: what fh-bpf
// itself wrote there, not a file planted or linked in.
bool is_private_file(int fd, unsigned owner);

} // namespace fh
