// What fh-bpf says when nothing is wrong: no false notes, one short line
// where one is due.  Oracles: the target's own fate (a user signal's
// default action kills it), its faulthandler's output, and the process's
// state as the test arranged it.
#include <catch2/catch.hpp>

#include "harness.h"
#include "python_interpreters.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>

using namespace fhtest;

namespace {

size_t lines_in(const std::string &text)
{
	return static_cast<size_t>(std::count(text.begin(), text.end(), '\n'));
}

} // namespace

TEST_CASE("a target that would die of SIGUSR1 is not armed for it unless --signal asks",
	  "[e2e][noise][usr1]")
{
	SECTION("default: nothing said, the signal's default action runs, nothing printed")
	{
		Target target("wait", 2);
		Watcher watcher(target.pid());
		REQUIRE(kill(target.pid(), SIGUSR1) == 0);
		int st = target.wait();
		REQUIRE(WIFSIGNALED(st));
		CHECK(WTERMSIG(st) == SIGUSR1);
		CHECK(watcher.wait() == 0);
		INFO(watcher.diagnostics());
		CHECK(watcher.output().empty());
		CHECK(watcher.diagnostics().find("SIGUSR1") == std::string::npos);
	}
	SECTION("-v: one line says why, and how to ask")
	{
		Target target("wait", 2);
		Watcher watcher(target.pid(), {"-v"});
		std::string d = watcher.diagnostics();
		INFO(d);
		CHECK(d.find("pid " + std::to_string(target.pid()) +
			     " does not handle SIGUSR1, which would kill it: no dump on it (--signal "
			     "SIGUSR1 asks for one)\n") != std::string::npos);
		target.go();
		CHECK(WIFEXITED(target.wait()));
		CHECK(watcher.wait() == 0);
	}
}

TEST_CASE("Python, 300 threads: the output is faulthandler's text alone, no false note",
	  "[e2e][noise][python]")
{
	// Native thread records stop at --max-threads (256); the Python walk
	// reads every thread state itself: nothing of its traceback is lost.
	const auto &py = python_interpreters().back();
	INFO(py.path);
	PyTarget target(py, "segv", 300);
	Watcher watcher(target.pid());
	target.go();
	REQUIRE(WIFSIGNALED(target.wait()));
	REQUIRE(watcher.wait() == 3);
	std::string theirs = target.faulthandler_output();
	INFO(watcher.diagnostics());
	REQUIRE_FALSE(theirs.empty());
	CHECK(watcher.output() == theirs);
	CHECK(watcher.diagnostics().find("beyond --max-threads") == std::string::npos);
}

TEST_CASE("a target that exits while fh-bpf attaches: one line", "[e2e][noise][attach]")
{
	// The target exits as soon as fh-bpf holds the capture's programs
	// (more than its start-up probe's): while they attach, before the
	// watch is armed.
	Pipe in;
	SpawnOptions o;
	o.fds = {{0, in.read}};
	pid_t target =
		spawn({"/usr/bin/python3", "-c",
		       "import os, sys, time\n"
		       "fh = sys.stdin.readline().strip()\n"
		       "def holds_bpf():\n"
		       "    try:\n"
		       "        fds = os.listdir('/proc/%s/fd' % fh)\n"
		       "    except OSError:\n"
		       "        return True\n"
		       "    n = 0\n"
		       "    for fd in fds:\n"
		       "        try:\n"
		       "            n += 'bpf-prog' in os.readlink('/proc/%s/fd/%s' % (fh, fd))\n"
		       "        except OSError:\n"
		       "            pass\n"
		       "    return n >= 4\n"
		       "while not holds_bpf():\n"
		       "    time.sleep(0.0005)\n"},
		      o);
	in.close_read();
	std::string out = temp_path("out"), err = temp_path("err");
	SpawnOptions fo;
	fo.stdout_path = out;
	fo.stderr_path = err;
	pid_t fh = spawn({fh_bpf_path(), "-p", std::to_string(target)}, fo);
	std::string line = std::to_string(fh) + "\n";
	REQUIRE(write(in.write, line.data(), line.size()) == static_cast<ssize_t>(line.size()));
	in.close_write();
	auto tst = wait_exit(target, kGuardMs);
	REQUIRE(tst);
	CHECK(WIFEXITED(*tst));
	auto st = wait_exit(fh, kGuardMs);
	REQUIRE(st);
	std::string said = read_file(err);
	INFO(said);
	// Whichever comes first, its exit or the watch armed: one line.
	std::string pid = std::to_string(target);
	if (WEXITSTATUS(*st) == 1)
		CHECK(said == "fh-bpf: process " + pid + " exited while fh-bpf was attaching\n");
	else
		CHECK(said == "fh-bpf: target exited: pid " + pid +
				      ", 0 events printed; none dropped\n");
	CHECK(lines_in(said) == 1);
}
