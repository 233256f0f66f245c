// Python parity: fh-bpf's traceback of a Python process must equal, byte for
// byte, what the target's own faulthandler writes, for every CPython on
// this machine (pyenv 3.6-3.13 and Debian's 3.11), for a fault, an abort,
// a SIGSEGV sent by another process, and 120 threads (faulthandler's
// 100-thread limit).  The target (tests/targets/py_target.py) parks its
// threads at known lines: sleeping, waiting, spinning on a one-line loop,
// in a generator, in an asyncio task, under a C call (sorted's key), 150
// frames deep, in functions with non-ASCII and 500+-character names and in
// code with a non-ASCII filename.
#include <catch2/catch.hpp>

#include "harness.h"
#include "python_interpreters.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sstream>

using namespace fhtest;

namespace {

void check_parity(const PythonBuild &py, const std::string &mode, int threads, int sig,
		  bool external)
{
	INFO(py.path << " " << mode << " " << threads << " threads");
	PyTarget target(py, mode, threads);
	Watcher watcher(target.pid());
	target.go();
	if (external)
		REQUIRE(kill(target.pid(), sig) == 0);
	int st = target.wait();
	REQUIRE(WIFSIGNALED(st));
	CHECK(WTERMSIG(st) == sig);
	REQUIRE(watcher.wait() == 3);
	check_same_as_faulthandler(target, watcher);
	if (external)
		CHECK(watcher.diagnostics().find("sent by pid " + std::to_string(getpid())) !=
		      std::string::npos);
}

} // namespace

TEST_CASE("Python: SIGSEGV (ctypes.string_at(0)) matches faulthandler byte for byte",
	  "[e2e][python][segv]")
{
	for (const auto &py : python_interpreters())
		check_parity(py, "segv", 10, SIGSEGV, false);
}

TEST_CASE("Python: os.abort() matches faulthandler byte for byte", "[e2e][python][abort]")
{
	for (const auto &py : python_interpreters())
		check_parity(py, "abort", 10, SIGABRT, false);
}

TEST_CASE("Python: a SIGSEGV sent by another process matches faulthandler byte for byte",
	  "[e2e][python][external]")
{
	for (const auto &py : python_interpreters())
		check_parity(py, "wait", 10, SIGSEGV, true);
}

TEST_CASE("Python: 120 threads, faulthandler's 100-thread limit", "[e2e][python][many]")
{
	for (const auto &py : python_interpreters())
		check_parity(py, "segv", 120, SIGSEGV, false);
}

TEST_CASE("Python: --dump matches faulthandler.dump_traceback taken at the same point",
	  "[e2e][python][dump]")
{
	for (const auto &py : python_interpreters()) {
		for (int threads : {10, 120}) {
			INFO(py.path << ", " << threads << " threads");
			PyTarget target(py, "dump", threads);
			target.go();
			// The target has dumped its own traceback and waits, on the
			// same line, for the next one.
			REQUIRE(target.next_line() == "dumped");
			std::string out = temp_path("dump.txt");
			int status = -1;
			std::string stdout_text = run_capture(
				{fh_bpf_path(), "-p", std::to_string(target.pid()), "--dump", "-o", out},
				&status);
			CHECK(WIFEXITED(status));
			CHECK(WEXITSTATUS(status) == 0);
			std::string ours = read_file(out);
			unlink(out.c_str());
			std::string theirs = target.faulthandler_output();
			INFO("faulthandler:\n" << theirs << "\nfh-bpf:\n" << ours);
			REQUIRE_FALSE(theirs.empty());
			CHECK(ours == theirs);
			target.go(); // let it exit
			CHECK(WIFEXITED(target.wait()));
		}
	}
}

TEST_CASE("Python: a crash inside the garbage collector (3.10+: Garbage-collecting)",
	  "[e2e][python][gc]")
{
	for (const auto &py : python_interpreters())
		check_parity(py, "gc", 10, SIGSEGV, false);
}

TEST_CASE("Python: --signal SIGUSR1 matches faulthandler.register, and the target lives on",
	  "[e2e][python][usr1]")
{
	for (const auto &py : python_interpreters()) {
		INFO(py.path);
		PyTarget target(py, "usr1", 10);
		Watcher watcher(target.pid(), {"-v"});
		target.go();
		REQUIRE(target.next_line() == "registered");
		for (int round = 1; round <= 2; round++) {
			REQUIRE(kill(target.pid(), SIGUSR1) == 0);
			// fh-bpf has printed its dump...
			REQUIRE(watcher.wait_for_diagnostic("fh-bpf: capture: "));
			// ...and the target's handler has written its own: the line
			// after the signal is acknowledged once the handler returned.
			target.send("next\n");
			REQUIRE(target.next_line() == "ack");
			std::string theirs = target.faulthandler_output();
			std::string ours = without_notes(watcher.output());
			INFO("round " << round << "\nfaulthandler:\n" << theirs << "\nfh-bpf:\n" << ours);
			CHECK(ours == theirs);
			if (round == 1)
				watcher.forget_diagnostics();
		}
		target.send("quit\n");
		int st = target.wait();
		CHECK(WIFEXITED(st));
		CHECK(watcher.wait() == 0);
	}
}
