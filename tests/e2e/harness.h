// End-to-end harness: a real target (tests/targets/crash.c) and a real
// fh-bpf with its BPF programs, synchronised through pipes: the target says
// "ready" once its threads are parked, fh-bpf says "ready" once armed, and a
// byte on the go pipe makes the target crash.  Timeouts only guard against a
// hang; they synchronise nothing.
#pragma once

#include "python_interpreters.h"
#include "support.h"

#include <nlohmann/json.hpp>

#include <sys/types.h>

#include <condition_variable>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace fhtest {

inline constexpr int kGuardMs = 60000;

struct TargetThread {
	pid_t tid = 0;
	unsigned long pthread = 0;
	std::string role; // main, sleep, futex, read
};

class Target {
public:
	// Starts build/targets/crash MODE with `threads` threads and waits for
	// its report.
	// With a uid, it runs as that user.
	Target(const std::string &mode, int threads, std::vector<std::string> extra = {},
	       uid_t uid = static_cast<uid_t>(-1));
	~Target();

	pid_t pid() const { return pid_; }
	const std::vector<TargetThread> &threads() const { return threads_; }
	const TargetThread *by_pthread(unsigned long p) const;
	void go();
	void send(const std::string &bytes); // on the go fd
	int wait(); // the wait status
	std::string next_report_line();

private:
	pid_t pid_ = -1;
	bool reaped_ = false;
	Pipe report_;
	Pipe go_;
	std::vector<TargetThread> threads_;
};

// How a Python target is run: which script of tests/targets, and through
// which command (`unshare --pid --fork --mount-proc`, a pid namespace of its
// own: the interpreter then runs under a shell, not as the namespace's init).
struct PyTargetOptions {
	std::string script = "py_target.py";
	std::vector<std::string> wrapper;
};

// tests/targets/py_target.py MODE THREADS run by one CPython build; it says
// "ready" once its threads are parked, then waits for a line on stdin.  Its
// own faulthandler writes to a file: the oracle.
class PyTarget {
public:
	PyTarget(const PythonBuild &py, const std::string &mode, int threads,
		 const PyTargetOptions &opts = {});
	~PyTarget();
	// The interpreter's process, on the host (under a wrapper: its
	// descendant).
	pid_t pid() const { return python_pid_; }
	void go() { send("go\n"); }
	void send(const std::string &text);
	std::string next_line();
	int wait(); // the wait status
	std::string faulthandler_output() const { return read_file(fault_file_); }

private:
	pid_t pid_ = -1;
	pid_t python_pid_ = -1;
	pid_t init_pid_ = -1; // a pid namespace's first process: it takes all with it
	bool reaped_ = false;
	Pipe in_, out_;
	std::string fault_file_;
};

// The first child of a process, and its first child..., `depth` times down
// (from /proc/PID/task/PID/children); -1 if there is none.
pid_t descendant(pid_t pid, int depth);

class Watcher {
public:
	// fh-bpf -p PID -o FILE --ready-fd 3 EXTRA...; with PID 0, no -p: EXTRA
	// holds "-- COMMAND..." (launch mode).
	explicit Watcher(pid_t pid, std::vector<std::string> extra = {});
	~Watcher();

	int wait(); // the exit code
	pid_t pid() const { return pid_; }
	std::string output() const { return read_file(out_); }
	std::string diagnostics();
	// Wait until fh-bpf's stderr holds `text`; false after the guard timeout.
	bool wait_for_diagnostic(const std::string &text);
	// Drop what stderr held so far: the next wait looks at new output only.
	void forget_diagnostics();

private:
	void drain_stderr(int fd);

	pid_t pid_ = -1;
	bool reaped_ = false;
	std::string out_;
	std::thread reader_;
	std::mutex mu_;
	std::condition_variable cv_;
	std::string err_text_;
	bool err_eof_ = false;
};

// The target's own faulthandler output and fh-bpf's (its "fh-bpf:" lines
// aside) are the same, byte for byte; both are shown when they are not.
void check_same_as_faulthandler(const PyTarget &target, Watcher &watcher);
// The same against the text a faulthandler wrote.
void check_same_as_faulthandler(const std::string &theirs, Watcher &watcher);

// The frames gdb prints for every thread of `crash --auto MODE`, keyed by
// the role each thread reported; only frames in crash.c.
std::map<std::string, std::vector<std::pair<std::string, int>>>
gdb_frames_by_role(const std::string &mode, int threads);

// Result of fh-bpf's run on a target in MODE.
struct CrashRun {
	ParsedTraceback tb;
	std::string text;
	std::string diagnostics;
	int target_status = 0;
	int fh_status = 0;
	std::vector<TargetThread> threads;
};

// The frames gdb prints, attached to a live process (it stops the process
// while it reads, then detaches), per pthread id; only frames in crash.c.
std::map<unsigned long, std::vector<std::pair<std::string, int>>> gdb_frames_of(pid_t pid);

CrashRun run_crash(const std::string &mode, int threads,
		   std::vector<std::string> extra = {});
// The same for a target already set going (sent a signal, say): waits for
// both and gathers what they left.
CrashRun finish_crash(Target &target, Watcher &watcher);

std::string crash_path();

// `PROGRAM --auto --threads N MODE` (the crash target, or a copy of it
// elsewhere), its stdout to /dev/null; as uid when one is given.
pid_t start_crasher(const std::string &mode, int threads, uid_t uid = static_cast<uid_t>(-1),
		    const std::string &program = crash_path());

// The crashing thread of `crash --auto segv` shows the whole chain, every
// frame resolved, at its marker lines.
void check_segv_chain(const std::string &incident);

// One run of fh-bpf to its end: its exit code (it must exit, not be killed)
// and what it wrote on stdout and stderr; `input` on its stdin.
struct FhRun {
	int status = -1;
	std::string out;
	std::string err;
};
FhRun run_fh(std::vector<std::string> args, const std::string &input = "",
	     uid_t uid = static_cast<uid_t>(-1));
// The same for any command (args[0] a path).
FhRun run_command(const std::vector<std::string> &args, const std::string &input = "",
		  uid_t uid = static_cast<uid_t>(-1));

std::string fh_bpf_path();

// A cgroup v1 memory controller group of its own, limited to limit_bytes
// (for the OOM killer); removed at the end.
struct MemoryCgroup {
	std::string dir;
	explicit MemoryCgroup(const std::string &name, uint64_t limit_bytes);
	~MemoryCgroup();
	// A shell that moves itself into the group, then execs python3
	// allocating until the OOM killer ends it.
	std::vector<std::string> memory_hog() const;
};

// The line of an "@name" marker comment in tests/targets/crash.c.
int crash_marker(const std::string &name);

// What a parked worker's stack must show (role sleep, futex, read),
// innermost first: function and marker line in crash.c.
std::vector<std::pair<std::string, int>> parked_frames(const std::string &role);

// Checks shared by every crash: the target died of sig, header, every
// thread present once with the right pthread id, the right current thread,
// parked workers where they were parked; returns the current thread.
// fh_status < 0: fh-bpf's exit is checked by the caller.
const ParsedThread &check_common(const CrashRun &run, int sig, const std::string &header,
				 const std::string &current_role);

// gdb's frames in crash.c, per role, appear in ours in the same order with
// the same lines (gdb hides an inlined call whose first instruction
// faulted; fh-bpf shows it, so ours may hold one more).
void check_against_gdb(const CrashRun &run, const std::string &mode, int threads);

// The JSON lines fh-bpf wrote (--format json), parsed; throws on a line
// that does not parse.
std::vector<nlohmann::json> json_lines(const std::string &out);

} // namespace fhtest
