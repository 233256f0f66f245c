#pragma once

// --native: each Python thread's native frames and its Python frames in one
// list, newest first.  The C calls of the evaluation loop
// (_PyEval_EvalFrameDefault) that ran Python code give way to the Python
// frames they ran, in their place.  The interpreter's own frames (its
// calling machinery between a Python frame and a C function, its main)
// are left out, as pystack does, but for the newest ones: a crash or a
// wait inside the interpreter keeps its place.  Every other module's
// frames stay: extensions, the libraries they call, libc.  With
// --native-all nothing is left out but the evaluation loop's frames: the
// list is then a debugger's backtrace with the Python frames in it.
//
// Works on the model alone (Threads from python_threads() and
// native_threads()), so it is tested without a process.

#include "python/py_report.h"
#include "report/model.h"

#include <cstdint>
#include <vector>

namespace fh {

struct MixStats {
	// Python threads whose evaluation loop calls and Python frames did not
	// pair up (the frames changed between the two reads of a running
	// thread, or the interpreter has no symbols): the Python frames left
	// over follow the native ones.
	uint32_t unpaired = 0;
	uint32_t no_native = 0;	   // Python threads with no native stack captured
	uint32_t native_cut = 0;   // threads without a thread state beyond kMaxThreads
};

// Whether a frame is the evaluation loop's C function (its name, or a part
// the compiler split off: "_PyEval_EvalFrameDefault.cold").
bool is_eval_frame(const NativeFrame &f);

// The native frames unwound a thread before the merge: the interpreter's
// frames left out, kMaxFrames remain.
inline constexpr size_t kMixUnwindFrames = 4 * kMaxFrames;

// The Python threads (python_threads(), with calls: their evaluation loop
// calls) with their native frames merged, matched by pthread_t or TID; then
// the native threads that have no Python thread state (none of states, the
// pthread_t of every thread state read, shown or not), the thread a signal
// hit first.  At most kMaxFrames native frames and kMaxFrames Python frames
// a thread, kMaxThreads threads.
// all: the interpreter's frames too (--native-all).
std::vector<Thread> mix_threads(std::vector<Thread> python, const std::vector<EvalCalls> &calls,
				std::vector<Thread> native, const std::vector<uint64_t> &states,
				bool all, MixStats &stats);

// What the merge could not do, as losses.
void mix_losses(const MixStats &stats, std::vector<Loss> &out);

} // namespace fh
