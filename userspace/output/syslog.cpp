#include "output/syslog.h"

#include "output/syslog_json.h"
#include "util/clock.h"
#include "util/diag.h"

#include "capture/event.h"
#include "report/incident.h"
#include "util/printable.h"
#include "util/signals.h"

extern "C" {
#include <linux/types.h>
#include "fh/records.h"
}

#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>

namespace fh {

namespace {

// PRINTUSASCII (33-126), at most n characters; "-" when empty.
std::string header_field(const std::string &s, size_t n)
{
	std::string out;
	for (char c : s)
		if (c >= 33 && c <= 126 && out.size() < n)
			out += c;
	return out.empty() ? "-" : out;
}

// A PARAM-VALUE: UTF-8 (a name the kernel cut at 15 bytes may end inside a
// character; a process may name itself anything), '"', '\\' and ']'
// escaped. A byte that is not part of valid UTF-8, and a control
// character, become U+FFFD.
std::string sd_value(const std::string &v)
{
	std::string out;
	for (size_t i = 0; i < v.size();) {
		size_t n = utf8_length(v, i);
		unsigned char c = static_cast<unsigned char>(v[i]);
		if (!n || c < 0x20 || c == 0x7f) {
			out += "\xef\xbf\xbd";
			i += n ? n : 1;
			continue;
		}
		if (c == '"' || c == '\\' || c == ']')
			out += '\\';
		out.append(v, i, n);
		i += n;
	}
	return out;
}

std::string sd_name(const std::string &n)
{
	std::string out;
	for (char c : n)
		if (c >= 33 && c <= 126 && c != '=' && c != ' ' && c != ']' && c != '"' &&
		    out.size() < 32)
			out += c;
	return out;
}

} // namespace

SdParams incident_sd(const Incident &inc, const std::string &stem)
{
	SdParams sd = {{"incident", stem},
		       {"pid", std::to_string(inc.pid)},
		       {"comm", inc.comm},
		       {"trigger", trigger_name(inc.trigger)}};
	if (inc.process.ns_pid && *inc.process.ns_pid != inc.pid)
		sd.emplace_back("ns_pid", std::to_string(*inc.process.ns_pid));
	if (inc.process.ppid)
		sd.emplace_back("ppid", std::to_string(*inc.process.ppid));
	if (inc.tid)
		sd.emplace_back("tid", std::to_string(inc.tid));
	if (inc.has_signal()) {
		sd.emplace_back("signal", signal_abbrev(inc.sig));
		sd.emplace_back("code", si_code_name(inc.sig, inc.si_code));
	}
	const auto &s = inc.sender;
	if (s && s->kernel)
		sd.emplace_back("sender", "kernel" + (s->kernel_function.empty()
							      ? std::string()
							      : ":" + s->kernel_function));
	else if (s)
		sd.emplace_back("sender", std::to_string(s->tgid) + ":" + s->comm);
	return sd;
}

std::string rfc5424_record(int facility, int severity, const std::string &time,
			   const std::string &host, uint32_t procid, const std::string &msgid,
			   const SdParams &sd, const std::string &msg)
{
	std::string r = "<" + std::to_string(facility * 8 + severity) + ">1 " + header_field(time, 64) +
			" " + header_field(host, 255) + " fh-bpf " + std::to_string(procid) + " " +
			header_field(msgid, 32) + " ";
	if (sd.empty()) {
		r += "-";
	} else {
		r += "[";
		r += kSyslogSdId;
		for (const auto &[k, v] : sd)
			r += " " + sd_name(k) + "=\"" + sd_value(v) + "\"";
		r += "]";
	}
	if (!msg.empty())
		r += " " + msg;
	return r;
}

std::vector<std::string> split_message(const std::string &msg, size_t max_bytes,
				       uint64_t *looked_at)
{
	uint64_t looked = 0;
	std::vector<std::string> parts;
	if (max_bytes < 16)
		max_bytes = 16;
	// Each part looks at its own last quarter only: the work is linear in
	// the message, whatever its bytes (no newline at all, nothing but
	// newlines, a run of continuation bytes).
	size_t at = 0;
	while (msg.size() - at > max_bytes) {
		size_t end = at + max_bytes;
		size_t low = at + max_bytes * 3 / 4; // a part is never shorter
		size_t cut = 0;
		// Before a newline, which then starts the next part: daemons
		// drop a newline that ends a message. Before the first of a run
		// of them (the blank line between two threads), so the part
		// does not end with one either.
		for (size_t i = end; i > low && !cut;) {
			looked++;
			if (msg[--i] != '\n')
				continue;
			while (i > low && msg[i - 1] == '\n') {
				looked++;
				i--;
			}
			if (msg[i - 1] != '\n')
				cut = i;
			else
				break; // the run reaches below the window
		}
		if (!cut) {
			// Back to the start of a UTF-8 character (at most 3
			// bytes).  (A newline just before it would have been
			// found above: its run of newlines is longer than the
			// window, and is cut inside.)
			cut = end;
			for (int k = 0; k < 3 && cut > low &&
					(static_cast<unsigned char>(msg[cut]) & 0xc0) == 0x80;
			     k++) {
				looked++;
				cut--;
			}
			if ((static_cast<unsigned char>(msg[cut]) & 0xc0) == 0x80)
				cut = end; // not UTF-8 there: any cut will do
		}
		parts.push_back(msg.substr(at, cut - at));
		at = cut;
	}
	parts.push_back(msg.substr(at));
	if (looked_at)
		*looked_at = looked;
	return parts;
}

SyslogSink::SyslogSink(const std::string &socket_path, size_t max_bytes)
	: path_(socket_path), max_bytes_(max_bytes)
{
	char host[256] = {};
	if (gethostname(host, sizeof(host) - 1) == 0)
		host_ = host;
	// A daemon not there yet is looked for again at each record.
	if (int err = connect_socket())
		diag("--syslog: no syslog daemon takes records at " + path_ + " (" +
		     std::strerror(err) + "): each record is counted as lost until one does");
}

int SyslogSink::connect_socket()
{
	fd_ = UniqueFd(socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
	if (!fd_)
		return errno;
	struct timeval tv = {1, 0}; // a daemon that stays full for a second: counted
	setsockopt(fd_.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	struct sockaddr_un addr = {};
	addr.sun_family = AF_UNIX;
	if (path_.size() >= sizeof(addr.sun_path)) {
		fd_ = UniqueFd();
		return ENAMETOOLONG;
	}
	std::memcpy(addr.sun_path, path_.c_str(), path_.size());
	if (connect(fd_.get(), reinterpret_cast<struct sockaddr *>(&addr), sizeof(addr)) != 0) {
		int err = errno;
		fd_ = UniqueFd();
		return err;
	}
	return 0;
}

size_t SyslogSink::room(int severity, const std::string &msgid, const SdParams &sd,
			const std::string &time) const
{
	// The header and structured data take their share of each part (48
	// bytes for part="K" parts="N").
	std::string head = rfc5424_record(kSyslogDaemon, severity, time, host_, getpid(), msgid, sd,
					  "");
	return max_bytes_ > head.size() + 64 ? max_bytes_ - head.size() - 48 : 256;
}

bool SyslogSink::send(int severity, const std::string &msgid, const SdParams &sd,
		      const std::string &msg)
{
	std::string time = utc_time(clock_ns(CLOCK_REALTIME));
	std::string body = msg;
	while (!body.empty() && body.back() == '\n')
		body.pop_back(); // a message ends without one
	return send_parts(severity, msgid, sd, time,
			  split_message(body, room(severity, msgid, sd, time)));
}

bool SyslogSink::send_json(int severity, const std::string &msgid, const SdParams &sd,
			   const nlohmann::ordered_json &record, const std::string &line)
{
	std::string time = utc_time(clock_ns(CLOCK_REALTIME));
	size_t n = room(severity, msgid, sd, time);
	if (line.size() <= n)
		return send_parts(severity, msgid, sd, time, {line});
	std::string id;
	for (const auto &[k, v] : sd)
		if (k == "incident")
			id = v;
	return send_parts(severity, msgid, sd, time, split_json_record(record, id, n));
}

bool SyslogSink::send_parts(int severity, const std::string &msgid, const SdParams &sd,
			    const std::string &time, const std::vector<std::string> &parts)
{
	bool ok = true;
	for (size_t i = 0; i < parts.size(); i++) {
		SdParams p = sd;
		if (parts.size() > 1) {
			p.emplace_back("part", std::to_string(i + 1));
			p.emplace_back("parts", std::to_string(parts.size()));
		}
		bool full = false;
		if (!send_datagram(rfc5424_record(kSyslogDaemon, severity, time, host_, getpid(),
						  msgid, p, parts[i]),
				   full))
			ok = false;
		if (full)
			break; // the other parts would wait a second each: all lost
	}
	(ok ? sent_ : failed_)++;
	return ok;
}

bool SyslogSink::send_datagram(const std::string &rec, bool &full)
{
	for (int attempt = 0; attempt < 2; attempt++) {
		if (!fd_ && connect_socket())
			return false;
		ssize_t n;
		// A daemon that stayed full for a second is not waited for again
		// until it takes a record.
		do {
			n = ::send(fd_.get(), rec.data(), rec.size(),
				   MSG_NOSIGNAL | (stalled_ ? MSG_DONTWAIT : 0));
		} while (n < 0 && errno == EINTR);
		if (n == static_cast<ssize_t>(rec.size())) {
			stalled_ = false;
			return true;
		}
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			full = true;
			stalled_ = true;
			return false;
		}
		if (n < 0 && (errno == ECONNREFUSED || errno == ENOTCONN || errno == ECONNRESET ||
			      errno == EPIPE || errno == ENOENT))
			fd_ = UniqueFd(); // the daemon restarted: connect again
		else
			return false; // EMSGSIZE and the like: this record will not go
	}
	return false;
}

} // namespace fh
