#include "incidents/incidents.h"

#include "output/json.h"
#include "report/incident.h"
#include "report/text.h"
#include "util/printable.h"
#include "util/signals.h"
#include "util/strings.h"

#include <linux/types.h>

#include <cstdio>
#include <ctime>

extern "C" {
#include "fh/records.h"
}

namespace fh {

namespace {

// The newest frame of the thread hit (of the first thread, for a dump).
const StackFrame *top_frame(const Incident &inc)
{
	const Thread *hit = nullptr;
	for (const auto &t : inc.threads)
		if (t.current) {
			hit = &t;
			break;
		}
	if (!hit && !inc.threads.empty())
		hit = &inc.threads.front();
	return hit && !hit->frames.empty() ? &hit->frames.front() : nullptr;
}

std::string base_name(const std::string &path)
{
	size_t slash = path.rfind('/');
	return slash == std::string::npos ? path : path.substr(slash + 1);
}

// "fault_here (crash.c:42)", "libc.so.6+0x3f2a0", "run (app.py:12)".
std::string frame_words(const StackFrame &frame)
{
	if (const auto *n = std::get_if<NativeFrame>(&frame)) {
		std::string where = !n->file.empty() && n->line > 0
					    ? base_name(n->file) + ":" + std::to_string(n->line)
				    : !n->module.empty() ? base_name(n->module) + "+" + hex(n->module_offset)
							 : hex(n->pc);
		return n->function.empty() ? where : n->function + " (" + where + ")";
	}
	const auto &p = std::get<PyFrame>(frame);
	return (p.function ? *p.function : "???") + " (" + (p.file ? base_name(*p.file) : "???") +
	       ":" + (p.line >= 0 ? std::to_string(p.line) : "???") + ")";
}

std::string what_words(const Incident &inc)
{
	if (inc.has_signal())
		return signal_abbrev(inc.sig);
	return inc.trigger == FH_TRIGGER_TIMEOUT ? "timeout" : "dump";
}

// Seconds are enough to tell incidents apart for a person; the id has
// the microseconds.
std::string list_time(uint64_t ns)
{
	std::string t = utc_time(ns); // 2026-12-01T10:31:07.123456Z
	size_t dot = t.find('.');
	return dot == std::string::npos ? t : t.substr(0, dot) + "Z";
}

bool read_number(const std::string &s, size_t &at, size_t digits, int &out)
{
	out = 0;
	for (size_t i = 0; i < digits; i++, at++) {
		if (at >= s.size() || s[at] < '0' || s[at] > '9')
			return false;
		out = out * 10 + (s[at] - '0');
	}
	return true;
}

// "2026-12-01", "2026-12-01T10:31", "…:07", "….123456", "…Z".
std::optional<uint64_t> parse_utc(const std::string &s)
{
	struct tm tm = {};
	size_t at = 0;
	int sec = 0;
	if (!read_number(s, at, 4, tm.tm_year) || at >= s.size() || s[at++] != '-' ||
	    !read_number(s, at, 2, tm.tm_mon) || at >= s.size() || s[at++] != '-' ||
	    !read_number(s, at, 2, tm.tm_mday))
		return std::nullopt;
	uint64_t frac_ns = 0;
	if (at < s.size() && (s[at] == 'T' || s[at] == ' ')) {
		at++;
		if (!read_number(s, at, 2, tm.tm_hour) || at >= s.size() || s[at++] != ':' ||
		    !read_number(s, at, 2, tm.tm_min))
			return std::nullopt;
		if (at < s.size() && s[at] == ':') {
			at++;
			if (!read_number(s, at, 2, sec))
				return std::nullopt;
			if (at < s.size() && s[at] == '.') {
				at++;
				uint64_t scale = 100000000;
				size_t start = at;
				for (; at < s.size() && s[at] >= '0' && s[at] <= '9'; at++, scale /= 10)
					if (at - start < 9)
						frac_ns += static_cast<uint64_t>(s[at] - '0') * scale;
				if (at == start || at - start > 9)
					return std::nullopt;
			}
		}
	}
	if (at < s.size() && s[at] == 'Z')
		at++;
	if (at != s.size() || tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 ||
	    tm.tm_mday > 31 || tm.tm_hour > 23 || tm.tm_min > 59 || sec > 60 || tm.tm_year < 1970)
		return std::nullopt;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	tm.tm_sec = sec;
	time_t t = timegm(&tm);
	if (t < 0)
		return std::nullopt;
	return static_cast<uint64_t>(t) * 1000000000ull + frac_ns;
}

} // namespace

std::optional<uint64_t> parse_when(const std::string &s, uint64_t now_ns)
{
	if (s.empty() || s.size() > 40)
		return std::nullopt;
	if (s[0] == '@') {
		std::string digits = s.substr(1);
		if (digits.empty() || digits.size() > 11 ||
		    digits.find_first_not_of("0123456789") != std::string::npos)
			return std::nullopt;
		return std::stoull(digits) * 1000000000ull;
	}
	size_t n = s.find_first_not_of("0123456789");
	if (n != std::string::npos && n > 0 && n + 1 == s.size() && n <= 9) {
		uint64_t unit = s[n] == 's' ? 1 : s[n] == 'm' ? 60 : s[n] == 'h' ? 3600
			      : s[n] == 'd' ? 86400 : 0;
		if (!unit)
			return std::nullopt;
		uint64_t ago = std::stoull(s.substr(0, n)) * unit * 1000000000ull;
		return ago > now_ns ? 0 : now_ns - ago;
	}
	return parse_utc(s);
}

bool incident_matches(const StoredIncident &s, const IncidentsOptions &opts)
{
	const Incident &inc = s.inc;
	if (opts.since_ns && inc.time_ns < *opts.since_ns)
		return false;
	if (opts.until_ns && inc.time_ns > *opts.until_ns)
		return false;
	if (!opts.comms.empty()) {
		bool any = false;
		for (const auto &c : opts.comms)
			any |= c == inc.comm;
		if (!any)
			return false;
	}
	if (!opts.signals.empty()) {
		bool any = false;
		for (int sig : opts.signals)
			any |= inc.has_signal() && inc.sig == sig;
		if (!any)
			return false;
	}
	return true;
}

std::string list_line(const StoredIncident &s)
{
	const Incident &inc = s.inc;
	const StackFrame *top = s.json ? top_frame(inc) : nullptr;
	std::string frame = top ? frame_words(*top) : s.top.empty() ? "-" : s.top;
	return printable(s.id) + "  " + list_time(inc.time_ns) + "  " +
	       (inc.host.empty() ? "-" : printable(inc.host)) + "  " + std::to_string(inc.pid) +
	       "  " + (inc.comm.empty() ? "-" : printable(inc.comm)) + "  " + what_words(inc) +
	       "  " + printable(frame, 512) + "\n";
}

std::string list_json(const StoredIncident &s)
{
	const Incident &inc = s.inc;
	nlohmann::ordered_json j;
	j["id"] = json_text(s.id);
	j["file"] = json_text(s.path);
	j["record"] = s.record;
	j["time"] = utc_time(inc.time_ns);
	j["host"] = s.json ? nlohmann::ordered_json(json_text(inc.host)) : nullptr;
	j["pid"] = inc.pid;
	j["comm"] = json_text(inc.comm);
	j["trigger"] = trigger_name(inc.trigger);
	j["signal"] = inc.has_signal() ? nlohmann::ordered_json(signal_abbrev(inc.sig)) : nullptr;
	const StackFrame *top = s.json ? top_frame(inc) : nullptr;
	if (top)
		j["top_frame"] = json_text(frame_words(*top));
	else
		j["top_frame"] = s.top.empty() ? nlohmann::ordered_json(nullptr)
					       : nlohmann::ordered_json(json_text(s.top));
	j["format"] = s.json ? "json" : "text";
	return dump_line(j) + "\n";
}

} // namespace fh
