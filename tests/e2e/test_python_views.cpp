// Whose view faulthandler takes, for every CPython on this machine: a
// process in a pid namespace of its own (`unshare --pid --fork
// --mount-proc`: its thread states hold namespace TIDs), and a main thread
// running code in a subinterpreter (3.12+: faulthandler dumps that
// interpreter's threads).  The oracle is always the target's own
// faulthandler: a crash is compared with the dump_traceback() its thread
// wrote just before faulting on the same line, faulthandler disabled (the
// process dies of the signal's default action), under the fatal header.
#include <catch2/catch.hpp>

#include "harness.h"
#include "python_interpreters.h"

#include <dirent.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <regex>
#include <set>

using namespace fhtest;

namespace
{

const std::vector<std::string> kUnshare = {"/usr/bin/unshare", "--pid", "--fork", "--mount-proc"};

// A fatal error's text is the dump written at the same point under the
// fatal header, then (3.10+) the extension modules: the target's own,
// fhfake_ext._json among them (the line itself is not in the dump).
void check_fatal_text(const PythonBuild &py, const std::string &dump, const std::string &ours)
{
	std::string want = "Fatal Python error: Segmentation fault\n\n" + dump;
	INFO("faulthandler's dump:\n" << dump << "\nfh-bpf:\n" << ours);
	REQUIRE_FALSE(dump.empty());
	REQUIRE(ours.substr(0, want.size()) == want);
	std::string rest = ours.substr(want.size());
	if (py.minor < 10) {
		CHECK(rest.empty());
		return;
	}
	static const std::regex line(R"(^\nExtension modules: (.*) \(total: \d+\)\n$)");
	std::smatch m;
	REQUIRE(std::regex_match(rest, m, line));
	CHECK(contains(m[1].str(), "fhfake_ext._json"));
}

// The host TIDs of a live process.
std::set<long> tasks_of(pid_t pid)
{
	std::set<long> out;
	std::string dir = "/proc/" + std::to_string(pid) + "/task";
	for (const auto &name : files_in(dir))
		out.insert(std::stol(name));
	return out;
}

// Every thread of a record carries its TID on the host (one of `host`) and
// in its namespace (another number), the current one the main thread's.
void check_thread_ids(const std::string &json, pid_t pid, const std::set<long> &host, bool current)
{
	std::string tids = "[";
	for (long t : host)
		tids += (tids.size() > 1 ? ", " : "") + std::to_string(t);
	tids += "]";
	CHECK(python_json(json, "all(t['tid'] in " + tids + " for t in d['threads'])") == "True");
	CHECK(python_json(json,
			  "all(t['ns_tid'] and t['ns_tid'] != t['tid'] and t['ns_tid'] < 1000 "
			  "for t in d['threads'])") == "True");
	CHECK(
	    python_json(json, "len(set(t['ns_tid'] for t in d['threads'])) == len(d['threads'])") ==
	    "True");
	if (current)
		CHECK(python_json(json,
				  "[(t['tid'], t['ns_tid'] == d['ns_pid']) for t in d['threads'] "
				  "if t['current']]") == "[(" + std::to_string(pid) + ", True)]");
}

// One SIGUSR1 to a target in mode "usr1" (faulthandler.register()): fh-bpf's
// dump equals the target's own, byte for byte; then the target quits.
// fh-bpf's text.
std::string register_dump_matches(PyTarget &target)
{
	Watcher watcher(target.pid(), {"-v"});
	target.go();
	REQUIRE(target.next_line() == "registered");
	REQUIRE(kill(target.pid(), SIGUSR1) == 0);
	REQUIRE(watcher.wait_for_diagnostic("fh-bpf: capture: "));
	target.send("next\n");
	REQUIRE(target.next_line() == "ack");
	std::string theirs = target.faulthandler_output();
	std::string ours = without_notes(watcher.output());
	INFO("faulthandler:\n" << theirs << "\nfh-bpf:\n" << ours);
	REQUIRE_FALSE(theirs.empty());
	CHECK(ours == theirs);
	target.send("quit\n");
	CHECK(WIFEXITED(target.wait()));
	CHECK(watcher.wait() == 0);
	return ours;
}

} // namespace

TEST_CASE("Python in a pid namespace: a crash prints its faulthandler's text, the record its "
	  "threads' host and namespace TIDs",
	  "[e2e][python][pidns]")
{
	for (const auto &py : python_interpreters()) {
		INFO(py.path);
		PyTarget target(py, "dumpsegv", 10, {"py_target.py", kUnshare});
		std::set<long> host = tasks_of(target.pid());
		Watcher text(target.pid());
		Watcher json(target.pid(), {"--format", "json"});
		target.go();
		int st = target.wait(); // unshare, for the shell: the interpreter's death
		CHECK(WIFEXITED(st));
		CHECK(WEXITSTATUS(st) == 128 + SIGSEGV);
		REQUIRE(text.wait() == 3);
		REQUIRE(json.wait() == 3);
		std::string ours = without_notes(text.output());
		check_fatal_text(py, target.faulthandler_output(), ours);
		std::string record = json.output();
		INFO(record);
		CHECK(python_json(record, "d['pid_namespace_level']") == "1");
		CHECK(python_json(record, "d['text'] == " + python_json_literal(ours)) == "True");
		check_thread_ids(record, target.pid(), host, true);
	}
}

TEST_CASE("Python in a pid namespace: --dump and --signal print what its faulthandler prints",
	  "[e2e][python][pidns]")
{
	for (const auto &py : python_interpreters()) {
		INFO(py.path);
		{
			PyTarget target(py, "dump", 10, {"py_target.py", kUnshare});
			std::set<long> host = tasks_of(target.pid());
			target.go();
			REQUIRE(target.next_line() == "dumped");
			std::string pid = std::to_string(target.pid());
			std::string out = temp_path("dump.txt"), rec = temp_path("dump.json");
			int status = -1;
			run_capture({fh_bpf_path(), "-p", pid, "--dump", "-o", out}, &status);
			CHECK(status == 0);
			run_capture(
			    {fh_bpf_path(), "-p", pid, "--dump", "--format", "json", "-o", rec},
			    &status);
			CHECK(status == 0);
			std::string ours = read_file(out), record = read_file(rec);
			unlink(out.c_str());
			unlink(rec.c_str());
			std::string theirs = target.faulthandler_output();
			INFO("faulthandler:\n" << theirs << "\nfh-bpf:\n" << ours);
			REQUIRE_FALSE(theirs.empty());
			CHECK(ours == theirs);
			// A live walk's threads: namespace TIDs from the thread states
			// (3.11+), host ones through /proc.
			if (py.minor >= 11)
				check_thread_ids(record, target.pid(), host, true);
			target.go();
			CHECK(WIFEXITED(target.wait()));
		}
		PyTarget target(py, "usr1", 10, {"py_target.py", kUnshare});
		register_dump_matches(target);
	}
}

namespace
{

// The builds with subinterpreters a script can run (_xxsubinterpreters
// from 3.8).
std::vector<PythonBuild> with_subinterpreters()
{
	std::vector<PythonBuild> out;
	for (const auto &py : python_interpreters())
		if (py.minor >= 8)
			out.push_back(py);
	return out;
}

const PyTargetOptions kSubinterp = {"py_subinterp.py", {}};

} // namespace

TEST_CASE("a subinterpreter: a crash in its code prints what faulthandler prints (3.12+: its "
	  "threads and frames)",
	  "[e2e][python][subinterpreter]")
{
	for (const auto &py : with_subinterpreters()) {
		INFO(py.path);
		PyTarget target(py, "segv", 0, kSubinterp);
		Watcher watcher(target.pid());
		target.go();
		int st = target.wait();
		REQUIRE(WIFSIGNALED(st));
		CHECK(WTERMSIG(st) == SIGSEGV);
		REQUIRE(watcher.wait() == 3);
		std::string dump = target.faulthandler_output();
		std::string ours = without_notes(watcher.output());
		if (py.minor >= 12) {
			check_fatal_text(py, dump, ours);
			// The plugin's frames, not the main interpreter's.
			CHECK(contains(ours, "in plugin_step\n"));
			CHECK_FALSE(contains(ours, "in run_plugin\n"));
			CHECK_FALSE(contains(ours, "in main_worker\n"));
		} else {
			// Before 3.12 the thread's TSS keeps the main interpreter's
			// thread state: faulthandler dumps the main interpreter
			// (while dump_traceback() takes the subinterpreter's).
			CHECK(contains(ours, "Current thread 0x"));
			CHECK(contains(ours, "in run_plugin\n"));
			CHECK(contains(ours, "in main_worker\n"));
		}
	}
}

TEST_CASE("a subinterpreter: --signal and (3.12+) --dump print what faulthandler prints",
	  "[e2e][python][subinterpreter]")
{
	for (const auto &py : with_subinterpreters()) {
		INFO(py.path);
		if (py.minor >= 12) {
			PyTarget target(py, "dump", 0, kSubinterp);
			target.go();
			REQUIRE(target.next_line() == "dumped");
			std::string out = temp_path("dump.txt");
			int status = -1;
			run_capture({fh_bpf_path(), "-p", std::to_string(target.pid()), "--dump",
				     "-o", out},
				    &status);
			CHECK(status == 0);
			std::string ours = read_file(out), theirs = target.faulthandler_output();
			unlink(out.c_str());
			INFO("faulthandler:\n" << theirs << "\nfh-bpf:\n" << ours);
			REQUIRE_FALSE(theirs.empty());
			CHECK(ours == theirs);
			CHECK(contains(ours, "in plugin_step\n"));
			target.go();
			CHECK(WIFEXITED(target.wait()));
		}
		PyTarget target(py, "usr1", 0, kSubinterp);
		CHECK(contains(register_dump_matches(target),
			       py.minor >= 12 ? "in plugin_step\n" : "in run_plugin\n"));
	}
}
