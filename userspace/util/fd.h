#pragma once

// File descriptors: an owner, and whole writes.

#include <sys/stat.h>

#include <functional>
#include <string>
#include <vector>

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

// A directory fh-bpf keeps files of its own in (the log directory, its
// caches), opened with no symbolic link followed; created 0700 when
// missing (with its parent, when make_parent).  Throws Error (naming it as
// `what`) when it is a symbolic link, not fh-bpf's user's own, or others
// can write to it (root writes and deletes files there: no one else may
// plant files in it, or swap it for another).  Its owner in *owner.
UniqueFd open_private_dir(const std::string &path, const std::string &what, unsigned *owner,
			  bool make_parent = false);

// A regular file of that owner, mode 0600, with one name: what fh-bpf
// itself wrote there, not a file planted or linked in.
bool is_private_file(int fd, unsigned owner);

// The regular files of the directory open at dir that owner owns and
// `wanted` accepts by name, with their status (no symbolic link followed).
struct DirFile {
	std::string name;
	struct stat st;
};
std::vector<DirFile> owned_files(int dir, unsigned owner,
				 const std::function<bool(const std::string &)> &wanted);

} // namespace fh
