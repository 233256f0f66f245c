#include "output/outputs.h"

#include "util/printable.h"

#include "capture/capture.h"
#include "util/error.h"
#include "capture/event.h"
#include "output/json.h"
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
		items_.push_back({n, what});
}

std::string LossList::text() const
{
	std::string out;
	for (const auto &i : items_)
		out += (out.empty() ? "" : ", ") + std::to_string(i.count) + " " + i.what;
	return out;
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

} // namespace fh
