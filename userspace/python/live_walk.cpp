#include "python/live_walk.h"

#include "python/py_walk.h"
#include "util/clock.h"

#include <linux/types.h>

extern "C" {
#include "fh/records.h"
}

namespace fh {

Event python_live_event(pid_t tgid, const PythonRuntime &rt, uint32_t trigger,
			uint32_t current_tid)
{
	Event ev;
	ev.tgid = static_cast<uint32_t>(tgid);
	ev.trigger = trigger;
	ev.ktime_start = monotonic_ns();
	ProcessMemory mem(tgid);
	walk_python(mem, rt, ev);
	ev.ktime_end = monotonic_ns();
	ev.complete = true;
	if (trigger == FH_TRIGGER_DEMAND)
		current_tid = static_cast<uint32_t>(tgid);
	if (current_tid && !ev.py_threads.empty()) {
		// Before 3.11 a thread state has no TID: the main thread's is the
		// process id.
		auto &main = ev.py_threads.back();
		ev.hit_tid = current_tid;
		if (!main.native_thread_id)
			main.native_thread_id = static_cast<uint32_t>(tgid);
	}
	return ev;
}

} // namespace fh
