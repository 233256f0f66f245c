#include "cli/options.h"

#include "capture/records.h"
#include "cli/option_table.h"
#include "cli/usage.h"
#include "cli/values.h"

#include <linux/types.h>

#include <csignal>
#include <set>
#include <stdexcept>

extern "C" {
#include "fh/records.h"
}

namespace fh {

namespace {

constexpr uint32_t kMaxThreadsDefault = 256;
constexpr uint32_t kLogKeepDefault = 1000;
constexpr uint64_t kLogMaxBytesDefault = 256ull << 20;

// --- the watch's command line ------------------------------------------------

// The options a command line gives, whatever their values: what the checks
// of the whole command line ask beyond the Options.
class Given {
public:
	void add(int id) { ids_.insert(id); }
	bool operator()(int id) const { return ids_.count(id) != 0; }

private:
	std::set<int> ids_;
};

Options watch_defaults()
{
	Options o;
	o.stack_size = FH_STACK_DEFAULT;
	o.max_threads = kMaxThreadsDefault;
	o.user_signal = SIGUSR1;
	o.log_keep = kLogKeepDefault;
	o.log_max_bytes = kLogMaxBytesDefault;
	return o;
}

// The target and what is captured of it: -p, --system-wide and its
// filters, the signals captured, capture sizes.  False for an option of
// another part.
bool take_target_option(Options &o, int id, const std::string &v)
{
	switch (id) {
	case kOptPid:
		o.pid = parse_pid(v);
		break;
	case kOptSystemWide:
		o.system_wide = true;
		break;
	case kOptNoChildren:
		o.children = false;
		break;
	case kOptNative:
		o.native = true;
		break;
	case kOptNativeAll:
		o.native = o.native_all = true;
		break;
	case kOptComm:
		add_comms(o.comms, "--comm", v);
		break;
	case kOptExcludeComm:
		add_comms(o.exclude_comms, "--exclude-comm", v);
		break;
	case kOptUid:
		add_uids(o.uids, v);
		break;
	case kOptCgroup:
		o.cgroups.push_back(nonempty(v, "--cgroup"));
		break;
	case kOptSignals:
		o.extra_signals |= extra_signals_value(v);
		break;
	case kOptHandled:
		o.handled = true;
		break;
	case kOptStackSize:
		o.stack_size = stack_size_value(v);
		break;
	case kOptMaxThreads:
		o.max_threads = max_threads_value(v);
		o.max_threads_given = true;
		break;
	default:
		return false;
	}
	return true;
}

// When every thread is dumped besides a fatal signal.  False for an option
// of another part.
bool take_trigger_option(Options &o, int id, const std::string &v)
{
	switch (id) {
	case kOptTimeout:
		o.timeout_us = timeout_value(v);
		break;
	case kOptRepeat:
		o.repeat = true;
		break;
	case kOptExit:
		o.exit_after = true;
		break;
	case kOptSignal:
		o.user_signal = user_signal_value(v);
		o.user_signal_given = true;
		break;
	case kOptNoSignal:
		o.user_signal = 0;
		o.user_signal_given = false;
		break;
	case kOptDump:
		o.dump = true;
		break;
	default:
		return false;
	}
	return true;
}

// Where and how incidents are written.  False for an option of another part.
bool take_output_option(Options &o, int id, const std::string &v)
{
	switch (id) {
	case kOptOutput:
		o.output = nonempty(v, "output file name");
		break;
	case kOptFormat:
		o.json = json_format(v);
		break;
	case kOptLogDir:
		o.log_dir = nonempty(v, "--log-dir");
		break;
	case kOptLogKeep:
		o.log_keep = log_keep_value(v);
		break;
	case kOptCacheDir:
		o.cache_dir = cache_dir_value(v);
		break;
	case kOptDebugCacheSize:
		o.debug_cache_bytes = debug_cache_size_value(v);
		break;
	case kOptLogMaxSize:
		o.log_max_bytes = log_max_size_value(v);
		break;
	case kOptSyslog:
		if (o.syslog_socket.empty())
			o.syslog_socket = "/dev/log";
		break;
	case kOptSyslogSocket:
		o.syslog_socket = syslog_socket_value(v);
		break;
	case kOptSyslogMaxSize:
		o.syslog_max = syslog_max_value(v);
		break;
	case kOptRateLimit:
		o.program_rate = rate_value("--rate-limit", v);
		break;
	case kOptProcessRateLimit:
		o.process_rate = rate_value("--process-rate-limit", v);
		break;
	default:
		return false;
	}
	return true;
}

// What fh-bpf itself says and to whom.  False for an option of another part.
bool take_report_option(Options &o, int id, const std::string &v)
{
	switch (id) {
	case kOptVerbose:
		o.verbose = true;
		break;
	case kOptReadyFd:
		o.ready_fd = fd_value("--ready-fd", v);
		break;
	case kOptStatsFd:
		o.stats_fd = fd_value("--stats-fd", v);
		break;
	default:
		return false;
	}
	return true;
}

// One option of the table and its value, into o.
void take_option(Options &o, int id, const std::string &v)
{
	bool taken = take_target_option(o, id, v) || take_trigger_option(o, id, v) ||
		     take_output_option(o, id, v) || take_report_option(o, id, v);
	if (!taken) // in the table, so in --help, but read by no part: a bug
		throw std::logic_error("option " + std::to_string(id) + " is not read");
}

// What follows the options: a command after "--", nothing else.
void take_operands(Options &o, const OptionScanner &scan)
{
	std::vector<std::string> rest = scan.operands();
	if (scan.after_separator()) {
		if (rest.empty())
			throw usage_error("no command after --");
		o.command = std::move(rest);
	} else if (!rest.empty()) {
		if (rest[0][0] == '-') // "-": getopt's operand, an unknown option here
			throw usage_error("unknown option '" + rest[0] + "'");
		throw usage_error("unexpected argument '" + rest[0] +
				  "' (to start a command under fh-bpf, put it after --)");
	}
}

// Sizes that hold together: the ring buffer, the log directory's bounds,
// syslog's record size.
void check_sizes(const Options &o, const Given &given)
{
	if (ring_size_for(o.stack_size, o.max_threads) > kMaxRingSize)
		throw usage_error("--max-threads " + std::to_string(o.max_threads) +
				  " with --stack-size " + std::to_string(o.stack_size) +
				  " needs a ring buffer over " + std::to_string(kMaxRingSize >> 20) +
				  " MiB: lower one of them");
	if (o.log_dir.empty() &&
	    (o.log_keep != kLogKeepDefault || o.log_max_bytes != kLogMaxBytesDefault))
		throw usage_error("--log-keep and --log-max-size need --log-dir");
	if (given(kOptSyslogMaxSize) && o.syslog_socket.empty())
		throw usage_error("--syslog-max-size needs --syslog");
}

// --system-wide: every process, so nothing that is about one target.
void check_agent(const Options &o, const Given &given)
{
	if (given(kOptPid) || !o.command.empty())
		throw usage_error("--system-wide watches every process: it takes no -p PID or "
				  "command");
	if (o.dump || o.timeout_us || o.repeat || o.exit_after)
		throw usage_error("--system-wide catches fatal signals: --dump and --timeout "
				  "need one target (-p PID)");
	if (given(kOptNoChildren))
		throw usage_error("--no-children is about the descendants of one target (-p PID "
				  "or a command)");
	if (given(kOptSignal) || given(kOptNoSignal))
		throw usage_error("--system-wide takes no --signal: a user signal is a dump "
				  "request to one target");
}

// One target (-p PID or a command): no agent options, and triggers that
// go together.
void check_target(const Options &o, const Given &given)
{
	bool launch = !o.command.empty();
	if (given(kOptRateLimit) || given(kOptProcessRateLimit))
		throw usage_error("--rate-limit and --process-rate-limit hold back a flood of "
				  "incidents from many processes: --system-wide only");
	if (!o.comms.empty() || !o.exclude_comms.empty() || !o.uids.empty() || !o.cgroups.empty())
		throw usage_error("--comm, --exclude-comm, --uid and --cgroup choose processes for "
				  "--system-wide");
	if (!given(kOptPid) && !launch)
		throw usage_error("no target: give -p PID, a command after --, or --system-wide");
	if (given(kOptPid) && launch)
		throw usage_error("give either -p PID or a command after --, not both");
	if ((o.repeat || o.exit_after) && !o.timeout_us)
		throw usage_error(std::string(o.repeat ? "--repeat" : "--exit") + " needs --timeout");
	if (o.dump && !o.log_dir.empty())
		throw usage_error("--log-dir keeps the incidents of a watch: use -o FILE with --dump");
	if (o.dump && (o.timeout_us || launch))
		throw usage_error(std::string("--dump prints the threads once and exits: it takes no ") +
				  (launch ? "command" : "--timeout"));
}

// fh-bpf [options] (-p PID | -- COMMAND | --system-wide): the options in
// order, each value checked as it comes; --help and --version end the
// reading; then the command line as a whole.
Options parse_watch(const std::vector<std::string> &args)
{
	Options o = watch_defaults();
	Given given;
	OptionScanner scan(args, watch_options());
	while (auto opt = scan.next()) {
		if (opt->id == kOptHelp || opt->id == kOptVersion) {
			o.help = opt->id == kOptHelp;
			o.version = opt->id == kOptVersion;
			return o;
		}
		given.add(opt->id);
		take_option(o, opt->id, opt->value);
	}
	take_operands(o, scan);
	check_sizes(o, given);
	if (o.system_wide) {
		check_agent(o, given);
		o.user_signal = 0;
	} else {
		check_target(o, given);
	}
	return o;
}

// --- commands ----------------------------------------------------------------

// Commands named by the first argument, each read by a parser of its own
// (given the arguments after the name).  A name listed without a parser is
// one this version of fh-bpf keeps for a command it does not have: such a
// first argument is refused as an unknown command, never taken for a watch
// or a program to start.
struct Command {
	const char *name;
	Options (*parse)(const std::vector<std::string> &args);
};

constexpr Command kCommands[] = {
	{"incidents", nullptr}, // the incident files of a --log-dir
};

const Command *command_named(const std::string &name)
{
	for (const auto &c : kCommands)
		if (name == c.name)
			return &c;
	return nullptr;
}

} // namespace

Options parse_options(const std::vector<std::string> &args)
{
	const Command *c = args.empty() ? nullptr : command_named(args[0]);
	if (!c)
		return parse_watch(args);
	if (!c->parse)
		throw usage_error("unknown command '" + args[0] +
				  "' (not in this version of fh-bpf; to start a program of that "
				  "name, put it after --)");
	Options o = c->parse({args.begin() + 1, args.end()});
	o.subcommand = c->name;
	return o;
}

} // namespace fh
