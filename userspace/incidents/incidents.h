#pragma once

// fh-bpf incidents: the incidents kept (a log directory, JSON-lines
// files) found and shown again after the fact.
//
//   fh-bpf incidents list [--log-dir DIR] [--since TIME] [--until TIME]
//                         [--comm NAME] [--signal SIG] [--format text|json]
//   fh-bpf incidents show [--log-dir DIR] [--format text|json]
//                         [--debug-dir DIR] [--record N] ID|FILE|FILE:N

#include "incidents/store.h"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace fh {

struct IncidentsOptions {
	enum class Command { list, show, help };
	Command command = Command::help;
	std::string log_dir = kDefaultLogDir;
	bool json = false;
	// list's filters, each given must match
	std::optional<uint64_t> since_ns, until_ns; // realtime, inclusive
	std::vector<std::string> comms;		    // any of them
	std::vector<int> signals;		    // any of them
	// show
	std::vector<std::string> debug_dirs;
	size_t record = 0;
	std::string what;
};

// `fh-bpf incidents ARGS...` (ARGS after "incidents").  Throws Error with
// status kExitUsage for a bad command line.  now_ns: the realtime clock,
// for relative times ("2h": two hours before now).
IncidentsOptions parse_incidents_options(const std::vector<std::string> &args, uint64_t now_ns);

// A --since or --until time: "2026-12-01", "2026-12-01T10:31[:07[.123]][Z]"
// (UTC; a space for the T too), "@SECONDS" (since the epoch), or a while
// before now_ns: "90s", "30m", "2h", "7d".  nullopt when it is none.
std::optional<uint64_t> parse_when(const std::string &s, uint64_t now_ns);

// Whether an incident passes the list's filters.
bool incident_matches(const StoredIncident &s, const IncidentsOptions &opts);

// One line of `incidents list` (with its newline): ID, time, host, pid,
// comm, signal (or timeout, dump) and the newest frame of the thread hit.
std::string list_line(const StoredIncident &s);
// The same as one JSON object a line.
std::string list_json(const StoredIncident &s);

// The whole subcommand: its output on stdout, errors as "fh-bpf: …" lines
// on stderr; the exit status.
int incidents_main(const std::vector<std::string> &args);

std::string incidents_usage();

} // namespace fh
