#include "incidents/incidents.h"

#include "util/clock.h"
#include "util/diag.h"
#include "util/error.h"
#include "util/fd.h"
#include "util/printable.h"
#include "util/signals.h"
#include "util/strings.h"

#include <unistd.h>

namespace fh {

int run_show(const IncidentsOptions &opts); // show.cpp

namespace {

[[noreturn]] void usage_error(const std::string &why)
{
	throw Error("incidents: " + why + " (fh-bpf incidents --help)", 0, kExitUsage);
}

// "--opt VALUE" or "--opt=VALUE": the value, args[i] moved past it.
std::string value_of(const std::vector<std::string> &args, size_t &i, const std::string &opt)
{
	const std::string &a = args[i];
	if (a.size() > opt.size() && a.compare(0, opt.size() + 1, opt + "=") == 0)
		return a.substr(opt.size() + 1);
	if (i + 1 >= args.size())
		usage_error(opt + " needs a value");
	return args[++i];
}

bool is_option(const std::string &a, const std::string &opt)
{
	return a == opt || a.compare(0, opt.size() + 1, opt + "=") == 0;
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
	bool positional_only = false;
	for (size_t i = 1; i < args.size(); i++) {
		const std::string &a = args[i];
		if (positional_only || a.empty() || a[0] != '-' || a == "-") {
			if (!show || !o.what.empty())
				usage_error("unexpected argument '" + printable(a, 256) + "'");
			o.what = a;
		} else if (a == "--") {
			positional_only = true;
		} else if (a == "-h" || a == "--help") {
			o.command = IncidentsOptions::Command::help;
			return o;
		} else if (is_option(a, "--log-dir")) {
			o.log_dir = value_of(args, i, "--log-dir");
			if (o.log_dir.empty())
				usage_error("--log-dir: an empty path");
		} else if (is_option(a, "--format")) {
			std::string f = value_of(args, i, "--format");
			if (f != "text" && f != "json")
				usage_error("--format: text or json");
			o.json = f == "json";
		} else if (!show && (is_option(a, "--since") || is_option(a, "--until"))) {
			std::string opt = a.substr(0, 7);
			std::string v = value_of(args, i, opt);
			auto t = parse_when(v, now_ns);
			if (!t)
				usage_error(opt + ": '" + printable(v, 64) + "' is no time");
			(opt == "--since" ? o.since_ns : o.until_ns) = t;
		} else if (!show && is_option(a, "--comm")) {
			for (const auto &c : split(value_of(args, i, "--comm"), ','))
				if (!c.empty())
					o.comms.push_back(c);
		} else if (!show && is_option(a, "--signal")) {
			for (const auto &name : split(value_of(args, i, "--signal"), ',')) {
				auto sig = parse_signal(name);
				if (!sig)
					usage_error("--signal: '" + printable(name, 64) + "' is no signal");
				o.signals.push_back(*sig);
			}
		} else if (show && is_option(a, "--debug-dir")) {
			std::string d = value_of(args, i, "--debug-dir");
			if (d.empty())
				usage_error("--debug-dir: an empty path");
			o.debug_dirs.push_back(d);
		} else if (show && is_option(a, "--record")) {
			std::string v = value_of(args, i, "--record");
			if (v.empty() || v.size() > 9 || v.find_first_not_of("0123456789") != std::string::npos ||
			    std::stoul(v) == 0)
				usage_error("--record: a number from 1");
			o.record = std::stoul(v);
		} else {
			usage_error("unknown option '" + printable(a, 64) + "'");
		}
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
