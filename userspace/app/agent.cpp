#include "app/agent.h"
#include "util/clock.h"

#include "capture/capture.h"
#include "util/error.h"
#include "app/flood.h"
#include "process/host_tracker.h"
#include "report/incident.h"
#include "process/kernel_info.h"
#include "process/proc.h"
#include "python/py_report.h"
#include "python/py_walk.h"
#include "python/python.h"
#include "python/python_builds.h"
#include "capture/records.h"
#include "report/report.h"
#include "util/signals.h"
#include "output/sink.h"
#include "output/outputs.h"
#include "util/printable.h"
#include "symbolize/unwinder.h"

#include <signal.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cctype>
#include <cinttypes>
#include <cstdio>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

extern "C" {
#include "fh/python.h"
#include "fh/records.h"
}

namespace fh {

namespace {

constexpr int kFatalSignals[] = {SIGSEGV, SIGFPE, SIGABRT, SIGBUS, SIGILL};
// The ring holds this many threads' records by default: a burst of
// single-threaded crashers, or a few big processes, between two reads.
constexpr uint32_t kAgentRingThreads = 512;

enum Tag : uint32_t { kRing, kTracker, kSignal, kTimer };

// A diagnostic line: whatever a target put in its parts (printable() is
// idempotent: parts escaped already stay as they are).
void log(const std::string &msg)
{
	write_all(STDERR_FILENO, "fh-bpf: " + printable(msg, 65536) + "\n");
}

class Agent {
public:
	explicit Agent(const Options &opts)
		: opts_(opts), sink_(opts.output), flood_(opts.process_rate, opts.comm_rate)
	{
	}
	int run();

private:
	void start();
	void iterate(); // one pass of the loop: read everything, handle it
	void handle(Event &ev);
	void name_kernel_sender(Sender &s);
	void rearm_timer();
	void final_report();
	template <typename F> void guarded(F f);
	static constexpr uint64_t kStaleNs = 1'000'000'000;
	void flush_summaries(bool force);

	const Options &opts_;
	Sink sink_;
	std::unique_ptr<IncidentCopies> copies_; // --log-dir, --syslog
	FloodControl flood_;
	std::unique_ptr<HostTracker> tracker_;
	std::unique_ptr<Capture> capture_;
	Assembler assembler_;
	CgroupNames cgroups_;
	std::optional<KernelSymbols> ksyms_;
	ScopeFilter scope_; // --comm, --uid, --cgroup for placements
	std::unique_ptr<HostPythons> pythons_;
	UniqueFd ep_, sigfd_, timer_;
	std::optional<bool> timer_eager_; // none: not armed yet
	uint64_t incidents_ = 0;
	uint64_t unwritten_ = 0;   // incidents the output could not take
	uint64_t unhandled_ = 0;   // events or mappings that failed to be handled
	uint64_t cut_ = 0;	    // incidents cut to kIncidentMaxBytes
};

void Agent::start()
{
	probe_support();
	copies_ = std::make_unique<IncidentCopies>(opts_);

	CaptureConfig cfg;
	cfg.tgid = 0;
	cfg.scope.comms = opts_.comms;
	cfg.scope.exclude_comms = opts_.exclude_comms;
	cfg.scope.uids = opts_.uids;
	scope_.comms = opts_.comms;
	scope_.exclude_comms = opts_.exclude_comms;
	scope_.uids = opts_.uids;
	for (const auto &path : opts_.cgroups) {
		std::string why;
		auto id = cgroups_.id_of(path, why);
		if (!id)
			throw Error("--cgroup " + path + ": " + why, ENOENT, kExitUsage);
		cfg.scope.cgroup_ids.push_back(*id);
		auto name = cgroups_.path(*id);
		if (!name)
			throw Error("--cgroup " + path + ": not found below " + cgroups_.mount(),
				    ENOENT, kExitUsage);
		scope_.cgroups.push_back(*name);
	}
	cfg.stack_size = opts_.stack_size;
	cfg.max_threads = opts_.max_threads;
	cfg.ring_threads = opts_.max_threads_given ? opts_.max_threads : kAgentRingThreads;
	for (int sig : kFatalSignals)
		cfg.sig_mask |= 1ull << (sig - 1);
	cfg.sig_mask |= opts_.extra_signals;
	cfg.capture_handled = opts_.handled;
	cfg.user_signal = 0;
	cfg.verbose = opts_.verbose;

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
	if (opts_.verbose)
		log("watching every process" +
		    std::string(opts_.comms.empty() && opts_.exclude_comms.empty() &&
					opts_.uids.empty() && opts_.cgroups.empty()
				? ""
				: " in scope") +
		    ": " + std::to_string(tracker_->processes()) + " known, " +
		    std::to_string(pythons_->builds()) + " Python builds; armed in " +
		    std::to_string((monotonic_ns() - t0) / 1000000) + " ms");
}

void Agent::name_kernel_sender(Sender &s)
{
	if (s.kstack.empty())
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

void Agent::handle(Event &ev)
{
	uint64_t t0 = monotonic_ns(), t_maps = 0;
	ReportStats stats;
	std::string text;
	bool fatal = ev.trigger == FH_TRIGGER_FATAL_SIGNAL;
	bool records = opts_.json || copies_->any();
	std::vector<IncidentThread> inc_threads;
	std::vector<std::string> modules;
	std::string python;
	std::string notes; // fh-bpf's own lines on what the text left out
	bool cut = false;
	// A crash loop is held back before it costs any symbolizing.
	if (!flood_.admit(static_cast<pid_t>(ev.tgid), ev.comm,
			  fatal ? signal_abbrev(ev.sig) : trigger_name(ev.trigger), monotonic_ns()))
		return;
	if (ev.sender && ev.sender->kernel)
		name_kernel_sender(*ev.sender);

	std::optional<fh_py_proc> proc;
	if (!ev.py_threads.empty())
		proc = capture_->python_of(static_cast<pid_t>(ev.tgid));
	const HostPythons::Build *b = proc ? pythons_->build(proc->build) : nullptr;
	if (b) {
		PythonRuntime rt = b->rt;
		place_python_at(rt, proc->runtime, proc->module_type);
		PythonText p = python_text(ev, rt, b->stdlib ? &*b->stdlib : nullptr,
					   fatal ? py_fatal_header(ev.sig) : std::string());
		text = std::move(p.text);
		modules = std::move(p.modules);
		if (records)
			inc_threads = incident_threads(p.threads);
		python = python_version(rt);
		notes = std::move(p.notes);
		cut = p.cut;
	} else {
		Unwinder unwinder(static_cast<pid_t>(ev.tgid));
		unwinder.set_display_prefix(tracker_->root_prefix(static_cast<pid_t>(ev.tgid)));
		try {
			unwinder.report_maps(tracker_->maps_text(static_cast<pid_t>(ev.tgid)));
		} catch (const Error &e) {
			if (opts_.verbose)
				log("pid " + std::to_string(ev.tgid) + ": " + printable(e.what()));
		}
		t_maps = monotonic_ns();
		Traceback tb = build_traceback(ev, unwinder, stats);
		text = render(tb);
		if (records)
			inc_threads = incident_threads(tb);
	}
	// Whatever a target's names: bounded before any copy is made.
	cut |= bound_incident(text, inc_threads, notes);
	cut_ += cut;
	std::string losses = notes + event_losses(ev, stats);
	std::string diag = event_summary(ev);

	Incident inc;
	if (records) {
		ProcessMeta meta;
		meta.exe = tracker_->exe(static_cast<pid_t>(ev.tgid));
		meta.cmdline = ev.identity.cmdline;
		if (ev.identity.known) {
			meta.uid = ev.identity.uid;
			meta.ns_pid = ev.identity.ns_tgid;
			if (auto cg = cgroups_.path(ev.identity.cgroup_id))
				meta.cgroup = *cg;
		}
		inc = make_incident(ev, meta, text);
		inc.python = python;
		inc.threads = std::move(inc_threads);
		inc.extension_modules = std::move(modules);
		inc.losses = loss_sentences(losses);
	}
	// The header line names the process: on stderr, and in a text record
	// (once, when the record goes to stderr too).
	if (!sink_.is_stderr() || opts_.json)
		write_all(STDERR_FILENO, diag);
	std::string record = opts_.json ? incident_json(inc) + "\n" : diag + text;
	if (!losses.empty() && !opts_.json)
		record += losses;
	try {
		sink_.write(record);
	} catch (const Error &e) {
		unwritten_++;
		log(e.what());
	}
	if (!losses.empty() && (!sink_.is_stderr() || opts_.json))
		write_all(STDERR_FILENO, losses);
	copies_->write(ev, inc, opts_.json, diag + text + losses, diag + text + losses);
	incidents_++;
	if (opts_.verbose) {
		uint64_t t1 = monotonic_ns();
		char buf[256];
		std::snprintf(buf, sizeof(buf),
			      "timing: pid %u, %zu threads, signal to captured %.1f us, mappings %.2f ms, "
			      "handled in %.2f ms, signal to written %.2f ms",
			      ev.tgid, ev.threads.size(),
			      ev.ktime_end > ev.ktime_start ? (ev.ktime_end - ev.ktime_start) / 1e3 : 0.0,
			      t_maps ? (t_maps - t0) / 1e6 : 0.0, (t1 - t0) / 1e6,
			      (t1 - ev.ktime_start) / 1e6);
		log(buf);
	}
}

// What flood control held back, once per window: on stderr, in the output,
// as a record of its own in the log directory and syslog.
void Agent::flush_summaries(bool force)
{
	for (const auto &s : flood_.take_summaries(monotonic_ns(), force)) {
		std::string line = FloodControl::describe(s);
		log(line);
		uint64_t now = clock_ns(CLOCK_REALTIME);
		std::string json = suppressed_json(s, now, line);
		std::string record = opts_.json ? json + "\n" : "fh-bpf: " + line + "\n";
		try {
			if (!sink_.is_stderr() || opts_.json)
				sink_.write(record);
		} catch (const Error &e) {
			log(e.what());
		}
		std::string stem = file_stem(now, s.comm, 0, "suppressed");
		copies_->write_other(stem, opts_.json ? "json" : "txt", record, kSyslogWarning,
				     "suppressed",
				     {{"incident", stem}, {"comm", s.comm},
				      {"suppressed", std::to_string(s.suppressed)}},
				     opts_.json ? json : line);
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
		log(std::string("internal error, the watch goes on: ") + e.what());
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
	struct itimerspec its = {};
	if (eager) {
		its.it_value.tv_nsec = 2'000'000;
		its.it_interval.tv_nsec = 2'000'000;
	} else {
		its.it_value.tv_sec = 1;
		its.it_interval.tv_sec = 1;
	}
	if (timerfd_settime(timer_.get(), 0, &its, nullptr) != 0)
		throw sys_error("arming the timer", errno);
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
	copies_->add_losses(lost);
	lost.add(unwritten_, "incidents the output could not take");
	lost.add(unhandled_, "events or mappings fh-bpf failed to handle (said above)");
	lost.add(pythons_->unsupported(), "interpreters met that fh-bpf cannot walk (native frames)");
	lost.add(cut_, "incidents cut to their size limit (said in each)");
	lost.add(pythons_->stdlib_given_up(), "Python builds whose standard library names cost too much to read");
	lost.add(pythons_->unsaid(), "messages not said (the first " +
					     std::to_string(HostPythons::kNamedMessages) + " were)");
	if (!lost.empty())
		log("lost: " + lost.text());
	std::string summary = "system-wide watch ended: " + std::to_string(incidents_) +
			      (incidents_ == 1 ? " incident" : " incidents");
	if (flood_.suppressed_total())
		summary += "; " + std::to_string(flood_.suppressed_total()) +
			   " held back by the rate limits";
	if (c.repeats)
		summary += "; " + std::to_string(c.repeats) +
			   " more fatal signals of processes already captured dying (one incident each)";
	if (c.out_of_scope)
		summary += "; " + std::to_string(c.out_of_scope) +
			   " watched signals of processes out of scope";
	log(summary);
}

int Agent::run()
{
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, nullptr);
	sigfd_ = UniqueFd(signalfd(-1, &mask, SFD_CLOEXEC));
	timer_ = UniqueFd(timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK));
	ep_ = UniqueFd(epoll_create1(EPOLL_CLOEXEC));
	if (!sigfd_ || !timer_ || !ep_)
		throw sys_error("setting up the event loop", errno);

	start();

	auto add = [&](int fd, uint32_t tag) {
		struct epoll_event e = {};
		e.events = EPOLLIN;
		e.data.u32 = tag;
		if (epoll_ctl(ep_.get(), EPOLL_CTL_ADD, fd, &e) != 0)
			throw sys_error("epoll_ctl", errno);
	};
	add(capture_->fd(), kRing);
	for (int fd : tracker_->fds())
		add(fd, kTracker);
	add(sigfd_.get(), kSignal);
	add(timer_.get(), kTimer);
	rearm_timer();
	if (opts_.ready_fd >= 0) {
		write_all(opts_.ready_fd, "ready\n");
		close(opts_.ready_fd);
	}

	for (bool done = false; !done;) {
		struct epoll_event evs[8];
		int n = epoll_wait(ep_.get(), evs, 8, -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			throw sys_error("epoll_wait", errno);
		}
		for (int i = 0; i < n; i++) {
			if (evs[i].data.u32 == kSignal) {
				struct signalfd_siginfo si;
				if (read(sigfd_.get(), &si, sizeof(si)) != sizeof(si))
					continue;
				if (si.ssi_signo != SIGHUP) {
					done = true;
				} else if (!sink_.is_stderr()) {
					// After log rotation: a new file at -o's path.
					try {
						sink_.reopen();
					} catch (const Error &e) {
						log(e.what());
					}
				}
			} else if (evs[i].data.u32 == kTimer) {
				uint64_t expirations;
				if (read(timer_.get(), &expirations, sizeof(expirations)) > 0) {
					pythons_->read_stdlib_names();
					flush_summaries(false);
				}
			}
		}
		iterate();
	}
	// Stopped: no program starts a capture any more, and once the ones
	// running are done, every record they wrote is in the ring.
	capture_->deactivate();
	if (!capture_->wait_idle(kStaleNs))
		log("BPF programs still running after 1 s: their captures may be incomplete");
	iterate();
	for (auto &ev : assembler_.take_incomplete())
		guarded([&] { handle(ev); });
	flush_summaries(true);
	final_report();
	return kExitOk;
}

} // namespace

int run_agent(const Options &opts)
{
	Agent agent(opts);
	return agent.run();
}

} // namespace fh
