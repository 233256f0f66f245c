#pragma once

#include "capture/event.h"
#include "report/traceback.h"
#include "symbolize/unwinder.h"

#include <map>
#include <string>
#include <vector>

namespace fh {

// What was learned while turning one event into a traceback.
struct ReportStats {
	uint32_t truncated_threads = 0; // unwinding ran out of captured stack
	uint32_t stale_threads = 0;	// were running on another CPU
	uint64_t stack_bytes = 0;
	std::map<uint32_t, std::string> unwind_errors; // tid -> why unwinding stopped early
};

// Unwind and symbolize every thread of an event.  The thread the signal hit
// comes first; the others follow newest first, as faulthandler lists them.
Traceback build_traceback(const Event &ev, Unwinder &unwinder, ReportStats &stats);

// "fh-bpf: pid 123 (crash), thread 125 (worker): SIGSEGV (SEGV_MAPERR) at
// address 0x0"; for a signal from another process ", sent by pid 9 (kill),
// uid 0".
std::string event_summary(const Event &ev);

// Lines that say what the event lost (skipped or lost threads, truncated
// stacks, an incomplete capture); empty when nothing was lost.
std::string event_losses(const Event &ev, const ReportStats &stats);

} // namespace fh
