#pragma once

// An event's native threads: each captured thread's stack unwound and
// symbolized (symbolize/unwinder.h) into the model's threads.

#include "capture/event.h"
#include "report/model.h"
#include "symbolize/unwinder.h"

#include <map>
#include <string>
#include <vector>

namespace fh {

// What was learned while unwinding one event.
struct NativeStats {
	uint32_t truncated_threads = 0; // unwinding ran out of captured stack
	uint32_t stale_threads = 0;	// were running on another CPU
	uint64_t stack_bytes = 0;
	std::map<uint32_t, std::string> unwind_errors; // tid -> why unwinding stopped early
};

// Unwind and symbolize every thread of an event, at most max_frames frames
// each (faulthandler's 100; more for --native, which leaves some out).
// The thread the signal hit comes first; the others follow newest first,
// as faulthandler lists them.
std::vector<Thread> native_threads(const Event &ev, Unwinder &unwinder, NativeStats &stats,
				   size_t max_frames = kMaxFrames);

// What the capture lost (skipped or lost threads, truncated or stale
// stacks, an incomplete capture), as losses.  native_frames: the threads'
// records are the traceback (not a Python walk's thread states).
void capture_losses(const Event &ev, const NativeStats &stats, bool native_frames,
		    std::vector<Loss> &out);

} // namespace fh
