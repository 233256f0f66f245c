#include "app/watch.h"
#include "app/watch_session.h"

#include "app/descendants.h"
#include "app/event_loop.h"
#include "app/pipeline.h"
#include "app/target.h"
#include "app/watched_process.h"
#include "capture/capture.h"
#include "capture/keepalive.h"
#include "capture/records.h"
#include "output/outputs.h"
#include "process/launch.h"
#include "process/mmap_tracker.h"
#include "process/proc.h"
#include "python/live_walk.h"
#include "python/py_walk.h"
#include "python/stdlib_reader.h"
#include "util/clock.h"
#include "util/diag.h"
#include "util/error.h"
#include "util/signals.h"

#include <linux/types.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <optional>
#include <set>
#include <thread>
#include <utility>

extern "C" {
#include "fh/records.h"
}

namespace fh {


// What the user signal will do to the target, in one line where it is
// due.  A target that handles it is dumped at each (one that installs its
// handler later, from then on).  One that would die of it is dumped only
// when --signal asked: then a BPF LSM program refuses the signal to keep
// it alive, where the kernel allows.
void WatchSession::say_user_signal(int sig)
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
	std::string who = "pid " + std::to_string(tgid_), name = signal_abbrev(sig);
	bool given = opts_.user_signal_given;
	if (mask("\nSigIgn:") & bit) {
		if (given || opts_.verbose)
			diag(who + " ignores " + name + ": the kernel discards it, no dump on it");
		return;
	}
	if (mask("\nSigCgt:") & bit)
		return;
	if (!given) {
		if (opts_.verbose)
			diag(who + " does not handle " + name + ", which would kill it: no dump on it "
				   "(--signal " + name + " asks for one)");
		return;
	}
	try {
		keepalive_ = std::make_unique<KeepAlive>(tgid_, sig, opts_.verbose);
		diag(who + " does not handle " + name + ": each one is refused to it (BPF LSM) "
			   "and dumps it");
	} catch (const Error &e) {
		diag(who + " does not handle " + name + ": one dumps it, then kills it (" +
		     e.what() + ")");
	}
}

ProcessView WatchSession::view_of(const Event &ev)
{
	if (!family_ || ev.tgid == static_cast<uint32_t>(tgid_))
		return proc_.view_of(ev);
	// A child forked without exec runs the watched process's interpreter.
	const auto &root = proc_.python();
	return family_->view_of(ev, *capture_,
				{root ? &*root : nullptr,
				 proc_.stdlib(root && ev.trigger == FH_TRIGGER_FATAL_SIGNAL)});
}

void WatchSession::handle(Event &ev, const CaptureFacts &facts)
{
	// A descendant's event, symbolized with the mappings it had then.
	if (family_)
		family_->advance(ev.ktime_start);
	pipeline_.handle(ev, *this, facts);
}

// Records stamped up to t are all readable by now: once the events read
// below are handled, the descendants' mappings may move on to t.
void WatchSession::drain()
{
	uint64_t t = monotonic_ns();
	if (family_)
		family_->drain();
	Assembler::Output out;
	capture_->consume(assembler_, out);
	process(out);
	if (family_) {
		family_->advance(t);
		load_python_walk();
	}
}

bool WatchSession::tree_gone() const
{
	return root_gone_ && !(family_ && capture_->tree_has_members());
}

void WatchSession::process(Assembler::Output &out, const LiveDumpStats *live)
{
	bool maps_changed = false, exec = false;
	for (const auto &m : out.maps_changes)
		if (m.tgid == static_cast<uint32_t>(tgid_)) {
			maps_changed = true;
			exec |= m.reason == FH_MAPS_EXEC;
		} else if (family_ && m.reason == FH_MAPS_EXEC) {
			descendant_exec();
		}
	if (maps_changed)
		proc_.refresh_maps(false, pidfd_exited_);
	for (auto &ev : out.events) {
		CaptureFacts facts;
		if (live && ev.id == live->event_id)
			facts.live = live;
		handle(ev, facts);
	}
	for (const auto &v : out.verdicts)
		pipeline_.settle(v, *this);
	if (family_)
		for (const auto &e : out.exits)
			family_->ended(e);
	if (exec && !root_gone_)
		after_exec();
}

// " (pid 7: 2, pid 9: 1)": the events of a tree by process, when more
// than one printed any (the first few named).
std::string WatchSession::per_process() const
{
	const auto &by_pid = pipeline_.written_by_pid();
	if (!family_ || by_pid.size() < 2)
		return "";
	std::string out = " (";
	size_t shown = 0;
	for (const auto &[pid, n] : by_pid) {
		if (shown == 8) {
			out += ", " + std::to_string(by_pid.size() - shown) + " more processes";
			break;
		}
		out += (shown++ ? ", pid " : "pid ") + std::to_string(pid) + ": " + std::to_string(n);
	}
	return out + ")";
}

void WatchSession::final_report(bool detached)
{
	for (auto &ev : assembler_.take_incomplete())
		handle(ev);
	// What the kernel kept, and what fh-bpf could not.
	Counters c = capture_->counters();
	c += retired_;
	LossList lost;
	add_capture_losses(lost, c, assembler_);
	lost.add(pipeline_.stale_live(), "running threads never sampled (stale frames)");
	lost.add(timeouts_skipped_, "timeouts (a dump was still being taken)");
	writer_.add_losses(lost);
	lost.add(proc_.refresh_failed(), "maps refreshes (process gone)");
	if (keepalive_) {
		refusals_seen_ += keepalive_->take().size(); // refused at the very end
		uint64_t refused = keepalive_->refused();
		lost.add(refused > refusals_seen_ ? refused - refusals_seen_ : 0,
			 "refused user signals not dumped (ring full)");
	}
	if (MmapTracker *t = proc_.tracker()) {
		lost.add(t->lost(), "mapping records (perf buffer full)");
		lost.add(t->malformed(), "malformed mapping records");
	}
	if (family_)
		family_->add_losses(lost);
	lost.add(pipeline_.drop_unsettled(), "faults it handled, with no verdict on them");
	if (c.repeats)
		diag(std::to_string(c.repeats) + " more fatal signal" + (c.repeats == 1 ? "" : "s") +
		    " of the dying process not captured again (one incident a death)");
	if (uint64_t n = pipeline_.survived(); n || c.handled_skipped)
		diag("pid " + std::to_string(tgid_) + " handled " + std::to_string(n) + " fault" +
		     (n == 1 ? "" : "s") + " itself and went on: no incident (--handled reports them)" +
		     (c.handled_skipped ? "; " + std::to_string(c.handled_skipped) +
						  " more handled signals not captured (one open "
						  "at a time, a bounded number a process)"
					: ""));
	if (opts_.verbose && (c.samples || c.retaken))
		diag("live dumps: " + std::to_string(c.samples) + " running threads sampled, " +
		    std::to_string(c.retaken) + " copied again once they stopped");
	// One closing line: what was captured, and what was not.
	std::string how;
	if (exit_status_) {
		int st = *exit_status_;
		how = WIFSIGNALED(st) ? ", killed by " + signal_abbrev(WTERMSIG(st))
				      : ", status " + std::to_string(shell_status(st));
	}
	if (family_)
		if (std::string s = family_->summary(); !s.empty())
			how += " (" + s + ")";
	diag(std::string(detached ? "detached from" : "target exited:") + " pid " +
	    std::to_string(tgid_) + how + ", " + std::to_string(pipeline_.written()) +
	     (pipeline_.written() == 1 ? " event" : " events") + " printed" + per_process() + "; " +
	     (lost.empty() ? "none dropped" : "lost: " + lost.text()));
	stats_.end(pipeline_.written(), lost);
}

CaptureConfig WatchSession::configure()
{
	CaptureConfig cfg = base_capture_config(opts_);
	cfg.tgid = tgid_;
	cfg.follow_children = family_ != nullptr;
	// The CPython walk for descendants: a command may start one any
	// moment; a running process that has children may have; one that has
	// none has it loaded when one maps an interpreter.
	cfg.children_python = family_ && (launch_ || !descendants_of(tgid_, 1).empty());
	// The ring's pages are kernel memory, mapped (and counted) in this
	// process: size it for the target rather than for the worst case.
	if (!opts_.max_threads_given)
		cfg.ring_threads = std::min<uint32_t>(
			opts_.max_threads, std::max<uint32_t>(kMinRingThreads, 2 * count_threads(tgid_)));
	if (opts_.user_signal) {
		cfg.user_signal = opts_.user_signal;
		cfg.user_signal_kills = opts_.user_signal_given;
		cfg.sig_mask |= 1ull << (opts_.user_signal - 1);
		// A command not started yet has no handlers: nothing to say.
		if (!launch_)
			say_user_signal(opts_.user_signal);
	}
	const auto &python = proc_.python();
	set_python(cfg, python ? &*python : nullptr);
	// Live dumps (--timeout, SIGUSR1 to fh-bpf) of a Python process read
	// its memory from here; a native one (a descendant may be) needs the
	// iterator and samplers.
	cfg.live = !python || cfg.follow_children || opts_.native;
	return cfg;
}

// Load and attach the programs while debug information loads on a second
// thread (the two are the bulk of the time to arm), then take the maps.
void WatchSession::arm(CaptureConfig cfg)
{
	uint64_t preload_ns = 0, load_ns = 0;
	cfg_ = cfg;
	uint64_t t_load = monotonic_ns();
	capture_ = load_capture(
		cfg, [this, &preload_ns] { preload_ns = proc_.preload_symbols(); }, &load_ns);
	uint64_t t_attached = t_load + load_ns;
	proc_.set_capture(capture_.get());
	// The maps snapshot is taken after the mapping tracker is attached, so
	// no change falls between the two.
	proc_.refresh_maps(true);
	uint64_t t_armed = monotonic_ns();
	stats_.emit("armed", {{"pid", tgid_},
			      {"bpf_ns", t_attached - t_start_},
			      {"symbols_ns", preload_ns},
			      {"armed_ns", t_armed - t_start_}});
	if (opts_.verbose)
		diag("watching pid " + std::to_string(tgid_) + ": BPF loaded and attached in " +
		     fmt("%.1f ms", (t_attached - t_start_) / 1e6) + ", armed in " +
		     fmt("%.1f ms", (t_armed - t_start_) / 1e6));
}

// A signal to fh-bpf: SIGUSR1 dumps the target; in launch mode a signal
// meant for the command is passed on; else the watch ends (detached).
bool WatchSession::on_signal(int pidfd, int sigfd)
{
	SignalRead si;
	if (!read_signal(sigfd, si))
		return false;
	if (si.signo == SIGUSR1) {
		if (!pidfd_exited(pidfd) || family_)
			live_dump(FH_TRIGGER_DEMAND);
		return false;
	}
	if (launch_ && !root_gone_) {
		// The command's: a terminal's Ctrl-C reached it already (one
		// process group); a kill aimed at fh-bpf is passed on.  The watch
		// ends with it.  A signal from inside the command's process group
		// (a kill of the whole group) reached it too.
		bool from_process = si.code == SI_USER || si.code == SI_QUEUE;
		if (from_process && getpgid(si.sender) != getpgrp())
			syscall(SYS_pidfd_send_signal, pidfd, si.signo, nullptr, 0);
		return false;
	}
	return true;
}

// A descendant exec'd: the interpreter it may map (the dynamic loader maps
// libpython after the exec) is placed within milliseconds: its mapping
// records are read every 2 ms for a second.
void WatchSession::descendant_exec()
{
	family_eager_until_ = monotonic_ns() + 1'000'000'000;
	if (!family_timer_) {
		family_timer_ = interval_timer(2'000, 2'000);
		loop_.add(family_timer_.get(), kFamilyEager);
	} else {
		set_timer(family_timer_.get(), 2'000, 2'000);
	}
}

// The watched process has exited: its descendants, if any live, are
// watched until the last one exits.  A launched command is reaped now (its
// status is fh-bpf's).
void WatchSession::root_exited(int pidfd)
{
	pidfd_exited_ = true;
	root_gone_ = true;
	loop_.remove(pidfd);
	if (launch_)
		exit_status_ = launch_->reap();
	if (!family_ || tree_gone())
		return;
	tree_timer_ = interval_timer(1'000'000, 1'000'000);
	loop_.add(tree_timer_.get(), kTreeCheck);
	if (opts_.verbose)
		diag("pid " + std::to_string(tgid_) +
		     " exited; watching its descendants until the last one exits");
}

void WatchSession::loop(int pidfd, int sigfd)
{
	loop_.add(capture_->fd(), kRing);
	loop_.add(pidfd, kExit);
	loop_.add(sigfd, kSignal);
	if (timer_)
		loop_.add(timer_.get(), kTimer);
	if (MmapTracker *t = proc_.tracker())
		for (int fd : t->fds())
			loop_.add(fd, kTracker);
	if (keepalive_)
		loop_.add(keepalive_->fd(), kKeepAlive);
	if (family_)
		for (int fd : family_->fds())
			loop_.add(fd, kFamily);
	for (;;) {
		for (uint32_t tag : loop_.wait()) {
			switch (tag) {
			case kRing:
				drain();
				if (tree_gone())
					return;
				break;
			case kFamily:
				family_->drain();
				load_python_walk();
				break;
			case kTracker:
				proc_.refresh_maps(false, pidfd_exited_);
				break;
			case kKeepAlive:
				for (const auto &r : keepalive_->take()) {
					refusals_seen_++;
					if (!pidfd_exited(pidfd))
						live_dump(FH_TRIGGER_USER_SIGNAL, &r);
				}
				break;
			case kExit:
				root_exited(pidfd);
				if (tree_gone())
					return;
				break;
			case kTimer:
				if (uint64_t n = read_timer(timer_.get()); n && !root_gone_)
					on_timeout(pidfd, n);
				else if (n && family_)
					live_dump(FH_TRIGGER_TIMEOUT); // its descendants
				if (terminated_ || !opts_.repeat)
					loop_.remove(timer_.get());
				break;
			case kFamilyEager:
				read_timer(family_timer_.get());
				family_->drain();
				load_python_walk();
				if (monotonic_ns() > family_eager_until_)
					set_timer(family_timer_.get(), 0, 0);
				break;
			case kTreeCheck:
				// Exits whose records the full ring could not take.
				read_timer(tree_timer_.get());
				drain();
				if (tree_gone())
					return;
				break;
			case kSignal:
				if (on_signal(pidfd, sigfd)) {
					detached_ = true;
					return;
				}
				break;
			}
		}
	}
}

int WatchSession::run()
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
	// SIGUSR1 dumps the target now.
	UniqueFd sigfd = signal_fd({SIGINT, SIGTERM, SIGHUP, SIGUSR1});
	t_start_ = monotonic_ns();
	proc_.identify();
	if (opts_.children) {
		// Its descendants' mappings are recorded from here on.
		try {
			family_ = std::make_unique<Descendants>(tgid_, opts_.verbose, opts_.native);
		} catch (const Error &e) {
			diag(std::string("its descendants are not watched: ") + e.what());
		}
	}
	try {
		arm(configure());
		if (family_) {
			size_t n = family_->seed(*capture_);
			if (opts_.verbose && !launch_)
				diag("pid " + std::to_string(tgid_) + " has " + std::to_string(n) +
				     (n == 1 ? " descendant" : " descendants") +
				     " now: each watched, and each one forked from now on");
		}
	} catch (const Error &e) {
		// Gone (ESRCH: its mappings already were): its exit may still be
		// under way, a moment from the pidfd saying so.
		if (!pidfd_exits_within(pidfd.get(),
					(e.err() == ESRCH || e.err() == ENOENT) ? 1000 : 0))
			throw;
		if (capture_)
			drain();
		// What it left is said; a process simply gone, in one line.
		if (pipeline_.written()) {
			final_report(false);
			if (pipeline_.fatal_seen())
				return kExitCrashed;
		}
		throw Error("process " + std::to_string(tgid_) + " exited while fh-bpf was attaching",
			    ESRCH);
	}
	if (launch_)
		proc_.start_stdlib_reader();
	if (launch_) {
		// Armed: the command may run.
		if (int e = launch_->release())
			throw Error("cannot run " + opts_.command[0] + ": " + std::strerror(e), e,
				    e == ENOENT ? 127 : 126);
		proc_.refresh_maps(false);
	}
	if (!capture_->sampling_problem().empty() && cfg_.live)
		diag(capture_->sampling_problem());
	if (opts_.timeout_us)
		timer_ = interval_timer(opts_.timeout_us, opts_.repeat ? opts_.timeout_us : 0);
	if (opts_.ready_fd >= 0) {
		write_all(opts_.ready_fd, "ready\n");
		close(opts_.ready_fd);
	}
	capture_->keep_core_btf(); // armed: for the next runs
	loop(pidfd.get(), sigfd.get());
	// Everything the programs captured before the exit is in the ring.
	if (launch_)
		proc_.refresh_maps(false, pidfd_exited_);
	drain();
	if (launch_) {
		if (!exit_status_)
			exit_status_ = launch_->reap();
		final_report(false);
		return shell_status(*exit_status_);
	}
	final_report(detached_);
	if (writer_.unwritten())
		return kExitFailure;
	return pipeline_.fatal_seen() ? kExitCrashed : kExitOk;
}

int watch(const Options &opts)
{
	init_libbpf(opts.verbose);
	probe_support();
	if (!opts.command.empty()) {
		Launch launch(opts.command, opts.ready_fd);
		WatchSession s(opts, launch.pid(), &launch);
		return s.run();
	}
	pid_t tgid = check_target(opts.pid, opts.verbose);
	WatchSession s(opts, tgid);
	return s.run();
}

} // namespace fh
