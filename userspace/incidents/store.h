#pragma once

// Incidents as they were kept: the files of a log directory (--log-dir,
// one record a file) and JSON-lines files (-o with --format json), read
// back into the model.  Every file is untrusted input: only regular files
// are read, never waited for (a FIFO is refused), at most kMaxFileBytes of
// them; what is no record of fh-bpf's is an error naming the file, never
// a crash.

#include "report/model.h"

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace fh {

// Where the systemd unit's host agent writes (scripts/fh-bpf.service).
inline const std::string kDefaultLogDir = "/var/log/fh-bpf";

// A file read at most this far: a log-directory file is at most an eighth
// of --log-max-size, a record of one incident a few MB.
inline constexpr uint64_t kMaxFileBytes = 256ull << 20;

struct StoredIncident {
	// What `incidents show` takes: a log-directory file's name without
	// its extension, or for a file of several records FILE:N (N from 1).
	std::string id;
	std::string path; // the file
	size_t record = 1; // the line of the file (of its non-empty lines)
	bool json = true;  // false: a text file, known by its name only
	Incident inc;	   // a text file's: time, comm, pid, signal from its name
	std::string text;  // a text file's content
	std::string top;   // a text file's: its current thread's first frame line
};

// The incident files of a log directory, oldest first (by the time in
// their names, then their suffix): flood-control summaries are no
// incidents and are left out; a file that is no record is said in
// *errors ("DIR/NAME: why") and left out.  Throws Error when the
// directory cannot be read.
std::vector<StoredIncident> read_log_dir(const std::string &dir, std::vector<std::string> *errors);

// The records of one file, each id FILE:N (or the log-directory id when
// `id` is given and the file holds one record).  A text file (.txt) is one
// incident known by its name.  Throws Error when the file cannot be read;
// lines that are no record are said in *errors.
std::vector<StoredIncident> read_incident_file(const std::string &path,
					       std::vector<std::string> *errors,
					       const std::string &id = "");

// `incidents show`'s argument: an id of `incidents list` (looked for in
// dir), a file, or FILE:N; `record` (from 1; 0: none) picks a record of a
// file of several.  Throws Error saying what is wrong.
StoredIncident find_incident(const std::string &what, size_t record, const std::string &dir);

// What a log-directory file's name says: "20261201T103107.123456Z-crash-
// 1234-SIGSEGV-1.txt" is a SIGSEGV of pid 1234 (crash) at that time.
// false when the name is not one fh-bpf writes.
bool incident_from_name(const std::string &name, Incident &inc);

} // namespace fh
