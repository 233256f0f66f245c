// fh-bpf incidents show, end to end: a program whose debug information was
// split off and stripped crashes under fh-bpf (--format json); its record
// names the module's build id and offsets, nothing more.  Once the debug
// file is found by that build id (a .build-id directory, a debuginfod
// server), `incidents show` prints function and file:line for each frame,
// as binutils' addr2line and gdb say for the same addresses of the debug
// file.
#include "harness.h"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <sys/stat.h>
#include <unistd.h>

#include <regex>
#include <sstream>

using namespace fhtest;

namespace {

// A tool of the host, found on PATH.
std::string sh(std::vector<std::string> argv)
{
	argv.insert(argv.begin(), "/usr/bin/env");
	int status = 0;
	std::string out = run_capture(argv, &status, true);
	INFO(argv[1] << ": " << out);
	REQUIRE(status == 0);
	return out;
}

// A copy of the crash target, split and stripped: its debug information in
// DIR/crash.debug only, no .gnu_debuglink pointing there.
struct Stripped {
	std::string dir = temp_path("stripped");
	std::string binary = dir + "/crash";
	std::string debug = dir + "/crash.debug";
	std::string build_id;

	Stripped()
	{
		REQUIRE(mkdir(dir.c_str(), 0755) == 0);
		sh({"cp", crash_path(), binary});
		sh({"objcopy", "--only-keep-debug", binary, debug});
		sh({"strip", "--strip-debug", "--strip-unneeded", binary});
		std::smatch m;
		std::string notes = sh({"readelf", "-n", binary});
		static const std::regex re(R"(Build ID: ([0-9a-f]+))");
		REQUIRE(std::regex_search(notes, m, re));
		build_id = m[1];
		// Nothing of the symbols is left in the binary.
		CHECK_FALSE(contains(sh({"readelf", "-S", binary}), ".debug_info"));
		CHECK_FALSE(contains(sh({"readelf", "-S", binary}), ".symtab"));
	}
	~Stripped() { run_capture({"/bin/rm", "-rf", dir}); } // with its .build-id trees

	// DIR/.build-id/xx/rest.debug, as debug packages lay their files out.
	std::string build_id_tree()
	{
		std::string root = dir + "/debug";
		std::string sub = root + "/.build-id/" + build_id.substr(0, 2);
		sh({"mkdir", "-p", sub});
		sh({"cp", debug, sub + "/" + build_id.substr(2) + ".debug"});
		return root;
	}
};

// fh-bpf with an environment of its own.
FhRun run_fh_env(const std::vector<std::string> &env, const std::vector<std::string> &args)
{
	std::vector<std::string> argv = {"/usr/bin/env"};
	argv.insert(argv.end(), env.begin(), env.end());
	argv.push_back(fh_bpf_path());
	argv.insert(argv.end(), args.begin(), args.end());
	return run_command(argv);
}

size_t count_of(const std::string &hay, const std::string &needle)
{
	size_t n = 0;
	for (size_t at = hay.find(needle); at != std::string::npos; at = hay.find(needle, at + 1))
		n++;
	return n;
}

// The stripped program crashes under fh-bpf: its log directory's one
// incident (and its id, as `incidents list` gives it).
struct Crashed {
	std::string log_dir = temp_path("logdir");
	std::string id;
	FhRun run;

	explicit Crashed(const Stripped &s)
	{
		std::string out = temp_path("record");
		run = run_fh({"--format", "json", "-o", out, "--log-dir", log_dir, "--", s.binary,
			      "--auto", "--threads", "2", "segv"});
		std::string record = read_file(out);
		unlink(out.c_str());
		INFO(record << run.err);
		REQUIRE(run.status == 128 + SIGSEGV);
		// The text says once how to get the symbols, naming the build id.
		CHECK(count_of(run.err, "fh-bpf: no symbols for ") == 1);
		CHECK(contains(run.err, "fh-bpf: no symbols for " + s.binary + " (build id " +
						s.build_id + ")"));
		CHECK(contains(run.err, "install its -dbgsym package, or see incidents show --debug-dir"));
		// Without symbols: no frame of the program has a line.
		auto j = nlohmann::json::parse(record);
		for (const auto &t : j["threads"])
			for (const auto &f : t["frames"])
				if (f["module"] == s.binary) {
					CHECK(f["line"].is_null());
					CHECK(f["build_id"] == s.build_id);
				}
		FhRun list = run_fh({"incidents", "list", "--log-dir", log_dir});
		INFO(list.out << list.err);
		REQUIRE(list.status == 0);
		REQUIRE(count_of(list.out, "\n") == 1);
		id = list.out.substr(0, list.out.find(' '));
		CHECK(contains(list.out, "  crash  SIGSEGV  "));
	}
	~Crashed() { remove_dir(log_dir); }
};

// What addr2line -f -i says of an address of the debug file: (function,
// line), innermost inlined call first.
std::vector<std::pair<std::string, int>> addr2line(const std::string &debug, uint64_t addr)
{
	std::ostringstream a;
	a << "0x" << std::hex << addr;
	std::istringstream out(sh({"addr2line", "-f", "-i", "-e", debug, a.str()}));
	std::vector<std::pair<std::string, int>> chain;
	std::string function, where;
	while (std::getline(out, function) && std::getline(out, where)) {
		size_t colon = where.rfind(':');
		int line = colon == std::string::npos ? 0 : std::atoi(where.c_str() + colon + 1);
		chain.emplace_back(function, line);
	}
	return chain;
}

// What gdb says of an address of the debug file: the function whose code
// it is (the outermost of an inlined chain) and the line of the innermost
// call there; ("", 0) when it says nothing.
std::pair<std::string, int> gdb_at(const std::string &debug, uint64_t addr)
{
	std::ostringstream a;
	a << "0x" << std::hex << addr;
	std::string out = sh({"gdb", "-nx", "-batch", "-ex", "info symbol " + a.str(), "-ex",
			      "info line *" + a.str(), debug});
	static const std::regex sym(R"((\S+)(?: \+ \d+)? in section)");
	static const std::regex line(R"(Line (\d+) of ")");
	std::smatch m;
	std::pair<std::string, int> r;
	if (std::regex_search(out, m, sym))
		r.first = m[1];
	if (std::regex_search(out, m, line))
		r.second = std::stoi(m[1]);
	return r;
}

// The debug file's first PT_LOAD address, as libdw aligns it: where a
// record's offsets count from.
uint64_t first_load(const std::string &debug)
{
	std::string ph = sh({"readelf", "-lW", debug});
	static const std::regex re(R"(LOAD +0x[0-9a-f]+ 0x([0-9a-f]+) 0x[0-9a-f]+ 0x[0-9a-f]+ 0x[0-9a-f]+ [RWE ]+ 0x([0-9a-f]+))");
	std::smatch m;
	REQUIRE(std::regex_search(ph, m, re));
	uint64_t vaddr = std::stoull(m[1], nullptr, 16), align = std::stoull(m[2], nullptr, 16);
	return vaddr & ~(align - 1);
}

// Every frame of the program in `record` (incidents show --format json)
// against addr2line (each address's chain of inlined calls, names and
// lines) and gdb (its function and innermost line), both reading the debug
// file.
void check_against_addr2line(const Stripped &s, const std::string &record)
{
	INFO(record);
	auto j = nlohmann::json::parse(record);
	uint64_t base = first_load(s.debug);
	size_t addresses = 0;
	for (const auto &t : j["threads"]) {
		const auto &frames = t["frames"];
		for (size_t i = 0; i < frames.size();) {
			size_t end = i + 1;
			while (end < frames.size() && frames[end - 1]["inlined"] == true)
				end++;
			const auto &f = frames[i];
			bool newest = i == 0;
			if (f["module"] == s.binary) {
				uint64_t addr = base + std::stoull(f["offset"].get<std::string>(), nullptr, 16) -
						(newest ? 0 : 1);
				std::vector<std::pair<std::string, int>> ours;
				for (size_t k = i; k < end; k++)
					ours.emplace_back(frames[k]["function"].get<std::string>(),
							  frames[k]["line"].is_null() ? 0 : frames[k]["line"].get<int>());
				auto theirs = addr2line(s.debug, addr);
				INFO("address 0x" << std::hex << addr);
				CHECK(ours == theirs);
				// gdb agrees: the function of the code, the innermost line.
				auto gdb = gdb_at(s.debug, addr);
				CHECK(gdb == std::make_pair(ours.back().first, ours.front().second));
				addresses++;
			}
			i = end;
		}
	}
	CHECK(addresses >= 3);
}

} // namespace

TEST_CASE("incidents show --debug-dir: a stripped program's crash symbolized again from its "
	  "debug file, found by build id, as addr2line reads that file",
	  "[e2e][incidents]")
{
	Stripped s;
	Crashed c(s);
	std::string debug_dir = s.build_id_tree();

	// Without the debug file: the frames stay as they were, the hint too.
	FhRun bare = run_fh({"incidents", "show", "--log-dir", c.log_dir, c.id});
	INFO(bare.out << bare.err);
	REQUIRE(bare.status == 0);
	CHECK(count_of(bare.out, "fh-bpf: no symbols for " + s.binary) == 1);

	FhRun text = run_fh({"incidents", "show", "--log-dir", c.log_dir, "--debug-dir", debug_dir,
			     c.id});
	INFO(text.out << text.err);
	REQUIRE(text.status == 0);
	check_segv_chain(text.out);
	CHECK_FALSE(contains(text.out, "no symbols for " + s.binary));

	FhRun json = run_fh({"incidents", "show", "--format", "json", "--debug-dir", debug_dir,
			     c.log_dir + "/" + c.id + ".json"});
	INFO(json.err);
	REQUIRE(json.status == 0);
	check_against_addr2line(s, json.out);
	// Its text field is the text show prints.
	auto j = nlohmann::json::parse(json.out);
	CHECK(contains(text.out, j["text"].get<std::string>()));

	// The same debug file under another build id's name is not used.
	std::string wrong = s.dir + "/wrong";
	sh({"mkdir", "-p", wrong + "/.build-id/00"});
	sh({"cp", s.debug, wrong + "/.build-id/00/" + std::string(s.build_id.size() - 2, '0') + ".debug"});
	FhRun other = run_fh({"incidents", "show", "--log-dir", c.log_dir, "--debug-dir", wrong, c.id});
	CHECK(other.out == bare.out);
}

namespace {

int free_port()
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	REQUIRE(fd >= 0);
	sockaddr_in a = {};
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	REQUIRE(bind(fd, reinterpret_cast<sockaddr *>(&a), sizeof(a)) == 0);
	socklen_t len = sizeof(a);
	REQUIRE(getsockname(fd, reinterpret_cast<sockaddr *>(&a), &len) == 0);
	close(fd);
	return ntohs(a.sin_port);
}

// A metric's value in a /metrics page, -1 when absent.
double metric(const std::string &page, const std::string &name)
{
	std::istringstream in(page);
	std::string line;
	while (std::getline(in, line))
		if (line.rfind(name + " ", 0) == 0)
			return std::atof(line.c_str() + name.size() + 1);
	return -1;
}

// debuginfod serving the files below dir, on 127.0.0.1 only, until the end.
struct DebuginfodServer {
	std::string db = temp_path("debuginfod.sqlite");
	std::string log = temp_path("debuginfod.log");
	int port = free_port();
	pid_t pid = -1;

	explicit DebuginfodServer(const std::string &dir)
	{
		SpawnOptions o;
		o.stdout_path = o.stderr_path = log;
		pid = spawn({"/usr/bin/env", "debuginfod", "-F", "-d", db, "-p", std::to_string(port), "-t", "0",
			     "-g", "0", dir},
			    o);
		// Ready once it answers and its first scan is through: every
		// file found is indexed.  Polled, not slept for.
		std::string url = "http://127.0.0.1:" + std::to_string(port) + "/metrics";
		bool ready = false;
		for (int i = 0; i < 3000 && !ready; i++) {
			int status = 0;
			std::string page = run_capture({"/usr/bin/env", "curl", "-s", url}, &status);
			ready = status == 0 &&
				metric(page, "thread_work_total{role=\"traverse\"}") >= 1 &&
				metric(page, "thread_work_pending{role=\"scan\"}") == 0 &&
				metric(page, "thread_busy{role=\"scan\"}") == 0;
			if (!ready)
				usleep(10000); // between two polls of its state, not instead
		}
		REQUIRE(ready);
	}
	~DebuginfodServer()
	{
		kill(pid, SIGTERM);
		wait_exit(pid, kGuardMs);
		for (const char *suffix : {"", "-wal", "-shm"})
			unlink((db + suffix).c_str());
		unlink(log.c_str());
	}
	std::string url() const { return "http://127.0.0.1:" + std::to_string(port); }
};

} // namespace

TEST_CASE("incidents show through debuginfod: the debug file downloaded by build id; an "
	  "unreachable server said in one line",
	  "[e2e][incidents]")
{
	Stripped s;
	Crashed c(s);
	std::string served = s.dir + "/served";
	sh({"mkdir", "-p", served});
	sh({"cp", s.debug, served + "/crash.debug"});
	DebuginfodServer server(served);
	std::string cache = s.dir + "/client-cache";

	FhRun json = run_fh_env({"DEBUGINFOD_URLS=" + server.url(), "DEBUGINFOD_CACHE_PATH=" + cache},
				{"incidents", "show", "--format", "json", "--log-dir", c.log_dir, c.id});
	INFO(json.err);
	REQUIRE(json.status == 0);
	check_against_addr2line(s, json.out);
	FhRun text = run_fh_env({"DEBUGINFOD_URLS=" + server.url(), "DEBUGINFOD_CACHE_PATH=" + cache},
				{"incidents", "show", "--log-dir", c.log_dir, c.id});
	check_segv_chain(text.out);

	// No server at that port: the incident as it was, and why.
	int closed = free_port();
	FhRun down = run_fh_env({"DEBUGINFOD_URLS=http://127.0.0.1:" + std::to_string(closed),
				 "DEBUGINFOD_CACHE_PATH=" + s.dir + "/cache2"},
				{"incidents", "show", "--log-dir", c.log_dir, c.id});
	INFO(down.out << down.err);
	CHECK(down.status == 1);
	CHECK(count_of(down.err, "\n") == 1);
	CHECK(down.err.rfind("fh-bpf: debuginfod (http://127.0.0.1:", 0) == 0);
	CHECK(contains(down.out, "fh-bpf: no symbols for " + s.binary));
}
