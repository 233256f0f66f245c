#pragma once

// The one model of what fh-bpf reports: an Incident, whose threads hold one
// ordered list of frames, each native or Python.  Built once per event by
// the pipeline (app/pipeline.cpp); every output reads only this: the
// faulthandler text (report/text.h), JSON (output/json.h), syslog records,
// log-dir files and the `fh-bpf: pid …` headline.

#include "capture/event.h"
#include "process/process_meta.h"

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace fh {

// faulthandler's limits, which the model keeps: frames a thread, threads
// (Python), characters a string.
inline constexpr size_t kMaxFrames = 100;
inline constexpr size_t kMaxThreads = 100;
inline constexpr size_t kMaxStringLength = 500;

// One incident's text, and its threads' strings, take at most this many
// bytes: whatever a target's names, a record stays this size.
inline constexpr size_t kIncidentMaxBytes = 1u << 20;

// A frame of native code: what the symbolizer knows of one address.
struct NativeFrame {
	uint64_t pc = 0;	      // the address as captured (a return address for callers)
	std::string function;	      // demangled; empty when unknown
	uint64_t function_offset = 0; // pc - symbol start, when function_offset_known
	bool function_offset_known = false;
	std::string file;   // source file; empty when unknown
	int line = 0;	    // source line; 0 when unknown
	std::string module; // path of the ELF object; empty when unmapped
	uint64_t module_offset = 0;
	bool inlined = false; // an inlined call inside the next frame
	std::string build_id; // the module's ELF build id, hex; empty when it has none
};

// A frame of Python code, its strings escaped as faulthandler writes them.
struct PyFrame {
	std::optional<std::string> file;     // nullopt: unreadable (???)
	int line = -1;			     // < 0: unknown (???)
	std::optional<std::string> function; // nullopt: unreadable (???)
};

using StackFrame = std::variant<NativeFrame, PyFrame>;

struct Thread {
	uint64_t pthread_id = 0;
	uint32_t tid = 0;    // kernel thread id, on the host; 0: unknown
	uint32_t ns_tid = 0; // the same in the process's own pid namespace; 0: unknown
	std::string name;    // the OS thread name, when captured
	bool current = false;
	bool garbage_collecting = false; // Python 3.10+, the current thread
	std::vector<StackFrame> frames;	 // most recent call first, at most 100
	bool truncated = false;		 // more frames than these
};

// The interpreter an incident's Python frames come from: its version
// decides faulthandler's wording.
struct PythonDialect {
	int minor = 0;
	uint32_t version_hex = 0; // PY_VERSION_HEX when known, else 0
	std::string version;	  // "3.11.7" ("3.11" when only the minor is known)
};

// Something the incident could not hold or show, said once at the edge: as
// an `fh-bpf: …` line after the text, as {"kind", "count", "text"} in JSON.
struct Loss {
	std::string kind; // stable identifier: "threads_lost", "stack_truncated", ...
	uint64_t count = 0;
	std::string text; // the sentence, without "fh-bpf: "
};

// A fault the target handled itself: its own handler ran after the
// capture.  How the process then ended, when that was known.
struct TargetHandler {
	enum class End { unknown, died, exited };
	End end = End::unknown; // unknown: reported at the fault (--handled)
	int sig = 0;		// died: of this signal
	int si_code = 0;	// died: its si_code, when the kernel saw it raised
	uint32_t sender = 0;	// died of a signal this pid sent (0: none)
	uint32_t status = 0;	// exited: its exit status
};

struct Incident {
	// When and where.
	uint64_t time_ns = 0; // CLOCK_REALTIME of the capture
	std::string host;
	std::string kernel;

	// What happened, to whom.
	uint64_t event_id = 0;
	// A dump of a whole tree: each process's incident has the dump's
	// number (0: a dump of one process, or no dump).
	uint64_t dump_id = 0;
	uint32_t trigger = 0; // FH_TRIGGER_*
	uint32_t pid = 0;
	uint32_t tid = 0; // the thread the signal hit (0: none, a dump)
	std::string comm;
	std::string thread_name; // of tid
	int sig = 0;
	int si_code = 0;
	uint64_t fault_addr = 0;
	bool terminated = false; // turned into SIGKILL by the kernel
	std::optional<Sender> sender;
	std::optional<TargetHandler> handler; // set: the target handled the signal
	uint32_t ns_tid = 0;
	std::optional<uint32_t> pid_ns_level;
	ProcessMeta process;

	// The traceback.
	std::optional<PythonDialect> python; // set: Python threads, faulthandler's wording
	std::string header;		     // "Fatal error: …\n\n", "Timeout (0:00:02)!\n", ""
	std::vector<Thread> threads;	     // as listed: the current thread first (native)
	bool more_threads = false;	     // the interpreter had more threads than these
	bool threads_cut = false;	     // some were left out for want of room
	std::vector<std::string> extension_modules; // escaped; 3.10+ after a fatal error
	uint64_t modules_total = 0; // extension_modules.size() and those cut

	// What was lost.
	uint32_t threads_skipped = 0; // beyond --max-threads
	uint32_t threads_lost = 0;    // no room in the ring buffer
	bool complete = true;	      // the capture's end record arrived
	std::vector<Loss> losses;

	// The faulthandler text is cut here, "...\n" after (report/text.h).
	size_t text_limit = kIncidentMaxBytes;

	bool fatal() const;
	bool live() const; // a dump of a running process (timeout, on demand)
	// The signal named in the record: a fatal or user signal.
	bool has_signal() const;
};

inline constexpr int kIncidentSchema = 3;

} // namespace fh
