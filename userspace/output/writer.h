#pragma once

// The single incident writer: every incident of every mode goes to every
// configured output from here, the same way.
//
//   main output (stderr, or -o FILE)  faulthandler text, or its JSON line
//   stderr                            the `fh-bpf: pid …` headline and the
//                                     loss lines (when the main output is
//                                     elsewhere, or JSON)
//   --log-dir                         a file an incident: headline, text,
//                                     losses (or the JSON record)
//   --syslog                          a record an incident
//
// What differs by mode is one option: whether the headline also starts each
// incident in the main output (Policy::headline_in_output).  The host agent
// sets it (one output holds every process's incidents); a watch of one
// process leaves the main output byte-identical to faulthandler's, unless
// -v asks for every diagnostic there too.

#include "cli/options.h"
#include "output/log_dir.h"
#include "output/sink.h"
#include "output/syslog.h"
#include "report/model.h"

#include <cstdint>
#include <memory>
#include <string>

namespace fh {

class LossList;

class IncidentWriter {
public:
	struct Policy {
		bool json = false;		 // --format json
		bool headline_in_output = false; // see above
		bool verbose = false;		 // -v: detail lines to the main output too
	};

	IncidentWriter(const Options &opts, Policy policy);

	// The incident to every output.  A failed write is said on stderr and
	// counted; false when the main output did not take it.
	bool write(const Incident &inc);

	// Diagnostic detail (-v lines) about an incident: on stderr, and in
	// the main output too when it is a file and -v is on.
	void detail(const std::string &lines);

	// A record of its own that is no incident (flood control's summary):
	// `line` on stderr; `record` in the main output (when it is not
	// stderr, or JSON); `content` as a log-dir file named `stem`; `message`
	// to syslog (with json_message, that JSON object's line: sent in
	// parts that parse).
	void write_other(const std::string &line, const std::string &record,
			 const std::string &stem, const std::string &ext, const std::string &content,
			 int severity, const std::string &msgid, const SdParams &sd,
			 const std::string &message,
			 const nlohmann::ordered_json *json_message = nullptr);

	// After log rotation: a new file at -o's path.
	void reopen();

	// What the outputs could not take, for the closing line.
	void add_losses(LossList &l) const;
	uint64_t unwritten() const { return unwritten_; }
	bool any_copies() const { return log_dir_ || syslog_; }
	const Policy &policy() const { return policy_; }

private:
	bool write_main(const std::string &record);
	void write_file(const std::string &stem, const std::string &ext, const std::string &content);

	Policy policy_;
	Sink sink_;
	std::unique_ptr<LogDir> log_dir_;
	std::unique_ptr<SyslogSink> syslog_;
	uint64_t unwritten_ = 0;    // incidents the main output could not take
	uint64_t files_failed_ = 0; // log-dir files that could not be written
};

} // namespace fh
