#pragma once

#include "process/proc.h"

#include <sys/types.h>

#include <cstdint>
#include <string>

namespace fh {

// --log-dir: one file per incident in a directory, for post-incident
// collection.  Each file is written completely or not at all: into a
// temporary file (created 0600, O_EXCL, no symlink followed), synced, then
// renamed to its name, never replacing a file that is there (a name taken
// gets a "-1", "-2"... suffix; the directory is synced too).  Retention:
// after each write, the oldest of fh-bpf's files (its user's, by the time
// in their names) go until at most `keep` remain and they take at most
// `max_bytes` (the newest always stays).  So that one incident never pushes
// the others out, a file takes at most an eighth of `max_bytes`: a longer
// text is cut (at a line's end, with a line saying so), any other file
// refused; both counted.
class LogDir {
public:
	// Opens (creating it 0700 if it does not exist) the directory; throws
	// Error, also when it is a symbolic link, not this user's, or writable
	// by others.  Temporary files of an fh-bpf no longer running are
	// removed.
	LogDir(const std::string &dir, uint32_t keep, uint64_t max_bytes);

	// Write one incident file named STEM.EXT; returns its name.  Throws
	// Error (the file is then not there at all).
	std::string write(const std::string &stem, const std::string &ext,
			  const std::string &content);

	// The bytes one file may take.
	uint64_t file_limit() const { return max_bytes_ / kFileShare; }
	static constexpr uint64_t kFileShare = 8;

	const std::string &path() const { return path_; }
	uint64_t removed() const { return removed_; } // by retention
	uint64_t cut() const { return cut_; }	       // texts cut to file_limit()
	uint64_t refused() const { return refused_; } // other files over it

private:
	bool place(const std::string &temp, const std::string &name);
	void retain(const std::string &newest);

	std::string path_;
	UniqueFd dir_;
	uint32_t keep_;
	uint64_t max_bytes_;
	uint64_t removed_ = 0;
	uint64_t cut_ = 0;
	uint64_t refused_ = 0;
	uint64_t serial_ = 0;
	uid_t owner_ = 0;
	bool no_rename2_ = false;
};

// Whether a name is one of the incident files LogDir writes.
bool is_incident_file(const std::string &name);

} // namespace fh
