// libFuzzer harness: ring-buffer records (userspace/capture/records.cpp) and what is
// made of the events they assemble into: the Python traceback (line tables
// included), the summary and loss lines, the incident's JSON record and its
// syslog structured data.
//
// Input: one byte choosing the Python version (3.6 + (b & 0x7f) % 9) and,
// with 0x80, that pending events are completed as live dumps, then records, each a
// little-endian uint16 length and that many bytes.  Each record is handed
// to the Assembler in a buffer of exactly its length (ASan sees any read
// past it).  Checked: every event's JSON is valid JSON, the rendered
// Python text holds only printable ASCII and newlines.
#include "fuzz_input.h"
#include "report/incident.h"
#include "python/py_report.h"
#include "python/python.h"
#include "capture/records.h"
#include "symbolize/native.h"
#include "report/text.h"
#include "output/json.h"
#include "output/syslog.h"

#include <memory>

extern "C" {
#include "fh/records.h"
}

using namespace fh;

namespace {

void render(const Event &ev, const PythonRuntime &rt)
{
	static const std::set<std::string> stdlib = {"os", "sys"};
	ProcessMeta meta;
	meta.cmdline = ev.identity.cmdline;
	meta.exe = ev.comm;
	Incident inc = make_incident(ev, meta);
	python_traceback(ev, rt, ev.id & 1 ? &stdlib : nullptr, inc);
	inc.header = fatal_header(ev.sig, true);
	capture_losses(ev, NativeStats{}, true, inc.losses);
	bound_threads(inc);
	bound_text(inc);
	for (char c : render_text(inc) + loss_lines(inc))
		FUZZ_CHECK(c == '\n' || (c >= 0x20 && c <= 0x7e));
	std::string summary = headline(inc);
	FUZZ_CHECK(!summary.empty() && summary.find('\n') == summary.size() - 1);
	std::string json = incident_json(inc);
	FUZZ_CHECK(fhfuzz::Json::valid(json));
	// A file name: no separator, nothing a shell or a terminal acts on
	// ('+' comes from a real-time signal's name, "SIGRTMIN+3").
	std::string stem = incident_stem(inc);
	FUZZ_CHECK(stem.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
					  "0123456789._-+") == std::string::npos);
	std::string rec = rfc5424_record(kSyslogDaemon, kSyslogCrit, utc_time(inc.time_ns), inc.host,
					 ev.tgid, "crash", incident_sd(inc, stem), summary);
	FUZZ_CHECK(rec.find('\n') == rec.size() - 1 || rec.find('\n') == std::string::npos);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fhfuzz::Input in(data, size);
	uint8_t mode = in.take<uint8_t>();
	PythonRuntime rt;
	rt.minor = 6 + (mode & 0x7f) % 9;
	if (auto o = builtin_offsets(rt.minor))
		rt.offsets = *o;
	else
		rt.offsets.owner_skip_min = 1;

	Assembler as;
	Assembler::Output out;
	std::vector<uint64_t> ids;
	while (in.left() >= 2) {
		size_t len = in.take<uint16_t>();
		std::vector<uint8_t> rec = in.bytes(len);
		std::unique_ptr<uint8_t[]> exact(new uint8_t[rec.size()]);
		std::copy(rec.begin(), rec.end(), exact.get());
		as.feed(exact.get(), rec.size(), out);
		if (rec.size() >= sizeof(fh_record_header)) {
			uint64_t id;
			std::memcpy(&id, rec.data() + 8, sizeof(id));
			ids.push_back(id);
		}
	}
	if (mode & 0x80)
		for (uint64_t id : ids)
			as.finish_live(id, Assembler::LiveEnd{1, 2, 3}, out);
	for (const Event &ev : out.events)
		render(ev, rt);
	for (const Event &ev : as.take_incomplete())
		render(ev, rt);
	return 0;
}
