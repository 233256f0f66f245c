#pragma once

// What the apps share about the process they watch and the programs they
// load for it: checking a pid, the capture configuration every mode starts
// from, and the interpreter's part of it.

#include "app/pipeline.h"
#include "capture/capture.h"
#include "process/host_tracker.h"
#include "cli/options.h"
#include "python/python.h"

#include <signal.h>
#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>

namespace fh {

inline constexpr int kFatalSignals[] = {SIGSEGV, SIGFPE, SIGABRT, SIGBUS, SIGILL};

// The ring holds at least this many threads' records.
inline constexpr uint32_t kMinRingThreads = 64;

// Resolve and check the target (a thread resolves to its process, a kernel
// thread or zombie is refused with a clear error); returns its process id.
pid_t check_target(pid_t pid, bool verbose);

// The number of threads of a process now (0 if unknown).
uint32_t count_threads(pid_t pid);

// The capture configuration every mode starts from: --stack-size,
// --max-threads, the fatal signals and --signals, --handled, -v.
CaptureConfig base_capture_config(const Options &opts);

// A capture's Python: none (rt null), or rt's offsets, where rt sits if it
// is placed, and what the kernel needs to place it itself when the target
// maps it (after a launch, or an exec of the same interpreter again).
void set_python(CaptureConfig &cfg, const PythonRuntime *rt);

// The view's own unwinder, over the mappings the tracker holds for pid (its
// files opened through its root); a failure to report them is said with
// -v, and the frames stay unresolved.
void set_tracked_unwinder(ProcessView &view, HostTracker &tracker, pid_t pid, bool verbose);

// The number of a new dump of a process tree, shared by its records: the
// time it starts, in microseconds since the epoch (so numbers differ from
// one run of fh-bpf to the next), and above the last one of this run.
uint64_t new_dump_id();

// A Python process's live dump with its native threads too (--native):
// the task iterator (and samplers) bound to it, then its interpreter's
// threads read from its memory right after.  Other records that arrive
// meanwhile stay in out; *st is the native dump's.
Event python_dump_with_native(Capture &capture, Assembler &assembler, Assembler::Output &out,
			      pid_t pid, const PythonRuntime &rt, uint32_t trigger,
			      uint32_t current_tid, LiveDumpStats *st);

// The programs loaded and attached while `preload` (loading debug
// information: the two are the bulk of the time to arm) runs on a second
// thread; both done when it returns, the time the programs took in
// *load_ns.
std::unique_ptr<Capture> load_capture(const CaptureConfig &cfg, const std::function<void()> &preload,
				      uint64_t *load_ns);

} // namespace fh
