#pragma once

#include "process/host_tracker.h"
#include "util/diag.h"
#include "python/python.h"

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

extern "C" {
#include "fh/python.h"
}

namespace fh {

class Capture;
struct ScopeFilter;

// The interpreter builds met on a host (--system-wide): each executable or
// libpython mapped by a process in scope is looked at once; a build's
// offsets go to the programs' table, and every process that maps it is
// placed there at once (the process may crash any moment).  Everything a
// target controls is bounded: the files remembered, the builds, the work
// of reading a build's sys.stdlib_module_names, the messages.
class HostPythons {
public:
	// Builds take the programs' indexes from first_index on (a watch of a
	// tree keeps 0 for its root's).
	HostPythons(Capture &capture, const ScopeFilter &scope, bool verbose,
		    uint32_t first_index = 0);

	// The programs that took over (their tables shared with the last).
	void set_capture(Capture &capture) { capture_ = &capture; }

	// A mapping or an exec, as the tracker drained it.
	void place(const HostTracker::Change &c);

	// sys.stdlib_module_names of each build not read yet, from a live
	// process of it (once it has started); bounded per build.
	void read_stdlib_names();
	// Whether a read waits for a process that has just started (the loop
	// then looks every few milliseconds).
	bool reading_soon(uint64_t now_ns) const;

	// An interpreter build met on the host: its offsets are in the
	// programs' py_builds at its index.
	struct Build {
		PythonRuntime rt; // not placed: the file's own addresses
		PythonPlacement place;
		std::optional<std::set<std::string>> stdlib; // sys.stdlib_module_names (3.10+)
		std::set<pid_t> readers; // live processes it may be read from
		uint64_t stdlib_items = 0; // looked at so far
	};
	const Build *build(uint32_t index) const;
	// The build of a process the programs placed, at its place, and its
	// sys.stdlib_module_names when known; nullopt: not one of these builds.
	std::optional<PythonRuntime> placed(const fh_py_proc &proc,
					    const std::set<std::string> **stdlib = nullptr) const;
	size_t builds() const { return builds_.size(); }

	// For the closing line.
	uint64_t unsupported() const { return unsupported_; }
	uint64_t stdlib_given_up() const { return stdlib_given_up_; }
	uint64_t unsaid() const { return said_.unsaid(); }

	// What reading a build's sys.stdlib_module_names may cost at most (dict
	// entries and set slots looked at: a real one costs a few hundred,
	// once); the files and the messages naming them kept.
	static constexpr uint64_t kStdlibItems = 32 * 1024;
	static constexpr size_t kFilesKept = 4096;
	static constexpr size_t kNamedMessages = 16;

private:
	std::optional<uint32_t> look_at(const HostTracker::Change &c, FileIdentity mapped);

	Capture *capture_;
	const ScopeFilter &scope_;
	bool verbose_;
	uint32_t first_index_;
	std::vector<Build> builds_;
	// A file met, by "dev:ino:size": its build, or none (not Python).
	std::map<std::string, std::optional<uint32_t>> files_;
	static constexpr uint64_t kEagerNs = 2'000'000'000;
	uint64_t eager_until_ = 0;
	uint64_t unsupported_ = 0;     // interpreters met that fh-bpf cannot walk
	uint64_t stdlib_given_up_ = 0; // builds whose stdlib names cost too much
	OnceMessages said_{kNamedMessages, "further messages on interpreters"};
	std::string found_note_; // -v: a new build, said once its process is placed
};

} // namespace fh
