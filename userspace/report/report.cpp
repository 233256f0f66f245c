#include "report/report.h"

#include "util/printable.h"
#include "util/signals.h"

#include <linux/types.h>

#include <cinttypes>
#include <cstdio>

extern "C" {
#include "fh/records.h"
}

namespace fh {

Traceback build_traceback(const Event &ev, Unwinder &unwinder, ReportStats &stats)
{
	Traceback tb;
	tb.header = fatal_header(ev.sig);

	std::vector<const ThreadCapture *> order;
	for (const auto &t : ev.threads)
		if (t.hit())
			order.push_back(&t);
	for (auto it = ev.threads.rbegin(); it != ev.threads.rend(); ++it)
		if (!it->hit())
			order.push_back(&*it);

	for (const ThreadCapture *t : order) {
		ThreadTrace tt;
		tt.pthread_id = t->pthread_id;
		tt.tid = t->tid;
		tt.name = t->name;
		tt.current = t->hit();
		stats.stack_bytes += t->stack.size();
		if (t->flags & FH_THREAD_ON_CPU)
			stats.stale_threads++;
		if (!(t->flags & FH_THREAD_KERNEL_WORKER)) {
			auto res = unwinder.unwind(*t, kMaxFrames + 1);
			tt.frames = std::move(res.frames);
			if (!res.error.empty())
				stats.unwind_errors[t->tid] = res.error;
			if (res.truncated && tt.frames.size() <= kMaxFrames) {
				tt.truncated = true;
				stats.truncated_threads++;
			}
		}
		tb.threads.push_back(std::move(tt));
	}
	return tb;
}

std::string event_summary(const Event &ev)
{
	char buf[512];
	if (ev.trigger == FH_TRIGGER_TIMEOUT || ev.trigger == FH_TRIGGER_DEMAND) {
		size_t n = ev.py_threads.empty() ? ev.threads.size() : ev.py_threads.size();
		std::snprintf(buf, sizeof(buf), "fh-bpf: pid %u (%s): %s, %zu thread%s\n", ev.tgid,
			      printable(ev.comm).c_str(),
			      ev.trigger == FH_TRIGGER_TIMEOUT ? "timeout" : "dump on demand", n,
			      n == 1 ? "" : "s");
		return buf;
	}
	std::string hit_name;
	for (const auto &t : ev.threads)
		if (t.tid == ev.hit_tid)
			hit_name = t.name;
	int n = std::snprintf(buf, sizeof(buf), "fh-bpf: pid %u (%s), thread %u (%s): %s (%s)",
			      ev.tgid, printable(ev.comm).c_str(), ev.hit_tid,
			      printable(hit_name).c_str(),
			      signal_abbrev(ev.sig).c_str(), si_code_name(ev.sig, ev.si_code).c_str());
	std::string out(buf, n > 0 ? std::min<size_t>(n, sizeof(buf) - 1) : 0);
	if (signal_has_fault_address(ev.sig, ev.si_code)) {
		std::snprintf(buf, sizeof(buf), " at address 0x%" PRIx64, ev.fault_addr);
		out += buf;
	}
	if (ev.terminated)
		out += ", which kills without delivery (every thread got SIGKILL)";
	if (ev.sender && ev.sender->kernel) {
		out += ", sent by the kernel";
		if (!ev.sender->kernel_function.empty())
			out += " (" + ev.sender->kernel_function + ")";
		if (!ev.sender->kernel_what.empty())
			out += ": " + ev.sender->kernel_what;
		if (ev.sender->tgid && ev.sender->tgid != ev.tgid) {
			std::snprintf(buf, sizeof(buf), ", in the context of pid %u (%s)",
				      ev.sender->tgid, printable(ev.sender->comm).c_str());
			out += buf;
		}
	} else if (ev.sender) {
		std::snprintf(buf, sizeof(buf), ", sent by pid %u (%s), uid %u", ev.sender->tgid,
			      printable(ev.sender->comm).c_str(), ev.sender->uid);
		out += buf;
	}
	return out + "\n";
}

namespace {

std::string threads(uint32_t n) { return std::to_string(n) + (n == 1 ? " thread" : " threads"); }

} // namespace

std::string event_losses(const Event &ev, const ReportStats &stats)
{
	std::string out;
	if (!ev.complete)
		out += "fh-bpf: the capture is incomplete: its end record was lost (ring buffer "
		       "full); threads may be missing\n";
	if (ev.threads_skipped)
		out += "fh-bpf: " + threads(ev.threads_skipped) +
		       " beyond --max-threads not captured\n";
	if (ev.threads_lost)
		out += "fh-bpf: " + threads(ev.threads_lost) +
		       " lost: no room in the ring buffer\n";
	if (stats.stale_threads && ev.live())
		out += "fh-bpf: " + threads(stats.stale_threads) +
		       " kept running and could not be sampled: their frames may be stale\n";
	else if (stats.stale_threads)
		out += "fh-bpf: " + threads(stats.stale_threads) +
		       " running on another CPU at the signal: their frames may be stale\n";
	if (stats.truncated_threads)
		out += "fh-bpf: stack deeper than the bytes copied in " +
		       threads(stats.truncated_threads) + " (see --stack-size)\n";
	return out;
}

} // namespace fh
