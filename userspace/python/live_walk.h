#pragma once

// A source of events: the Python threads of a running process, read from its
// memory (no BPF needed, no stop).

#include "capture/event.h"
#include "python/python.h"

#include <sys/types.h>

#include <cstdint>

namespace fh {

// Every Python thread of a live process, read from its memory with
// process_vm_readv (no stop, no ptrace).  On demand, as if the main thread
// called faulthandler.dump_traceback(): the threads of the interpreter of
// its current thread state (its TSS: a subinterpreter's, 3.12+, when it
// runs one), which is the "Current thread".  After a timeout, as
// dump_traceback_later's watchdog thread writes it: the main interpreter's,
// no current thread.  With current_tid (a refused user signal), as that
// thread's handler would.  Threads' TIDs in the target's pid namespace map
// to the host's through /proc (ev.host_tid_of).
Event python_live_event(pid_t tgid, const PythonRuntime &rt, uint32_t trigger,
			uint32_t current_tid = 0);

} // namespace fh
