#include "cli/options.h"

#include "util/error.h"
#include "capture/records.h"
#include "util/signals.h"
#include "util/strings.h"

#include <linux/types.h>

#include <cerrno>
#include <cinttypes>
#include <csignal>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <pwd.h>

extern "C" {
#include "fh/records.h"
}

#ifndef FH_VERSION
#define FH_VERSION "0.1.0"
#endif

namespace fh {

namespace {

constexpr uint32_t kMaxThreadsDefault = 256;
constexpr uint32_t kLogKeepDefault = 1000;
constexpr uint64_t kLogMaxBytesDefault = 256ull << 20;
constexpr uint32_t kMaxThreadsLimit = 65536;

Error usage(const std::string &msg) { return Error(msg + " (see fh-bpf --help)", EINVAL, kExitUsage); }

bool parse_u64(const std::string &s, uint64_t &out)
{
	if (s.empty() || s.find_first_not_of("0123456789") != std::string::npos || s.size() > 19)
		return false;
	errno = 0;
	out = std::strtoull(s.c_str(), nullptr, 10);
	return errno == 0;
}

pid_t parse_pid(const std::string &v)
{
	uint64_t pid;
	if (!parse_u64(v, pid) || pid == 0 || pid > INT_MAX)
		throw usage("invalid PID '" + v + "'");
	return static_cast<pid_t>(pid);
}

// "--name=value" or "--name value"; advances i past what it used.
bool take_value(const std::vector<std::string> &args, size_t &i, const std::string &name,
		std::string &value)
{
	const std::string &a = args[i];
	if (a == name) {
		if (i + 1 >= args.size())
			throw usage("option " + name + " needs a value");
		value = args[++i];
		return true;
	}
	if (a.size() > name.size() + 1 && a.compare(0, name.size(), name) == 0 &&
	    a[name.size()] == '=') {
		value = a.substr(name.size() + 1);
		return true;
	}
	return false;
}

uint32_t parse_uid(const std::string &v)
{
	uint64_t n;
	if (parse_u64(v, n)) {
		if (n >= UINT32_MAX)
			throw usage("invalid --uid '" + v + "'");
		return static_cast<uint32_t>(n);
	}
	struct passwd pw, *res = nullptr;
	std::vector<char> buf(16384);
	if (getpwnam_r(v.c_str(), &pw, buf.data(), buf.size(), &res) != 0 || !res)
		throw usage("invalid --uid '" + v + "': no such user");
	return res->pw_uid;
}

// The signals --signals may add: those that end a process, by a default
// action or by nature, but not those fh-bpf always watches.
bool addable_signal(int sig)
{
	switch (sig) {
	case SIGCHLD:
	case SIGCONT:
	case SIGSTOP:
	case SIGTSTP:
	case SIGTTIN:
	case SIGTTOU:
	case SIGURG:
	case SIGWINCH:
		return false;
	default:
		return sig >= 1 && sig <= 64;
	}
}

Rate rate_value(const char *option, const std::string &v)
{
	Rate r;
	if (!parse_rate(v, r))
		throw usage("invalid " + std::string(option) + " '" + v +
			    "': N/SECONDS (10/60), N/1m, N/1h, or 0 for no limit");
	return r;
}

void add_comms(std::vector<std::string> &to, const char *option, const std::string &v)
{
	for (const auto &name : split(v, ',')) {
		if (name.empty() || name.size() >= FH_COMM_LEN)
			throw usage("invalid " + std::string(option) + " '" + name +
				    "': a process name of 1 to " + std::to_string(FH_COMM_LEN - 1) +
				    " bytes, as the kernel keeps it (ps -o comm)");
		to.push_back(name);
	}
}

} // namespace

bool parse_size(const std::string &s, uint64_t &out)
{
	if (s.empty())
		return false;
	uint64_t mult = 1;
	std::string digits = s;
	switch (s.back()) {
	case 'k':
	case 'K':
		mult = 1024;
		break;
	case 'm':
	case 'M':
		mult = 1024 * 1024;
		break;
	case 'g':
	case 'G':
		mult = 1024ull * 1024 * 1024;
		break;
	default:
		break;
	}
	if (mult != 1)
		digits.pop_back();
	uint64_t v;
	if (!parse_u64(digits, v) || v > UINT64_MAX / mult)
		return false;
	out = v * mult;
	return true;
}

bool parse_seconds(const std::string &s, uint64_t &us)
{
	size_t dot = s.find('.');
	std::string whole = s.substr(0, dot);
	std::string frac = dot == std::string::npos ? "" : s.substr(dot + 1);
	if ((whole.empty() && frac.empty()) || whole.size() > 12 ||
	    whole.find_first_not_of("0123456789") != std::string::npos ||
	    frac.find_first_not_of("0123456789") != std::string::npos ||
	    (dot != std::string::npos && frac.empty()))
		return false;
	uint64_t sec = whole.empty() ? 0 : std::strtoull(whole.c_str(), nullptr, 10);
	uint64_t micro = 0;
	for (size_t i = 0; i < 6; i++)
		micro = micro * 10 + (i < frac.size() ? static_cast<uint64_t>(frac[i] - '0') : 0);
	// Digits past the microsecond round up, as faulthandler rounds.
	if (frac.size() > 6 && frac.find_first_not_of('0', 6) != std::string::npos)
		micro++;
	if (sec > kMaxTimeoutUs / 1000000)
		return false;
	us = sec * 1000000 + micro;
	return us > 0 && us <= kMaxTimeoutUs;
}

std::string timeout_header(uint64_t us)
{
	uint64_t sec = us / 1000000, micro = us % 1000000;
	char buf[96];
	if (micro)
		std::snprintf(buf, sizeof(buf), "Timeout (%" PRIu64 ":%02" PRIu64 ":%02" PRIu64
						".%06" PRIu64 ")!\n",
			      sec / 3600, sec / 60 % 60, sec % 60, micro);
	else
		std::snprintf(buf, sizeof(buf), "Timeout (%" PRIu64 ":%02" PRIu64 ":%02" PRIu64 ")!\n",
			      sec / 3600, sec / 60 % 60, sec % 60);
	return buf;
}

std::string version_text() { return "fh-bpf " FH_VERSION "\n"; }

std::string usage_text()
{
	return R"(Usage: fh-bpf -p PID [options]
       fh-bpf [options] -- COMMAND [ARGS...]
       fh-bpf -p PID --dump [-o FILE]
       fh-bpf --system-wide [filters] [options]

Print a traceback of every thread of a process, in Python faulthandler's
format, from outside it: when it receives a fatal signal (SIGSEGV, SIGFPE,
SIGABRT, SIGBUS, SIGILL: captured by BPF programs in the kernel before the
process dies), after a timeout, when it receives a user signal, or on demand.
A Python process (CPython 3.6 to 3.13) gets the Python frames its own
faulthandler would print; a native one gets function, source file and line
of each frame from DWARF.  The target needs no preparation and is never
stopped, traced or sent a signal (but with --exit).

Target:
  -p, --pid PID          watch this running process (a thread id selects its
                         process) until it exits, or until fh-bpf is
                         interrupted: Ctrl-C detaches, the target goes on
  -- COMMAND [ARGS...]   start COMMAND already watched (armed before its
                         first instruction), with fh-bpf's stdin, stdout and
                         stderr, and exit with its status (128+N when signal
                         N ended it).  A terminal's Ctrl-C reaches COMMAND;
                         a SIGINT, SIGTERM or SIGHUP sent to fh-bpf by a
                         process outside its process group is passed on
  -a, --system-wide      every process of the host (a host agent): each one
                         that dies of a fatal signal leaves an incident,
                         processes started after fh-bpf included (their
                         mappings are followed from their exec, so one that
                         crashes milliseconds after it starts is symbolized
                         in full), Python ones with Python frames, those in
                         containers through their own root.  Runs until
                         SIGINT or SIGTERM, which first write out every
                         incident already captured

Filters (--system-wide; each one given must match; repeatable, or a comma
list):
      --comm NAME        processes whose name (ps -o comm, 15 bytes at
                         most) is NAME
      --exclude-comm NAME  not those
      --uid UID          processes whose real uid is UID (a number or a
                         user name)
      --cgroup PATH      processes in the cgroup v2 PATH (below the cgroup2
                         mount, such as /system.slice/nginx.service, or the
                         directory itself) or in one below it

Triggers (a fatal signal always is one):
      --timeout SEC      dump every thread after SEC seconds (such as 2 or
                         0.5), as faulthandler.dump_traceback_later does:
                         header "Timeout (0:00:02)!", no current thread
      --repeat           with --timeout: every SEC seconds, until the target
                         exits or fh-bpf is stopped
      --exit             with --timeout: terminate the target (SIGKILL) after
                         the first dump, and say so
      --signal SIG       dump every thread when the target receives SIG
                         (default SIGUSR1), as faulthandler.register(SIG)
                         does: no header, the receiving thread is "Current
                         thread"; the target's handler, if any, runs as usual.
                         A target that neither handles nor ignores SIG would
                         be terminated by it: fh-bpf says so at start, keeps
                         it alive where the kernel allows a BPF LSM program
                         (refusing that signal), and otherwise dumps every
                         thread before the target dies
      --no-signal        no dump on a user signal
      --signals LIST     also capture these signals (SIGKILL, SIGTERM,
                         SIGXCPU, ...): who killed a process is named (a
                         process's pid, name and uid, or the kernel: the OOM
                         killer, a CPU time limit, ...).  Those whose
                         default action ends the process without a core dump
                         are captured as the kernel kills its threads
      --handled          also capture fatal signals the target catches with
                         a handler of its own (by default only those that
                         take the default action, which kills the process)
  SIGUSR1 sent to fh-bpf itself: dump every thread of the target now, as
  --dump does.
      --dump             print every thread now and exit, as
                         faulthandler.dump_traceback(all_threads=True) would
                         if the main thread called it (no header; the main
                         thread is "Current thread")

Capture:
      --stack-size BYTES stack bytes copied per thread, from the stack
                         pointer up; suffix K or M allowed; rounded up to
                         whole pages; 4K to 256K (default 16K)
      --max-threads N    threads captured per event (default 256); threads
                         beyond are counted and reported.  The ring buffer
                         holds N threads' records when N is given; by
                         default it holds twice the target's threads at
                         attach (at least 64, at most 256)

Output:
  -o, --output FILE      append every traceback to FILE (created 0600,
                         symlinks not followed; an existing FILE must be
                         fh-bpf's user's, writable by it alone, with one
                         name) instead of stderr
      --format FORMAT    text (faulthandler's, the default) or json: one
                         JSON object a line per incident (schema in the
                         README), its text included
      --log-dir DIR      also write each incident to a file of its own in
                         DIR (created 0700 if missing), named by UTC time,
                         command, pid and signal: 0600, written whole or not
                         at all, never over another file
      --log-keep N       keep at most N incident files in DIR (default 1000)
      --log-max-size SIZE
                         and at most SIZE bytes of them (K, M, G; default
                         256M): the oldest go first; one file takes at most
                         an eighth of SIZE (a longer text keeps its start
                         and end), so one incident never pushes out the rest
      --syslog           also send each incident to the local syslog daemon
                         (/dev/log) as an RFC 5424 record: structured data
                         [fh@32473 incident= pid= comm= signal= ...], the
                         text (or JSON) as message
      --syslog-socket PATH  the same, to the unix datagram socket PATH
      --syslog-max-size SIZE
                         bytes a record at most, 1K to 64K (default 8K,
                         rsyslog's own limit); a longer incident goes in
                         parts, each with part= and parts=
      --rate-limit N[/T] with --system-wide: at most N incidents of one
                         process name in any T (seconds, or with s, m, h;
                         default 10/60); the ones held back are counted and
                         summarised once per T, in the output, the log
                         directory and syslog.  0: no limit
      --process-rate-limit N[/T]
                         the same per process (default 3/60)
  -v, --verbose          report signal details, timings and per-thread
                         capture facts; write them to FILE too with -o
      --ready-fd FD      write "ready\n" to FD and close it once armed (for
                         scripts that must not race the attach)
      --stats-fd FD      write fh-bpf's own timings to FD, one JSON object
                         a line: once armed, per event written, at the end
                         (for benchmarks; schema in the README)
      --version          print the version and exit
  -h, --help             print this help and exit

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
}

Options parse_options(const std::vector<std::string> &args)
{
	Options o;
	o.stack_size = FH_STACK_DEFAULT;
	o.max_threads = kMaxThreadsDefault;
	o.user_signal = SIGUSR1;
	o.log_keep = kLogKeepDefault;
	o.log_max_bytes = kLogMaxBytesDefault;
	bool have_pid = false;
	bool user_signal_given = false;
	bool rate_given = false;
	bool syslog_max_given = false;

	for (size_t i = 0; i < args.size(); i++) {
		const std::string &a = args[i];
		std::string v;
		if (a == "-h" || a == "--help") {
			o.help = true;
			return o;
		} else if (a == "--version") {
			o.version = true;
			return o;
		} else if (a == "-v" || a == "--verbose") {
			o.verbose = true;
		} else if (a == "--handled") {
			o.handled = true;
		} else if (a == "--dump") {
			o.dump = true;
		} else if (a == "--repeat") {
			o.repeat = true;
		} else if (a == "--exit") {
			o.exit_after = true;
		} else if (a == "-a" || a == "--system-wide") {
			o.system_wide = true;
		} else if (take_value(args, i, "--comm", v)) {
			add_comms(o.comms, "--comm", v);
		} else if (take_value(args, i, "--exclude-comm", v)) {
			add_comms(o.exclude_comms, "--exclude-comm", v);
		} else if (take_value(args, i, "--uid", v)) {
			for (const auto &u : split(v, ','))
				o.uids.push_back(parse_uid(u));
		} else if (take_value(args, i, "--cgroup", v)) {
			if (v.empty())
				throw usage("empty --cgroup");
			o.cgroups.push_back(v);
		} else if (a == "--syslog") {
			if (o.syslog_socket.empty())
				o.syslog_socket = "/dev/log";
		} else if (take_value(args, i, "--syslog-socket", v)) {
			if (v.empty() || v.size() >= 108)
				throw usage("invalid --syslog-socket '" + v +
					    "': a unix socket path of 1 to 107 bytes");
			o.syslog_socket = v;
		} else if (take_value(args, i, "--syslog-max-size", v)) {
			uint64_t n;
			if (!parse_size(v, n) || n < 1024 || n > 64 * 1024)
				throw usage("invalid --syslog-max-size '" + v +
					    "': expected 1K to 64K bytes");
			o.syslog_max = n;
			syslog_max_given = true;
		} else if (take_value(args, i, "--rate-limit", v)) {
			o.comm_rate = rate_value("--rate-limit", v);
			rate_given = true;
		} else if (take_value(args, i, "--process-rate-limit", v)) {
			o.process_rate = rate_value("--process-rate-limit", v);
			rate_given = true;
		} else if (take_value(args, i, "--signals", v)) {
			for (const auto &name : split(v, ',')) {
				auto sig = parse_signal(name);
				if (!sig || !addable_signal(*sig))
					throw usage("invalid --signals '" + name +
						    "': a signal that ends a process (SIGKILL, "
						    "SIGTERM, SIGXCPU, ...), by name or number");
				o.extra_signals |= 1ull << (*sig - 1);
			}
		} else if (take_value(args, i, "--format", v)) {
			if (v != "text" && v != "json")
				throw usage("invalid --format '" + v + "': text or json");
			o.json = v == "json";
		} else if (take_value(args, i, "--log-dir", v)) {
			if (v.empty())
				throw usage("empty --log-dir");
			o.log_dir = v;
		} else if (take_value(args, i, "--log-keep", v)) {
			uint64_t n;
			if (!parse_u64(v, n) || n < 1 || n > 1000000)
				throw usage("invalid --log-keep '" + v + "': expected 1 to 1000000 files");
			o.log_keep = static_cast<uint32_t>(n);
		} else if (take_value(args, i, "--log-max-size", v)) {
			uint64_t n;
			if (!parse_size(v, n) || n < 4096)
				throw usage("invalid --log-max-size '" + v +
					    "': expected bytes, 4K or more (K, M, G suffixes)");
			o.log_max_bytes = n;
		} else if (take_value(args, i, "--timeout", v)) {
			if (!parse_seconds(v, o.timeout_us))
				throw usage("invalid --timeout '" + v +
					    "': expected a number of seconds above 0, such as 2 or 0.5");
		} else if (a == "--") {
			o.command.assign(args.begin() + static_cast<std::ptrdiff_t>(i) + 1, args.end());
			if (o.command.empty())
				throw usage("no command after --");
			break;
		} else if (a == "--no-signal") {
			o.user_signal = 0;
			user_signal_given = true;
		} else if (take_value(args, i, "--signal", v)) {
			auto sig = parse_signal(v);
			if (!sig || *sig == SIGKILL || *sig == SIGSTOP || *sig == SIGSEGV ||
			    *sig == SIGFPE || *sig == SIGABRT || *sig == SIGBUS || *sig == SIGILL)
				throw usage("invalid --signal '" + v +
					    "': a signal name or number, not a fatal signal, "
					    "SIGKILL or SIGSTOP");
			o.user_signal = *sig;
			user_signal_given = true;
		} else if (take_value(args, i, "-p", v) || take_value(args, i, "--pid", v)) {
			o.pid = parse_pid(v);
			have_pid = true;
		} else if (take_value(args, i, "-o", v) || take_value(args, i, "--output", v)) {
			if (v.empty())
				throw usage("empty output file name");
			o.output = v;
		} else if (take_value(args, i, "--stack-size", v)) {
			uint64_t n;
			if (!parse_size(v, n) || n < FH_STACK_MIN || n > FH_STACK_MAX)
				throw usage("invalid --stack-size '" + v +
					    "': expected 4K to 256K bytes");
			o.stack_size = (n + FH_PAGE_SIZE - 1) / FH_PAGE_SIZE * FH_PAGE_SIZE;
		} else if (take_value(args, i, "--max-threads", v)) {
			uint64_t n;
			if (!parse_u64(v, n) || n < 1 || n > kMaxThreadsLimit)
				throw usage("invalid --max-threads '" + v + "': expected 1 to " +
					    std::to_string(kMaxThreadsLimit));
			o.max_threads = static_cast<uint32_t>(n);
			o.max_threads_given = true;
		} else if (take_value(args, i, "--ready-fd", v)) {
			uint64_t fd;
			if (!parse_u64(v, fd) || fd > INT_MAX)
				throw usage("invalid --ready-fd '" + v + "'");
			o.ready_fd = static_cast<int>(fd);
		} else if (take_value(args, i, "--stats-fd", v)) {
			uint64_t fd;
			if (!parse_u64(v, fd) || fd > INT_MAX)
				throw usage("invalid --stats-fd '" + v + "'");
			o.stats_fd = static_cast<int>(fd);
		} else if (a.size() > 2 && a[0] == '-' && a[1] == 'p' &&
			   a.find_first_not_of("0123456789", 2) == std::string::npos) {
			o.pid = parse_pid(a.substr(2)); // -pPID
			have_pid = true;
		} else if (!a.empty() && a[0] == '-') {
			throw usage("unknown option '" + a + "'");
		} else {
			throw usage("unexpected argument '" + a +
				    "' (to start a command under fh-bpf, put it after --)");
		}
	}
	if (ring_size_for(o.stack_size, o.max_threads) > kMaxRingSize)
		throw usage("--max-threads " + std::to_string(o.max_threads) + " with --stack-size " +
			    std::to_string(o.stack_size) + " needs a ring buffer over " +
			    std::to_string(kMaxRingSize >> 20) +
			    " MiB: lower one of them");
	if (o.log_dir.empty() && (o.log_keep != kLogKeepDefault || o.log_max_bytes != kLogMaxBytesDefault))
		throw usage("--log-keep and --log-max-size need --log-dir");
	bool launch = !o.command.empty();
	bool filters = !o.comms.empty() || !o.exclude_comms.empty() || !o.uids.empty() ||
		       !o.cgroups.empty();
	if (syslog_max_given && o.syslog_socket.empty())
		throw usage("--syslog-max-size needs --syslog");
	if (o.system_wide) {
		if (have_pid || launch)
			throw usage("--system-wide watches every process: it takes no -p PID or "
				    "command");
		if (o.dump || o.timeout_us || o.repeat || o.exit_after)
			throw usage("--system-wide catches fatal signals: --dump and --timeout "
				    "need one target (-p PID)");
		if (user_signal_given)
			throw usage("--system-wide takes no --signal: a user signal is a dump "
				    "request to one target");
		o.user_signal = 0;
		return o;
	}
	if (rate_given)
		throw usage("--rate-limit and --process-rate-limit hold back a flood of "
			    "incidents from many processes: --system-wide only");
	if (filters)
		throw usage("--comm, --exclude-comm, --uid and --cgroup choose processes for "
			    "--system-wide");
	if (!have_pid && !launch)
		throw usage("no target: give -p PID, a command after --, or --system-wide");
	if (have_pid && launch)
		throw usage("give either -p PID or a command after --, not both");
	if ((o.repeat || o.exit_after) && !o.timeout_us)
		throw usage(std::string(o.repeat ? "--repeat" : "--exit") + " needs --timeout");
	if (o.dump && !o.log_dir.empty())
		throw usage("--log-dir keeps the incidents of a watch: use -o FILE with --dump");
	if (o.dump && (o.timeout_us || launch))
		throw usage(std::string("--dump prints the threads once and exits: it takes no ") +
			    (launch ? "command" : "--timeout"));
	return o;
}

} // namespace fh
