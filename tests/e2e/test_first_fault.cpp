// Targets that handle their fatal signals themselves: one incident a death,
// taken at the first fault, before the target's own handler runs.
//
// Oracles: the target's own faulthandler output (Python, byte for byte),
// and the marker lines of tests/targets/crash.c where each thread was
// parked and where the main thread faulted.  The crash reporter of
// `crash reporter` cancels and joins every other thread before it raises
// the signal again: those threads exist only at the fault.
#include <catch2/catch.hpp>

#include "harness.h"
#include "python_interpreters.h"

#include <nlohmann/json.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sstream>

using namespace fhtest;

using FrameList = std::vector<std::pair<std::string, int>>;

namespace {

size_t count_of(const std::string &text, const std::string &what)
{
	size_t n = 0;
	for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1))
		n++;
	return n;
}

// The main thread's chain to its fault, at crash.c's marker lines.
void check_reporter_chain(const ParsedThread &cur, const std::string &main_marker)
{
	FrameList want = {{"poke", crash_marker("poke")},
			  {"crash_leaf", crash_marker("leaf")},
			  {"crash_mid", crash_marker("mid")},
			  {"main", crash_marker(main_marker)}};
	CHECK(frames_in(cur.frames, "tests/targets/crash.c") == want);
}

} // namespace

TEST_CASE("a crash reporter that cancels its threads and re-raises: every thread at the fault",
	  "[e2e][first_fault][reporter]")
{
	SECTION("text: 6 threads at their parked lines, the fault's address named")
	{
		CrashRun run = run_crash("reporter", 6);
		CHECK(WTERMSIG(run.target_status) == SIGSEGV);
		const ParsedThread &cur =
			check_common(run, SIGSEGV, "Fatal error: Segmentation fault", "main");
		INFO(run.text << "\n" << run.diagnostics);
		CHECK(run.tb.threads.size() == 6);
		check_reporter_chain(cur, "main_reporter");
		CHECK(run.diagnostics.find("SIGSEGV (SEGV_MAPERR) at address 0x30, handled by the "
					   "process, which then died of SIGSEGV") !=
		      std::string::npos);
		CHECK(count_of(run.text, "Fatal error:") == 1);
	}
	SECTION("JSON: SEGV_MAPERR and the address, the handler's end, one record")
	{
		Target target("reporter", 6);
		Watcher watcher(target.pid(), {"--format", "json"});
		target.go();
		int st = target.wait();
		CHECK(WIFSIGNALED(st));
		CHECK(watcher.wait() == 3);
		auto lines = json_lines(watcher.output());
		INFO(watcher.output() << "\n" << watcher.diagnostics());
		REQUIRE(lines.size() == 1);
		const auto &j = lines[0];
		CHECK(j["signal"]["code"] == "SEGV_MAPERR");
		CHECK(j["signal"]["address"] == "0x30");
		CHECK(j["tid"] == target.pid());
		CHECK(j["handler"]["end"] == "died");
		CHECK(j["handler"]["signal"] == "SIGSEGV");
		CHECK(j["handler"]["code"] == "SI_TKILL");
		CHECK(j["threads"].size() == 6);
	}
}

TEST_CASE("a SIGSEGV sent to a crash reporter: taken at its delivery, sender named",
	  "[e2e][first_fault][reporter]")
{
	Target target("reporterwait", 6);
	Watcher watcher(target.pid());
	REQUIRE(kill(target.pid(), SIGSEGV) == 0);
	CrashRun run = finish_crash(target, watcher);
	check_common(run, SIGSEGV, "Fatal error: Segmentation fault", "main");
	INFO(run.text << "\n" << run.diagnostics);
	CHECK(run.tb.threads.size() == 6);
	CHECK(run.diagnostics.find("SIGSEGV (SI_USER), sent by pid " + std::to_string(getpid())) !=
	      std::string::npos);
	CHECK(run.diagnostics.find("handled by the process, which then died of SIGSEGV") !=
	      std::string::npos);
	CHECK(count_of(run.text, "Fatal error:") == 1);
}

TEST_CASE("a handler that ends the process with _exit(): the fault is the incident",
	  "[e2e][first_fault][reporter]")
{
	Target target("reporterexit", 4);
	Watcher watcher(target.pid());
	target.go();
	int st = target.wait();
	REQUIRE(WIFEXITED(st));
	CHECK(WEXITSTATUS(st) == 7);
	CHECK(watcher.wait() == 3);
	INFO(watcher.output() << "\n" << watcher.diagnostics());
	ParsedTraceback tb = parse_traceback(watcher.output());
	CHECK(tb.header == "Fatal error: Segmentation fault");
	CHECK(tb.threads.size() == 4);
	CHECK(watcher.diagnostics().find("handled by the process, which then exited with status 7") !=
	      std::string::npos);
}

namespace {

struct Recovered {
	pid_t pid = 0;
	std::string said; // fh-bpf's stderr
};

// A target that recovers from its faults and exits 0: no incident, fh-bpf
// exits 0 with nothing in its output.
Recovered recovered_run(const std::string &mode, std::vector<std::string> extra = {})
{
	Target target(mode, 2);
	Watcher watcher(target.pid(), extra);
	target.go();
	int st = target.wait();
	REQUIRE(WIFEXITED(st));
	CHECK(WEXITSTATUS(st) == 0);
	CHECK(watcher.wait() == 0);
	INFO(watcher.diagnostics());
	CHECK(watcher.output().empty());
	return {target.pid(), watcher.diagnostics()};
}

} // namespace

TEST_CASE("a fault the target recovers from (siglongjmp): no incident, said with -v",
	  "[e2e][first_fault][recovered][handled]")
{
	Recovered r = recovered_run("handled", {"-v"});
	INFO(r.said);
	CHECK(r.said.find("handled SIGSEGV (SEGV_MAPERR) in thread " + std::to_string(r.pid) +
			  " and went on") != std::string::npos);
	CHECK(r.said.find("handled 1 fault itself and went on") != std::string::npos);
}

TEST_CASE("a target that keeps faulting and recovering: a bounded number of captures, the rest "
	  "counted",
	  "[e2e][first_fault][recovered]")
{
	// Ten faults within milliseconds: four captures (the budget), each
	// dropped as the next fault shows the process went on; six counted.
	std::string said = recovered_run("handledloop").said;
	INFO(said);
	CHECK(said.find("handled 4 faults itself and went on: no incident (--handled reports "
			"them); 6 more handled signals not captured") != std::string::npos);
}

TEST_CASE("--handled and a crash reporter: one incident for one death, at the fault",
	  "[e2e][first_fault][reporter]")
{
	CrashRun run = run_crash("reporter", 6, {"--handled"});
	INFO(run.text << "\n" << run.diagnostics);
	check_common(run, SIGSEGV, "Fatal error: Segmentation fault", "main");
	CHECK(count_of(run.text, "Fatal error:") == 1);
	CHECK(run.tb.threads.size() == 6);
}

TEST_CASE("Python with faulthandler enabled, a worker thread's fault: its own output, byte "
	  "for byte",
	  "[e2e][first_fault][python]")
{
	for (const auto &py : python_interpreters()) {
		INFO(py.path);
		PyTarget target(py, "segvthread", 10);
		Watcher watcher(target.pid());
		target.go();
		int st = target.wait();
		REQUIRE(WIFSIGNALED(st));
		CHECK(WTERMSIG(st) == SIGSEGV);
		REQUIRE(watcher.wait() == 3);
		check_same_as_faulthandler(target, watcher);
	}
}

TEST_CASE("Python with faulthandler enabled, JSON: the fault's si_code and address, not its "
	  "handler's raise()",
	  "[e2e][first_fault][python]")
{
	{
		const auto &py = python_interpreters().back();
		PyTarget target(py, "segvthread", 10);
		Watcher watcher(target.pid(), {"--format", "json"});
		target.go();
		target.wait();
		REQUIRE(watcher.wait() == 3);
		auto lines = json_lines(watcher.output());
		INFO(watcher.output());
		REQUIRE(lines.size() == 1);
		CHECK(lines[0]["signal"]["code"] == "SEGV_MAPERR");
		CHECK(lines[0]["signal"]["address"] == "0x0");
		CHECK(lines[0]["tid"] != target.pid());
		CHECK(lines[0]["handler"]["end"] == "died");
	}
}
