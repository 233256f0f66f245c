#include "app/watch.h"
#include "util/clock.h"

#include "capture/capture.h"
#include "util/error.h"
#include "report/incident.h"
#include "capture/keepalive.h"
#include "process/launch.h"
#include "process/mmap_tracker.h"
#include "process/proc.h"
#include "python/py_report.h"
#include "python/py_walk.h"
#include "python/python.h"
#include "capture/records.h"
#include "report/report.h"
#include "util/signals.h"
#include "output/sink.h"
#include "output/outputs.h"
#include "util/printable.h"
#include "symbolize/unwinder.h"

#include <linux/types.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cinttypes>
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <utility>
#include <mutex>
#include <set>
#include <thread>

extern "C" {
#include "fh/records.h"
}

namespace fh {

namespace {

constexpr int kFatalSignals[] = {SIGSEGV, SIGFPE, SIGABRT, SIGBUS, SIGILL};

// A diagnostic line.  Its parts may be a target's (names, paths): nothing in
// them may start a line of its own or drive the terminal.
void log(const std::string &msg)
{
	write_all(STDERR_FILENO, "fh-bpf: " + printable(msg, 65536) + "\n");
}

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

// Every Python thread of a live process, read from its memory with
// process_vm_readv (no stop, no ptrace).  On demand, as if the main thread
// called faulthandler.dump_traceback(): it is the "Current thread" (its
// thread state is the oldest, the last of the interpreter's list).  After a
// timeout, as dump_traceback_later's watchdog thread writes it: no current
// thread.
Event python_live_event(pid_t tgid, const PythonRuntime &rt, uint32_t trigger,
			uint32_t current_tid = 0)
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

// A native dump on demand is taken as if the main thread asked for it: it
// is the "Current thread", as for Python.
void mark_main_current(Event &ev)
{
	ev.hit_tid = ev.tgid;
	for (auto &t : ev.threads)
		if (t.tid == ev.tgid)
			t.flags |= FH_THREAD_HIT;
}

// A capture's Python: none (rt null), or rt's offsets, where rt sits if it
// is placed, and what the kernel needs to place it itself when the target
// maps it (after a launch, or an exec of the same interpreter again).
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

std::string hex_id(uint64_t v)
{
	char b[24];
	std::snprintf(b, sizeof(b), "0x%016" PRIx64, v);
	return b;
}

// Python threads whose frame chain changed at every read of a live walk.
void warn_unsettled(const Event &ev)
{
	for (const auto &t : ev.py_threads)
		if (t.flags & FH_PY_THREAD_READ_FAILED)
			log("thread " + hex_id(t.thread_id) +
			    " changed at every read: its frames may mix two moments");
}

// sys.stdlib_module_names of a launched Python command: it exists only once
// the interpreter has started, a few milliseconds after exec, and is needed
// to render a fatal error that may come any moment after.  A thread reads
// it (process_vm_readv) as soon as it can, independently of the event loop
// (which may be busy loading symbols).
class StdlibReader {
public:
	StdlibReader(pid_t pid, const PythonRuntime &rt, const Capture &capture)
		: rt_(rt), thread_([this, pid, &capture] { run(pid, capture); })
	{
	}
	~StdlibReader()
	{
		{
			std::lock_guard<std::mutex> lock(mu_);
			stop_ = true;
		}
		cv_.notify_all();
		thread_.join();
	}
	// The names once read; waits up to `patience` for a read under way.
	std::optional<std::set<std::string>> names(std::chrono::milliseconds patience = {})
	{
		std::unique_lock<std::mutex> lock(mu_);
		cv_.wait_for(lock, patience, [this] { return names_.has_value() || done_; });
		return names_;
	}

private:
	void run(pid_t pid, const Capture &capture)
	{
		ProcessMemory mem(pid);
		// Every millisecond for up to a minute, until it reads or the
		// process is gone.
		for (int i = 0; i < 60000; i++) {
			// Where the programs walk it now (the process may exec
			// the same interpreter again, elsewhere).
			uint64_t at = capture.python_runtime();
			rt_.placed = at != 0;
			if (at && at != rt_.runtime_addr)
				place_python_at(rt_, at, 0);
			if (rt_.placed) {
				if (auto n = stdlib_module_names(mem, rt_)) {
					std::lock_guard<std::mutex> lock(mu_);
					names_ = std::move(n);
					done_ = true;
					cv_.notify_all();
					return;
				}
				if (kill(pid, 0) != 0)
					break;
			}
			std::unique_lock<std::mutex> lock(mu_);
			if (cv_.wait_for(lock, std::chrono::milliseconds(1), [this] { return stop_; }))
				break;
		}
		std::lock_guard<std::mutex> lock(mu_);
		done_ = true;
		cv_.notify_all();
	}

	PythonRuntime rt_;
	std::mutex mu_;
	std::condition_variable cv_;
	bool stop_ = false;
	bool done_ = false; // read, or given up
	std::optional<std::set<std::string>> names_;
	std::thread thread_;
};

// What woke the event loop (epoll data).
enum LoopTag : uint32_t { kRing, kExit, kSignal, kTimer, kTracker, kKeepAlive };

class Session {
public:
	// launch: the command started under watch (launch mode), held before
	// its exec; nullptr for -p.
	Session(const Options &opts, pid_t tgid, Launch *launch = nullptr)
		: opts_(opts), tgid_(tgid), launch_(launch), sink_(opts.output), unwinder_(tgid)
	{
	}

	int run();

private:
	void refresh_maps(bool must);
	std::string current_maps(bool must);
	void place_python(const std::string &maps);
	uint64_t preload_symbols(const std::string &maps) noexcept;
	void warn_disposition(int sig);
	void drain();
	void process(Assembler::Output &out);
	void after_exec();
	void hand_over(std::optional<PythonRuntime> next, const std::string &exe);
	void live_dump(uint32_t trigger, const Refusal *refusal = nullptr);
	void on_timeout(int pidfd, uint64_t expirations);
	void handle(Event &ev);
	void print_diag(const std::string &text);
	void final_report(bool detached);

	const Options &opts_;
	pid_t tgid_;
	Launch *launch_;
	std::unique_ptr<MmapTracker> tracker_; // launch mode: mappings as they are made
	std::unique_ptr<KeepAlive> keepalive_; // refuses a user signal that would terminate
	std::unique_ptr<IncidentCopies> copies_; // --log-dir, --syslog
	ProcessMeta meta_;			 // for incident records
	Sink sink_;
	Unwinder unwinder_;
	Assembler assembler_;
	std::unique_ptr<Capture> capture_;
	std::optional<PythonRuntime> python_; // the target's interpreter, if it is Python
	std::optional<std::set<std::string>> stdlib_; // sys.stdlib_module_names (3.10+)
	std::unique_ptr<StdlibReader> stdlib_reader_;  // launch mode: reads it once it exists
	std::string maps_;
	std::string comm_;
	bool crashed_ = false;
	uint64_t events_printed_ = 0;
	uint64_t maps_refresh_failed_ = 0;
	uint64_t timeouts_skipped_ = 0; // expirations that fell during a dump
	uint64_t stale_threads_ = 0;	// live: threads never sampled
	bool terminated_ = false;	// --exit sent SIGKILL
	bool pidfd_exited_ = false;	// the target has exited
	std::optional<int> exit_status_; // a launched command's wait status
	CaptureConfig cfg_;		 // what every capture of this session shares
	Counters retired_;		 // the counters of captures handed over from
	UniqueFd ep_;			 // the event loop
	uint64_t refusals_seen_ = 0;	 // user signals refused and reported to us
	bool handing_over_ = false;	 // hand_over() is draining the old capture
	bool exec_again_ = false;	 // an exec seen meanwhile
};

void Session::print_diag(const std::string &text)
{
	if (text.empty())
		return;
	write_all(STDERR_FILENO, text);
	if (!sink_.is_stderr() && opts_.verbose)
		sink_.write(text);
}

// What the user signal will do to the target, said once at start.  Where
// its default action would terminate the target, a BPF LSM program refuses
// it, if the kernel allows one.
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
	std::string who = "pid " + std::to_string(tgid_);
	if (mask("\nSigIgn:") & bit) {
		log(who + " ignores " + signal_abbrev(sig) +
		    ": the kernel discards it, so it cannot trigger a dump (see --signal)");
		return;
	}
	if (mask("\nSigCgt:") & bit)
		return;
	try {
		keepalive_ = std::make_unique<KeepAlive>(tgid_, sig, opts_.verbose);
		log(who + " does not handle " + signal_abbrev(sig) +
		    ", whose default action would terminate it: fh-bpf refuses that signal to it "
		    "(a BPF LSM program; the sender's kill() fails with EPERM) and dumps every "
		    "thread each time it is sent.  --no-signal turns this off");
	} catch (const Error &e) {
		log(who + " does not handle " + signal_abbrev(sig) +
		    ": its default action would terminate it.  Keeping it alive needs a BPF LSM "
		    "program, which this kernel refuses (" + e.what() +
		    "): fh-bpf dumps every thread before the target dies.  --no-signal turns "
		    "this off");
	}
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

// The target's mappings now.  A launched command's come from the kernel's
// own records of them (complete even when it has just died); if any record
// was lost, /proc/PID/maps is read instead while the process lives.
std::string Session::current_maps(bool must)
{
	if (tracker_) {
		tracker_->drain();
		if (!tracker_->lost() || pidfd_exited_)
			return tracker_->maps_text();
	}
	try {
		return read_maps(tgid_);
	} catch (const Error &) {
		if (must)
			throw;
		maps_refresh_failed_++;
		return tracker_ ? tracker_->maps_text() : std::string();
	}
}

void Session::refresh_maps(bool must)
{
	if (capture_)
		capture_->rearm_maps_notify();
	std::string maps = current_maps(must);
	// A process that has died has no mappings left: keep the last ones.
	if (maps.empty()) {
		if (launch_)
			return; // not exec'd yet
		if (must)
			throw Error("process " + std::to_string(tgid_) + " has no mappings (exiting?)",
				    ESRCH);
		maps_refresh_failed_++;
		return;
	}
	if (maps == maps_)
		return;
	// Before loading symbols, which takes a while.
	place_python(maps);
	uint64_t t0 = monotonic_ns();
	try {
		unwinder_.report_maps(maps);
		unwinder_.prewarm();
	} catch (const std::exception &e) {
		if (must)
			throw;
		// Keep the modules already known; counted and reported at the end.
		maps_refresh_failed_++;
		if (opts_.verbose)
			log(std::string("reading the new mappings: ") + e.what());
		return;
	}
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
	if (launch_)
		if (auto info = read_process(tgid_))
			comm_ = info->comm; // the command's, once exec'd
}

// The interpreter, once it is mapped (by `maps`, or as the kernel placed
// it): the programs walk it from then on.  sys.stdlib_module_names (for the
// extension modules of a fatal error) is taken once the reader has it.
void Session::place_python(const std::string &maps)
{
	if (!python_)
		return;
	if (!python_->placed) {
		if (uint64_t rt = capture_->python_runtime()) {
			// The kernel placed it when the module was mapped.
			place_python_at(*python_, rt, capture_->python_module_type());
		} else if (::fh::place_python(*python_, maps)) {
			capture_->set_python_runtime(python_->runtime_addr,
						     python_->offsets.module_type);
		}
		if (python_->placed && opts_.verbose)
			log("Python 3." + std::to_string(python_->minor) + " mapped from " +
			    python_->module);
	}
	if (python_->placed && !stdlib_ && stdlib_reader_)
		stdlib_ = stdlib_reader_->names();
}

void Session::handle(Event &ev)
{
	uint64_t t0 = monotonic_ns();
	ReportStats stats;
	std::string losses;
	std::string text;
	bool user = ev.trigger == FH_TRIGGER_USER_SIGNAL;
	bool timeout = ev.trigger == FH_TRIGGER_TIMEOUT;
	bool fatal = ev.trigger == FH_TRIGGER_FATAL_SIGNAL;
	// An incident record is made only for who reads one.
	bool records = opts_.json || copies_->any();
	std::vector<IncidentThread> inc_threads;
	std::vector<std::string> modules;
	std::string notes; // fh-bpf's own lines on what the text left out
	if (ev.comm.empty())
		ev.comm = comm_;
	if (python_ && !ev.py_threads.empty()) {
		// faulthandler's text has Python frames only: no native unwinding.
		// Only a fatal error's text has the "Fatal Python error" header
		// and the extension modules; a timeout's has its own header.
		// A read under way when the process crashed may still finish.
		if (fatal && !stdlib_ && stdlib_reader_)
			stdlib_ = stdlib_reader_->names(std::chrono::milliseconds(50));
		PythonText p = python_text(ev, *python_, stdlib_ ? &*stdlib_ : nullptr,
					   fatal     ? py_fatal_header(ev.sig)
					   : timeout ? timeout_header(opts_.timeout_us)
						     : std::string());
		text = std::move(p.text);
		modules = std::move(p.modules);
		notes = std::move(p.notes);
		if (records)
			inc_threads = incident_threads(p.threads);
		for (const auto &t : ev.threads)
			stats.stack_bytes += t.stack.size();
		warn_unsettled(ev);
	} else {
		if (ev.trigger == FH_TRIGGER_DEMAND)
			mark_main_current(ev);
		Traceback tb = build_traceback(ev, unwinder_, stats);
		if (!fatal)
			tb.header = timeout ? timeout_header(opts_.timeout_us) : std::string();
		text = render(tb);
		if (records)
			inc_threads = incident_threads(tb);
	}
	stale_threads_ += ev.live() ? stats.stale_threads : 0;
	if (user && ev.default_action)
		losses += "fh-bpf: pid " + std::to_string(ev.tgid) + " does not handle " +
			  signal_abbrev(ev.sig) + ": its default action terminates it\n";
	if (ev.refused)
		losses += "fh-bpf: " + signal_abbrev(ev.sig) + " refused to keep pid " +
			  std::to_string(ev.tgid) + " alive (it does not handle it)\n";
	// Whatever a target's names: bounded before any copy is made.
	bound_incident(text, inc_threads, notes);
	std::string diag = event_summary(ev);
	losses += notes + event_losses(ev, stats);
	Incident inc;
	if (records) {
		inc = make_incident(ev, meta_, text);
		if (python_ && !ev.py_threads.empty())
			inc.python = python_version(*python_);
		inc.threads = std::move(inc_threads);
		inc.extension_modules = std::move(modules);
		inc.losses = loss_sentences(losses);
	}

	print_diag(diag);
	std::string record = opts_.json ? incident_json(inc) + "\n" : text;
	sink_.write(record);
	uint64_t t1 = monotonic_ns();
	if (!losses.empty()) {
		write_all(STDERR_FILENO, losses);
		if (!sink_.is_stderr() && !opts_.json)
			sink_.write(losses);
	}
	copies_->write(ev, inc, opts_.json, text + losses, diag + text + losses);
	if (opts_.verbose) {
		std::string v;
		char buf[256];
		bool live = ev.live();
		double capture_us = (ev.ktime_end - ev.ktime_start) / 1e3;
		if (live && ev.threads.empty())
			std::snprintf(buf, sizeof(buf),
				      "fh-bpf: timing: %zu Python threads read from memory in %.2f ms, "
				      "dump to printed %.2f ms\n",
				      ev.py_threads.size(), capture_us / 1e3, (t1 - ev.ktime_start) / 1e6);
		else
			std::snprintf(buf, sizeof(buf),
				      "fh-bpf: timing: %zu threads, %" PRIu64
				      " stack bytes, %s capture %.1f us (%.2f us/thread), "
				      "symbolized in %.2f ms, %s to printed %.2f ms\n",
				      ev.threads.size(), stats.stack_bytes, live ? "live" : "kernel",
				      capture_us,
				      ev.threads.empty() ? 0.0 : capture_us / ev.threads.size(),
				      (t1 - t0) / 1e6, live ? "dump" : "signal",
				      (t1 - ev.ktime_start) / 1e6);
		v += buf;
		std::snprintf(buf, sizeof(buf),
			      "fh-bpf: capture: %" PRIu64 " record bytes; Python: %zu threads, %zu code "
			      "objects\n",
			      ev.record_bytes, ev.py_threads.size(), ev.py_codes.size());
		v += buf;
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
			if (auto it = stats.unwind_errors.find(t.tid); it != stats.unwind_errors.end())
				v += ", unwinding stopped: " + it->second;
			v += "\n";
		}
		print_diag(v);
	}
	events_printed_++;
	if (fatal)
		crashed_ = true;
}

void Session::drain()
{
	Assembler::Output out;
	capture_->consume(assembler_, out);
	process(out);
}

void Session::process(Assembler::Output &out)
{
	bool maps_changed = false, exec = false;
	for (const auto &m : out.maps_changes)
		if (m.tgid == static_cast<uint32_t>(tgid_)) {
			maps_changed = true;
			exec |= m.reason == FH_MAPS_EXEC;
		}
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
	if (exec)
		after_exec();
}

// The target exec'd another program: if it is Python and was not, or was
// and is not, or is another interpreter, the programs are rebuilt for it.
void Session::after_exec()
{
	if (handing_over_) {
		exec_again_ = true; // once the hand-over is done
		return;
	}
	ProcessMeta meta = read_process_meta(tgid_);
	std::string exe = meta.exe;
	if (exe.empty()) // gone already: the executable is mapped first
		for (const auto &m : parse_maps(maps_))
			if (!m.path.empty() && m.path[0] == '/') {
				exe = m.path;
				break;
			}
	if (exe.empty())
		return;
	if (auto info = read_process(tgid_))
		comm_ = info->comm;
	if (!meta.exe.empty())
		meta_ = std::move(meta);
	PythonDetection d = detect_python_command(exe);
	if (!d.unsupported.empty())
		log("pid " + std::to_string(tgid_) + " exec'd " + exe + ": " + d.unsupported +
		    ": native frames only");
	if (d.runtime && python_ && python_->module == d.runtime->module) {
		// The launched command's own exec, as expected; or the same
		// interpreter started afresh (os.execv(sys.executable), a
		// reloader): the programs fit, but it sits elsewhere now (the
		// kernel forgot the old place at the exec).  Its standard
		// library's names are the build's: they stay.
		python_->placed = false;
		place_python(maps_);
		return;
	}
	if (!d.runtime && !python_)
		return;
	hand_over(d.runtime, exe);
}

// Load the programs for what the target runs now, let them take over, and
// drop the old ones, nothing captured twice or missed (see `control` in
// bpf/fh.bpf.c).
void Session::hand_over(std::optional<PythonRuntime> next, const std::string &exe)
{
	uint64_t t0 = monotonic_ns();
	CaptureConfig cfg = cfg_;
	cfg.predecessor = capture_.get();
	if (next)
		::fh::place_python(*next, maps_);
	set_python(cfg, next ? &*next : nullptr);
	cfg.live = !next;
	std::string what = next ? "Python 3." + std::to_string(next->minor) : "a native program";
	std::unique_ptr<Capture> successor;
	try {
		successor = std::make_unique<Capture>(cfg);
		successor->activate();
	} catch (const Error &e) {
		log("pid " + std::to_string(tgid_) + " exec'd " + exe + " (" + what +
		    "), but the programs for it failed to load (" + e.what() + "): " +
		    (python_ ? "no Python frames" : "native frames") + " from now on");
		return;
	}
	// What the old programs captured before the switch, then the switch.
	stdlib_reader_.reset();
	if (!capture_->wait_idle(100'000'000))
		log("the old programs were still running after 100 ms: records they write "
		    "from now on are lost");
	handing_over_ = true;
	drain();
	handing_over_ = false;
	retired_ += capture_->counters();
	epoll_ctl(ep_.get(), EPOLL_CTL_DEL, capture_->fd(), nullptr);
	struct epoll_event e = {};
	e.events = EPOLLIN;
	e.data.u32 = kRing;
	if (epoll_ctl(ep_.get(), EPOLL_CTL_ADD, successor->fd(), &e) != 0)
		throw sys_error("epoll_ctl", errno);
	capture_ = std::move(successor);
	python_ = std::move(next);
	stdlib_.reset();
	if (python_ && python_->minor >= 10) {
		// Usually it has started by now: read at once, else as it can.
		if (python_->placed) {
			ProcessMemory mem(tgid_);
			stdlib_ = stdlib_module_names(mem, *python_);
		}
		if (!stdlib_)
			stdlib_reader_ = std::make_unique<StdlibReader>(tgid_, *python_, *capture_);
	}
	place_python(maps_);
	log("pid " + std::to_string(tgid_) + " exec'd " + exe + ": " + what + ", " +
	    (python_ ? "Python" : "native") + " frames from now on (programs loaded in " +
	    fmt("%.0f ms", (monotonic_ns() - t0) / 1e6) + ")");
	// It may have exec'd again while the programs loaded.
	if (std::exchange(exec_again_, false))
		after_exec();
}

// Dump every thread now, the target running on.  A refused user signal is
// dumped as if it had been received: by the thread it was sent to.
void Session::live_dump(uint32_t trigger, const Refusal *refusal)
{
	auto decorate = [&](Event &ev) {
		if (!refusal)
			return;
		ev.sig = refusal->sig;
		ev.si_code = 0; // SI_USER
		ev.sender = Sender{refusal->sender_tgid, 0, refusal->sender_uid,
				   refusal->sender_comm, false};
		ev.refused = true;
		ev.hit_tid = refusal->tid;
		for (auto &t : ev.threads)
			if (t.tid == refusal->tid)
				t.flags |= FH_THREAD_HIT;
	};
	if (python_ && !python_->placed) {
		log("pid " + std::to_string(tgid_) + ": its Python interpreter is not mapped yet: "
		    "nothing to dump");
		return;
	}
	if (python_) {
		Event ev = python_live_event(tgid_, *python_, trigger,
					     refusal ? refusal->tid : 0);
		decorate(ev);
		if (ev.py_threads.empty()) {
				log("pid " + std::to_string(tgid_) +
			    ": no Python thread state to dump (exiting, or not initialised)");
			return;
		}
		handle(ev);
		return;
	}
	Assembler::Output out;
	LiveDumpStats st = capture_->live_dump(trigger, assembler_, out);
	for (auto &ev : out.events)
		if (ev.id == st.event_id)
			decorate(ev);
	if (!st.event_id) {
		log("pid " + std::to_string(tgid_) + ": no thread left to dump (exiting)");
	}
	if (opts_.verbose && st.event_id)
		log("live dump: iterator " + fmt("%.1f us", st.iterate_ns / 1e3) + ", " +
		    std::to_string(st.samples_wanted) + " running threads sampled in " +
		    fmt("%.2f ms", st.sample_ns / 1e6) +
		    (st.samples_missing ? ", " + std::to_string(st.samples_missing) + " not" : ""));
	process(out);
}

void Session::on_timeout(int pidfd, uint64_t expirations)
{
	if (expirations > 1) {
		timeouts_skipped_ += expirations - 1;
		log(std::to_string(expirations - 1) + " timeout" + (expirations > 2 ? "s" : "") +
		    " skipped: the previous dump was still being taken");
	}
	live_dump(FH_TRIGGER_TIMEOUT);
	if (opts_.exit_after && !terminated_) {
		// faulthandler's exit=True ends the process after the dump.
		if (syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, nullptr, 0) == 0) {
			terminated_ = true;
			log("--exit: terminated pid " + std::to_string(tgid_) +
			    " (SIGKILL) after the timeout dump");
		} else if (errno != ESRCH) {
			log("--exit: could not terminate pid " + std::to_string(tgid_) + ": " +
			    std::strerror(errno));
		}
	}
}

void Session::final_report(bool detached)
{
	for (auto &ev : assembler_.take_incomplete())
		handle(ev);
	Counters c = capture_->counters();
	c += retired_;
	LossList lost;
	add_capture_losses(lost, c, assembler_);
	lost.add(stale_threads_, "running threads never sampled (stale frames)");
	lost.add(timeouts_skipped_, "timeouts (a dump was still being taken)");
	copies_->add_losses(lost);
	lost.add(maps_refresh_failed_, "maps refreshes (process gone)");
	if (keepalive_) {
		refusals_seen_ += keepalive_->take().size(); // refused at the very end
		uint64_t refused = keepalive_->refused();
		lost.add(refused > refusals_seen_ ? refused - refusals_seen_ : 0,
			 "refused user signals not dumped (ring full)");
	}
	if (tracker_) {
		lost.add(tracker_->lost(), "mapping records (perf buffer full)");
		lost.add(tracker_->malformed(), "malformed mapping records");
	}
	if (c.repeats)
		log(std::to_string(c.repeats) + " more fatal signal" + (c.repeats == 1 ? "" : "s") +
		    " of the dying process not captured again (one incident a death)");
	if (opts_.verbose && (c.samples || c.retaken))
		log("live dumps: " + std::to_string(c.samples) + " running threads sampled, " +
		    std::to_string(c.retaken) + " copied again once they stopped");
	// One closing line: what was captured, and what was not.
	std::string how;
	if (exit_status_) {
		int st = *exit_status_;
		how = WIFSIGNALED(st) ? ", killed by " + signal_abbrev(WTERMSIG(st))
				      : ", status " + std::to_string(shell_status(st));
	}
	log(std::string(detached ? "detached from" : "target exited:") + " pid " +
	    std::to_string(tgid_) + how + ", " + std::to_string(events_printed_) +
	    (events_printed_ == 1 ? " event" : " events") + " printed; " +
	    (lost.empty() ? "none dropped" : "lost: " + lost.text()));
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
	sigaddset(&mask, SIGUSR1); // dump the target now
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
	copies_ = std::make_unique<IncidentCopies>(opts_);
	if (launch_) {
		comm_ = opts_.command[0].substr(opts_.command[0].rfind('/') + 1).substr(0, 15);
		// Until its exec is seen: what it is about to be (the held
		// child has its uid, cgroup and pids already).
		meta_ = read_process_meta(tgid_);
		meta_.exe = find_program(opts_.command[0]);
		meta_.cmdline = opts_.command;
	} else {
		if (auto info = read_process(tgid_))
			comm_ = info->comm;
		meta_ = read_process_meta(tgid_);
	}
	cfg.capture_handled = opts_.handled;
	cfg.user_signal = opts_.user_signal;
	if (opts_.user_signal) {
		cfg.sig_mask |= 1ull << (opts_.user_signal - 1);
		// A command not started yet has no handlers: nothing to say.
		if (!launch_)
			warn_disposition(opts_.user_signal);
	}
	// The maps before attaching: Python is found in them (the programs
	// carry its offsets as constants) and debug information loads from
	// them.  They are read again once attached, where a failure counts.
	std::string early_maps;
	try {
		if (!launch_) // a held child's maps are fh-bpf's own
			early_maps = read_maps(tgid_);
	} catch (const Error &) {
	}
	if (launch_) {
		// The command's interpreter, from its files: the programs are
		// built for it now, and told where it is once it is mapped.
		PythonDetection py = detect_python_command(opts_.command[0]);
		if (py.runtime) {
			python_ = py.runtime;
			if (opts_.verbose)
				log("Python 3." + std::to_string(python_->minor) + " in " +
				    python_->module + " (the command's interpreter)");
		} else if (!py.unsupported.empty()) {
			log(py.unsupported + ": native frames only");
		}
		tracker_ = std::make_unique<MmapTracker>(tgid_);
	} else if (!early_maps.empty()) {
		PythonDetection py = detect_python(early_maps);
		if (py.runtime) {
			python_ = py.runtime;
			ProcessMemory mem(tgid_);
			stdlib_ = stdlib_module_names(mem, *python_);
			if (opts_.verbose)
				log("Python 3." + std::to_string(python_->minor) + " in " +
				    python_->module);
		} else if (!py.unsupported.empty()) {
			log(py.unsupported + ": native frames only");
		}
	}
	for (int sig : kFatalSignals)
		cfg.sig_mask |= 1ull << (sig - 1);
	cfg.sig_mask |= opts_.extra_signals;
	set_python(cfg, python_ ? &*python_ : nullptr);
	// Live dumps (--timeout, SIGUSR1 to fh-bpf) of a Python process read
	// its memory from here; a native one needs the iterator and samplers.
	cfg.live = !python_;
	// Debug information loads on a second thread while the BPF programs
	// load: the two are the bulk of the time to arm.
	uint64_t preload_ns = 0;
	std::thread preload(
		[this, &preload_ns, &early_maps] { preload_ns = preload_symbols(early_maps); });
	cfg_ = cfg;
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
	if (launch_ && python_ && python_->minor >= 10)
		stdlib_reader_ = std::make_unique<StdlibReader>(tgid_, *python_, *capture_);
	if (launch_) {
		// Armed: the command may run.
		if (int e = launch_->release())
			throw Error("cannot run " + opts_.command[0] + ": " + std::strerror(e), e,
				    e == ENOENT ? 127 : 126);
		refresh_maps(false);
	}
	if (!capture_->sampling_problem().empty() && cfg.live)
		log(capture_->sampling_problem());

	UniqueFd timer;
	if (opts_.timeout_us) {
		timer = UniqueFd(timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK));
		if (!timer)
			throw sys_error("timerfd_create", errno);
		struct itimerspec its = {};
		its.it_value.tv_sec = static_cast<time_t>(opts_.timeout_us / 1000000);
		its.it_value.tv_nsec = static_cast<long>(opts_.timeout_us % 1000000 * 1000);
		if (opts_.repeat)
			its.it_interval = its.it_value;
		if (timerfd_settime(timer.get(), 0, &its, nullptr) != 0)
			throw sys_error("timerfd_settime", errno);
	}
	if (opts_.ready_fd >= 0) {
		write_all(opts_.ready_fd, "ready\n");
		close(opts_.ready_fd);
	}

	ep_ = UniqueFd(epoll_create1(EPOLL_CLOEXEC));
	if (!ep_)
		throw sys_error("setting up the event loop", errno);
	auto add = [&](int fd, uint32_t tag) {
		struct epoll_event e = {};
		e.events = EPOLLIN;
		e.data.u32 = tag;
		if (epoll_ctl(ep_.get(), EPOLL_CTL_ADD, fd, &e) != 0)
			throw sys_error("epoll_ctl", errno);
	};
	add(capture_->fd(), kRing);
	add(pidfd.get(), kExit);
	add(sigfd.get(), kSignal);
	if (timer)
		add(timer.get(), kTimer);
	if (tracker_)
		for (int fd : tracker_->fds())
			add(fd, kTracker);
	if (keepalive_)
		add(keepalive_->fd(), kKeepAlive);

	bool detached = false;
	for (bool done = false; !done;) {
		struct epoll_event evs[4];
		int n = epoll_wait(ep_.get(), evs, 4, -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			throw sys_error("epoll_wait", errno);
		}
		for (int i = 0; i < n && !done; i++) {
			switch (evs[i].data.u32) {
			case kRing:
				drain();
				break;
			case kTracker:
				refresh_maps(false);
				break;
			case kKeepAlive:
				for (const auto &r : keepalive_->take()) {
					refusals_seen_++;
					if (!pidfd_exited(pidfd.get()))
						live_dump(FH_TRIGGER_USER_SIGNAL, &r);
				}
				break;
			case kExit:
				done = pidfd_exited_ = true;
				break;
			case kTimer: {
				uint64_t expirations = 0;
				if (read(timer.get(), &expirations, sizeof(expirations)) ==
					    sizeof(expirations) &&
				    expirations && !pidfd_exited(pidfd.get()))
					on_timeout(pidfd.get(), expirations);
				if (terminated_ || !opts_.repeat) {
					epoll_ctl(ep_.get(), EPOLL_CTL_DEL, timer.get(), nullptr);
				}
				break;
			}
			case kSignal: {
				struct signalfd_siginfo si;
				if (read(sigfd.get(), &si, sizeof(si)) != sizeof(si))
					break;
				if (si.ssi_signo == SIGUSR1) {
					if (!pidfd_exited(pidfd.get()))
						live_dump(FH_TRIGGER_DEMAND);
					break;
				}
				if (launch_) {
					// The command's: a terminal's Ctrl-C reached it
					// already (one process group); a kill aimed at
					// fh-bpf is passed on.  The watch ends with it.
					// A signal from inside the command's process
					// group (a kill of the whole group) reached it
					// too.
					bool from_process =
						si.ssi_code == SI_USER || si.ssi_code == SI_QUEUE;
					pid_t sender_group = getpgid(static_cast<pid_t>(si.ssi_pid));
					if (from_process && sender_group != getpgrp())
						syscall(SYS_pidfd_send_signal, pidfd.get(),
							static_cast<int>(si.ssi_signo), nullptr, 0);
					break;
				}
				done = detached = true;
				break;
			}
			}
		}
	}
	// Everything the programs captured before the exit is in the ring.
	if (launch_)
		refresh_maps(false);
	drain();
	if (launch_) {
		int st = launch_->reap();
		exit_status_ = st;
		final_report(false);
		return shell_status(st);
	}
	final_report(detached);
	return crashed_ ? kExitCrashed : kExitOk;
}

} // namespace

int dump(const Options &opts)
{
	pid_t tgid = check_target(opts.pid, opts.verbose);
	std::string maps = read_maps(tgid);
	PythonDetection py = detect_python(maps);
	uint64_t t0 = monotonic_ns();
	if (py.runtime) {
		Event ev = python_live_event(tgid, *py.runtime, FH_TRIGGER_DEMAND);
		if (ev.py_threads.empty())
			throw Error("--dump: no Python thread state found in pid " +
					    std::to_string(tgid) +
					    " (is the interpreter initialised, and may fh-bpf read "
					    "its memory?)",
				    ESRCH);
		warn_unsettled(ev);
		Sink sink(opts.output);
		PythonText p = python_text(ev, *py.runtime, nullptr, "");
		std::string text = p.text;
		std::vector<IncidentThread> threads = incident_threads(p.threads);
		bound_incident(text, threads, p.notes);
		if (!p.notes.empty())
			write_all(STDERR_FILENO, p.notes);
		if (opts.json) {
			if (auto info = read_process(tgid))
				ev.comm = info->comm;
			Incident inc = make_incident(ev, read_process_meta(tgid), text);
			inc.python = python_version(*py.runtime);
			inc.threads = std::move(threads);
			inc.losses = loss_sentences(p.notes);
			text = incident_json(inc) + "\n";
		}
		sink.write(text);
		if (opts.verbose)
			log("dumped " + std::to_string(ev.py_threads.size()) + " Python threads in " +
			    fmt("%.2f ms", (monotonic_ns() - t0) / 1e6));
		return kExitOk;
	}
	if (!py.unsupported.empty())
		log(py.unsupported + ": native frames only");

	// A native process: the task iterator and the samplers, nothing else.
	probe_support();
	Sink sink(opts.output);
	Unwinder unwinder(tgid);
	std::thread preload([&] {
		try {
			unwinder.report_maps(maps);
			unwinder.prewarm();
		} catch (const std::exception &) {
		}
	});
	CaptureConfig cfg;
	cfg.tgid = tgid;
	cfg.stack_size = opts.stack_size;
	cfg.max_threads = opts.max_threads;
	cfg.ring_threads = std::min<uint32_t>(opts.max_threads, kMinRingThreads);
	cfg.signals = false;
	cfg.live = true;
	cfg.verbose = opts.verbose;
	std::unique_ptr<Capture> capture;
	try {
		capture = std::make_unique<Capture>(cfg);
	} catch (...) {
		preload.join();
		throw;
	}
	preload.join();
	if (!capture->sampling_problem().empty())
		log(capture->sampling_problem());
	uint64_t t1 = monotonic_ns();
	Assembler assembler;
	Assembler::Output out;
	LiveDumpStats st = capture->live_dump(FH_TRIGGER_DEMAND, assembler, out);
	if (!st.event_id)
		throw Error("--dump: pid " + std::to_string(tgid) + " has no thread left to dump",
			    ESRCH);
	for (auto &ev : out.events) {
		if (ev.id != st.event_id)
			continue;
		mark_main_current(ev);
		ReportStats stats;
		Traceback tb = build_traceback(ev, unwinder, stats);
		tb.header.clear();
		std::string text = render(tb);
		std::string losses = event_losses(ev, stats);
		if (opts.json) {
			Incident inc = make_incident(ev, read_process_meta(tgid), text);
			inc.threads = incident_threads(tb);
			inc.losses = loss_sentences(losses);
			text = incident_json(inc) + "\n";
		}
		sink.write(text);
		if (!losses.empty()) {
			write_all(STDERR_FILENO, losses);
			if (!sink.is_stderr() && !opts.json)
				sink.write(losses);
		}
		if (opts.verbose)
			log("dumped " + std::to_string(ev.threads.size()) + " threads: BPF loaded in " +
			    fmt("%.1f ms", (t1 - t0) / 1e6) + ", captured in " +
			    fmt("%.2f ms", (st.iterate_ns + st.sample_ns) / 1e6) + " (" +
			    std::to_string(st.samples_wanted) + " running threads sampled), printed " +
			    fmt("%.2f ms", (monotonic_ns() - t1) / 1e6) + " after");
	}
	return kExitOk;
}

int watch(const Options &opts)
{
	init_libbpf(opts.verbose);
	probe_support();
	if (!opts.command.empty()) {
		Launch launch(opts.command, opts.ready_fd);
		Session s(opts, launch.pid(), &launch);
		return s.run();
	}
	pid_t tgid = check_target(opts.pid, opts.verbose);
	Session s(opts, tgid);
	return s.run();
}

} // namespace fh
