#pragma once

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
	int ready_fd = -1;
	bool help = false;
	bool version = false;
};

// Parse the command line; throws Error(kExitUsage) with a one-line reason.
Options parse_options(const std::vector<std::string> &args);

// Parse "16384", "16K", "1M" into bytes; false when malformed or too large.
bool parse_size(const std::string &s, uint64_t &out);

std::string usage_text();
std::string version_text();

} // namespace fh
