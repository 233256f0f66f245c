// fh-bpf --help: the text around the options, and the table of the options
// themselves, which is also what the command line is read by.
#include "cli/usage.h"

#include "cli/options.h"

#ifndef FH_VERSION
#define FH_VERSION "0.1.0"
#endif

namespace fh {

namespace {

constexpr const char *kPrologue = R"(Usage: fh-bpf -p PID [options]
       fh-bpf [options] -- COMMAND [ARGS...]
       fh-bpf -p PID --dump [-o FILE]
       fh-bpf --system-wide [filters] [options]
       fh-bpf incidents list|show ...   (fh-bpf incidents --help)

Print a traceback of every thread of a process, in Python faulthandler's
format, from outside it: when it receives a fatal signal (SIGSEGV, SIGFPE,
SIGABRT, SIGBUS, SIGILL: captured by BPF programs in the kernel before the
process dies), after a timeout, when it receives a user signal, or on demand.
A Python process (CPython 3.6 to 3.13) gets the Python frames its own
faulthandler would print; a native one gets function, source file and line
of each frame from DWARF.  The target needs no preparation and is never
stopped, traced or sent a signal (but with --exit).
)";

constexpr const char *kEpilogue = R"(
Threads that run on a CPU while a live dump (--timeout, --dump, SIGUSR1) is
taken are read from a timer sample in the thread; blocked ones from the
registers they saved.  Nothing is stopped.

Exit status:
  0    the watch ended without a fatal signal (target exited, or detached);
       --system-wide: stopped by SIGINT or SIGTERM
  1    a runtime failure (attaching, reading the target, writing output)
  2    invalid command line
  3    the target received a fatal signal; its tracebacks were printed
  4    missing privileges or kernel support (root or CAP_BPF+CAP_PERFMON,
       a kernel with BTF, Linux 6.7 or later)
  With -- COMMAND: COMMAND's status (128+N for signal N); 127 when it
  cannot be found, 126 when it cannot be run.
)";

constexpr const char *kTarget = "Target";
constexpr const char *kFilters =
	"Filters (--system-wide; each one given must match; repeatable, or a comma\nlist)";
constexpr const char *kTriggers = "Triggers (a fatal signal always is one)";
constexpr const char *kCapture = "Capture";
constexpr const char *kOutput = "Output";

constexpr OptionRow kWatchOptions[] = {
	{.group = kTarget, .id = kOptPid, .name = "pid", .arg = "PID", .attached_number = true,
	 .help = "watch this running process (a thread id selects its\n"
		 "process) until it exits, or until fh-bpf is\n"
		 "interrupted: Ctrl-C detaches, the target goes on.\n"
		 "Its descendants are watched too (see --no-children)"},
	{.kind = OptionRow::operands, .group = kTarget, .name = "-- COMMAND [ARGS...]",
	 .help = "start COMMAND already watched (armed before its\n"
		 "first instruction), with fh-bpf's stdin, stdout and\n"
		 "stderr, and exit with its status (128+N when signal\n"
		 "N ended it).  A terminal's Ctrl-C reaches COMMAND;\n"
		 "a SIGINT, SIGTERM or SIGHUP sent to fh-bpf by a\n"
		 "process outside its process group is passed on"},
	{.group = kTarget, .id = kOptNoChildren, .name = "no-children",
	 .help = "watch the one process (-p PID, or COMMAND) alone.\n"
		 "By default every process it forks, and they fork in\n"
		 "turn, is watched too, from its fork (before its\n"
		 "first instruction): prefork workers, multiprocessing,\n"
		 "shell wrappers.  Each one's fatal signal is an\n"
		 "incident of its own, named in the output by its pid\n"
		 "and parent; the watch ends when the last process of\n"
		 "the tree has exited"},
	{.group = kTarget, .id = kOptSystemWide, .name = "system-wide",
	 .help = "every process of the host (a host agent): each one\n"
		 "that dies of a fatal signal leaves an incident,\n"
		 "processes started after fh-bpf included (their\n"
		 "mappings are followed from their exec, so one that\n"
		 "crashes milliseconds after it starts is symbolized\n"
		 "in full), Python ones with Python frames, those in\n"
		 "containers through their own root.  Runs until\n"
		 "SIGINT or SIGTERM, which first write out every\n"
		 "incident already captured"},
	{.group = kFilters, .id = kOptComm, .name = "comm", .arg = "NAME",
	 .help = "processes whose name (ps -o comm, 15 bytes at\n"
		 "most) is NAME"},
	{.group = kFilters, .id = kOptExcludeComm, .name = "exclude-comm", .arg = "NAME",
	 .help = "not those"},
	{.group = kFilters, .id = kOptUid, .name = "uid", .arg = "UID",
	 .help = "processes whose real uid is UID (a number or a\n"
		 "user name)"},
	{.group = kFilters, .id = kOptCgroup, .name = "cgroup", .arg = "PATH",
	 .help = "processes in the cgroup v2 PATH (below the cgroup2\n"
		 "mount, such as /system.slice/nginx.service, or the\n"
		 "directory itself) or in one below it"},
	{.group = kTriggers, .id = kOptTimeout, .name = "timeout", .arg = "SEC",
	 .help = "dump every thread after SEC seconds (such as 2 or\n"
		 "0.5), as faulthandler.dump_traceback_later does:\n"
		 "header \"Timeout (0:00:02)!\", no current thread"},
	{.group = kTriggers, .id = kOptRepeat, .name = "repeat",
	 .help = "with --timeout: every SEC seconds, until the target\n"
		 "exits or fh-bpf is stopped"},
	{.group = kTriggers, .id = kOptExit, .name = "exit",
	 .help = "with --timeout: terminate the target (SIGKILL) after\n"
		 "the first dump, and say so"},
	{.group = kTriggers, .id = kOptSignal, .name = "signal", .arg = "SIG",
	 .help = "dump every thread when the target receives SIG\n"
		 "(default SIGUSR1), as faulthandler.register(SIG)\n"
		 "does: no header, the receiving thread is \"Current\n"
		 "thread\"; the target's handler, if any, runs as usual.\n"
		 "A target that neither handles nor ignores SIG would\n"
		 "die of it: by default it is not armed there (-v says\n"
		 "so); --signal arms it anyway: fh-bpf keeps the target\n"
		 "alive where the kernel allows a BPF LSM program\n"
		 "(refusing that signal), else dumps every thread\n"
		 "before the target dies"},
	{.group = kTriggers, .id = kOptNoSignal, .name = "no-signal",
	 .help = "no dump on a user signal"},
	{.group = kTriggers, .id = kOptSignals, .name = "signals", .arg = "LIST",
	 .help = "also capture these signals (SIGKILL, SIGTERM,\n"
		 "SIGXCPU, ...): who killed a process is named (a\n"
		 "process's pid, name and uid, or the kernel: the OOM\n"
		 "killer, a CPU time limit, ...).  Those whose\n"
		 "default action ends the process without a core dump\n"
		 "are captured as the kernel kills its threads"},
	{.group = kTriggers, .id = kOptHandled, .name = "handled",
	 .help = "also capture fatal signals the target catches with\n"
		 "a handler of its own (by default only those that\n"
		 "take the default action, which kills the process)"},
	{.kind = OptionRow::text, .group = kTriggers,
	 .help = "SIGUSR1 sent to fh-bpf itself: dump every thread of the target now, as\n"
		 "--dump does."},
	{.group = kTriggers, .id = kOptDump, .name = "dump",
	 .help = "print every thread now and exit, as\n"
		 "faulthandler.dump_traceback(all_threads=True) would\n"
		 "if the main thread called it (no header; the main\n"
		 "thread is \"Current thread\")"},
	{.group = kCapture, .id = kOptStackSize, .name = "stack-size", .arg = "BYTES",
	 .help = "stack bytes copied per thread, from the stack\n"
		 "pointer up; suffix K or M allowed; rounded up to\n"
		 "whole pages; 4K to 256K (default 16K)"},
	{.group = kCapture, .id = kOptMaxThreads, .name = "max-threads", .arg = "N",
	 .help = "threads captured per event (default 256); threads\n"
		 "beyond are counted and reported.  The ring buffer\n"
		 "holds N threads' records when N is given; by\n"
		 "default it holds twice the target's threads at\n"
		 "attach (at least 64, at most 256)"},
	{.group = kCapture, .id = kOptNative, .name = "native",
	 .help = "Python processes: each thread's native frames too,\n"
		 "newest first, with the Python frames in place of\n"
		 "the evaluation loop's C frames that ran them: a C\n"
		 "extension's frames between the Python caller and\n"
		 "callee, in fh-bpf's native form.  The interpreter's\n"
		 "own frames are left out, but for the newest ones (a\n"
		 "crash or wait inside it).  Threads with no Python\n"
		 "thread state follow.  Without it a Python traceback\n"
		 "is faulthandler's, byte for byte"},
	{.group = kCapture, .id = kOptNativeAll, .name = "native-all",
	 .help = "--native, the interpreter's own frames included"},
	{.group = kCapture, .id = kOptCacheDir, .name = "cache-dir", .arg = "DIR",
	 .help = "what fh-bpf works out once and reuses, kept in DIR\n"
		 "(default /var/cache/fh-bpf, created 0700; \"none\":\n"
		 "nothing kept): debug files whose sections are\n"
		 "compressed (Debian's -dbg, -dbgsym), inflated; the\n"
		 "kernel types the BPF programs need (BTF), from\n"
		 "bpftool when it is installed"},
	{.group = kCapture, .id = kOptDebugCacheSize, .name = "debug-cache-size", .arg = "SIZE",
	 .help = "\n"
		 "at most SIZE bytes of inflated debug files (K, M,\n"
		 "G; default 1G): the least recently used go first"},
	{.group = kOutput, .id = kOptOutput, .name = "output", .arg = "FILE",
	 .help = "append every traceback to FILE (created 0600,\n"
		 "symlinks not followed; an existing FILE must be\n"
		 "fh-bpf's user's, writable by it alone, with one\n"
		 "name) instead of stderr"},
	{.group = kOutput, .id = kOptFormat, .name = "format", .arg = "FORMAT",
	 .help = "text (faulthandler's, the default) or json: one\n"
		 "JSON object a line per incident (schema in the\n"
		 "README), its text included"},
	{.group = kOutput, .id = kOptLogDir, .name = "log-dir", .arg = "DIR",
	 .help = "also write each incident to a file of its own in\n"
		 "DIR (created 0700 if missing), named by UTC time,\n"
		 "command, pid and signal: 0600, written whole or not\n"
		 "at all, never over another file"},
	{.group = kOutput, .id = kOptLogKeep, .name = "log-keep", .arg = "N",
	 .help = "keep at most N incident files in DIR (default 1000)"},
	{.group = kOutput, .id = kOptLogMaxSize, .name = "log-max-size", .arg = "SIZE",
	 .help = "\n"
		 "and at most SIZE bytes of them (K, M, G; default\n"
		 "256M): the oldest go first; one file takes at most\n"
		 "an eighth of SIZE (a longer text keeps its start\n"
		 "and end), so one incident never pushes out the rest"},
	{.group = kOutput, .id = kOptSyslog, .name = "syslog",
	 .help = "also send each incident to the local syslog daemon\n"
		 "(/dev/log) as an RFC 5424 record: structured data\n"
		 "[fh@32473 incident= pid= comm= signal= ...], the\n"
		 "text (or JSON) as message"},
	{.group = kOutput, .id = kOptSyslogSocket, .name = "syslog-socket", .arg = "PATH",
	 .help = "the same, to the unix datagram socket PATH"},
	{.group = kOutput, .id = kOptSyslogMaxSize, .name = "syslog-max-size", .arg = "SIZE",
	 .help = "\n"
		 "bytes a record at most, 1K to 64K (default 8K,\n"
		 "rsyslog's own limit); a longer incident goes in\n"
		 "parts, each with part= and parts= (JSON: each part\n"
		 "an object of its own, rules in the README)"},
	{.group = kOutput, .id = kOptRateLimit, .name = "rate-limit", .arg = "N[/T]",
	 .help = "with --system-wide: at most N incidents of one\n"
		 "program (its executable; for an interpreter, the\n"
		 "script or module it runs) in any T (seconds, or\n"
		 "with s, m, h; default 10/60); the ones held back\n"
		 "are counted and summarised once per T, in the\n"
		 "output, the log directory and syslog.  0: no limit"},
	{.group = kOutput, .id = kOptProcessRateLimit, .name = "process-rate-limit", .arg = "N[/T]",
	 .help = "\n"
		 "the same per process (default 3/60)"},
	{.group = kOutput, .id = kOptVerbose, .name = "verbose",
	 .help = "report signal details, timings and per-thread\n"
		 "capture facts; write them to FILE too with -o"},
	{.group = kOutput, .id = kOptReadyFd, .name = "ready-fd", .arg = "FD",
	 .help = "write \"ready\\n\" to FD and close it once armed (for\n"
		 "scripts that must not race the attach)"},
	{.group = kOutput, .id = kOptStatsFd, .name = "stats-fd", .arg = "FD",
	 .help = "write fh-bpf's own timings to FD, one JSON object\n"
		 "a line: once armed, per event written, at the end\n"
		 "(for benchmarks; schema in the README)"},
	{.group = kOutput, .id = kOptVersion, .name = "version",
	 .help = "print the version and exit"},
	{.group = kOutput, .id = kOptHelp, .name = "help",
	 .help = "print this help and exit"},
};

} // namespace

std::span<const OptionRow> watch_options() { return kWatchOptions; }

std::string usage_text() { return kPrologue + options_help(kWatchOptions) + kEpilogue; }

std::string version_text() { return "fh-bpf " FH_VERSION "\n"; }

} // namespace fh
