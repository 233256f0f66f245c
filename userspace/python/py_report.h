#pragma once

#include "capture/event.h"
#include "report/model.h"
#include "python/python.h"

#include <cstddef>
#include <cstdint>

#include <set>
#include <string>
#include <vector>

#include <linux/types.h>

extern "C" {
#include "fh/records.h"
}

namespace fh {

// The bytes of Python text one incident takes at most (threads and the
// extension modules line): faulthandler's limits (100 threads, 100 frames,
// 500 characters a string) still allow 100 MB of names a target chose.
// An incident's limit (kIncidentMaxBytes, 1 MiB) less room for its header.
inline constexpr size_t kPyTextMaxBytes = (1u << 20) - (16u << 10);

// What a render left out to stay within its bytes, and what in the
// interpreter's structures did not look like an interpreter's.
struct PyTextBounds {
	size_t max_bytes = kPyTextMaxBytes;
	size_t used = 0;
	uint64_t frames_cut = 0;  // frames not shown for want of room
	uint64_t threads_cut = 0; // threads not shown for want of room
	uint64_t modules_cut = 0; // extension module names not shown
	std::vector<std::string> implausible; // "its thread list loops", ...
};

// The Python threads of an event, ready to render: the current thread the
// one the walk read from the TSS of the thread hit (as faulthandler), else
// matched by pthread_t or namespace TID; each thread's TIDs on the host and
// in its pid namespace; each version's frame rules applied (shim frames skipped from 3.12,
// lines from the line tables), every unreadable piece as ???.  A thread
// list that comes back to a thread state already shown ends there; the
// frames stop where `bounds` runs out of bytes (a thread then shows "...").
//
// groups, when given, gets for each thread returned the calls of the
// evaluation loop (_PyEval_EvalFrameDefault) that ran its frames, newest
// first: how many of the frames shown each call ran.  Up to 3.10 a call
// runs one frame; 3.11 marks the first frame a call entered (is_entry),
// 3.12+ pushes a shim frame below it.  python/mixed.h puts them in their
// place among the thread's native frames.
using EvalCalls = std::vector<uint32_t>;
std::vector<Thread> python_threads(const Event &ev, const PythonRuntime &rt,
				   PyTextBounds *bounds = nullptr,
				   std::vector<EvalCalls> *groups = nullptr);

// The extension modules 3.10+ lists after a fatal error, in sys.modules
// order and escaped as faulthandler prints them, leaving out the standard
// library's: those of sys.stdlib_module_names as read at the signal, or
// (when that read failed) `stdlib`, the names read before.
std::vector<std::string> extension_modules(const Event &ev, const PythonRuntime &rt,
					   const std::set<std::string> *stdlib);

// "3.11.7" ("3.11" when only the minor version is known), and the
// interpreter as the model names it.
std::string python_version(const PythonRuntime &rt);
PythonDialect python_dialect(const PythonRuntime &rt);

// An event's Python traceback into `inc`: its dialect, threads, and for a
// fatal signal the extension modules (the standard library's left out when
// stdlib is given).  At most kPyTextMaxBytes of threads and modules; losses
// say what was cut, and when the structures read are implausible for an
// interpreter (chains that loop, values out of range).
// calls, when given: each thread's evaluation loop calls (python_threads()).
void python_traceback(const Event &ev, const PythonRuntime &rt,
		      const std::set<std::string> *stdlib, Incident &inc,
		      std::vector<EvalCalls> *calls = nullptr);

} // namespace fh
