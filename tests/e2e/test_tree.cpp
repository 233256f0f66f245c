// Whole process trees: with -p and in launch mode, fh-bpf follows every
// descendant (fork without exec, fork and exec, multiprocessing, `sh -c`),
// and a descendant's fatal signal is an incident of its own, preceded in the
// output by its headline (pid, comm, parent, thread).  --no-children
// watches the one process.
//
// Oracles from outside fh-bpf: each worker's own faulthandler output (byte
// for byte), the pids the processes report of themselves and their parents,
// the statuses waitpid() and the shell report, marker lines in the native
// targets' sources.  Every step is a line on a pipe or a fifo; timeouts
// only guard against a hang.
#include <catch2/catch.hpp>

#include "harness.h"
#include "python_interpreters.h"
#include "tree.h"

#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <optional>
#include <regex>
#include <set>
#include <sstream>

using namespace fhtest;

namespace {

std::string instant_crash_path() { return build_dir() + "/targets/instant_crash"; }

int instant_marker()
{
	static const int line =
		markers(source_dir() + "/tests/targets/instant_crash.c").at("instant");
	return line;
}

// --- the prefork server (tests/targets/py_prefork.py) ------------------------

enum class Attach {
	after_ready, // -p MASTER once its workers are parked
	before_fork, // -p MASTER, then the master forks its workers
	launch,	     // fh-bpf -- PYTHON py_prefork.py ...
};

struct PreforkRun {
	pid_t master = 0;
	std::map<int, pid_t> workers;
	std::string worker2_comm; // read from /proc while it lived
	std::string died;	  // the master's line after "go"
	int master_status = 0;	  // -p only: its wait status
	int fh_status = -1;
	std::string output, diagnostics;
	std::map<int, std::string> faults; // each worker's own faulthandler output
};

// Master and 3 workers of 2 threads; worker 2 crashes in ctypes, the master
// reaps it, the others exit 0, then the master does.
PreforkRun run_prefork(const PythonBuild &py, Attach attach, std::vector<std::string> extra = {})
{
	INFO(py.path);
	PreforkRun run;
	Channel in("prefork-in"), out("prefork-out");
	std::string faults = temp_path("prefork-fault");
	Removed removed;
	for (int i = 1; i <= 3; i++)
		removed.paths.push_back(faults + "." + std::to_string(i));
	std::vector<std::string> argv = {py.path, target_script("py_prefork.py"), faults, in.path(),
					 out.path(), attach == Attach::before_fork ? "late" : "now"};
	TreeGuard guard;
	std::optional<Watcher> watcher;
	auto read_workers = [&] {
		for (int i = 1; i <= 3; i++) {
			std::istringstream line(out.next_line());
			std::string word;
			int index = 0;
			pid_t pid = 0;
			REQUIRE((line >> word >> index >> pid));
			REQUIRE(word == "worker");
			REQUIRE(index == i);
			run.workers[index] = pid;
		}
		REQUIRE(out.next_line() == "ready");
	};

	if (attach == Attach::launch) {
		extra.push_back("--");
		extra.insert(extra.end(), argv.begin(), argv.end());
		watcher.emplace(0, extra);
	} else {
		guard.watch(spawn(argv), true);
	}
	std::string first = out.next_line();
	REQUIRE(first.rfind("master ", 0) == 0);
	run.master = std::stoi(first.substr(7));
	if (attach == Attach::launch)
		guard.watch(run.master, false);
	if (attach == Attach::before_fork) {
		watcher.emplace(run.master, extra);
		in.send("fork");
		read_workers();
	} else {
		read_workers();
		if (attach == Attach::after_ready)
			watcher.emplace(run.master, extra);
	}
	run.worker2_comm = comm_of(run.workers.at(2));

	in.send("go");
	run.died = out.next_line();
	in.send("quit");
	CHECK(out.next_line() == "bye");
	if (attach != Attach::launch) {
		auto st = wait_exit(run.master, kGuardMs);
		REQUIRE(st);
		run.master_status = *st;
	}
	run.fh_status = watcher->wait();
	guard.release();
	run.output = watcher->output();
	run.diagnostics = watcher->diagnostics();
	for (int i = 1; i <= 3; i++)
		run.faults[i] = read_file(faults + "." + std::to_string(i));
	return run;
}

// The tree ran as it should have, whatever fh-bpf did: worker 2 died of
// SIGSEGV, the others wrote nothing, the master exited 0.
void check_tree_ran(const PreforkRun &run, Attach attach)
{
	INFO("fh-bpf stderr:\n" << run.diagnostics);
	CHECK(run.died ==
	      "died 2 " + std::to_string(run.workers.at(2)) + " " + std::to_string(SIGSEGV));
	CHECK(run.faults.at(1).empty());
	CHECK(run.faults.at(3).empty());
	REQUIRE_FALSE(run.faults.at(2).empty());
	if (attach != Attach::launch) {
		CHECK(WIFEXITED(run.master_status));
		CHECK(WEXITSTATUS(run.master_status) == 0);
	}
}

// One incident, worker 2's: its headline names it and the master, and its
// text is worker 2's own faulthandler output, byte for byte.
void check_prefork(const PreforkRun &run, Attach attach)
{
	check_tree_ran(run, attach);
	pid_t w2 = run.workers.at(2);
	auto incidents = incidents_in(run.output);
	INFO("fh-bpf output:\n" << run.output << "\nfh-bpf stderr:\n" << run.diagnostics);
	REQUIRE(incidents.size() == 1);
	const TreeIncident &inc = incidents[0];
	REQUIRE(inc.headline);
	CHECK(inc.pid == w2);
	CHECK(inc.ppid == run.master);
	CHECK(inc.tid == w2); // its main thread faulted
	CHECK(inc.comm == run.worker2_comm);
	CHECK(inc.thread_name == run.worker2_comm);
	CHECK(inc.what.rfind("SIGSEGV (SEGV_MAPERR)", 0) == 0);
	std::string ours = without_notes(inc.text);
	INFO("faulthandler:\n" << run.faults.at(2) << "\nfh-bpf:\n" << ours);
	CHECK(ours == run.faults.at(2));
	CHECK(parse_traceback(ours).threads.size() == 2);
	// Launch mode: the command's (the master's) status; -p: 3, a fatal
	// incident was printed.
	CHECK(run.fh_status == (attach == Attach::launch ? 0 : 3));
	CHECK(contains(run.diagnostics, events_printed(1)));
}

void prefork_on_every_build(Attach attach)
{
	for (const auto &py : tree_pythons()) {
		INFO(py.path);
		check_prefork(run_prefork(py, attach), attach);
	}
}

} // namespace

TEST_CASE("prefork server, -p MASTER after its workers are parked: worker 2's crash matches "
	  "its own faulthandler",
	  "[e2e][tree][prefork]")
{
	prefork_on_every_build(Attach::after_ready);
}

TEST_CASE("prefork server, -p MASTER before it forks: workers forked after the attach are "
	  "followed",
	  "[e2e][tree][prefork]")
{
	prefork_on_every_build(Attach::before_fork);
}

TEST_CASE("prefork server in launch mode: worker 2's crash matches its own faulthandler, "
	  "fh-bpf exits with the master's status",
	  "[e2e][tree][prefork][launch]")
{
	prefork_on_every_build(Attach::launch);
}

TEST_CASE("prefork server, JSON: the worker's record names it, its parent and its text",
	  "[e2e][tree][prefork][json]")
{
	const PythonBuild py = tree_pythons().front();
	PreforkRun run = run_prefork(py, Attach::after_ready, {"--format", "json"});
	check_tree_ran(run, Attach::after_ready);
	INFO("fh-bpf output:\n" << run.output << "\nfh-bpf stderr:\n" << run.diagnostics);
	auto lines = json_lines(run.output);
	REQUIRE(lines.size() == 1);
	const auto &j = lines[0];
	pid_t w2 = run.workers.at(2);
	CHECK(j["pid"] == w2);
	CHECK(j["tid"] == w2);
	CHECK(j["comm"] == run.worker2_comm);
	CHECK(json_ppid(j) == run.master);
	CHECK(j["signal"]["name"] == "SIGSEGV");
	CHECK(j["signal"]["code"] == "SEGV_MAPERR");
	CHECK(j["threads"].size() == 2);
	CHECK(without_notes(j["text"].get<std::string>()) == run.faults.at(2));
	CHECK(run.fh_status == 3);
}

namespace {

// A multiprocessing worker (tests/targets/py_mp.py) started by METHOD
// aborts; under -p MASTER when `attach`, else in launch mode.
void check_multiprocessing(const PythonBuild &py, const std::string &method, bool attach)
{
	INFO(py.path << " " << method << (attach ? " -p" : " launch mode"));
	Channel in("mp-in"), out("mp-out");
	std::string fault = temp_path("mp-fault.txt");
	Removed removed{{fault}};
	std::vector<std::string> argv = {py.path, target_script("py_mp.py"), method, fault,
					 in.path(), out.path()};
	TreeGuard guard;
	std::optional<Watcher> watcher;
	if (!attach) {
		std::vector<std::string> extra = {"--"};
		extra.insert(extra.end(), argv.begin(), argv.end());
		watcher.emplace(0, extra);
	} else {
		guard.watch(spawn(argv), true);
	}
	std::string first = out.next_line();
	REQUIRE(first.rfind("master ", 0) == 0);
	pid_t master = std::stoi(first.substr(7));
	if (!attach)
		guard.watch(master, false);
	if (attach)
		watcher.emplace(master);
	in.send("start"); // the worker is started after fh-bpf is armed

	std::istringstream said(out.next_line());
	std::string word;
	pid_t worker = 0, parent = 0;
	REQUIRE((said >> word >> worker >> parent));
	REQUIRE(word == "worker");
	// spawn: the master forked and exec'd it; forkserver: the fork server
	// (the master's child, exec'd) forked it.
	if (method == "spawn")
		CHECK(parent == master);
	else
		CHECK(parent != master);
	std::string comm = comm_of(worker);

	in.send("go");
	CHECK(out.next_line() == "exitcode -" + std::to_string(SIGABRT));
	if (attach) {
		auto st = wait_exit(master, kGuardMs);
		REQUIRE(st);
		CHECK(WIFEXITED(*st));
		CHECK(WEXITSTATUS(*st) == 0);
	}
	int fh_status = watcher->wait();
	guard.release();
	std::string theirs = read_file(fault);

	std::string output = watcher->output();
	INFO("fh-bpf output:\n" << output << "\nfh-bpf stderr:\n" << watcher->diagnostics());
	auto incidents = incidents_in(output);
	REQUIRE(incidents.size() == 1);
	const TreeIncident &inc = incidents[0];
	REQUIRE(inc.headline);
	CHECK(inc.pid == worker);
	CHECK(inc.ppid == parent);
	CHECK(inc.comm == comm);
	CHECK(inc.what.rfind("SIGABRT", 0) == 0);
	std::string ours = without_notes(inc.text);
	INFO("faulthandler:\n" << theirs << "\nfh-bpf:\n" << ours);
	REQUIRE_FALSE(theirs.empty());
	CHECK(ours == theirs);
	CHECK(fh_status == (attach ? 3 : 0));
	CHECK(contains(watcher->diagnostics(), events_printed(1)));
}

} // namespace

TEST_CASE("multiprocessing spawn, launch mode: the exec'd worker's os.abort() matches its own "
	  "faulthandler",
	  "[e2e][tree][spawn]")
{
	for (const auto &py : tree_pythons())
		check_multiprocessing(py, "spawn", false);
}

TEST_CASE("multiprocessing forkserver, -p MASTER: a worker forked by the fork server, its "
	  "os.abort() matches its own faulthandler",
	  "[e2e][tree][spawn][forkserver]")
{
	for (const auto &py : tree_pythons())
		check_multiprocessing(py, "forkserver", true);
}

namespace {

struct ShellRun {
	int status = -1;		// fh-bpf's exit code
	std::string out, err, file;
	pid_t sh = 0;			// from the shell's "sh $$"
	std::vector<std::string> lines; // its stdout, the "sh" line aside
};

// fh-bpf -o FILE EXTRA -- /bin/sh -c SCRIPT ARG0: the script's first command
// must be `echo "sh $$"`.
ShellRun run_shell(std::vector<std::string> extra, const std::string &script,
		   const std::string &arg0)
{
	std::string file = temp_path("tree.txt");
	std::vector<std::string> args = {"-o", file};
	args.insert(args.end(), extra.begin(), extra.end());
	args.insert(args.end(), {"--", "/bin/sh", "-c", script, arg0});
	FhRun r = run_fh(args);
	ShellRun s{r.status, r.out, r.err, read_file(file), 0, {}};
	unlink(file.c_str());
	std::istringstream in(s.out);
	for (std::string line; std::getline(in, line);) {
		if (line.rfind("sh ", 0) == 0 && !s.sh)
			s.sh = std::stoi(line.substr(3));
		else
			s.lines.push_back(line);
	}
	INFO("stdout:\n" << s.out << "\nstderr:\n" << s.err);
	REQUIRE(s.sh > 0);
	return s;
}

bool has_line(const std::vector<std::string> &lines, const std::string &line)
{
	return std::find(lines.begin(), lines.end(), line) != lines.end();
}

// The incident of instant_crash: main at its marker line, libc (mapped by
// the dynamic loader after the exec) symbolized below it.
void check_instant_crash(const std::string &text)
{
	INFO(text);
	ParsedTraceback tb = parse_traceback(without_notes(text));
	CHECK(tb.header == "Fatal error: Segmentation fault");
	CHECK(tb.unparsed.empty());
	REQUIRE(tb.threads.size() == 1);
	CHECK(tb.threads[0].current);
	const auto &frames = tb.threads[0].frames;
	REQUIRE_FALSE(frames.empty());
	CHECK(frames.front().source);
	CHECK(frames.front().function == "main");
	auto ours = frames_in(frames, "tests/targets/instant_crash.c");
	REQUIRE_FALSE(ours.empty());
	CHECK(ours.front() == std::make_pair(std::string("main"), instant_marker()));
	bool libc = false;
	for (const auto &f : frames) {
		libc |= f.function == "__libc_start_call_main";
		CHECK(f.raw.find("???") == std::string::npos);
	}
	CHECK(libc);
}

} // namespace

TEST_CASE("sh -c forking a crasher, launch mode: the crasher's incident with its chain, fh-bpf "
	  "exits with the shell's status",
	  "[e2e][tree][shell][launch]")
{
	// dash forks the crasher (it is not the script's last command) and
	// reports its death as 139.
	ShellRun r = run_shell({},
			       "echo \"sh $$\"; \"$0\" --auto --threads 3 segv; "
			       "echo \"done $?\"; exit 7",
			       crash_path());
	INFO("output:\n" << r.file << "\nstdout:\n" << r.out << "\nstderr:\n" << r.err);
	CHECK(r.status == 7);
	CHECK(has_line(r.lines, "done 139"));
	// The crasher's report: "thread TID 0xPTHREAD ROLE", its main first.
	static const std::regex report_re(R"(^thread (\d+) 0x([0-9a-f]+) (\w+)$)");
	std::set<unsigned long> pthreads;
	pid_t crasher = 0;
	for (const auto &line : r.lines) {
		std::smatch m;
		if (!std::regex_match(line, m, report_re))
			continue;
		pthreads.insert(std::stoul(m[2], nullptr, 16));
		if (m[3] == "main")
			crasher = std::stoi(m[1]);
	}
	REQUIRE(pthreads.size() == 3);
	REQUIRE(crasher > 0);

	auto incidents = incidents_in(r.file);
	REQUIRE(incidents.size() == 1);
	const TreeIncident &inc = incidents[0];
	REQUIRE(inc.headline);
	CHECK(inc.pid == crasher);
	CHECK(inc.ppid == r.sh);
	CHECK(inc.tid == crasher);
	CHECK(inc.comm == "crash");
	CHECK(inc.what.rfind("SIGSEGV (SEGV_MAPERR) at address 0x0", 0) == 0);
	ParsedTraceback tb = parse_traceback(without_notes(inc.text));
	CHECK(tb.header == "Fatal error: Segmentation fault");
	std::set<unsigned long> ours;
	for (const auto &t : tb.threads)
		ours.insert(t.pthread);
	CHECK(ours == pthreads);
	check_segv_chain(inc.text);
	CHECK(contains(r.err, events_printed(1)));
}

TEST_CASE("a child that crashes a millisecond after its exec: caught and symbolized",
	  "[e2e][tree][exec1ms][launch]")
{
	ShellRun r = run_shell({}, "echo \"sh $$\"; \"$0\"; echo \"done $?\"", instant_crash_path());
	INFO("output:\n" << r.file << "\nstdout:\n" << r.out << "\nstderr:\n" << r.err);
	CHECK(r.status == 0);
	CHECK(has_line(r.lines, "done 139"));
	auto incidents = incidents_in(r.file);
	REQUIRE(incidents.size() == 1);
	const TreeIncident &inc = incidents[0];
	REQUIRE(inc.headline);
	CHECK(inc.ppid == r.sh);
	CHECK(inc.pid != r.sh);
	CHECK(inc.tid == inc.pid);
	CHECK(inc.comm == "instant_crash");
	CHECK(inc.what.rfind("SIGSEGV (SEGV_MAPERR) at address 0x0", 0) == 0);
	check_instant_crash(inc.text);
	CHECK(contains(r.err, events_printed(1)));
}

TEST_CASE("a pyenv shim run by sh -c: the interpreter it execs in the end is Python, its crash "
	  "matches its own faulthandler",
	  "[e2e][tree][shim][launch]")
{
	// The shim is a bash script that execs pyenv, which forks helpers
	// and execs the interpreter in the end: several execs in one child of
	// the shell, the last one Python.
	const PythonBuild py = tree_pythons().front();
	std::string shim = "/root/.pyenv/shims/python3." + std::to_string(py.minor);
	INFO(shim);
	REQUIRE(access(shim.c_str(), X_OK) == 0); // pyenv installs a shim for each version
	std::string fault = temp_path("shim.fault");
	Removed gone{{fault}};
	ShellRun r = run_shell({},
			       "echo \"sh $$\"; PYENV_VERSION=" + py.version + " \"$0\" " +
				       target_script("py_crash_now.py") + " " + fault +
				       "; echo \"done $?\"",
			       shim);
	INFO("output:\n" << r.file << "\nstdout:\n" << r.out << "\nstderr:\n" << r.err);
	CHECK(r.status == 0);
	CHECK(has_line(r.lines, "done 139"));
	auto incidents = incidents_in(r.file);
	REQUIRE(incidents.size() == 1);
	const TreeIncident &inc = incidents[0];
	REQUIRE(inc.headline);
	CHECK(inc.ppid == r.sh);
	CHECK(inc.what.rfind("SIGSEGV (SEGV_MAPERR) at address 0x0", 0) == 0);
	std::string theirs = read_file(fault);
	REQUIRE(contains(theirs, "line 19 in crash")); // the oracle names the crash
	CHECK(without_notes(inc.text) == theirs);
}

TEST_CASE("--no-children: a child's crash prints nothing; the watched process's own is printed",
	  "[e2e][tree][nochildren]")
{
	SECTION("launch mode, a forked child crashes, the shell exits 0")
	{
		ShellRun r = run_shell({"--no-children"}, "echo \"sh $$\"; \"$0\"; echo \"done $?\"",
				       instant_crash_path());
		INFO("output:\n" << r.file << "\nstderr:\n" << r.err);
		CHECK(r.status == 0);
		CHECK(has_line(r.lines, "done 139")); // the child did crash
		CHECK(r.file.empty());
		CHECK(contains(r.err, events_printed(0)));
	}
	SECTION("launch mode, a forked child crashes, then the shell itself")
	{
		ShellRun r = run_shell({"--no-children"},
				       "echo \"sh $$\"; \"$0\"; echo \"done $?\"; kill -SEGV $$",
				       instant_crash_path());
		INFO("output:\n" << r.file << "\nstderr:\n" << r.err);
		CHECK(r.status == 128 + SIGSEGV);
		CHECK(has_line(r.lines, "done 139"));
		auto incidents = incidents_in(r.file);
		REQUIRE(incidents.size() == 1);
		CHECK_FALSE(incidents[0].headline); // the watched process's: no headline
		ParsedTraceback tb = parse_traceback(without_notes(incidents[0].text));
		CHECK(tb.header == "Fatal error: Segmentation fault");
		REQUIRE(tb.threads.size() == 1);
		CHECK(tb.threads[0].current);
		// stderr's headline names the shell, without a parent.
		CHECK(contains(r.err, "fh-bpf: pid " + std::to_string(r.sh) + " (sh), thread " +
					      std::to_string(r.sh) + " (sh): SIGSEGV (SI_USER)"));
		CHECK(contains(r.err, events_printed(1)));
	}
	SECTION("-p MASTER of a prefork server: worker 2's crash prints nothing")
	{
		const PythonBuild py = tree_pythons().front();
		PreforkRun run = run_prefork(py, Attach::after_ready, {"--no-children"});
		check_tree_ran(run, Attach::after_ready);
		INFO("fh-bpf output:\n" << run.output << "\nfh-bpf stderr:\n" << run.diagnostics);
		CHECK(run.output.empty());
		CHECK(run.fh_status == 0);
		CHECK(contains(run.diagnostics, events_printed(0)));
	}
}
