#include "python/live_walk.h"

#include "process/proc.h"
#include "python/py_walk.h"
#include "util/clock.h"

#include <cstdlib>
#include <cstring>
#include <string>

#include <linux/types.h>

extern "C" {
#include "fh/records.h"
}

namespace fh {

namespace {

// The last number of a /proc status text's NSpid line: the id in the
// task's own (innermost) pid namespace; 0 if none.
uint32_t innermost_pid(const std::string &status)
{
	size_t at = status.find("\nNSpid:");
	if (at == std::string::npos)
		return 0;
	const char *p = status.c_str() + at + 7;
	uint32_t last = 0;
	for (;;) {
		char *next;
		unsigned long v = std::strtoul(p, &next, 10);
		if (next == p || v > UINT32_MAX)
			break;
		last = static_cast<uint32_t>(v);
		p = next;
		if (*p == '\n' || !*p)
			break;
	}
	return last;
}

// A /proc status text's Name line (the thread's comm, escaped by the
// kernel); empty if none.
std::string status_name(const std::string &status)
{
	if (status.compare(0, 6, "Name:\t") != 0)
		return {};
	size_t end = status.find('\n');
	return status.substr(6, end == std::string::npos ? std::string::npos : end - 6);
}

// Each thread's id in the process's pid namespace and on the host, and
// its name.  A process in fh-bpf's own pid namespace (its innermost pid is
// the one /proc names it by) has the same ids in both: its threads' names
// are read from their comm files, a few bytes each, not from their status
// texts, which the kernel formats whole at each read (half the time of a
// 100-thread dump).
std::map<uint32_t, uint32_t> host_tids(pid_t tgid, std::map<uint32_t, std::string> &names)
{
	std::map<uint32_t, uint32_t> out;
	std::string dir = "/proc/" + std::to_string(tgid) + "/task/";
	auto main_status = read_proc_file(dir + std::to_string(tgid) + "/status", 1 << 16);
	bool same_ns = main_status && innermost_pid(*main_status) == static_cast<uint32_t>(tgid);
	for (pid_t tid : threads_of(tgid)) {
		std::string at = dir + std::to_string(tid);
		if (same_ns) {
			out[static_cast<uint32_t>(tid)] = static_cast<uint32_t>(tid);
			auto comm = read_proc_file(at + "/comm", 64);
			if (comm && !comm->empty() && comm->back() == '\n')
				comm->pop_back();
			if (comm && !comm->empty())
				names[static_cast<uint32_t>(tid)] = std::move(*comm);
			continue;
		}
		auto status = read_proc_file(at + "/status", 1 << 16);
		if (!status)
			continue;
		if (uint32_t ns = innermost_pid(*status))
			out[ns] = static_cast<uint32_t>(tid);
		if (std::string name = status_name(*status); !name.empty())
			names[static_cast<uint32_t>(tid)] = std::move(name);
	}
	return out;
}

} // namespace

Event python_live_event(pid_t tgid, const PythonRuntime &rt, uint32_t trigger,
			uint32_t current_tid)
{
	Event ev;
	ev.tgid = static_cast<uint32_t>(tgid);
	ev.trigger = trigger;
	ev.ktime_start = monotonic_ns();
	ev.host_tid_of = host_tids(tgid, ev.thread_names);
	if (trigger == FH_TRIGGER_DEMAND)
		current_tid = static_cast<uint32_t>(tgid);
	// The dumping thread as the target's thread states know it.
	WalkView view;
	for (const auto &[ns, host] : ev.host_tid_of)
		if (current_tid && host == current_tid)
			view.ns_tid = ns;
	view.main = current_tid && current_tid == ev.tgid;
	ProcessMemory mem(tgid);
	walk_python(mem, rt, ev, view);
	ev.ktime_end = monotonic_ns();
	ev.complete = true;
	if (current_tid && !ev.py_threads.empty()) {
		ev.hit_tid = current_tid;
		// Where the TSS could not say which is current: before 3.11 a
		// thread state has no TID, and the main thread's (the oldest) is
		// the process id (in its namespace).
		auto &main = ev.py_threads.back();
		if (!(main.flags & FH_PY_THREAD_TSS_READ) && !main.native_thread_id && view.main)
			main.native_thread_id = view.ns_tid ? view.ns_tid : ev.tgid;
	}
	return ev;
}

} // namespace fh
