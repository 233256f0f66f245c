// fh-bpf incidents without privileges: a log directory's records read back
// and listed (order, filters, JSON), the parsers on bad input (a corrupt
// file, a foreign one, an empty or missing directory), the text's hint on
// missing symbols, and the later symbolizer on a fixture's debug file
// against addr2line.
#include <catch2/catch.hpp>

#include "incidents/incidents.h"
#include "output/json.h"
#include "report/incident.h"
#include "report/text.h"
#include "symbolize/offline.h"
#include "support.h"
#include "util/error.h"

#include <linux/types.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <regex>
#include <sstream>

extern "C" {
#include "fh/records.h"
}

using namespace fh;
using fhtest::contains;

namespace {

constexpr uint64_t kSecond = 1000000000ull;
constexpr uint64_t kT0 = 1764585067123456000ull; // 2025-12-01T10:31:07.123456Z

Incident crash(uint64_t time_ns, const std::string &comm, uint32_t pid, int sig,
	       const std::string &function = "leaf")
{
	Incident inc;
	inc.time_ns = time_ns;
	inc.host = "node-7";
	inc.trigger = FH_TRIGGER_FATAL_SIGNAL;
	inc.pid = inc.tid = pid;
	inc.comm = comm;
	inc.sig = sig;
	inc.header = fatal_header(sig);
	Thread t;
	t.pthread_id = 0x7f0000001000;
	t.tid = pid;
	t.current = true;
	NativeFrame top{0x401000, function, 0, false, "/src/a.c", 12, "/usr/bin/" + comm, 0x1000, false};
	top.build_id = "0123456789abcdef";
	t.frames = {top};
	inc.threads = {t};
	return inc;
}

void write(const std::string &path, const std::string &bytes)
{
	std::ofstream(path, std::ios::binary) << bytes;
}

// A log directory as the agent leaves it: records named by their stem.
struct LogDirFixture {
	std::string dir = fhtest::temp_path("incidents");
	LogDirFixture() { REQUIRE(mkdir(dir.c_str(), 0700) == 0); }
	~LogDirFixture() { fhtest::remove_dir(dir); }
	std::string add(const Incident &inc)
	{
		std::string stem = incident_stem(inc);
		write(dir + "/" + stem + ".json", incident_json(inc) + "\n");
		return stem;
	}
};

std::vector<std::string> ids(const std::vector<StoredIncident> &list, const IncidentsOptions &o)
{
	std::vector<std::string> out;
	for (const auto &s : list)
		if (incident_matches(s, o))
			out.push_back(s.id);
	return out;
}

IncidentsOptions list_options(std::vector<std::string> args)
{
	args.insert(args.begin(), "list");
	return parse_incidents_options(args, kT0 + 3600 * kSecond);
}

} // namespace

TEST_CASE("incidents list: a log directory's records oldest first, filtered, as lines and JSON",
	  "[incidents]")
{
	LogDirFixture d;
	// Written out of order; two at the same microsecond.
	std::string c = d.add(crash(kT0 + 20 * kSecond, "nginx", 30, 6, "abort_here"));
	std::string a = d.add(crash(kT0, "crash", 10, 11));
	std::string b = d.add(crash(kT0 + 10 * kSecond, "crash", 20, 7));
	Incident same = crash(kT0 + 20 * kSecond, "nginx", 30, 6);
	std::string c1 = incident_stem(same) + "-1";
	write(d.dir + "/" + c1 + ".json", incident_json(same) + "\n");
	// Not incidents: flood control's summary, another program's file.
	write(d.dir + "/" + file_stem(kT0, "crash", 0, "suppressed") + ".json", "{\"type\":1}\n");
	write(d.dir + "/notes.json", "{}\n");

	std::vector<std::string> errors;
	auto all = read_log_dir(d.dir, &errors);
	CHECK(errors.empty());
	IncidentsOptions none = list_options({});
	CHECK(ids(all, none) == std::vector<std::string>{a, b, c, c1});

	CHECK(ids(all, list_options({"--comm", "nginx"})) == std::vector<std::string>{c, c1});
	CHECK(ids(all, list_options({"--comm=crash,other"})) == std::vector<std::string>{a, b});
	CHECK(ids(all, list_options({"--signal", "SEGV"})) == std::vector<std::string>{a});
	CHECK(ids(all, list_options({"--signal", "SIGBUS,6"})) == std::vector<std::string>{b, c, c1});
	CHECK(ids(all, list_options({"--since", "2025-12-01T10:31:10"})) ==
	      std::vector<std::string>{b, c, c1});
	CHECK(ids(all, list_options({"--until", "2025-12-01T10:31:17.123456Z"})) ==
	      std::vector<std::string>{a, b});
	// Relative to now (an hour after the first).
	CHECK(ids(all, list_options({"--since", "3590s", "--comm", "crash"})) ==
	      std::vector<std::string>{b});

	// One line each: the id show takes first, then what happened where.
	std::string line = list_line(all.front());
	CHECK(line == a + "  2025-12-01T10:31:07Z  node-7  10  crash  SIGSEGV  leaf (a.c:12)\n");
	std::string j = list_json(all[2]);
	CHECK(std::count(j.begin(), j.end(), '\n') == 1);
	auto obj = nlohmann::json::parse(j);
	CHECK(obj["id"] == c);
	CHECK(obj["signal"] == "SIGABRT");
	CHECK(obj["pid"] == 30);
	CHECK(obj["top_frame"] == "abort_here (a.c:12)");
	CHECK(obj["time"] == "2025-12-01T10:31:27.123456Z");

	// show finds each by its id.
	CHECK(find_incident(b, 0, d.dir).inc.pid == 20);
	CHECK(find_incident(c1, 0, d.dir).id == c1);
}

TEST_CASE("incidents: bad input is an error naming the file, never a crash", "[incidents]")
{
	LogDirFixture d;
	std::string good = d.add(crash(kT0, "crash", 10, 11));
	std::string stem = incident_stem(crash(kT0 + kSecond, "x", 1, 11));
	write(d.dir + "/" + stem + ".json", "{\"schema\": 3, \"time\": [[[[[[[[[[[[[[[[");
	std::string foreign = incident_stem(crash(kT0 + 2 * kSecond, "y", 2, 11));
	write(d.dir + "/" + foreign + ".json", "{\"schema\": 99}\n");
	std::string empty = incident_stem(crash(kT0 + 3 * kSecond, "z", 3, 11));
	write(d.dir + "/" + empty + ".json", "");
	// A deep nest: bounded, not a stack overflow.
	std::string deep = incident_stem(crash(kT0 + 4 * kSecond, "w", 4, 11));
	write(d.dir + "/" + deep + ".json", std::string(1 << 20, '[') + "\n");

	std::vector<std::string> errors;
	auto all = read_log_dir(d.dir, &errors);
	REQUIRE(all.size() == 1);
	CHECK(all[0].id == good);
	REQUIRE(errors.size() == 4);
	for (const auto &e : errors) {
		INFO(e);
		CHECK(e.rfind(d.dir + "/", 0) == 0);
		CHECK(e.find('\n') == std::string::npos);
	}
	CHECK(contains(errors[0] + errors[1] + errors[2] + errors[3], "not an fh-bpf incident record"));
	CHECK_THROWS_WITH(find_incident(stem, 0, d.dir), Catch::Contains("not an fh-bpf incident record"));
	CHECK_THROWS_WITH(find_incident("nothing-here", 0, d.dir), Catch::Contains("no such file"));

	// An empty directory lists nothing; a missing one is an error.
	LogDirFixture e;
	errors.clear();
	CHECK(read_log_dir(e.dir, &errors).empty());
	CHECK(errors.empty());
	CHECK_THROWS_AS(read_log_dir(e.dir + "/missing", &errors), Error);
	// A FIFO where a file should be is refused, not waited for.
	std::string fifo = e.dir + "/" + incident_stem(crash(kT0, "f", 5, 11)) + ".json";
	REQUIRE(mkfifo(fifo.c_str(), 0600) == 0);
	errors.clear();
	CHECK(read_log_dir(e.dir, &errors).empty());
	REQUIRE(errors.size() == 1);
	CHECK(contains(errors[0], "not a regular file"));
}

TEST_CASE("incidents show: a JSON-lines file's records by FILE:N or --record", "[incidents]")
{
	std::string path = fhtest::temp_path("records.jsonl");
	write(path, incident_json(crash(kT0, "a", 1, 11)) + "\n\n" + incident_json(crash(kT0, "b", 2, 6)) +
			    "\n" + "garbage\n");
	CHECK(find_incident(path + ":2", 0, "/nonexistent").inc.comm == "b");
	CHECK(find_incident(path, 1, "/nonexistent").inc.comm == "a");
	CHECK_THROWS_WITH(find_incident(path, 0, "/nonexistent"),
			  Catch::Contains("holds 3 records: say which"));
	CHECK_THROWS_WITH(find_incident(path + ":3", 0, "/nonexistent"),
			  Catch::Contains("not an fh-bpf incident record"));
	CHECK_THROWS_WITH(find_incident(path + ":9", 0, "/nonexistent"), Catch::Contains("no record 9"));
	unlink(path.c_str());
}

TEST_CASE("incidents: the command line and its times", "[incidents]")
{
	uint64_t now = kT0;
	CHECK(parse_when("2025-12-01", now) == 1764547200ull * kSecond);
	CHECK(parse_when("2025-12-01T10:31", now) == (1764547200ull + 37860) * kSecond);
	CHECK(parse_when("2025-12-01 10:31:07.5Z", now) == (1764547200ull + 37867) * kSecond + kSecond / 2);
	CHECK(parse_when("@1764585067", now) == 1764585067ull * kSecond);
	CHECK(parse_when("2h", now) == now - 7200 * kSecond);
	CHECK(parse_when("7d", now) == now - 7 * 86400 * kSecond);
	for (const char *bad : {"", "yesterday", "2025-13-01", "2025-12-01T25:00", "2025-12-01X",
				"5y", "-3h", "@", "@12x", "2025-12-01T10:31:07.1234567890"})
		CHECK_FALSE(parse_when(bad, now));

	auto o = parse_incidents_options({"show", "--debug-dir", "/a", "--debug-dir=/b", "--format",
					  "json", "--record", "2", "file.jsonl"},
					 now);
	CHECK(o.command == IncidentsOptions::Command::show);
	CHECK(o.debug_dirs == std::vector<std::string>{"/a", "/b"});
	CHECK(o.json);
	CHECK(o.record == 2);
	CHECK(o.what == "file.jsonl");
	CHECK(parse_incidents_options({"list"}, now).log_dir == "/var/log/fh-bpf");
	for (const auto &bad : std::vector<std::vector<std::string>>{
		     {},
		     {"remove"},
		     {"show"},
		     {"show", "a", "b"},
		     {"list", "x"},
		     {"list", "--since", "then"},
		     {"list", "--signal", "SIGNOPE"},
		     {"list", "--format", "xml"},
		     {"list", "--debug-dir", "/a"},
		     {"show", "--record", "0", "f"},
		     {"list", "--log-dir"}}) {
		INFO(bad.size());
		try {
			parse_incidents_options(bad, now);
			FAIL("accepted");
		} catch (const Error &e) {
			CHECK(e.status() == kExitUsage);
		}
	}
}

TEST_CASE("The text says once how to get a module's missing symbols", "[incidents]")
{
	Incident inc = crash(kT0, "nginx", 10, 11);
	CHECK(symbol_hint(inc).empty());
	// A module none of whose frames has a line, twice; another one; the
	// vdso; a frame of a module with lines elsewhere (crt1.o's _start).
	NativeFrame bare{0x5000, "", 0, false, "", 0, "/usr/sbin/nginx", 0x2000, false};
	bare.build_id = "3f2a00112233";
	NativeFrame other{0x6000, "exported", 0x10, true, "", 0, "/usr/lib/libx.so", 0x100, false};
	NativeFrame vdso{0x7000, "", 0, false, "", 0, "[vdso]", 0x10, false};
	NativeFrame start{0x401100, "_start", 0x21, true, "", 0, "/usr/bin/nginx", 0x1100, false};
	inc.threads[0].frames.insert(inc.threads[0].frames.begin(), {bare, bare, other, vdso, start});
	CHECK(symbol_hint(inc) ==
	      "fh-bpf: no symbols for /usr/sbin/nginx (build id 3f2a00112233) and 1 other module: "
	      "install its -dbgsym package, or see incidents show --debug-dir\n");
}

namespace {

// addr2line -a -f -i: per address, (function, line) innermost first.
std::map<uint64_t, std::vector<std::pair<std::string, int>>>
addr2line(const std::string &file, const std::vector<uint64_t> &addrs)
{
	std::vector<std::string> argv = {"/usr/bin/addr2line", "-a", "-f", "-i", "-e", file};
	for (uint64_t a : addrs) {
		std::ostringstream s;
		s << "0x" << std::hex << a;
		argv.push_back(s.str());
	}
	std::istringstream out(fhtest::run_capture(argv));
	std::map<uint64_t, std::vector<std::pair<std::string, int>>> res;
	std::string l, where;
	uint64_t at = 0;
	while (std::getline(out, l)) {
		if (l.rfind("0x", 0) == 0) {
			at = std::stoull(l, nullptr, 16);
			continue;
		}
		std::getline(out, where);
		size_t colon = where.rfind(':');
		res[at].emplace_back(l, colon == std::string::npos ? 0 : std::atoi(where.c_str() + colon + 1));
	}
	return res;
}

} // namespace

TEST_CASE("The later symbolizer reads a debug file found by build id alone, as addr2line does",
	  "[incidents]")
{
	// The fixture of calls inlined several levels deep, its debug
	// information split off into a .build-id directory.
	std::string dir = fhtest::temp_path("debugdir");
	std::string binary = fhtest::build_dir() + "/targets/inline_chain";
	std::string notes = fhtest::run_capture({"/usr/bin/readelf", "-n", binary});
	std::smatch m;
	REQUIRE(std::regex_search(notes, m, std::regex(R"(Build ID: ([0-9a-f]+))")));
	std::string id = m[1];
	std::string sub = dir + "/.build-id/" + id.substr(0, 2);
	fhtest::run_capture({"/bin/mkdir", "-p", sub});
	std::string debug = sub + "/" + id.substr(2) + ".debug";
	fhtest::run_capture({"/usr/bin/objcopy", "--only-keep-debug", binary, debug});

	// Every byte of main (a PIE: its offsets are its addresses).
	std::string syms = fhtest::run_capture({"/usr/bin/nm", "-S", debug});
	REQUIRE(std::regex_search(syms, m, std::regex(R"(([0-9a-f]+) ([0-9a-f]+) T main\n)")));
	uint64_t start = std::stoull(m[1], nullptr, 16), size = std::stoull(m[2], nullptr, 16);
	std::vector<uint64_t> addrs;
	for (uint64_t a = start; a < start + size; a++)
		addrs.push_back(a);
	auto oracle = addr2line(debug, addrs);

	OfflineSymbolizer sym({dir}, false);
	size_t inlined = 0;
	for (uint64_t a : addrs) {
		NativeFrame rec{0x555500000000 + a, "", 0, false, "", 0, "/gone/inline_chain", a, false};
		rec.build_id = id;
		auto frames = sym.symbolize(rec, false);
		REQUIRE(frames);
		std::vector<std::pair<std::string, int>> ours;
		for (const auto &f : *frames) {
			ours.emplace_back(f.function, f.line);
			CHECK(f.pc == rec.pc);
			CHECK(f.module == rec.module);
			inlined += f.inlined;
		}
		INFO("offset 0x" << std::hex << a);
		CHECK(ours == oracle[a]);
	}
	CHECK(inlined > 0);
	CHECK(sym.debug_file(id) == debug);

	// Another build id, an offset outside the file: nothing, not a guess.
	NativeFrame unknown{0x1000, "", 0, false, "", 0, "/x", 0x10, false};
	unknown.build_id = "00112233445566778899";
	CHECK_FALSE(sym.symbolize(unknown, false));
	unknown.build_id = id;
	unknown.module_offset = 1ull << 40;
	CHECK_FALSE(sym.symbolize(unknown, false));
	unknown.build_id = "not hex";
	CHECK_FALSE(sym.symbolize(unknown, false));
	fhtest::run_capture({"/bin/rm", "-rf", dir});
}
