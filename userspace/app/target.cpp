#include "app/target.h"

#include "process/proc.h"
#include "python/live_walk.h"
#include "util/diag.h"
#include "util/clock.h"
#include "util/error.h"
#include "util/printable.h"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <thread>

namespace fh {

pid_t check_target(pid_t pid, bool verbose)
{
	auto info = read_process(pid);
	if (!info)
		throw Error("no such process: " + std::to_string(pid), ESRCH);
	if (info->kernel_thread())
		throw Error("pid " + std::to_string(pid) + " (" + info->comm +
				    ") is a kernel thread: it has no user stack to trace",
			    EINVAL);
	if (info->zombie())
		throw Error("pid " + std::to_string(pid) + " (" + info->comm +
				    ") has already exited (zombie): nothing left to trace",
			    ESRCH);
	if (info->tgid != pid) {
		if (verbose)
			diag("thread " + std::to_string(pid) + " belongs to process " +
			     std::to_string(info->tgid) + ": watching the process");
		auto leader = read_process(info->tgid);
		if (!leader || leader->zombie())
			throw Error("process " + std::to_string(info->tgid) + " has exited", ESRCH);
	}
	return info->tgid;
}

uint32_t count_threads(pid_t pid)
{
	auto status = read_proc_file("/proc/" + std::to_string(pid) + "/status", 65536);
	if (!status)
		return 0;
	size_t at = status->find("\nThreads:");
	return at == std::string::npos ? 0
				       : static_cast<uint32_t>(std::strtoul(
						 status->c_str() + at + 9, nullptr, 10));
}

CaptureConfig base_capture_config(const Options &opts)
{
	CaptureConfig cfg;
	cfg.stack_size = opts.stack_size;
	cfg.max_threads = opts.max_threads;
	cfg.ring_threads = opts.max_threads;
	for (int sig : kFatalSignals)
		cfg.sig_mask |= 1ull << (sig - 1);
	cfg.sig_mask |= opts.extra_signals;
	cfg.capture_handled = opts.handled;
	cfg.verbose = opts.verbose;
	return cfg;
}

void set_python(CaptureConfig &cfg, const PythonRuntime *rt)
{
	cfg.py_offsets = rt ? &rt->offsets : nullptr;
	cfg.py_runtime = rt && rt->placed ? rt->runtime_addr : 0;
	cfg.py_module_type = rt && rt->placed ? rt->offsets.module_type : 0;
	cfg.py_place_ino = cfg.py_place_size = 0;
	cfg.py_place_runtime_off = cfg.py_place_module_type_off = 0;
	if (!rt)
		return;
	if (auto place = python_placement(*rt)) {
		cfg.py_place_ino = place->ino;
		cfg.py_place_size = place->size;
		cfg.py_place_runtime_off = place->runtime_off;
		cfg.py_place_module_type_off = place->module_type_off;
	}
}

void set_tracked_unwinder(ProcessView &view, HostTracker &tracker, pid_t pid, bool verbose)
{
	view.own_unwinder = std::make_unique<Unwinder>(pid);
	view.own_unwinder->set_display_prefix(tracker.root_prefix(pid));
	try {
		view.own_unwinder->report_maps(tracker.mappings(pid));
	} catch (const Error &e) {
		if (verbose)
			diag("pid " + std::to_string(pid) + ": " + printable(e.what()));
	}
	view.unwinder = view.own_unwinder.get();
}

uint64_t new_dump_id()
{
	static uint64_t last = 0;
	last = std::max(last + 1, clock_ns(CLOCK_REALTIME) / 1000);
	return last;
}

std::unique_ptr<Capture> load_capture(const CaptureConfig &cfg, const std::function<void()> &preload,
				      uint64_t *load_ns)
{
	uint64_t t0 = monotonic_ns();
	std::thread worker(preload);
	std::unique_ptr<Capture> capture;
	try {
		capture = std::make_unique<Capture>(cfg);
	} catch (...) {
		worker.join();
		throw;
	}
	*load_ns = monotonic_ns() - t0;
	worker.join();
	return capture;
}

Event python_dump_with_native(Capture &capture, Assembler &assembler, Assembler::Output &out,
			      pid_t pid, const PythonRuntime &rt, uint32_t trigger,
			      uint32_t current_tid, LiveDumpStats *st)
{
	*st = capture.live_dump(trigger, assembler, out, pid);
	Event ev = python_live_event(pid, rt, trigger, current_tid);
	for (auto it = out.events.begin(); it != out.events.end(); ++it) {
		if (it->id != st->event_id)
			continue;
		ev.threads = std::move(it->threads);
		ev.threads_skipped = it->threads_skipped;
		ev.threads_lost = it->threads_lost;
		ev.ktime_start = it->ktime_start;
		out.events.erase(it);
		break;
	}
	return ev;
}

} // namespace fh
