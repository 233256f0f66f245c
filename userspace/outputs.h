#pragma once

#include "log_dir.h"
#include "options.h"
#include "syslog.h"

#include <cstdint>
#include <memory>
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

// Where an incident goes besides the main output: --log-dir (a file of its
// own) and --syslog (a record).  A file that cannot be written is said on
// stderr and counted; a record the daemon does not take is counted.
class IncidentCopies {
public:
	explicit IncidentCopies(const Options &opts);

	bool any() const { return log_dir_ || syslog_; }

	// The incident: with --format json its JSON line, else `file_text` in
	// the file and `message` to syslog.
	void write(const Event &ev, const Incident &inc, bool json, const std::string &file_text,
		   const std::string &message);

	// A record of its own that is no incident (flood control's summary),
	// named `stem`.
	void write_other(const std::string &stem, const std::string &ext, const std::string &content,
			 int severity, const std::string &msgid, const SdParams &sd,
			 const std::string &message);

	void add_losses(LossList &l) const;

private:
	std::unique_ptr<LogDir> log_dir_;
	std::unique_ptr<SyslogSink> syslog_;
	uint64_t files_failed_ = 0;
};

} // namespace fh
