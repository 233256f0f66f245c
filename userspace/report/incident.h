#pragma once

#include "capture/event.h"
#include "util/printable.h"

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace fh {

struct Traceback;
struct PyThreadText;
struct PythonRuntime;

// What /proc says of a process, kept for its incident records: read at
// attach and again after an exec, since a process that dies takes all of
// it along.
struct ProcessMeta {
	std::string exe;		  // readlink /proc/PID/exe; empty if unknown
	std::vector<std::string> cmdline; // arguments, as bytes
	std::optional<uint32_t> uid;	  // real uid
	std::string cgroup;		  // the cgroup v2 path ("0::" line)
	std::optional<uint32_t> ns_pid;	  // the pid in its own pid namespace
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

// One frame of an incident, Python or native.
struct IncidentFrame {
	bool python = false;
	std::string file;     // empty: unknown
	int line = -1;	      // < 0: unknown
	std::string function; // empty: unknown
	// native only
	std::string module;
	uint64_t module_offset = 0;
	uint64_t address = 0;
	bool inlined = false;
};

struct IncidentThread {
	uint64_t pthread_id = 0;
	uint32_t tid = 0; // 0: unknown
	std::string name;
	bool current = false;
	std::vector<IncidentFrame> frames; // most recent call first
	bool truncated = false;		   // more frames than these
};

// One event as a record for log pipelines: the faulthandler text and,
// structured, everything it says and what fh-bpf knows besides.  Schema in
// the README ("Incident records").
struct Incident {
	uint64_t time_ns = 0; // CLOCK_REALTIME of the capture
	std::string host;
	std::string kernel;
	const Event *event = nullptr; // trigger, pid, tid, comm, signal, sender
	ProcessMeta meta;
	std::string python; // "3.11.7"; empty for a native process
	std::vector<IncidentThread> threads;
	std::vector<std::string> extension_modules;
	std::vector<std::string> losses; // what was lost, one sentence each
	std::string text;		 // the faulthandler text
};

inline constexpr int kIncidentSchema = 2;

// The incident of `ev`, rendered as `text`, of a process `meta` describes:
// its time (from the capture's stamp), host and kernel filled in; threads,
// Python version, modules and losses left to the caller.
Incident make_incident(const Event &ev, const ProcessMeta &meta, const std::string &text);

// The record as one line of JSON (no newline).  Strings are UTF-8; a byte
// that is not part of valid UTF-8 is written as the text "\xHH" (a
// backslash, x, two hex digits), so nothing is lost and the JSON stays
// valid.
std::string incident_json(const Incident &inc);

// A JSON string literal for arbitrary bytes (see incident_json).
std::string json_string(const std::string &bytes);

// "2026-12-01T10:31:07.123456Z"
std::string utc_time(uint64_t realtime_ns);

// A file name stem: "20261201T103107.123456Z-crash-4242-SIGSEGV" (the
// trigger for a dump: "timeout", "dump"); only [A-Za-z0-9._-] in it.
std::string incident_stem(const Incident &inc);

// The same from its parts: UTC time, command name, pid, what happened.
std::string file_stem(uint64_t realtime_ns, const std::string &comm, uint32_t pid,
		      const std::string &what);

// The trigger's name in records: "fatal_signal", "user_signal", "timeout",
// "demand".
std::string trigger_name(uint32_t trigger);

// The threads of a rendered traceback, as faulthandler's limits leave them.
std::vector<IncidentThread> incident_threads(const Traceback &tb);
std::vector<IncidentThread> incident_threads(const std::vector<PyThreadText> &threads);

// Loss lines ("fh-bpf: ...\n" each) as sentences.
std::vector<std::string> loss_sentences(const std::string &losses);

// One incident's text, and its structured threads' strings, take at most
// this many bytes: whatever a target's names, a record stays this size.
inline constexpr size_t kIncidentMaxBytes = 1u << 20;

// Cut text to at most max_bytes, at a line's end, "...\n" after; returns
// the bytes left out (0: text was within max_bytes).
size_t cut_text(std::string &text, size_t max_bytes);

// Leave out the frames (then whole threads) past what max_bytes of their
// strings hold, each thread cut marked truncated; returns the frames left
// out.
uint64_t cut_threads(std::vector<IncidentThread> &threads, size_t max_bytes);

// Both to kIncidentMaxBytes, "fh-bpf: ..." lines added to notes on what
// was cut; false when nothing was.
bool bound_incident(std::string &text, std::vector<IncidentThread> &threads, std::string &notes);

// The incident held to max_bytes for a record of that size: text and
// threads a third each, extension modules a tenth; its losses say what
// was cut.  (JSON may add escapes: the caller checks the result.)
Incident cut_incident(const Incident &inc, size_t max_bytes);

// "3.11.7" ("3.11" when only the minor version is known).
std::string python_version(const PythonRuntime &rt);

} // namespace fh
