#pragma once

#include "process/proc.h"

#include <string>

namespace fh {

// Where tracebacks go: stderr, or a file opened for appending.
class Sink {
public:
	// Empty path: stderr.  A file is created with mode 0600 and a symlink
	// at its place is refused (O_NOFOLLOW).
	explicit Sink(const std::string &path);

	bool is_stderr() const { return !file_; }
	const std::string &path() const { return path_; }

	// Write all of text; throws on failure.
	void write(const std::string &text);

	// Open the path again (a new file there after log rotation); throws,
	// keeping the old one, on failure.
	void reopen();

private:
	static UniqueFd open_file(const std::string &path);

	std::string path_;
	UniqueFd file_;
};

} // namespace fh
