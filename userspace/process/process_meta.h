#pragma once

// What /proc says of a process beyond its mappings: the identity kept in its
// incident records, and whether --comm/--uid/--cgroup admit it.

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace fh {

// What a process was, kept for its records: read at attach and again
// after an exec, since a process that dies takes all of it along.
struct ProcessMeta {
	std::string exe;		  // readlink /proc/PID/exe; empty if unknown
	std::vector<std::string> cmdline; // arguments, as bytes
	std::optional<uint32_t> uid;	  // real uid
	std::string cgroup;		  // the cgroup v2 path ("0::" line)
	std::optional<uint32_t> ns_pid;	  // the pid in its own pid namespace
	std::optional<uint32_t> ppid;	  // its parent's pid
	// A descendant of the process a watch follows (not that process):
	// its incidents name it, and its parent, in the output too.
	bool descendant = false;
};

ProcessMeta read_process_meta(pid_t pid);

// --system-wide's filters as /proc shows a process: its comm, real uid
// and cgroup v2 path (the BPF programs apply the same to captures).
struct ScopeFilter {
	std::vector<std::string> comms;
	std::vector<std::string> exclude_comms;
	std::vector<uint32_t> uids;
	std::vector<std::string> cgroups; // below the cgroup2 mount: "/a/b"
	bool any() const
	{
		return !comms.empty() || !exclude_comms.empty() || !uids.empty() || !cgroups.empty();
	}
	// Whether pid is in scope now, from what each filter given needs of
	// /proc/PID (comm, status, cgroup); false when that cannot be read.
	bool admits(pid_t pid) const;
};

} // namespace fh
