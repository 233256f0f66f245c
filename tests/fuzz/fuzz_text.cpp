// libFuzzer harness: what makes target-controlled bytes safe to print or
// send: printable() (names, paths in text), escape_bytes() (native
// frames), py_escape() (Python strings), json_string() (incident records),
// split_message() and rfc5424_record() (syslog), split_json_record() and
// join_json_parts() (JSON records in syslog parts).
//
// Input: uint16 printable's byte limit, uint16 the syslog part size, uint32
// a Python string's length, then the bytes (also read as code points).
// Checked: no control character or ESC survives printable(); the
// faulthandler escapes are printable ASCII within their limits; a JSON
// string literal is valid JSON; the syslog parts are each within the size
// and put back together give the message; a record's header and structured
// data hold no control character; a JSON record's parts each parse and
// join back into the record.
#include "fuzz_input.h"
#include "report/incident.h"
#include "util/printable.h"
#include "python/py_traceback.h"
#include "output/syslog.h"
#include "report/text.h"
#include "output/json.h"
#include "output/syslog_json.h"

using namespace fh;

namespace {

void check_printable(const std::string &s, size_t max)
{
	std::string out = printable(s, max);
	for (size_t i = 0; i < out.size(); i++) {
		auto c = static_cast<unsigned char>(out[i]);
		FUZZ_CHECK(c >= 0x20 && c != 0x7f);
		size_t n = utf8_length(out, i);
		FUZZ_CHECK(n > 0); // valid UTF-8 throughout
		if (n == 2)	   // no C1 control character
			FUZZ_CHECK(!(c == 0xc2 && static_cast<unsigned char>(out[i + 1]) < 0xa0));
		i += n - 1;
	}
	FUZZ_CHECK(out.size() <= 4 * std::min(s.size(), max) + 3);
}

void check_syslog(const std::string &s, size_t max)
{
	std::vector<std::string> parts = split_message(s, max);
	std::string whole;
	for (const auto &p : parts) {
		FUZZ_CHECK(p.size() <= std::max<size_t>(max, 16));
		FUZZ_CHECK(!p.empty() || parts.size() == 1);
		whole += p;
	}
	FUZZ_CHECK(whole == s);

	size_t third = s.size() / 3;
	SdParams sd = {{s.substr(0, third), s.substr(third, third)}, {"comm", s}};
	std::string rec = rfc5424_record(kSyslogDaemon, kSyslogCrit, s.substr(0, third),
					 s.substr(third), 42, s.substr(2 * third), sd, "");
	for (char c : rec)
		FUZZ_CHECK(static_cast<unsigned char>(c) >= 0x20 && c != 0x7f);
}

// A record shaped like an incident's, its strings and lists from the
// input: split for parts of `max` bytes, each part parses, and the parts
// (in reverse order too) give the record back.
void check_json_parts(const std::string &s, size_t max)
{
	using json = nlohmann::ordered_json;
	// Strings as records hold them: valid UTF-8 (json_text's).
	std::string text = json_text(s);
	json frames = json::array();
	for (size_t i = 0; i < s.size(); i += 1 + i % 97)
		frames.push_back({{"function", json_text(s.substr(i, 1 + i % 97))}, {"line", i}});
	json record = {{"schema", 3},	 {"pid", 7},	 {"comm", json_text(s.substr(0, 16))},
		       {"threads", json::array({{{"tid", 7}, {"frames", frames}},
						{{"tid", 8}, {"frames", json::array()}}})},
		       {"text", text}};
	std::vector<std::string> parts = split_json_record(record, "7-1", std::max<size_t>(max, 256));
	std::vector<json> parsed;
	for (const auto &p : parts) {
		json j = json::parse(p, nullptr, false);
		FUZZ_CHECK(!j.is_discarded() && j.is_object());
		parsed.push_back(std::move(j));
	}
	FUZZ_CHECK(join_json_parts(parsed) == record);
	std::reverse(parsed.begin(), parsed.end());
	FUZZ_CHECK(join_json_parts(parsed) == record);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fhfuzz::Input in(data, size);
	size_t max = in.take<uint16_t>();
	size_t part = in.take<uint16_t>();
	uint64_t length = in.take<uint32_t>();
	std::vector<uint8_t> rest = in.rest();
	std::string s(rest.begin(), rest.end());

	check_printable(s, max);
	check_printable(s, 4096);

	std::string e = escape_bytes(s);
	FUZZ_CHECK(fhfuzz::printable_ascii(e));
	FUZZ_CHECK(e.size() <= 4 * kMaxStringLength + 3);

	std::vector<uint32_t> cps = py_code_points(rest.data(), rest.size(), 4, length, 501);
	for (int kind : {1, 2})
		py_code_points(rest.data(), rest.size(), kind, length, 501);
	std::string p = py_escape(cps, length);
	FUZZ_CHECK(fhfuzz::printable_ascii(p));
	FUZZ_CHECK(p.size() <= 10 * kMaxStringLength + 3);

	FUZZ_CHECK(fhfuzz::Json::valid(json_string(s)));

	check_syslog(s, part);
	// Bounded: a split costs parts x record size, the other checks' time.
	check_json_parts(s.substr(0, 512), part);
	return 0;
}
