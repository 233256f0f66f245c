// --system-wide flood control by program: a crash-looping Python script
// does not hold back another script run by the same python3.  The scripts
// run one after another (each reaped before the next starts), so the
// agent meets their crashes in that order; it is stopped with SIGTERM,
// which drains what it captured.  Oracles: the processes the test ran (their
// pids, their command lines), the records' own exe.
#include <catch2/catch.hpp>

#include "harness.h"

#include <nlohmann/json.hpp>

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>

using namespace fhtest;
using json = nlohmann::json;

TEST_CASE("system-wide: a crash-looping script does not hold back another script of the same "
	  "python3; the held-back ones are summarised by program and command line",
	  "[e2e][system][flood]")
{
	// python3 under a name of its own (a symbolic link: the same
	// executable), so that no other Python process of the host is in
	// scope.
	std::string dir = temp_path("flood");
	REQUIRE(mkdir(dir.c_str(), 0755) == 0);
	std::string py = dir + "/python3-fhflood"; // a comm of 15 bytes
	REQUIRE(symlink("/usr/bin/python3", py.c_str()) == 0);
	char real[PATH_MAX];
	REQUIRE(realpath(py.c_str(), real));
	std::string a = dir + "/a.py", b = dir + "/b.py";
	std::ofstream(a) << "import os\nos.abort()\n";
	std::ofstream(b) << "import os\nos.abort()\n";

	Watcher agent(0, {"-a", "--comm", "python3-fhflood", "--rate-limit", "10/1h", "--format",
			  "json"});
	auto run = [&](const std::string &script) {
		SpawnOptions o;
		o.stdout_path = "/dev/null";
		o.stderr_path = "/dev/null";
		pid_t pid = spawn({py, script}, o);
		auto st = wait_exit(pid, kGuardMs);
		REQUIRE(st);
		REQUIRE(WIFSIGNALED(*st));
		REQUIRE(WTERMSIG(*st) == SIGABRT);
		return pid;
	};
	std::vector<pid_t> as;
	for (int i = 0; i < 15; i++)
		as.push_back(run(a));
	pid_t bpid = run(b);
	REQUIRE(kill(agent.pid(), SIGTERM) == 0);
	int status = agent.wait();
	std::string diag = agent.diagnostics();
	INFO(diag);
	REQUIRE(status == 0);

	std::set<pid_t> written_a;
	std::vector<json> summaries;
	bool written_b = false;
	std::istringstream out(agent.output());
	for (std::string line; std::getline(out, line);) {
		json r = json::parse(line);
		if (r["trigger"] == "suppressed") {
			summaries.push_back(r);
			continue;
		}
		INFO(line.substr(0, 400));
		CHECK(r["exe"] == real);
		pid_t pid = r["pid"];
		if (pid == bpid) {
			written_b = true;
			CHECK(r["cmdline"] == json::array({py, b}));
		} else {
			// Of a script the test ran, nothing else (another
			// engineer's python3-fhflood would show here).
			REQUIRE(std::find(as.begin(), as.end(), pid) != as.end());
			written_a.insert(pid);
		}
	}
	// B's crash is written though A's program is past its rate.
	CHECK(written_b);
	CHECK(written_a == std::set<pid_t>(as.begin(), as.begin() + 10));
	std::string program = std::string(real) + " " + a;
	REQUIRE(summaries.size() == 1);
	const json &s = summaries[0];
	CHECK(s["program"] == program);
	CHECK(s["comm"] == "python3-fhflood");
	CHECK(s["cmdlines"] == json::array({json::array({py, a})}));
	CHECK(s["suppressed"] == 5);
	CHECK(s["what"] == json({{"SIGABRT", 5}}));
	CHECK(s["pids"] == json(std::vector<pid_t>(as.begin() + 10, as.end())));
	std::string pids;
	for (size_t i = 10; i < as.size(); i++)
		pids += (pids.empty() ? "" : ", ") + std::to_string(as[i]);
	std::string said = "held back 5 incidents of " + program + " (SIGABRT 5) over ";
	CHECK(contains(diag, said));
	CHECK(contains(diag, ": pids " + pids + "; command line: " + py + " " + a + "\n"));
	CHECK(s["text"].get<std::string>().rfind(said, 0) == 0);
	CHECK(contains(diag, "11 incidents; 5 held back by the rate limits"));
	remove_dir(dir);
}
