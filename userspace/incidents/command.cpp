#include "incidents/incidents.h"

#include "util/clock.h"
#include "util/diag.h"
#include "util/error.h"
#include "util/fd.h"
#include "util/printable.h"
#include "util/signals.h"
#include "util/strings.h"

#include <getopt.h>
#include <unistd.h>

namespace fh {

int run_show(const IncidentsOptions &opts); // show.cpp

namespace {

[[noreturn]] void usage_error(const std::string &why)
{
	throw Error("incidents: " + why + " (fh-bpf incidents --help)", 0, kExitUsage);
}

enum IncidentsOpt {
	kOptLogDir = 256,
	kOptFormat,
	kOptSince,
	kOptUntil,
	kOptComm,
	kOptSignal,
	kOptDebugDir,
	kOptRecord,
};

const struct option kLongOptions[] = {
	{"help", no_argument, nullptr, 'h'},
	{"log-dir", required_argument, nullptr, kOptLogDir},
	{"format", required_argument, nullptr, kOptFormat},
	{"since", required_argument, nullptr, kOptSince},
	{"until", required_argument, nullptr, kOptUntil},
	{"comm", required_argument, nullptr, kOptComm},
	{"signal", required_argument, nullptr, kOptSignal},
	{"debug-dir", required_argument, nullptr, kOptDebugDir},
	{"record", required_argument, nullptr, kOptRecord},
	{nullptr, 0, nullptr, 0},
};

const char *option_name(int code)
{
	for (const auto &o : kLongOptions)
		if (o.name && o.val == code)
			return o.name;
	return "?";
}

// The options only one of the two commands takes.
bool list_only(int opt)
{
	return opt == kOptSince || opt == kOptUntil || opt == kOptComm || opt == kOptSignal;
}

bool show_only(int opt) { return opt == kOptDebugDir || opt == kOptRecord; }

// One option of the command (getopt_long's code, its value): into o.
void take_option(IncidentsOptions &o, int opt, const std::string &v, uint64_t now_ns)
{
	switch (opt) {
	case kOptLogDir:
		if (v.empty())
			usage_error("--log-dir: an empty path");
		o.log_dir = v;
		break;
	case kOptFormat:
		if (v != "text" && v != "json")
			usage_error("--format: text or json");
		o.json = v == "json";
		break;
	case kOptSince:
	case kOptUntil: {
		const char *name = opt == kOptSince ? "--since" : "--until";
		auto t = parse_when(v, now_ns);
		if (!t)
			usage_error(std::string(name) + ": '" + printable(v, 64) + "' is no time");
		(opt == kOptSince ? o.since_ns : o.until_ns) = t;
		break;
	}
	case kOptComm:
		for (const auto &c : split(v, ','))
			if (!c.empty())
				o.comms.push_back(c);
		break;
	case kOptSignal:
		for (const auto &name : split(v, ',')) {
			auto sig = parse_signal(name);
			if (!sig)
				usage_error("--signal: '" + printable(name, 64) + "' is no signal");
			o.signals.push_back(*sig);
		}
		break;
	case kOptDebugDir:
		if (v.empty())
			usage_error("--debug-dir: an empty path");
		o.debug_dirs.push_back(v);
		break;
	case kOptRecord:
		if (v.empty() || v.size() > 9 || v.find_first_not_of("0123456789") != std::string::npos ||
		    std::stoul(v) == 0)
			usage_error("--record: a number from 1");
		o.record = std::stoul(v);
		break;
	}
}

} // namespace

std::string incidents_usage()
{
	return "Usage: fh-bpf incidents list [--log-dir DIR] [--since TIME] [--until TIME]\n"
	       "                             [--comm NAME] [--signal SIG] [--format text|json]\n"
	       "       fh-bpf incidents show [--log-dir DIR] [--format text|json]\n"
	       "                             [--debug-dir DIR] [--record N] ID|FILE|FILE:N\n"
	       "\n"
	       "list: the incidents of a log directory (default " + kDefaultLogDir + ", the\n"
	       "  systemd unit's), oldest first, one line each: its id (for show), time\n"
	       "  (UTC), host, pid, command, signal and the newest frame of the thread hit.\n"
	       "  TIME: 2026-12-01, 2026-12-01T10:31[:07] (UTC), @SECONDS, or a while ago:\n"
	       "  90s, 30m, 2h, 7d.  --comm and --signal: several with commas or repeated.\n"
	       "show: one incident (an id of list, a log-directory file, or record N of a\n"
	       "  JSON-lines file) as faulthandler text or JSON, each native frame\n"
	       "  symbolized again by its module's build id from DIR/.build-id/xx/rest.debug\n"
	       "  (--debug-dir, repeatable), /usr/lib/debug, and the debuginfod servers of\n"
	       "  DEBUGINFOD_URLS.\n";
}

IncidentsOptions parse_incidents_options(const std::vector<std::string> &args, uint64_t now_ns)
{
	IncidentsOptions o;
	if (args.empty())
		usage_error("list or show?");
	if (args[0] == "-h" || args[0] == "--help")
		return o;
	if (args[0] == "list")
		o.command = IncidentsOptions::Command::list;
	else if (args[0] == "show")
		o.command = IncidentsOptions::Command::show;
	else
		usage_error("unknown command '" + printable(args[0], 64) + "'");
	bool show = o.command == IncidentsOptions::Command::show;
	// getopt_long over a copy: "fh-bpf incidents COMMAND" stands for
	// argv[0]; options and the operand may come in any order.
	std::vector<std::string> words(args.begin() + 1, args.end());
	std::vector<char *> argv{const_cast<char *>("fh-bpf incidents")};
	for (auto &w : words)
		argv.push_back(w.data());
	argv.push_back(nullptr);
	int argc = static_cast<int>(argv.size()) - 1;
	optind = 0; // a fresh scan (GNU)
	opterr = 0;
	for (int c; (c = getopt_long(argc, argv.data(), ":h", kLongOptions, nullptr)) != -1;) {
		std::string given = argv[optind - 1] ? argv[optind - 1] : "";
		if (c == 'h') {
			o.command = IncidentsOptions::Command::help;
			return o;
		}
		if (c == ':')
			usage_error(printable(given, 64) + " needs a value");
		if (c == '?')
			usage_error("unknown option '" + printable(given, 64) + "'");
		if ((show && list_only(c)) || (!show && show_only(c)))
			usage_error(std::string(show ? "show" : "list") + " takes no --" +
				    option_name(c));
		take_option(o, c, optarg ? optarg : "", now_ns);
	}
	for (int i = optind; i < argc; i++) {
		if (!show || !o.what.empty())
			usage_error("unexpected argument '" + printable(argv[i], 256) + "'");
		o.what = argv[i];
	}
	if (show && o.what.empty())
		usage_error("show: which incident? (an id of incidents list, or a file)");
	return o;
}

namespace {

int run_list(const IncidentsOptions &opts)
{
	std::vector<std::string> errors;
	std::vector<StoredIncident> all = read_log_dir(opts.log_dir, &errors);
	std::string out;
	for (const auto &s : all)
		if (incident_matches(s, opts))
			out += opts.json ? list_json(s) : list_line(s);
	if (!write_all(STDOUT_FILENO, out))
		throw sys_error("writing the list", errno);
	// Each file that is no record, once; the others are listed still.
	for (const auto &e : errors)
		diag(e);
	return errors.empty() ? kExitOk : kExitFailure;
}

} // namespace

int incidents_main(const std::vector<std::string> &args)
{
	IncidentsOptions opts = parse_incidents_options(args, clock_ns(CLOCK_REALTIME));
	switch (opts.command) {
	case IncidentsOptions::Command::help:
		write_all(STDOUT_FILENO, incidents_usage());
		return kExitOk;
	case IncidentsOptions::Command::list:
		return run_list(opts);
	case IncidentsOptions::Command::show:
		return run_show(opts);
	}
	return kExitUsage;
}

} // namespace fh
