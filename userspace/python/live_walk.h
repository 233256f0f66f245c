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
// called faulthandler.dump_traceback(): it is the "Current thread" (its
// thread state is the oldest, the last of the interpreter's list).  After a
// timeout, as dump_traceback_later's watchdog thread writes it: no current
// thread.
Event python_live_event(pid_t tgid, const PythonRuntime &rt, uint32_t trigger,
			uint32_t current_tid = 0);

} // namespace fh
