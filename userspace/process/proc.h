#pragma once

#include "util/fd.h"

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace fh {

// What /proc says of a process, read once.
struct ProcessInfo {
	pid_t pid = 0;
	pid_t tgid = 0;
	char state = '?'; // R, S, D, Z, X, ...
	uint64_t flags = 0; // task flags from /proc/PID/stat
	std::string comm;
	bool kernel_thread() const;
	bool zombie() const { return state == 'Z' || state == 'X'; }
};

// Reads /proc/PID/stat and status.  nullopt when the process does not exist.
std::optional<ProcessInfo> read_process(pid_t pid);
// The same from the texts of /proc/PID/stat and /proc/PID/status (which a
// process shapes in part: its comm); nullopt when they do not parse.
std::optional<ProcessInfo> parse_process(pid_t pid, const std::string &stat,
					 const std::string &status);

// A process found below another one in /proc, and its parent.
struct Descendant {
	pid_t pid = 0;
	pid_t parent = 0;
};
// Every descendant of root /proc shows now (children of each thread, then
// theirs), parents before children, at most max.  visit(d) is called as
// each is found, before its own children are read: whatever it arms for
// d then covers the children d forks from that moment on.
std::vector<Descendant> descendants_of(pid_t root, size_t max,
				       const std::function<void(const Descendant &)> &visit = {});

// The threads of pid now (/proc/PID/task), at most max.
std::vector<pid_t> threads_of(pid_t pid, size_t max = SIZE_MAX);

// Reads a whole small file under /proc (bounded to max bytes).
std::optional<std::string> read_proc_file(const std::string &path, size_t max = 16u << 20);

// A pidfd for the process: readable once it has exited.
UniqueFd open_pidfd(pid_t pid);

// True once the process behind the pidfd has exited (non-blocking).
bool pidfd_exited(int pidfd);
// The same, waiting up to timeout_ms for an exit under way.
bool pidfd_exits_within(int pidfd, int timeout_ms);

} // namespace fh
