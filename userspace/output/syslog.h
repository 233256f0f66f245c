#pragma once

#include "process/proc.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace fh {

// Syslog severities used (RFC 5424 section 6.2.1).
inline constexpr int kSyslogCrit = 2;
inline constexpr int kSyslogWarning = 4;
inline constexpr int kSyslogNotice = 5;
inline constexpr int kSyslogDaemon = 3; // facility

// Structured data of fh-bpf's records: SD-ID "fh@32473" (32473 is the
// enterprise number RFC 5612 sets aside for examples and documentation).
inline constexpr const char *kSyslogSdId = "fh@32473";
using SdParams = std::vector<std::pair<std::string, std::string>>;

struct Incident;

// The structured data of an incident's record: pid, tid, comm, trigger,
// signal, si_code, the sender, and the incident's name (its --log-dir file
// stem, which ties the parts of one record and the file together).
SdParams incident_sd(const Incident &inc, const std::string &stem);

// One RFC 5424 record: "<PRI>1 TIME HOST fh-bpf PROCID MSGID [fh@32473
// k="v" ...] MSG".  time is RFC 3339 UTC with microseconds; host, app,
// msgid are cut to their RFC lengths and to printable ASCII; SD values are
// escaped ('"', '\', ']'); MSG is UTF-8 (no BOM), as given.
std::string rfc5424_record(int facility, int severity, const std::string &time,
			   const std::string &host, uint32_t procid, const std::string &msgid,
			   const SdParams &sd, const std::string &msg);

// A message cut into parts of at most max_bytes each: before a newline
// near the end (the newline starts the next part: syslog daemons drop one
// that ends a message), else never inside a UTF-8 character.  Each part is
// at least three quarters of max_bytes (but the last), and the bytes looked
// at to place the cuts (set in *looked_at) are at most the message's.
std::vector<std::string> split_message(const std::string &msg, size_t max_bytes,
				       uint64_t *looked_at = nullptr);

// --syslog: incidents as RFC 5424 records on the local syslog socket (a
// unix datagram socket, /dev/log by default), for the host's syslog daemon
// to store and forward.  A record longer than max_bytes (the receiver's
// message size limit: rsyslog's default is 8 KiB) is sent in parts, each
// with part="K" parts="N" in its structured data: a text cut at lines
// (split_message), a JSON record in parts that each parse
// (output/syslog_json.h); a message's final newline is not sent.
class SyslogSink {
public:
	// A socket nobody listens on (yet) is said at once, in one line: its
	// records are counted as lost until a daemon is there.
	SyslogSink(const std::string &socket_path, size_t max_bytes);

	// Sends one record (in parts if need be); false, counted, when the
	// daemon did not take it (no socket, or it stayed full for a second).
	bool send(int severity, const std::string &msgid, const SdParams &sd,
		  const std::string &msg);
	// The same for a JSON record: `line` is dump_line(record).  The SD
	// parameter "incident" names it in each of its parts.
	bool send_json(int severity, const std::string &msgid, const SdParams &sd,
		       const nlohmann::ordered_json &record, const std::string &line);

	uint64_t sent() const { return sent_; }
	uint64_t failed() const { return failed_; }
	const std::string &path() const { return path_; }

private:
	int connect_socket(); // 0, or the errno of the failure
	// The room a message has beside this header and structured data.
	size_t room(int severity, const std::string &msgid, const SdParams &sd,
		    const std::string &time) const;
	bool send_parts(int severity, const std::string &msgid, const SdParams &sd,
			const std::string &time, const std::vector<std::string> &parts);
	bool send_datagram(const std::string &rec, bool &full);
	std::string path_;
	size_t max_bytes_;
	std::string host_;
	UniqueFd fd_;
	uint64_t sent_ = 0;
	uint64_t failed_ = 0;
	bool stalled_ = false; // the last send found the daemon full a second
};

} // namespace fh
