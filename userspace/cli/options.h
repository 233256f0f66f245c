#pragma once


#include "cli/values.h"

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace fh {

struct Options {
	pid_t pid = 0;
	std::string output; // empty: stderr
	uint64_t stack_size = 0;
	uint32_t max_threads = 0;
	bool max_threads_given = false; // sizes the ring for exactly max_threads
	bool verbose = false;
	bool handled = false; // also capture fatal signals the target handles
	bool dump = false;    // print every thread now and exit
	int user_signal = 0;  // --signal (default SIGUSR1); 0: --no-signal
	bool user_signal_given = false; // --signal said: armed even where it kills
	uint64_t timeout_us = 0; // --timeout: dump after this long; 0: none
	bool repeat = false;	 // --repeat: every timeout_us
	bool exit_after = false; // --exit: terminate the target after the first timeout dump
	std::vector<std::string> command; // launch mode: fh-bpf [options] -- CMD [ARGS...]
	bool json = false;	  // --format json: one JSON object a line, not faulthandler's text
	std::string log_dir;	  // --log-dir: one file per incident there
	uint32_t log_keep = 0;	  // --log-keep: at most this many files
	uint64_t log_max_bytes = 0; // --log-max-size: at most this many bytes in all
	// --system-wide: every process in scope, not one target
	bool system_wide = false;
	bool children = true; // -p, launch mode: the target's descendants too (--no-children)
	bool native = false;  // --native: a Python thread's native frames too, merged
	bool native_all = false; // --native-all: the interpreter's own frames among them too
	// --cache-dir: what is worked out once and reused ("": nothing kept)
	std::string cache_dir = "/var/cache/fh-bpf";
	uint64_t debug_cache_bytes = 1ull << 30; // --debug-cache-size
	std::vector<std::string> comms;	 // --comm
	std::vector<std::string> exclude_comms; // --exclude-comm
	std::vector<uint32_t> uids;	 // --uid
	std::vector<std::string> cgroups; // --cgroup, as given
	uint64_t extra_signals = 0;	 // --signals: bit (sig - 1) added to the fatal five
	std::string syslog_socket;	 // --syslog, --syslog-socket: empty: no syslog
	uint64_t syslog_max = 8192;	 // --syslog-max-size: bytes a record, parts beyond
	// --rate-limit (per program: app/flood.h), --process-rate-limit;
	// --system-wide only.
	Rate program_rate{10, 60'000'000'000ull};
	Rate process_rate{3, 60'000'000'000ull};
	int ready_fd = -1;
	int stats_fd = -1; // --stats-fd: timings as JSON lines
	bool help = false;
	bool version = false;
	// The command named by the first argument ("incidents"), read by a
	// parser of its own; empty: a watch (-p PID, -- COMMAND, --system-wide).
	std::string subcommand;
};

// Parse the command line; throws Error(kExitUsage) with a one-line reason.
// A first argument that names a command goes to that command's parser.
Options parse_options(const std::vector<std::string> &args);

// Parse "16384", "16K", "1M", "2G" into bytes; false when malformed or too large.
bool parse_size(const std::string &s, uint64_t &out);

// Parse a positive number of seconds, "2", "0.5", "1.25" (no sign, no
// exponent) into microseconds, rounded up as faulthandler rounds its
// timeout; false when malformed, zero or above kMaxTimeoutUs.
bool parse_seconds(const std::string &s, uint64_t &us);
inline constexpr uint64_t kMaxTimeoutUs = 100ull * 365 * 86400 * 1000000; // a century

// faulthandler's header for a timeout: "Timeout (0:00:02)!\n", with
// microseconds when there are any: "Timeout (0:00:00.500000)!\n".
std::string timeout_header(uint64_t us);

std::string usage_text();
std::string version_text();

} // namespace fh
