#include "cli/values.h"

#include "cli/option_table.h"
#include "cli/options.h"
#include "util/signals.h"
#include "util/strings.h"

#include <linux/types.h>

#include <cerrno>
#include <cinttypes>
#include <climits>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <pwd.h>

extern "C" {
#include "fh/records.h"
}

namespace fh {

namespace {

constexpr uint32_t kMaxThreadsLimit = 65536;

bool parse_u64(const std::string &s, uint64_t &out)
{
	if (s.empty() || s.find_first_not_of("0123456789") != std::string::npos || s.size() > 19)
		return false;
	errno = 0;
	out = std::strtoull(s.c_str(), nullptr, 10);
	return errno == 0;
}

uint32_t parse_uid(const std::string &v)
{
	uint64_t n;
	if (parse_u64(v, n)) {
		if (n >= UINT32_MAX)
			throw usage_error("invalid --uid '" + v + "'");
		return static_cast<uint32_t>(n);
	}
	struct passwd pw, *res = nullptr;
	std::vector<char> buf(16384);
	if (getpwnam_r(v.c_str(), &pw, buf.data(), buf.size(), &res) != 0 || !res)
		throw usage_error("invalid --uid '" + v + "': no such user");
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

} // namespace

pid_t parse_pid(const std::string &v)
{
	uint64_t pid;
	if (!parse_u64(v, pid) || pid == 0 || pid > INT_MAX)
		throw usage_error("invalid PID '" + v + "'");
	return static_cast<pid_t>(pid);
}

void add_uids(std::vector<uint32_t> &to, const std::string &v)
{
	for (const auto &u : split(v, ','))
		to.push_back(parse_uid(u));
}

uint64_t extra_signals_value(const std::string &v)
{
	uint64_t bits = 0;
	for (const auto &name : split(v, ',')) {
		auto sig = parse_signal(name);
		if (!sig || !addable_signal(*sig))
			throw usage_error("invalid --signals '" + name +
					  "': a signal that ends a process (SIGKILL, "
					  "SIGTERM, SIGXCPU, ...), by name or number");
		bits |= 1ull << (*sig - 1);
	}
	return bits;
}

int user_signal_value(const std::string &v)
{
	auto sig = parse_signal(v);
	if (!sig || *sig == SIGKILL || *sig == SIGSTOP || *sig == SIGSEGV || *sig == SIGFPE ||
	    *sig == SIGABRT || *sig == SIGBUS || *sig == SIGILL)
		throw usage_error("invalid --signal '" + v +
				  "': a signal name or number, not a fatal signal, "
				  "SIGKILL or SIGSTOP");
	return *sig;
}

Rate rate_value(const char *option, const std::string &v)
{
	Rate r;
	if (!parse_rate(v, r))
		throw usage_error("invalid " + std::string(option) + " '" + v +
				  "': N/SECONDS (10/60), N/1m, N/1h, or 0 for no limit");
	return r;
}

void add_comms(std::vector<std::string> &to, const char *option, const std::string &v)
{
	for (const auto &name : split(v, ',')) {
		if (name.empty() || name.size() >= FH_COMM_LEN)
			throw usage_error("invalid " + std::string(option) + " '" + name +
					  "': a process name of 1 to " +
					  std::to_string(FH_COMM_LEN - 1) +
					  " bytes, as the kernel keeps it (ps -o comm)");
		to.push_back(name);
	}
}

const std::string &nonempty(const std::string &v, const std::string &what)
{
	if (v.empty())
		throw usage_error("empty " + what);
	return v;
}

std::string syslog_socket_value(const std::string &v)
{
	if (v.empty() || v.size() >= 108)
		throw usage_error("invalid --syslog-socket '" + v +
				  "': a unix socket path of 1 to 107 bytes");
	return v;
}

uint64_t syslog_max_value(const std::string &v)
{
	uint64_t n;
	if (!parse_size(v, n) || n < 1024 || n > 64 * 1024)
		throw usage_error("invalid --syslog-max-size '" + v + "': expected 1K to 64K bytes");
	return n;
}

bool json_format(const std::string &v)
{
	if (v != "text" && v != "json")
		throw usage_error("invalid --format '" + v + "': text or json");
	return v == "json";
}

uint32_t log_keep_value(const std::string &v)
{
	uint64_t n;
	if (!parse_u64(v, n) || n < 1 || n > 1000000)
		throw usage_error("invalid --log-keep '" + v + "': expected 1 to 1000000 files");
	return static_cast<uint32_t>(n);
}

uint64_t log_max_size_value(const std::string &v)
{
	uint64_t n;
	if (!parse_size(v, n) || n < 4096)
		throw usage_error("invalid --log-max-size '" + v +
				  "': expected bytes, 4K or more (K, M, G suffixes)");
	return n;
}

uint64_t debug_cache_size_value(const std::string &v)
{
	uint64_t n;
	if (!parse_size(v, n) || n < (1u << 20))
		throw usage_error("invalid --debug-cache-size '" + v +
				  "': expected bytes, 1M or more (K, M, G suffixes)");
	return n;
}

std::string cache_dir_value(const std::string &v)
{
	if (v == "none")
		return {};
	if (v.empty() || v[0] != '/')
		throw usage_error("invalid --cache-dir '" + v +
				  "': expected an absolute directory, or none");
	return v;
}

uint64_t timeout_value(const std::string &v)
{
	uint64_t us;
	if (!parse_seconds(v, us))
		throw usage_error("invalid --timeout '" + v +
				  "': expected a number of seconds above 0, such as 2 or 0.5");
	return us;
}

uint64_t stack_size_value(const std::string &v)
{
	uint64_t n;
	if (!parse_size(v, n) || n < FH_STACK_MIN || n > FH_STACK_MAX)
		throw usage_error("invalid --stack-size '" + v + "': expected 4K to 256K bytes");
	return (n + FH_PAGE_SIZE - 1) / FH_PAGE_SIZE * FH_PAGE_SIZE;
}

uint32_t max_threads_value(const std::string &v)
{
	uint64_t n;
	if (!parse_u64(v, n) || n < 1 || n > kMaxThreadsLimit)
		throw usage_error("invalid --max-threads '" + v + "': expected 1 to " +
				  std::to_string(kMaxThreadsLimit));
	return static_cast<uint32_t>(n);
}

int fd_value(const char *option, const std::string &v)
{
	uint64_t fd;
	if (!parse_u64(v, fd) || fd > INT_MAX)
		throw usage_error("invalid " + std::string(option) + " '" + v + "'");
	return static_cast<int>(fd);
}

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

bool parse_rate(const std::string &s, Rate &out)
{
	size_t slash = s.find('/');
	std::string n = s.substr(0, slash);
	if (n.empty() || n.size() > 9 || n.find_first_not_of("0123456789") != std::string::npos)
		return false;
	uint64_t window_s = 60;
	if (slash != std::string::npos) {
		std::string w = s.substr(slash + 1);
		uint64_t mult = 1;
		if (!w.empty() && (w.back() == 's' || w.back() == 'm' || w.back() == 'h')) {
			mult = w.back() == 'h' ? 3600 : w.back() == 'm' ? 60 : 1;
			w.pop_back();
			if (w.empty())
				w = "1"; // "5/m": five a minute
		}
		if (w.size() > 7 || w.find_first_not_of("0123456789") != std::string::npos)
			return false;
		window_s = std::strtoull(w.c_str(), nullptr, 10) * mult;
		if (window_s == 0 || window_s > UINT64_MAX / 1000000000ull)
			return false; // nothing, or more ns than 64 bits hold
	}
	out.count = static_cast<uint32_t>(std::strtoul(n.c_str(), nullptr, 10));
	out.window_ns = window_s * 1000000000ull;
	return true;
}

} // namespace fh
