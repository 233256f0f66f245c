#pragma once

// The value of one option of the command line, checked as it is read: each
// function returns it as Options keeps it, or throws a usage error that
// names the option and says what it takes.

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace fh {

// At most `count` in any `window_ns` (--rate-limit, --process-rate-limit).
struct Rate {
	uint32_t count = 0;
	uint64_t window_ns = 0;
};

// Parse "10/60" (10 in 60 seconds), "10/1m", "100/1h", "5" (per minute),
// "0" (no limit); false when malformed.
bool parse_rate(const std::string &s, Rate &out);

pid_t parse_pid(const std::string &v);

// --uid LIST: numbers or user names.
void add_uids(std::vector<uint32_t> &to, const std::string &v);

// --comm, --exclude-comm LIST: process names as the kernel keeps them.
void add_comms(std::vector<std::string> &to, const char *option, const std::string &v);

// --signals LIST: bit (sig - 1) of each.
uint64_t extra_signals_value(const std::string &v);

// --signal SIG: any signal but those fh-bpf captures as fatal and those no
// process can handle.
int user_signal_value(const std::string &v);

// --rate-limit, --process-rate-limit N[/T].
Rate rate_value(const char *option, const std::string &v);

// A value that may be anything but empty: "empty --log-dir".
const std::string &nonempty(const std::string &v, const std::string &what);

std::string syslog_socket_value(const std::string &v);
uint64_t syslog_max_value(const std::string &v);

// --format: true for json, false for text.
bool json_format(const std::string &v);

uint32_t log_keep_value(const std::string &v);
uint64_t log_max_size_value(const std::string &v);
uint64_t timeout_value(const std::string &v);
// --cache-dir DIR (an absolute path; "none": "", nothing kept), and the
// size of its inflated debug files.
std::string cache_dir_value(const std::string &v);
uint64_t debug_cache_size_value(const std::string &v);

// --stack-size BYTES, rounded up to whole pages.
uint64_t stack_size_value(const std::string &v);

uint32_t max_threads_value(const std::string &v);

// --ready-fd, --stats-fd FD.
int fd_value(const char *option, const std::string &v);

} // namespace fh
