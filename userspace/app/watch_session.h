#pragma once

// The watch of -p PID and launch mode (app/watch.cpp: attach, the event
// loop, the end; app/watch_exec.cpp: the programs rebuilt after an exec;
// app/watch_dumps.cpp: live dumps of the process and its tree).

#include "app/descendants.h"
#include "app/event_loop.h"
#include "app/pipeline.h"
#include "app/watched_process.h"
#include "capture/capture.h"
#include "capture/keepalive.h"
#include "capture/records.h"
#include "cli/options.h"
#include "output/stats.h"
#include "output/writer.h"
#include "process/launch.h"
#include "util/fd.h"

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

namespace fh {

// What woke the event loop.
enum LoopTag : uint32_t {
	kRing,
	kExit,
	kSignal,
	kTimer,
	kTracker,
	kKeepAlive,
	kFamily,
	kTreeCheck,
	kFamilyEager
};

// The watch of one process (-p), or of a command started under watch
// (launch mode), and of its descendants: attach, keep the process view
// (mappings, interpreter) current through its execs, dump on timeouts and
// user signals, and hand every event to the pipeline until the process and
// its descendants have exited.  The process table: the watched process
// (WatchedProcess), or one of its descendants (Descendants).
class WatchSession : public ProcessTable {
public:
	// launch: the command started under watch (launch mode), held before
	// its exec; nullptr for -p.
	WatchSession(const Options &opts, pid_t tgid, Launch *launch = nullptr)
		: opts_(opts), tgid_(tgid), launch_(launch),
		  writer_(opts, {opts.json, false, opts.verbose}), stats_(opts.stats_fd),
		  pipeline_(opts, writer_, stats_), proc_(opts, tgid, launch != nullptr)
	{
	}
	// The standard library reader's thread asks the capture where the
	// interpreter is: it stops before the capture (a later member) goes.
	~WatchSession() { proc_.stop_stdlib_reader(); }
	WatchSession(const WatchSession &) = delete;
	WatchSession &operator=(const WatchSession &) = delete;

	int run();
	ProcessView view_of(const Event &ev) override;

private:
	CaptureConfig configure();
	void arm(CaptureConfig cfg);
	void loop(int pidfd, int sigfd);
	bool on_signal(int pidfd, int sigfd); // true: the watch ends
	void say_user_signal(int sig);
	void drain();
	void process(Assembler::Output &out, const LiveDumpStats *live = nullptr);
	void after_exec();
	// why: "exec'd /usr/bin/python3 (Python 3.12)"; outcome, once loaded:
	// "Python frames from now on".
	bool hand_over(std::optional<PythonRuntime> next, const std::string &why,
		       const std::string &outcome);
	void load_python_walk();
	void live_dump(uint32_t trigger, const Refusal *refusal = nullptr);
	Event read_python(pid_t pid, const PythonRuntime &rt, uint32_t trigger, uint32_t current_tid,
			  Assembler::Output &out, LiveDumpStats &st);
	void dump_root(uint32_t trigger, const Refusal *refusal, uint64_t dump_id);
	void dump_descendant(pid_t pid, uint32_t trigger, uint64_t dump_id);
	void on_timeout(int pidfd, uint64_t expirations);
	void handle(Event &ev, const CaptureFacts &facts = {});
	void final_report(bool detached);
	void root_exited(int pidfd);
	void descendant_exec();
	std::string per_process() const;
	bool tree_gone() const; // the watched process and every descendant have exited

	const Options &opts_;
	pid_t tgid_;
	Launch *launch_;
	IncidentWriter writer_;
	StatsChannel stats_;
	Pipeline pipeline_;
	WatchedProcess proc_;
	std::unique_ptr<Descendants> family_; // unless --no-children
	std::unique_ptr<KeepAlive> keepalive_; // refuses a user signal that would terminate
	Assembler assembler_;
	std::unique_ptr<Capture> capture_;
	uint64_t t_start_ = 0;
	uint64_t timeouts_skipped_ = 0; // expirations that fell during a dump
	bool terminated_ = false;	// --exit sent SIGKILL
	bool pidfd_exited_ = false;	// the target has exited
	std::optional<int> exit_status_; // a launched command's wait status
	CaptureConfig cfg_;		 // what every capture of this session shares
	Counters retired_;		 // the counters of captures handed over from
	EventLoop loop_;
	UniqueFd timer_;
	UniqueFd tree_timer_; // once the watched process is gone: is the tree?
	UniqueFd family_timer_; // after a descendant's exec: its mapping records read
	uint64_t family_eager_until_ = 0;
	uint64_t refusals_seen_ = 0; // user signals refused and reported to us
	bool handing_over_ = false;  // hand_over() is draining the old capture
	bool exec_again_ = false;    // an exec seen meanwhile
	bool detached_ = false;	     // a signal ended the watch
	bool root_gone_ = false;     // the watched process exited; descendants may live on
	bool walk_failed_ = false;   // load_python_walk() failed: native frames only
};

} // namespace fh
