#include "output/writer.h"

#include "output/json.h"
#include "output/outputs.h"
#include "report/incident.h"
#include "report/text.h"
#include "util/diag.h"
#include "util/error.h"

#include <unistd.h>

namespace fh {

IncidentWriter::IncidentWriter(const Options &opts, Policy policy)
	: policy_(policy), sink_(opts.output)
{
	if (!opts.log_dir.empty())
		log_dir_ = std::make_unique<LogDir>(opts.log_dir, opts.log_keep, opts.log_max_bytes);
	if (!opts.syslog_socket.empty())
		syslog_ = std::make_unique<SyslogSink>(opts.syslog_socket, opts.syslog_max);
}

bool IncidentWriter::write_main(const std::string &record)
{
	try {
		sink_.write(record);
		return true;
	} catch (const Error &e) {
		unwritten_++;
		diag(e.what());
		return false;
	}
}

bool IncidentWriter::write(const Incident &inc)
{
	std::string head = headline(inc);
	std::string text = render_text(inc);
	std::string losses = loss_lines(inc) + symbol_hint(inc);
	nlohmann::ordered_json object = policy_.json ? incident_object(inc, &text)
						     : nlohmann::ordered_json();
	std::string json = policy_.json ? dump_line(object) : std::string();

	// The headline and losses on stderr, unless the main output is stderr
	// and carries them already.
	// A watched tree's descendant is named, and each process of a dump
	// of the tree: one output holds the tree's.
	bool head_in_main = !policy_.json && (policy_.headline_in_output || policy_.verbose ||
					      inc.process.descendant || inc.dump_id ||
					      sink_.is_stderr());
	bool losses_in_main = !policy_.json;
	if (!(head_in_main && sink_.is_stderr()))
		write_all(STDERR_FILENO, head);
	std::string record = policy_.json ? json + "\n"
					  : (head_in_main ? head : std::string()) + text + losses;
	bool ok = write_main(record);
	if (!losses.empty() && !(losses_in_main && sink_.is_stderr()))
		write_all(STDERR_FILENO, losses);

	if (!any_copies())
		return ok;
	std::string stem = incident_stem(inc);
	if (log_dir_) {
		// A record longer than a file's share of the directory: the file
		// holds it cut to that share (the log directory cuts a text
		// itself).
		std::string file = policy_.json ? json + "\n" : head + text + losses;
		if (policy_.json && file.size() > log_dir_->file_limit())
			file = incident_json(cut_incident(inc, log_dir_->file_limit() * 9 / 10)) + "\n";
		write_file(stem, policy_.json ? "json" : "txt", file);
	}
	if (syslog_ && policy_.json)
		syslog_->send_json(inc.fatal() ? kSyslogCrit : kSyslogNotice, "incident",
				   incident_sd(inc, stem), object, json);
	else if (syslog_)
		syslog_->send(inc.fatal() ? kSyslogCrit : kSyslogNotice, "incident",
			      incident_sd(inc, stem), head + text + losses);
	return ok;
}

void IncidentWriter::detail(const std::string &lines)
{
	if (lines.empty())
		return;
	write_all(STDERR_FILENO, lines);
	if (policy_.verbose && !sink_.is_stderr())
		write_main(lines);
}

void IncidentWriter::write_other(const std::string &line, const std::string &record,
				 const std::string &stem, const std::string &ext,
				 const std::string &content, int severity, const std::string &msgid,
				 const SdParams &sd, const std::string &message,
				 const nlohmann::ordered_json *json_message)
{
	diag(line);
	if (!sink_.is_stderr() || policy_.json) {
		try {
			sink_.write(record);
		} catch (const Error &e) {
			diag(e.what());
		}
	}
	if (log_dir_)
		write_file(stem, ext, content);
	if (syslog_ && json_message)
		syslog_->send_json(severity, msgid, sd, *json_message, message);
	else if (syslog_)
		syslog_->send(severity, msgid, sd, message);
}

void IncidentWriter::reopen()
{
	if (sink_.is_stderr())
		return;
	try {
		sink_.reopen();
	} catch (const Error &e) {
		diag(e.what());
	}
}

void IncidentWriter::write_file(const std::string &stem, const std::string &ext,
				const std::string &content)
{
	try {
		log_dir_->write(stem, ext, content);
	} catch (const Error &e) {
		files_failed_++;
		diag(std::string("--log-dir: ") + e.what());
	}
}

void IncidentWriter::add_losses(LossList &l) const
{
	l.add(files_failed_, "incident files (could not be written)");
	if (log_dir_)
		l.add(log_dir_->cut(), "incident files cut to an eighth of --log-max-size");
	if (syslog_)
		l.add(syslog_->failed(), "syslog records (the daemon did not take them)");
	l.add(unwritten_, "incidents the output could not take");
}

} // namespace fh
