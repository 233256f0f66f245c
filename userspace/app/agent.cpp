#include "app/agent.h"

#include "app/event_loop.h"
#include "app/flood.h"
#include "app/pipeline.h"
#include "app/target.h"
#include "capture/capture.h"
#include "capture/records.h"
#include "output/json.h"
#include "output/outputs.h"
#include "process/host_tracker.h"
#include "process/kernel_info.h"
#include "process/proc.h"
#include "python/python.h"
#include "python/python_builds.h"
#include "report/incident.h"
#include "util/clock.h"
#include "util/diag.h"
#include "util/error.h"
#include "util/printable.h"
#include "util/signals.h"

#include <linux/types.h>
#include <signal.h>
#include <unistd.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

extern "C" {
#include "fh/python.h"
#include "fh/records.h"
}

namespace fh {

namespace {

// The ring holds this many threads' records by default: a burst of
// single-threaded crashers, or a few big processes, between two reads.
constexpr uint32_t kAgentRingThreads = 512;

enum Tag : uint32_t { kRing, kTracker, kSignal, kTimer };

// A flood control summary as a record of its own, made at realtime now_ns;
// `line` its text.
nlohmann::ordered_json suppressed_json(const FloodControl::Summary &s, uint64_t now_ns,
				       const std::string &line)
{
	using json = nlohmann::ordered_json;
	json what = json::object();
	for (const auto &[name, n] : s.what)
		what[json_text(name)] = n;
	json cmdlines = json::array();
	for (const auto &c : s.cmdlines) {
		json args = json::array();
		for (const auto &a : c)
			args.push_back(json_text(a));
		cmdlines.push_back(std::move(args));
	}
	return {{"schema", kIncidentSchema},
		{"time", utc_time(now_ns)},
		{"trigger", "suppressed"},
		{"program", json_text(s.program)},
		{"comm", json_text(s.comm)},
		{"cmdlines", std::move(cmdlines)},
		{"suppressed", s.suppressed},
		{"pids", s.pids},
		{"what", std::move(what)},
		{"seconds", (s.last_ns - s.first_ns) / 1000000000ull},
		{"text", json_text(line)}};
}

// The host agent: every process in scope is its process table.
class Agent : public ProcessTable {
public:
	// The headline starts each incident in the output too: one output
	// holds every process's incidents.
	explicit Agent(const Options &opts)
		: opts_(opts), writer_(opts, {opts.json, true, opts.verbose}), stats_(opts.stats_fd),
		  pipeline_(opts, writer_, stats_), flood_(opts.process_rate, opts.program_rate)
	{
	}
	int run();

private:
	void start();
	void iterate(); // one pass of the loop: read everything, handle it
	void handle(Event &ev);
	void settle(const Verdict &v);
	ProcessView view_of(const Event &ev) override;
	FloodControl::Subject subject_of(const Event &ev) const;
	void rearm_timer();
	void final_report();
	template <typename F> void guarded(F f);
	static constexpr uint64_t kStaleNs = 1'000'000'000;
	void flush_summaries(bool force);

	const Options &opts_;
	IncidentWriter writer_;
	StatsChannel stats_;
	Pipeline pipeline_;
	FloodControl flood_;
	std::unique_ptr<HostTracker> tracker_;
	std::unique_ptr<Capture> capture_;
	Assembler assembler_;
	CgroupNames cgroups_;
	ScopeFilter scope_; // --comm, --uid, --cgroup for placements
	std::unique_ptr<HostPythons> pythons_;
	UniqueFd sigfd_, timer_;
	std::optional<bool> timer_eager_; // none: not armed yet
	uint64_t unhandled_ = 0; // events or mappings that failed to be handled
};

void Agent::start()
{
	probe_support();
	CaptureConfig cfg = base_capture_config(opts_);
	cfg.tgid = 0;
	cfg.scope.comms = opts_.comms;
	cfg.scope.exclude_comms = opts_.exclude_comms;
	cfg.scope.uids = opts_.uids;
	scope_.comms = opts_.comms;
	scope_.exclude_comms = opts_.exclude_comms;
	scope_.uids = opts_.uids;
	for (const auto &path : opts_.cgroups) {
		uint64_t id;
		try {
			id = cgroups_.id_of(path);
		} catch (const Error &e) {
			throw Error("--cgroup " + path + ": " + e.what(), ENOENT, kExitUsage);
		}
		cfg.scope.cgroup_ids.push_back(id);
		auto name = cgroups_.path(id);
		if (!name)
			throw Error("--cgroup " + path + ": not found below " + cgroups_.mount(),
				    ENOENT, kExitUsage);
		scope_.cgroups.push_back(*name);
	}
	cfg.ring_threads = opts_.max_threads_given ? opts_.max_threads : kAgentRingThreads;

	// The mappings first, so that none made while the programs load is
	// missed; then what /proc shows of the processes already running.
	uint64_t t0 = monotonic_ns();
	tracker_ = std::make_unique<HostTracker>();
	capture_ = std::make_unique<Capture>(cfg);
	pythons_ = std::make_unique<HostPythons>(*capture_, scope_, opts_.verbose);
	tracker_->seed_from_proc();
	tracker_->drain();
	for (const auto &c : tracker_->take_changes())
		pythons_->place(c);
	tracker_->advance(monotonic_ns());
	stats_.emit("armed", {{"processes", tracker_->processes()},
			      {"armed_ns", monotonic_ns() - t0}});
	if (opts_.verbose)
		diag("watching every process" +
		    std::string(opts_.comms.empty() && opts_.exclude_comms.empty() &&
					opts_.uids.empty() && opts_.cgroups.empty()
				? ""
				: " in scope") +
		    ": " + std::to_string(tracker_->processes()) + " known, " +
		    std::to_string(pythons_->builds()) + " Python builds; armed in " +
		    std::to_string((monotonic_ns() - t0) / 1000000) + " ms");
}

// The view of an event's process: its interpreter, placed
// where the kernel found it, or its mappings (through its root) for native
// frames; its identity from the capture and the mapping records.
ProcessView Agent::view_of(const Event &ev)
{
	uint64_t t0 = monotonic_ns();
	pid_t pid = static_cast<pid_t>(ev.tgid);
	ProcessView view;
	view.meta.exe = tracker_->exe(pid);
	view.meta.cmdline = ev.identity.cmdline;
	if (ev.identity.known) {
		view.meta.uid = ev.identity.uid;
		view.meta.ns_pid = ev.identity.ns_tgid;
		if (auto cg = cgroups_.path(ev.identity.cgroup_id))
			view.meta.cgroup = *cg;
	}
	std::optional<fh_py_proc> proc;
	if (!ev.py_threads.empty())
		proc = capture_->python_of(pid);
	if (auto rt = proc ? pythons_->placed(*proc, &view.stdlib) : std::nullopt) {
		view.own_python = std::move(rt);
		view.python = &*view.own_python;
		if (!opts_.native)
			return view; // faulthandler's text: no native frames
	}
	set_tracked_unwinder(view, *tracker_, pid, opts_.verbose);
	view.prepare_ns = monotonic_ns() - t0;
	return view;
}

// Whom flood control counts an event against: its process, and the
// program it runs (its executable, the script an interpreter runs).
FloodControl::Subject Agent::subject_of(const Event &ev) const
{
	pid_t pid = static_cast<pid_t>(ev.tgid);
	std::string exe = tracker_->exe(pid);
	return {pid, program_identity(exe, ev.identity.cmdline, ev.comm), ev.comm,
		ev.identity.cmdline};
}

void Agent::handle(Event &ev)
{
	if (ev.provisional) {
		pipeline_.handle(ev, *this); // held: admitted if its process dies of it
		return;
	}
	bool fatal = ev.trigger == FH_TRIGGER_FATAL_SIGNAL;
	// A crash loop is held back before it costs any symbolizing.
	if (!flood_.admit(subject_of(ev), fatal ? signal_abbrev(ev.sig) : trigger_name(ev.trigger),
			  monotonic_ns()))
		return;
	pipeline_.handle(ev, *this);
}

// A process's end after a fault it handled: its death is admitted like
// any crash.
void Agent::settle(const Verdict &v)
{
	const Event *ev = pipeline_.held(v.event_id);
	if (ev && v.kind != FH_VERDICT_SURVIVED &&
	    !flood_.admit(subject_of(*ev), signal_abbrev(ev->sig), monotonic_ns())) {
		pipeline_.discard(v.event_id);
		return;
	}
	pipeline_.settle(v, *this);
}

// What flood control held back, once per window: on stderr, in the output,
// as a record of its own in the log directory and syslog.
void Agent::flush_summaries(bool force)
{
	for (const auto &s : flood_.take_summaries(monotonic_ns(), force)) {
		std::string line = FloodControl::describe(s);
		uint64_t now = clock_ns(CLOCK_REALTIME);
		nlohmann::ordered_json obj = suppressed_json(s, now, line);
		std::string json = dump_line(obj);
		std::string record = opts_.json ? json + "\n" : "fh-bpf: " + line + "\n";
		std::string stem = file_stem(now, s.comm, 0, "suppressed");
		SdParams sd = {{"incident", stem},
			       {"program", s.program},
			       {"comm", s.comm},
			       {"suppressed", std::to_string(s.suppressed)}};
		writer_.write_other(line, record, stem, opts_.json ? "json" : "txt", record,
				    kSyslogWarning, "suppressed", sd, opts_.json ? json : line,
				    opts_.json ? &obj : nullptr);
	}
}

void Agent::iterate()
{
	// Records stamped up to t are all readable by now: once the events
	// read below are handled, the mappings may move on to t.  (An event
	// not read yet was stamped after t.)
	uint64_t t = monotonic_ns();
	Assembler::Output out;
	capture_->consume(assembler_, out);
	tracker_->drain();
	for (const auto &c : tracker_->take_changes())
		guarded([&] { pythons_->place(c); });
	// A capture whose end record the full ring had no room for is all
	// there a second later: handled as it is, not held until exit.
	for (auto &ev : assembler_.take_stale(t > kStaleNs ? t - kStaleNs : 0))
		out.events.push_back(std::move(ev));
	for (auto &ev : out.events) {
		tracker_->advance(ev.ktime_start);
		guarded([&] { handle(ev); });
	}
	for (const auto &v : out.verdicts)
		guarded([&] { settle(v); });
	tracker_->advance(t);
	tracker_->sweep(t);
	rearm_timer();
}

// What one process's mapping or capture brings (a file, a render) must not
// end the watch of the host: said, counted, and the loop goes on.
template <typename F> void Agent::guarded(F f)
{
	try {
		f();
	} catch (const std::exception &e) {
		unhandled_++;
		diag(std::string("internal error, the watch goes on: ") + e.what());
	}
}

// The timer runs every second, or every 2 ms while records stamped after
// the last pass wait, or while an interpreter's stdlib names are looked
// for.
void Agent::rearm_timer()
{
	bool eager = tracker_->queued();
	eager |= pythons_->reading_soon(monotonic_ns());
	if (timer_eager_ && eager == *timer_eager_)
		return;
	timer_eager_ = eager;
	uint64_t us = eager ? 2'000 : 1'000'000;
	set_timer(timer_.get(), us, us);
}

void Agent::final_report()
{
	// No capture is to come: every record read counts (its losses too).
	tracker_->drain();
	tracker_->advance(UINT64_MAX);
	Counters c = capture_->counters();
	LossList lost;
	add_capture_losses(lost, c, assembler_);
	lost.add(tracker_->lost(), "mapping records (perf buffer full: frames may be unresolved)");
	lost.add(tracker_->malformed(), "malformed mapping records");
	lost.add(tracker_->roots_dropped(), "new processes' roots let go (their files looked for on the host)");
	lost.add(tracker_->roots_refused(),
		 "processes' roots not held (descriptor limit; their files looked for through "
		 "/proc/PID/root while they lived, else on the host)");
	writer_.add_losses(lost);
	lost.add(unhandled_, "events or mappings fh-bpf failed to handle (said above)");
	lost.add(pythons_->unsupported(), "interpreters met that fh-bpf cannot walk (native frames)");
	lost.add(pipeline_.cut(), "incidents cut to their size limit (said in each)");
	lost.add(pipeline_.drop_unsettled(), "faults processes handled, with no verdict on them");
	lost.add(pythons_->stdlib_given_up(), "Python builds whose standard library names cost too much to read");
	lost.add(pythons_->unsaid(), "messages not said (the first " +
					     std::to_string(HostPythons::kNamedMessages) + " were)");
	if (!lost.empty())
		diag("lost: " + lost.text());
	stats_.end(pipeline_.written(), lost);
	uint64_t n = pipeline_.written();
	std::string summary = "system-wide watch ended: " + std::to_string(n) +
			      (n == 1 ? " incident" : " incidents");
	if (flood_.suppressed_total())
		summary += "; " + std::to_string(flood_.suppressed_total()) +
			   " held back by the rate limits";
	if (c.repeats)
		summary += "; " + std::to_string(c.repeats) +
			   " more fatal signals of processes already captured dying (one incident each)";
	if (c.out_of_scope)
		summary += "; " + std::to_string(c.out_of_scope) +
			   " watched signals of processes out of scope";
	if (pipeline_.survived())
		summary += "; " + std::to_string(pipeline_.survived()) +
			   " faults processes handled and went on from (no incident)";
	if (c.handled_skipped)
		summary += "; " + std::to_string(c.handled_skipped) +
			   " handled signals not captured (one open a process, a bounded number)";
	diag(summary);
}

int Agent::run()
{
	sigfd_ = signal_fd({SIGINT, SIGTERM, SIGHUP});
	timer_ = interval_timer(1'000'000, 1'000'000);
	EventLoop loop;
	start();
	loop.add(capture_->fd(), kRing);
	for (int fd : tracker_->fds())
		loop.add(fd, kTracker);
	loop.add(sigfd_.get(), kSignal);
	loop.add(timer_.get(), kTimer);
	rearm_timer();
	if (opts_.ready_fd >= 0) {
		write_all(opts_.ready_fd, "ready\n");
		close(opts_.ready_fd);
	}
	capture_->keep_core_btf(); // armed: for the next runs
	for (bool done = false; !done;) {
		for (uint32_t tag : loop.wait()) {
			SignalRead si;
			if (tag == kSignal && read_signal(sigfd_.get(), si)) {
				// SIGHUP: after log rotation, a new file at -o's path.
				if (si.signo == SIGHUP)
					writer_.reopen();
				else
					done = true;
			} else if (tag == kTimer && read_timer(timer_.get())) {
				pythons_->read_stdlib_names();
				flush_summaries(false);
			}
		}
		iterate();
	}
	// Stopped: no program starts a capture any more, and once the ones
	// running are done, every record they wrote is in the ring.
	capture_->deactivate();
	if (!capture_->wait_idle(kStaleNs))
		diag("BPF programs still running after 1 s: their captures may be incomplete");
	iterate();
	for (auto &ev : assembler_.take_incomplete())
		guarded([&] { handle(ev); });
	flush_summaries(true);
	final_report();
	return writer_.unwritten() ? kExitFailure : kExitOk;
}

} // namespace

int run_agent(const Options &opts)
{
	Agent agent(opts);
	return agent.run();
}

} // namespace fh
