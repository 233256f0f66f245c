#include "output/outputs.h"

#include "util/printable.h"

#include "capture/capture.h"
#include "util/error.h"
#include "capture/event.h"
#include "report/incident.h"
#include "capture/records.h"
#include "output/sink.h"

#include <linux/types.h>
#include <unistd.h>

extern "C" {
#include "fh/records.h"
}

namespace fh {

void LossList::add(uint64_t n, const std::string &what)
{
	if (n)
		text_ += (text_.empty() ? "" : ", ") + std::to_string(n) + " " + what;
}

void add_capture_losses(LossList &l, const Counters &c, const Assembler &a)
{
	each_capture_loss(c, [&l](const char *, uint64_t n, const char *what) { l.add(n, what); });
	l.add(a.malformed(), "malformed records");
	l.add(a.orphans(), "records of events never begun");
	l.add(c.unassembled, "records outside the event loop");
}

void OnceMessages::say(const std::string &key, const std::string &msg)
{
	if (said_.count(key))
		return;
	if (said_.size() >= max_) {
		if (unsaid_++ == 0)
			write_all(STDERR_FILENO,
				  "fh-bpf: " + what_ + " are counted, not said (see the closing line)\n");
		return;
	}
	said_.insert(key);
	write_all(STDERR_FILENO, "fh-bpf: " + printable(msg, 65536) + "\n");
}

std::string suppressed_json(const FloodControl::Summary &s, uint64_t now_ns,
			    const std::string &line)
{
	std::string json = "{\"schema\":" + std::to_string(kIncidentSchema) +
			   ",\"time\":" + json_string(utc_time(now_ns)) +
			   ",\"trigger\":\"suppressed\",\"comm\":" + json_string(s.comm) +
			   ",\"suppressed\":" + std::to_string(s.suppressed) + ",\"pids\":[";
	for (size_t i = 0; i < s.pids.size(); i++)
		json += (i ? "," : "") + std::to_string(s.pids[i]);
	json += "],\"what\":{";
	bool first = true;
	for (const auto &[what, n] : s.what) {
		json += (first ? "" : ",") + json_string(what) + ":" + std::to_string(n);
		first = false;
	}
	return json + "},\"seconds\":" + std::to_string((s.last_ns - s.first_ns) / 1000000000ull) +
	       ",\"text\":" + json_string(line) + "}";
}

IncidentCopies::IncidentCopies(const Options &opts)
{
	if (!opts.log_dir.empty())
		log_dir_ = std::make_unique<LogDir>(opts.log_dir, opts.log_keep, opts.log_max_bytes);
	if (!opts.syslog_socket.empty())
		syslog_ = std::make_unique<SyslogSink>(opts.syslog_socket, opts.syslog_max);
}

void IncidentCopies::write(const Event &ev, const Incident &inc, bool json,
			   const std::string &file_text, const std::string &message)
{
	if (!any())
		return;
	std::string stem = incident_stem(inc);
	std::string line = json ? incident_json(inc) : std::string();
	bool fatal = ev.trigger == FH_TRIGGER_FATAL_SIGNAL;
	// A record longer than a file's share of the directory: the file
	// holds it cut to that share (the log directory cuts a text itself).
	std::string file = json ? line + "\n" : file_text;
	if (json && log_dir_ && file.size() > log_dir_->file_limit())
		file = incident_json(cut_incident(inc, log_dir_->file_limit() * 9 / 10)) + "\n";
	if (log_dir_)
		write_file(stem, json ? "json" : "txt", file);
	if (syslog_)
		syslog_->send(fatal ? kSyslogCrit : kSyslogNotice, "incident", incident_sd(ev, stem),
			      json ? line : message);
}

void IncidentCopies::write_other(const std::string &stem, const std::string &ext,
				 const std::string &content, int severity, const std::string &msgid,
				 const SdParams &sd, const std::string &message)
{
	if (log_dir_)
		write_file(stem, ext, content);
	if (syslog_)
		syslog_->send(severity, msgid, sd, message);
}

void IncidentCopies::write_file(const std::string &stem, const std::string &ext,
				const std::string &content)
{
	try {
		log_dir_->write(stem, ext, content);
	} catch (const Error &e) {
		files_failed_++;
		write_all(STDERR_FILENO, std::string("fh-bpf: --log-dir: ") + e.what() + "\n");
	}
}

void IncidentCopies::add_losses(LossList &l) const
{
	l.add(files_failed_, "incident files (could not be written)");
	if (log_dir_)
		l.add(log_dir_->cut(), "incident files cut to an eighth of --log-max-size");
	if (syslog_)
		l.add(syslog_->failed(), "syslog records (the daemon did not take them)");
}

} // namespace fh
