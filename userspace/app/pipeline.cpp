#include "app/pipeline.h"

#include "python/mixed.h"
#include "python/py_report.h"
#include "report/incident.h"
#include "report/text.h"
#include "util/strings.h"
#include "util/clock.h"
#include "util/diag.h"
#include "util/printable.h"
#include "util/signals.h"

#include <linux/types.h>

#include <cinttypes>
#include <cstdio>

extern "C" {
#include "fh/records.h"
}

namespace fh {

namespace {

// Python threads whose frame chain changed at every read of a live walk.
void warn_unsettled(const Event &ev)
{
	for (const auto &t : ev.py_threads)
		if (t.flags & FH_PY_THREAD_READ_FAILED)
			diag("thread " + hex(t.thread_id, 16) +
			     " changed at every read: its frames may mix two moments");
}

// What a user signal does to a target that does not handle it.
std::vector<Loss> user_signal_losses(const Event &ev)
{
	std::vector<Loss> out;
	if (ev.trigger == FH_TRIGGER_USER_SIGNAL && ev.default_action)
		out.push_back({"signal_terminates", 1,
			       "pid " + std::to_string(ev.tgid) + " does not handle " +
				       signal_abbrev(ev.sig) + ": its default action terminates it"});
	if (ev.refused)
		out.push_back({"signal_refused", 1,
			       signal_abbrev(ev.sig) + " refused to keep pid " +
				       std::to_string(ev.tgid) + " alive (it does not handle it)"});
	return out;
}

// -v: what each thread's capture was like.
std::string thread_details(const Event &ev, const NativeStats &ns)
{
	std::string v;
	char buf[256];
	for (const auto &t : ev.threads) {
		std::snprintf(buf, sizeof(buf),
			      "fh-bpf: thread %u (%s) 0x%016" PRIx64 ": %zu stack bytes", t.tid,
			      printable(t.name).c_str(), t.pthread_id, t.stack.size());
		v += buf;
		if (t.flags & FH_THREAD_STACK_LIMIT)
			v += ", copy limit reached";
		if (t.flags & FH_THREAD_STACK_FAULT)
			v += ", copy stopped at an unreadable page (error " +
			     std::to_string(t.stack_err) + ")";
		if (t.flags & FH_THREAD_SAMPLED)
			v += ", sampled while running";
		if (t.flags & FH_THREAD_RETAKEN)
			v += ", copied again once it stopped running";
		if (t.flags & FH_THREAD_ON_CPU)
			v += ", was running: registers may be stale";
		if (t.flags & FH_THREAD_EXITING)
			v += ", exiting";
		if (t.flags & FH_THREAD_KERNEL_WORKER)
			v += ", kernel worker: no user stack";
		if (auto it = ns.unwind_errors.find(t.tid); it != ns.unwind_errors.end())
			v += ", unwinding stopped: " + it->second;
		v += "\n";
	}
	return v;
}

} // namespace

void mark_main_current(Event &ev)
{
	ev.hit_tid = ev.tgid;
	for (auto &t : ev.threads)
		if (t.tid == ev.tgid)
			t.flags |= FH_THREAD_HIT;
}

void Pipeline::name_kernel_sender(Sender &s)
{
	if (s.kstack.empty() || !s.kernel_function.empty())
		return;
	if (!ksyms_) {
		auto text = read_proc_file("/proc/kallsyms", 64u << 20);
		ksyms_.emplace(text ? *text : std::string());
	}
	std::vector<std::string> names;
	for (uint64_t a : s.kstack)
		names.push_back(ksyms_->name(a));
	KernelSender k = describe_kernel_sender(names);
	s.kernel_function = k.function;
	s.kernel_what = k.what;
}

Incident Pipeline::build(Event &ev, const ProcessView &view, NativeStats &ns)
{
	if (ev.comm.empty())
		ev.comm = view.comm;
	if (ev.sender && ev.sender->kernel)
		name_kernel_sender(*ev.sender);
	bool python = view.python && !ev.py_threads.empty();
	bool fatal = ev.trigger == FH_TRIGGER_FATAL_SIGNAL;
	if (ev.trigger == FH_TRIGGER_DEMAND && !python)
		mark_main_current(ev);

	Incident inc = make_incident(ev, view.meta);
	inc.losses = user_signal_losses(ev);
	if (python && opts_.native && view.unwinder) {
		// --native: the native frames too, the Python ones in place of
		// the evaluation loop's.
		std::vector<EvalCalls> calls;
		python_traceback(ev, *view.python, view.stdlib, inc, &calls);
		MixStats ms;
		std::vector<uint64_t> states;
		for (const auto &t : ev.py_threads)
			states.push_back(t.thread_id);
		inc.threads = mix_threads(std::move(inc.threads), calls,
					  native_threads(ev, *view.unwinder, ns, kMixUnwindFrames),
					  states, opts_.native_all, ms);
		mix_losses(ms, inc.losses);
		if (ev.live())
			warn_unsettled(ev);
	} else if (python) {
		// faulthandler's text has Python frames only: no native unwinding.
		python_traceback(ev, *view.python, view.stdlib, inc);
		for (const auto &t : ev.threads)
			ns.stack_bytes += t.stack.size();
		if (ev.live())
			warn_unsettled(ev);
	} else if (view.unwinder) {
		inc.threads = native_threads(ev, *view.unwinder, ns);
	}
	// Only a fatal error's text has the "Fatal … error" header (and, for
	// Python, the extension modules); a timeout's has its own.
	if (fatal)
		inc.header = inc.python ? fatal_header(ev.sig, *inc.python) : fatal_header(ev.sig);
	else if (ev.trigger == FH_TRIGGER_TIMEOUT)
		inc.header = timeout_header(opts_.timeout_us);
	// The Python walk reads every thread state itself: native thread
	// records beyond --max-threads, or lost, take nothing from its
	// traceback (it says its own losses).
	if (python)
		inc.threads_skipped = inc.threads_lost = 0;
	capture_losses(ev, ns, !python, inc.losses);
	// Whatever a target's names: bounded before any output is made (the
	// Python walk bounds its own part).
	bool cut = bound_threads(inc);
	cut |= bound_text(inc);
	for (const auto &l : inc.losses)
		cut |= l.kind == "python_cut";
	cut_ += cut;
	if (ev.live())
		stale_live_ += ns.stale_threads;
	return inc;
}

bool Pipeline::handle(Event &ev, ProcessTable &processes, const CaptureFacts &facts)
{
	if (!ev.provisional)
		return emit(ev, processes, facts);
	// Held until its process's verdict, which may have come first.
	if (auto v = early_verdicts_.find(ev.id); v != early_verdicts_.end()) {
		Verdict verdict = v->second;
		early_verdicts_.erase(v);
		held_.emplace(ev.id, std::move(ev));
		return settle(verdict, processes);
	}
	if (held_.size() >= kMaxHeld) {
		unsettled_++;
		held_.erase(held_.begin());
	}
	held_.emplace(ev.id, std::move(ev));
	return true;
}

bool Pipeline::settle(const Verdict &v, ProcessTable &processes)
{
	auto it = held_.find(v.event_id);
	if (it == held_.end()) {
		// Reported already (--handled), or its capture is still on its
		// way (its end record was lost: completed later).
		if (early_verdicts_.size() >= kMaxHeld)
			early_verdicts_.erase(early_verdicts_.begin());
		early_verdicts_[v.event_id] = v;
		return true;
	}
	Event ev = std::move(it->second);
	held_.erase(it);
	if (v.kind == FH_VERDICT_SURVIVED) {
		survived_++;
		if (opts_.verbose)
			diag("pid " + std::to_string(ev.tgid) + " handled " + signal_abbrev(ev.sig) +
			     " (" + si_code_name(ev.sig, ev.si_code) + ") in thread " +
			     std::to_string(ev.hit_tid) + " and went on: no incident");
		return true;
	}
	ev.verdict = v;
	return emit(ev, processes, {});
}

const Event *Pipeline::held(uint64_t event_id) const
{
	auto it = held_.find(event_id);
	return it == held_.end() ? nullptr : &it->second;
}

uint64_t Pipeline::drop_unsettled()
{
	unsettled_ += held_.size();
	held_.clear();
	early_verdicts_.clear();
	return unsettled_;
}

bool Pipeline::emit(Event &ev, ProcessTable &processes, const CaptureFacts &facts)
{
	uint64_t t0 = monotonic_ns();
	ProcessView view = processes.view_of(ev);
	NativeStats ns;
	Incident inc = build(ev, view, ns);
	uint64_t t_symbolized = monotonic_ns();
	bool ok = writer_.write(inc);
	uint64_t t_written = monotonic_ns();
	written_++;
	if (written_by_pid_.size() < kPidsCounted || written_by_pid_.count(ev.tgid))
		written_by_pid_[ev.tgid]++;
	fatal_seen_ |= inc.fatal();
	report(ev, view, facts, ns, t0, t_symbolized, t_written);
	return ok;
}

// The event's timings: on --stats-fd, and with -v as diagnostic lines.
void Pipeline::report(const Event &ev, const ProcessView &view, const CaptureFacts &facts,
		      const NativeStats &ns, uint64_t t0, uint64_t t_symbolized, uint64_t t_written)
{
	uint64_t capture_ns = ev.ktime_end > ev.ktime_start ? ev.ktime_end - ev.ktime_start : 0;
	uint64_t to_written = t_written > ev.ktime_start ? t_written - ev.ktime_start : 0;
	if (stats_.on()) {
		nlohmann::ordered_json o = {
			{"event", ev.id},
			{"pid", ev.tgid},
			{"trigger", trigger_name(ev.trigger)},
			{"threads", ev.threads.size()},
			{"python_threads", ev.py_threads.size()},
			{"code_objects", ev.py_codes.size()},
			{"stack_bytes", ns.stack_bytes},
			{"record_bytes", ev.record_bytes},
			{"capture_ns", capture_ns},
			{"prepare_ns", view.prepare_ns},
			{"symbolize_ns", t_symbolized - t0},
			{"write_ns", t_written - t_symbolized},
			{"trigger_to_written_ns", to_written}};
		if (facts.live) {
			o["iterate_ns"] = facts.live->iterate_ns;
			o["sample_ns"] = facts.live->sample_ns;
			o["samples_wanted"] = facts.live->samples_wanted;
			o["samples_missing"] = facts.live->samples_missing;
		}
		if (facts.bpf_ns)
			o["bpf_ns"] = facts.bpf_ns;
		stats_.emit("event", o);
	}
	if (!opts_.verbose)
		return;
	bool live = ev.live();
	size_t n = ev.threads.size();
	char buf[320];
	std::snprintf(buf, sizeof(buf),
		      "fh-bpf: timing: pid %u, %zu threads (%zu Python), %" PRIu64
		      " stack bytes, %s capture %.1f us (%.2f us/thread), mappings %.2f ms, "
		      "symbolized in %.2f ms, %s to written %.2f ms\n",
		      ev.tgid, n, ev.py_threads.size(), ns.stack_bytes, live ? "live" : "kernel",
		      capture_ns / 1e3, n ? capture_ns / 1e3 / n : 0.0, view.prepare_ns / 1e6,
		      (t_symbolized - t0) / 1e6, live ? "dump" : "signal", to_written / 1e6);
	std::string v = buf;
	std::snprintf(buf, sizeof(buf),
		      "fh-bpf: capture: %" PRIu64 " record bytes; Python: %zu threads, %zu code "
		      "objects\n",
		      ev.record_bytes, ev.py_threads.size(), ev.py_codes.size());
	v += buf;
	if (facts.live)
		v += "fh-bpf: live dump: iterator " + fmt("%.1f us", facts.live->iterate_ns / 1e3) +
		     ", " + std::to_string(facts.live->samples_wanted) +
		     " running threads sampled in " + fmt("%.2f ms", facts.live->sample_ns / 1e6) +
		     (facts.live->samples_missing
			      ? ", " + std::to_string(facts.live->samples_missing) + " not"
			      : "") +
		     "\n";
	v += thread_details(ev, ns);
	writer_.detail(v);
}

} // namespace fh
