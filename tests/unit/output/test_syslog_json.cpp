// --syslog with --format json: a record too long for one message goes in
// parts that each parse, and give the record back by the README's rule.
#include <catch2/catch.hpp>

#include "output/json.h"
#include "output/syslog_json.h"
#include "report/incident.h"
#include "report/text.h"
#include "util/error.h"

#include <linux/types.h>

#include <algorithm>
#include <random>

extern "C" {
#include "fh/records.h"
}

using namespace fh;
using json = nlohmann::ordered_json;

namespace {

NativeFrame frame(int i, const std::string &function)
{
	return NativeFrame{0x401000u + static_cast<uint64_t>(i), function, 0x10, true,
			   "/src/worker_" + std::to_string(i % 7) + ".c", 10 + i, "/usr/bin/app",
			   0x1000u + static_cast<uint64_t>(i), i % 3 == 0};
}

// An incident of `threads` threads of a few frames; with `deep`, one of them
// holds 3000 frames and a frame whose function name is 20 KB of text a
// part must cut (UTF-8, quotes, control characters, newlines).
Incident big_incident(int threads, bool deep)
{
	Incident inc;
	inc.time_ns = 1764585067123456000ull;
	inc.host = "node-7";
	inc.kernel = "6.18.0";
	inc.trigger = FH_TRIGGER_FATAL_SIGNAL;
	inc.pid = 4242;
	inc.tid = 4242;
	inc.comm = "app";
	inc.sig = 11;
	inc.si_code = 1;
	inc.process.exe = "/usr/bin/app";
	inc.process.cmdline = {"app", "--serve", "caf\xc3\xa9"};
	inc.header = fatal_header(11);
	for (int t = 0; t < threads; t++) {
		Thread th;
		th.pthread_id = 0x7f0000001000u + static_cast<uint64_t>(t) * 0x1000;
		th.tid = 4242 + t;
		th.name = "worker-" + std::to_string(t);
		th.current = t == 0;
		for (int i = 0; i < 4 + t % 5; i++)
			th.frames.push_back(frame(i, "work_" + std::to_string(t)));
		inc.threads.push_back(std::move(th));
	}
	if (deep) {
		// Losses enough that the record's head, threads and text
		// emptied, is still too long for a small part.
		for (int i = 0; i < 40; i++)
			inc.losses.push_back({"stack_truncated", 1,
					      "thread " + std::to_string(i) +
						      ": its stack was cut at 8192 bytes, older "
						      "frames are not shown"});
	}
	if (deep && threads > 1) {
		auto &frames = inc.threads[1].frames;
		for (int i = 0; i < 3000; i++)
			frames.push_back(frame(i, "recurse"));
		std::string name;
		while (name.size() < 20000)
			name += "f\xe2\x82\xac\"\\\x01\n<\xf0\x9f\x98\x80>";
		frames[5] = frame(5, name);
	}
	return inc;
}

// The README's rule, written apart from fh-bpf's own join: part 1's
// record, then each part's "append" added to what its "at" names.
json rebuild_by_rule(std::vector<json> parts)
{
	std::sort(parts.begin(), parts.end(),
		  [](const json &a, const json &b) { return a["part"] < b["part"]; });
	json r = parts.at(0).at("record");
	for (size_t k = 1; k < parts.size(); k++) {
		json &into = r[json::json_pointer(parts[k]["at"].get<std::string>())];
		if (into.is_string())
			into = into.get<std::string>() + parts[k]["append"].get<std::string>();
		else
			for (const auto &e : parts[k]["append"])
				into.push_back(e);
	}
	return r;
}

} // namespace

TEST_CASE("syslog JSON parts: each parses, fits, and the parts rebuild the record exactly",
	  "[syslog]")
{
	for (bool deep : {false, true}) {
		Incident inc = big_incident(300, deep);
		json record = incident_object(inc);
		std::string line = dump_line(record);
		// 640: below --syslog-max-size's 1K floor, the record's fixed
		// fields and little room besides.
		for (size_t max : {640, 1024, 2048, 8192, 65536}) {
			INFO("deep " << deep << ", max " << max);
			auto parts = split_json_record(
				record, "20261201T103107.123456Z-app-4242-SIGSEGV", max);
			REQUIRE(parts.size() > 1);
			std::vector<json> objects;
			for (const auto &p : parts) {
				CHECK(p.size() <= max);
				CHECK(p.find('\n') == std::string::npos);
				objects.push_back(json::parse(p)); // throws if it does not parse
				CHECK(objects.back()["incident"] ==
				      "20261201T103107.123456Z-app-4242-SIGSEGV");
				CHECK(objects.back()["parts"] == parts.size());
			}
			// The first part: the record, but its threads and text.
			const json &head = objects[0].at("record");
			CHECK(head.at("pid") == 4242);
			CHECK(head.at("threads") == json::array());
			CHECK(head.at("text") == "");
			if (max >= 1024) // a short list stays, but in the smallest parts
				CHECK(head.at("cmdline") == record.at("cmdline"));
			// Rebuilt exactly: the same values, in the same order, the
			// same line; and by the README's rule alone.
			json joined = join_json_parts(objects);
			CHECK(joined == record);
			CHECK(dump_line(joined) == line);
			CHECK(dump_line(rebuild_by_rule(objects)) == line);
			// In any order.
			std::shuffle(objects.begin(), objects.end(), std::mt19937(max));
			CHECK(dump_line(join_json_parts(objects)) == line);
		}
	}
}

TEST_CASE("syslog JSON parts: how threads, frames and text are cut", "[syslog]")
{
	json record = incident_object(big_incident(300, true));
	std::vector<json> parts;
	for (const auto &p : split_json_record(record, "id", 8192))
		parts.push_back(json::parse(p));
	size_t thread_parts = 0, text_parts = 0;
	for (const auto &p : parts) {
		if (!p.contains("at"))
			continue;
		std::string at = p["at"];
		if (at == "/threads")
			thread_parts++;
		if (at == "/text") {
			text_parts++;
			// A text piece ends at a line's end, but where no line
			// ends in its last quarter (the 20 KB name).
			std::string piece = p["append"];
			if (&p != &parts.back() && piece.back() != '\n')
				CHECK(piece.find('\n', piece.size() * 3 / 4) == std::string::npos);
		}
	}
	// Threads go several to a part: the 300 threads, 1 to 2 KB each, take
	// far fewer than 300 parts.
	CHECK(thread_parts > 10);
	CHECK(thread_parts < 100);
	CHECK(text_parts > 10);
	// Thread 1 (3000 frames) as a shell, then its frames; its frame 5, a
	// 20 KB name, as a shell, then the name in pieces.
	auto has = [&](const std::string &at) {
		return std::count_if(parts.begin(), parts.end(),
				     [&](const json &p) { return p.value("at", "") == at; });
	};
	CHECK(has("/threads/1/frames") > 10); // 3000 frames, 230 bytes each
	CHECK(has("/threads/1/frames/5/function") >= 4); // 31 KB escaped
	CHECK(has("/threads/0/frames") == 0);
	// At 1K, the losses too go after the head (a list in an object).
	std::vector<json> small_parts;
	for (const auto &p : split_json_record(record, "id", 1024))
		small_parts.push_back(json::parse(p));
	CHECK(small_parts[0]["record"]["lost"]["losses"] == json::array());
	CHECK(small_parts[0]["record"]["lost"]["complete"] == record["lost"]["complete"]);
	CHECK(std::count_if(small_parts.begin(), small_parts.end(), [](const json &p) {
		      return p.value("at", "") == "/lost/losses";
	      }) >= 4);
	CHECK(join_json_parts(small_parts) == record);

	// A record that fits is the record itself, one message.
	json small = incident_object(big_incident(2, false));
	auto one = split_json_record(small, "id", 65536);
	REQUIRE(one.size() == 1);
	CHECK(one[0] == dump_line(small));
	CHECK(join_json_parts({json::parse(one[0])}) == small);

	// Parts that do not make one record are said.
	std::vector<json> missing(parts.begin(), parts.end() - 1);
	CHECK_THROWS_AS(join_json_parts(missing), Error);
	std::vector<json> twice = parts;
	twice.back() = parts[1];
	CHECK_THROWS_AS(join_json_parts(twice), Error);
	std::vector<json> wrong = parts;
	wrong[1]["at"] = "/pid";
	CHECK_THROWS_AS(join_json_parts(wrong), Error);
	CHECK_THROWS_AS(join_json_parts({}), Error);
}

TEST_CASE("syslog JSON parts: a 4 MB string is cut in linear work; a tiny part takes one character "
	  "still",
	  "[syslog]")
{
	std::string text;
	while (text.size() < 4'000'000)
		text += "\x01\xe2\x82\xac\n";
	json record = {{"schema", 3}, {"text", text}};
	auto parts = split_json_record(record, "x", 1024);
	// Each part at least three quarters full: 5 bytes take 11 escaped (a
	// control character 6, a newline 2).
	CHECK(parts.size() <= 4'000'000 / 5 * 11 / (1024 * 3 / 4));
	std::vector<json> objects;
	for (const auto &p : parts) {
		CHECK(p.size() <= 1024);
		objects.push_back(json::parse(p));
	}
	CHECK(join_json_parts(objects) == record);
	// Tiny parts still make progress: one character each at worst.
	auto tiny = split_json_record({{"text", "\xf0\x9f\x98\x80\xf0\x9f\x98\x80"}}, "x", 10);
	CHECK(tiny.size() == 3);
}
