#include "watch.h"

#include "capture.h"
#include "error.h"
#include "proc.h"
#include "py_report.h"
#include "py_walk.h"
#include "python.h"
#include "records.h"
#include "report.h"
#include "signals.h"
#include "sink.h"
#include "unwinder.h"

#include <linux/types.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cinttypes>
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <set>
#include <thread>

extern "C" {
#include "fh/records.h"
}

namespace fh {

namespace {

constexpr int kFatalSignals[] = {SIGSEGV, SIGFPE, SIGABRT, SIGBUS, SIGILL};

uint64_t monotonic_ns()
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + ts.tv_nsec;
}

void log(const std::string &msg) { write_all(STDERR_FILENO, "fh-bpf: " + msg + "\n"); }

std::string fmt(const char *f, double v)
{
	char buf[64];
	std::snprintf(buf, sizeof(buf), f, v);
	return buf;
}

constexpr uint32_t kMinRingThreads = 64;

// The number of threads of a process now (0 if unknown).
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

// The files a maps text maps.
std::set<std::string> mapped_files(const std::string &maps)
{
	std::set<std::string> out;
	for (const auto &m : parse_maps(maps))
		if (!m.path.empty() && m.path[0] == '/')
			out.insert(m.path);
	return out;
}

// Resolve and check the target; returns its process id.
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
			log("thread " + std::to_string(pid) + " belongs to process " +
			    std::to_string(info->tgid) + ": watching the process");
		auto leader = read_process(info->tgid);
		if (!leader || leader->zombie())
			throw Error("process " + std::to_string(info->tgid) + " has exited", ESRCH);
	}
	return info->tgid;
}

class Session {
public:
	Session(const Options &opts, pid_t tgid)
		: opts_(opts), tgid_(tgid), sink_(opts.output), unwinder_(tgid)
	{
	}

	int run();

private:
	void refresh_maps(bool must);
	uint64_t preload_symbols(const std::string &maps) noexcept;
	void warn_disposition(int sig);
	void drain();
	void handle(Event &ev);
	void print_diag(const std::string &text);
	void final_report(bool detached);

	const Options &opts_;
	pid_t tgid_;
	Sink sink_;
	Unwinder unwinder_;
	Assembler assembler_;
	std::unique_ptr<Capture> capture_;
	std::optional<PythonRuntime> python_; // the target's interpreter, if it is Python
	std::optional<std::set<std::string>> stdlib_; // sys.stdlib_module_names (3.10+)
	std::string maps_;
	bool crashed_ = false;
	uint64_t events_printed_ = 0;
	uint64_t maps_refresh_failed_ = 0;
};

void Session::print_diag(const std::string &text)
{
	if (text.empty())
		return;
	write_all(STDERR_FILENO, text);
	if (!sink_.is_stderr() && opts_.verbose)
		sink_.write(text);
}

// What the user signal will do to the target, said once at start.
void Session::warn_disposition(int sig)
{
	auto status = read_proc_file("/proc/" + std::to_string(tgid_) + "/status", 65536);
	if (!status)
		return;
	auto mask = [&](const char *field) -> uint64_t {
		size_t at = status->find(field);
		return at == std::string::npos
			       ? 0
			       : std::strtoull(status->c_str() + at + std::strlen(field), nullptr, 16);
	};
	uint64_t bit = 1ull << (sig - 1);
	if (mask("\nSigIgn:") & bit)
		log("pid " + std::to_string(tgid_) + " ignores " + signal_abbrev(sig) +
		    ": the kernel discards it, so it cannot trigger a dump (see --signal)");
	else if (!(mask("\nSigCgt:") & bit))
		log("pid " + std::to_string(tgid_) + " does not handle " + signal_abbrev(sig) +
		    ": its default action would terminate it.  fh-bpf dumps every thread "
		    "before that happens; keeping the target alive would need a BPF LSM "
		    "program (not used).  --no-signal turns this off");
}

uint64_t Session::preload_symbols(const std::string &maps) noexcept
{
	uint64_t t0 = monotonic_ns();
	if (maps.empty())
		return 0;
	try {
		unwinder_.report_maps(maps);
		unwinder_.prewarm();
		maps_ = maps;
	} catch (const std::exception &) {
		return 0; // refresh_maps() says what is wrong, after attaching
	}
	return monotonic_ns() - t0;
}

void Session::refresh_maps(bool must)
{
	std::string maps;
	if (capture_)
		capture_->rearm_maps_notify();
	try {
		maps = read_maps(tgid_);
	} catch (const Error &e) {
		if (must)
			throw;
		maps_refresh_failed_++;
		return;
	}
	// A process that has died has no mappings left: keep the last ones.
	if (maps.empty()) {
		if (must)
			throw Error("process " + std::to_string(tgid_) + " has no mappings (exiting?)",
				    ESRCH);
		maps_refresh_failed_++;
		return;
	}
	if (maps == maps_)
		return;
	uint64_t t0 = monotonic_ns();
	unwinder_.report_maps(maps);
	unwinder_.prewarm();
	if (opts_.verbose) {
		std::string added;
		for (const auto &path : mapped_files(maps))
			if (!maps_.empty() && !mapped_files(maps_).count(path))
				added += " " + path;
		log("loaded symbols of " + std::to_string(unwinder_.module_count()) +
		    " modules in " + fmt("%.1f ms", (monotonic_ns() - t0) / 1e6) +
		    (added.empty() ? "" : "; new:" + added));
	}
	maps_ = std::move(maps);
}

void Session::handle(Event &ev)
{
	uint64_t t0 = monotonic_ns();
	ReportStats stats;
	std::string losses;
	std::string text;
	bool user = ev.trigger == FH_TRIGGER_USER_SIGNAL;
	if (python_ && !ev.py_threads.empty()) {
		// faulthandler's text has Python frames only: no native unwinding.
		// A user signal's dump (register()) has no header and no
		// extension modules.
		text = user ? render_python_threads(python_->minor, python_->offsets.version,
						    python_threads(ev, *python_),
						    ev.py_threads.size() >= FH_PY_MAX_THREADS)
			    : python_fatal_traceback(ev, *python_, stdlib_ ? &*stdlib_ : nullptr);
		for (const auto &t : ev.threads)
			stats.stack_bytes += t.stack.size();
	} else {
		Traceback tb = build_traceback(ev, unwinder_, stats);
		if (user)
			tb.header.clear();
		text = render(tb);
	}
	if (user && ev.default_action)
		losses += "fh-bpf: pid " + std::to_string(ev.tgid) + " does not handle " +
			  signal_abbrev(ev.sig) + ": its default action terminates it\n";
	std::string diag = event_summary(ev);
	losses += event_losses(ev, stats);

	print_diag(diag);
	sink_.write(text);
	uint64_t t1 = monotonic_ns();
	if (!losses.empty()) {
		write_all(STDERR_FILENO, losses);
		if (!sink_.is_stderr())
			sink_.write(losses);
	}
	if (opts_.verbose) {
		std::string v;
		char buf[256];
		std::snprintf(buf, sizeof(buf),
			      "fh-bpf: timing: %zu threads, %" PRIu64
			      " stack bytes, kernel capture %.1f us (%.2f us/thread), "
			      "symbolized in %.2f ms, signal to printed %.2f ms\n",
			      ev.threads.size(), stats.stack_bytes,
			      (ev.ktime_end - ev.ktime_start) / 1e3,
			      ev.threads.empty() ? 0.0
						 : (ev.ktime_end - ev.ktime_start) / 1e3 / ev.threads.size(),
			      (t1 - t0) / 1e6, (t1 - ev.ktime_start) / 1e6);
		v += buf;
		std::snprintf(buf, sizeof(buf),
			      "fh-bpf: capture: %" PRIu64 " record bytes; Python: %zu threads, %zu code "
			      "objects\n",
			      ev.record_bytes, ev.py_threads.size(), ev.py_codes.size());
		v += buf;
		for (const auto &t : ev.threads) {
			std::snprintf(buf, sizeof(buf),
				      "fh-bpf: thread %u (%s) 0x%016" PRIx64 ": %zu stack bytes", t.tid,
				      t.name.c_str(), t.pthread_id, t.stack.size());
			v += buf;
			if (t.flags & FH_THREAD_STACK_LIMIT)
				v += ", copy limit reached";
			if (t.flags & FH_THREAD_STACK_FAULT)
				v += ", copy stopped at an unreadable page (error " +
				     std::to_string(t.stack_err) + ")";
			if (t.flags & FH_THREAD_ON_CPU)
				v += ", was running: registers may be stale";
			if (t.flags & FH_THREAD_EXITING)
				v += ", exiting";
			if (t.flags & FH_THREAD_KERNEL_WORKER)
				v += ", kernel worker: no user stack";
			if (auto it = stats.unwind_errors.find(t.tid); it != stats.unwind_errors.end())
				v += ", unwinding stopped: " + it->second;
			v += "\n";
		}
		print_diag(v);
	}
	events_printed_++;
	if (ev.trigger == FH_TRIGGER_FATAL_SIGNAL)
		crashed_ = true;
}

void Session::drain()
{
	Assembler::Output out;
	capture_->consume(assembler_, out);
	bool maps_changed = false;
	for (const auto &m : out.maps_changes)
		if (m.tgid == static_cast<uint32_t>(tgid_))
			maps_changed = true;
	if (maps_changed) {
		try {
			refresh_maps(false);
		} catch (const Error &e) {
			// Keep the modules already known; say so once per failure.
			maps_refresh_failed_++;
			if (opts_.verbose)
				log(std::string("re-reading the mappings: ") + e.what());
		}
	}
	for (auto &ev : out.events)
		handle(ev);
}

void Session::final_report(bool detached)
{
	for (auto &ev : assembler_.take_incomplete())
		handle(ev);
	Counters c = capture_->counters();
	std::string lost;
	auto add = [&](uint64_t n, const char *what) {
		if (n)
			lost += (lost.empty() ? "" : ", ") + std::to_string(n) + " " + what;
	};
	add(c.events_lost, "events (ring buffer full)");
	add(c.ends_lost, "event end records");
	add(c.threads_lost, "thread records");
	add(c.maps_lost, "mapping changes");
	add(c.senders_lost, "signal senders");
	add(c.py_lost, "Python thread or code records (ring buffer full)");
	add(assembler_.malformed(), "malformed records");
	add(assembler_.orphans(), "records of events never begun");
	add(c.unassembled, "records outside the event loop");
	add(maps_refresh_failed_, "maps refreshes (process gone)");
	// One closing line: what was captured, and what was not.
	log(std::string(detached ? "detached from" : "target exited:") + " pid " +
	    std::to_string(tgid_) + ", " + std::to_string(events_printed_) +
	    (events_printed_ == 1 ? " event" : " events") + " printed; " +
	    (lost.empty() ? "none dropped" : "lost: " + lost));
}

int Session::run()
{
	UniqueFd pidfd;
	try {
		pidfd = open_pidfd(tgid_);
	} catch (const Error &e) {
		throw Error("process " + std::to_string(tgid_) + " exited before it was attached",
			    ESRCH);
	}

	// Ctrl-C, SIGTERM and SIGHUP detach cleanly from here on: they are read
	// from a signalfd by the event loop, even when they come during attach.
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, nullptr);
	UniqueFd sigfd(signalfd(-1, &mask, SFD_CLOEXEC));
	if (!sigfd)
		throw sys_error("signalfd", errno);

	uint64_t t_start = monotonic_ns();
	CaptureConfig cfg;
	cfg.tgid = tgid_;
	cfg.stack_size = opts_.stack_size;
	cfg.max_threads = opts_.max_threads;
	// The ring's pages are kernel memory, mapped (and counted) in this
	// process: size it for the target rather than for the worst case.
	cfg.ring_threads = opts_.max_threads;
	if (!opts_.max_threads_given)
		cfg.ring_threads = std::min<uint32_t>(
			opts_.max_threads, std::max<uint32_t>(kMinRingThreads, 2 * count_threads(tgid_)));
	cfg.verbose = opts_.verbose;
	cfg.capture_handled = opts_.handled;
	cfg.user_signal = opts_.user_signal;
	if (opts_.user_signal) {
		cfg.sig_mask |= 1ull << (opts_.user_signal - 1);
		warn_disposition(opts_.user_signal);
	}
	// The maps before attaching: Python is found in them (the programs
	// carry its offsets as constants) and debug information loads from
	// them.  They are read again once attached, where a failure counts.
	std::string early_maps;
	try {
		early_maps = read_maps(tgid_);
	} catch (const Error &) {
	}
	if (!early_maps.empty()) {
		PythonDetection py = detect_python(early_maps);
		if (py.runtime) {
			python_ = py.runtime;
			ProcessMemory mem(tgid_);
			stdlib_ = stdlib_module_names(mem, *python_);
			cfg.py_runtime = python_->runtime_addr;
			cfg.py_offsets = &python_->offsets;
			if (opts_.verbose)
				log("Python 3." + std::to_string(python_->minor) + " in " +
				    python_->module);
		} else if (!py.unsupported.empty()) {
			log(py.unsupported + ": native frames only");
		}
	}
	for (int sig : kFatalSignals)
		cfg.sig_mask |= 1ull << (sig - 1);
	// Debug information loads on a second thread while the BPF programs
	// load: the two are the bulk of the time to arm.
	uint64_t preload_ns = 0;
	std::thread preload(
		[this, &preload_ns, &early_maps] { preload_ns = preload_symbols(early_maps); });
	try {
		capture_ = std::make_unique<Capture>(cfg);
	} catch (...) {
		preload.join();
		throw;
	}
	uint64_t t_attached = monotonic_ns();
	preload.join();
	if (opts_.verbose && preload_ns)
		log("loaded symbols of " + std::to_string(unwinder_.module_count()) +
		    " modules in " + fmt("%.1f ms", preload_ns / 1e6) + " (while loading BPF)");

	// The maps snapshot is taken after the mapping tracker is attached, so
	// no change falls between the two.
	try {
		refresh_maps(true);
	} catch (const Error &) {
		if (pidfd_exited(pidfd.get())) {
			drain();
			final_report(false);
			if (crashed_)
				return kExitCrashed;
			throw Error("process " + std::to_string(tgid_) +
					    " exited while fh-bpf was attaching",
				    ESRCH);
		}
		throw;
	}
	uint64_t t_armed = monotonic_ns();
	if (opts_.verbose)
		log("watching pid " + std::to_string(tgid_) + ": BPF loaded and attached in " +
		    fmt("%.1f ms", (t_attached - t_start) / 1e6) + ", armed in " +
		    fmt("%.1f ms", (t_armed - t_start) / 1e6));
	if (opts_.ready_fd >= 0) {
		write_all(opts_.ready_fd, "ready\n");
		close(opts_.ready_fd);
	}

	UniqueFd ep(epoll_create1(EPOLL_CLOEXEC));
	if (!ep)
		throw sys_error("setting up the event loop", errno);
	auto add = [&](int fd, uint32_t tag) {
		struct epoll_event e = {};
		e.events = EPOLLIN;
		e.data.u32 = tag;
		if (epoll_ctl(ep.get(), EPOLL_CTL_ADD, fd, &e) != 0)
			throw sys_error("epoll_ctl", errno);
	};
	enum : uint32_t { kRing, kExit, kSignal };
	add(capture_->fd(), kRing);
	add(pidfd.get(), kExit);
	add(sigfd.get(), kSignal);

	bool detached = false;
	for (bool done = false; !done;) {
		struct epoll_event evs[4];
		int n = epoll_wait(ep.get(), evs, 4, -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			throw sys_error("epoll_wait", errno);
		}
		for (int i = 0; i < n; i++) {
			switch (evs[i].data.u32) {
			case kRing:
				drain();
				break;
			case kExit:
				done = true;
				break;
			case kSignal: {
				struct signalfd_siginfo si;
				if (read(sigfd.get(), &si, sizeof(si)) == sizeof(si))
					done = detached = true;
				break;
			}
			}
		}
	}
	// Everything the programs captured before the exit is in the ring.
	drain();
	final_report(detached);
	return crashed_ ? kExitCrashed : kExitOk;
}

} // namespace

int dump(const Options &opts)
{
	pid_t tgid = check_target(opts.pid, opts.verbose);
	PythonDetection py = detect_python(read_maps(tgid));
	if (!py.runtime) {
		if (!py.unsupported.empty())
			throw Error("--dump: " + py.unsupported, ENOTSUP, kExitNoSupport);
		throw Error("--dump: pid " + std::to_string(tgid) +
				    " is not a Python process (live dumps of native processes are "
				    "not supported yet)",
			    ENOTSUP, kExitNoSupport);
	}
	uint64_t t0 = monotonic_ns();
	Event ev;
	ev.tgid = static_cast<uint32_t>(tgid);
	ProcessMemory mem(tgid);
	walk_python(mem, *py.runtime, ev);
	// As if the main thread had called faulthandler.dump_traceback(): it
	// is the "Current thread".  Its thread state is the oldest, the last
	// of the interpreter's list (new ones are inserted at the head).
	if (!ev.py_threads.empty()) {
		auto &main = ev.py_threads.back();
		ev.hit_tid = static_cast<uint32_t>(tgid);
		if (!main.native_thread_id)
			main.native_thread_id = static_cast<uint32_t>(tgid);
	}
	if (ev.py_threads.empty())
		throw Error("--dump: no Python thread state found in pid " + std::to_string(tgid) +
				    " (is the interpreter initialised, and may fh-bpf read its "
				    "memory?)",
			    ESRCH);
	for (const auto &t : ev.py_threads)
		if (t.flags & FH_PY_THREAD_READ_FAILED)
			log("thread 0x" + [&] {
				char b[20];
				std::snprintf(b, sizeof(b), "%016" PRIx64, t.thread_id);
				return std::string(b);
			}() + " changed at every read: its frames may mix two moments");
	Sink sink(opts.output);
	sink.write(render_python_threads(py.runtime->minor, py.runtime->offsets.version,
					 python_threads(ev, *py.runtime),
					 ev.py_threads.size() >= FH_PY_MAX_THREADS));
	if (opts.verbose)
		log("dumped " + std::to_string(ev.py_threads.size()) + " Python threads in " +
		    fmt("%.2f ms", (monotonic_ns() - t0) / 1e6));
	return kExitOk;
}

int watch(const Options &opts)
{
	probe_support();
	pid_t tgid = check_target(opts.pid, opts.verbose);
	Session s(opts, tgid);
	return s.run();
}

} // namespace fh
