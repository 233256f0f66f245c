#pragma once

#include "app/flood.h"
#include "output/log_dir.h"
#include "cli/options.h"
#include "output/syslog.h"

#include <cstdint>
#include <memory>
#include <set>
#include <string>

namespace fh {

struct Event;
struct Incident;
struct Counters;
class Assembler;

// What a watch lost, as one list: "3 thread records (ring buffer full), 1
// ...".  Zero counts are left out.
class LossList {
public:
	void add(uint64_t n, const std::string &what);
	const std::string &text() const { return text_; }
	bool empty() const { return text_.empty(); }

private:
	std::string text_;
};

// The losses every capture can have: records the ring or a table had no
// room for, malformed or orphaned records.
void add_capture_losses(LossList &l, const Counters &c, const Assembler &a);

// Messages about what targets name (their files, their interpreters) said
// on stderr once per key, and at most `max` keys: a user can make up any
// number of names.  Past them, one line says the others are counted.
class OnceMessages {
public:
	OnceMessages(size_t max, std::string what) : max_(max), what_(std::move(what)) {}
	void say(const std::string &key, const std::string &msg);
	uint64_t unsaid() const { return unsaid_; }

private:
	size_t max_;
	std::string what_;
	std::set<std::string> said_;
	uint64_t unsaid_ = 0;
};

// A flood control summary as a JSON record, made at realtime now_ns; `line`
// its text.
std::string suppressed_json(const FloodControl::Summary &s, uint64_t now_ns,
			    const std::string &line);

// Where an incident goes besides the main output: --log-dir (a file of its
// own) and --syslog (a record).  A file that cannot be written is said on
// stderr and counted; a record the daemon does not take is counted.
class IncidentCopies {
public:
	explicit IncidentCopies(const Options &opts);

	bool any() const { return log_dir_ || syslog_; }

	// The incident: with --format json its JSON line, else `file_text` in
	// the file and `message` to syslog.  A file over its share of the log
	// directory holds the incident cut to it (see LogDir).
	void write(const Event &ev, const Incident &inc, bool json, const std::string &file_text,
		   const std::string &message);

	// A record of its own that is no incident (flood control's summary),
	// named `stem`.
	void write_other(const std::string &stem, const std::string &ext, const std::string &content,
			 int severity, const std::string &msgid, const SdParams &sd,
			 const std::string &message);

	void add_losses(LossList &l) const;

private:
	void write_file(const std::string &stem, const std::string &ext, const std::string &content);

	std::unique_ptr<LogDir> log_dir_;
	std::unique_ptr<SyslogSink> syslog_;
	uint64_t files_failed_ = 0;
};

} // namespace fh
