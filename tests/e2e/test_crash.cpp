// Fatal signals captured in the kernel, on real targets built -O2
// -fomit-frame-pointer -g; oracles: the pthread ids the target reports,
// marker lines in its source, and gdb's backtrace of the same program.
#include <catch2/catch.hpp>

#include "harness.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <set>

using namespace fhtest;

namespace {

using FrameList = std::vector<std::pair<std::string, int>>;

int line_of(const std::string &name) { return crash_marker(name); }

// crash_mid's chain to its fault, called from fn at marker.
FrameList chain_from(const std::string &fn, const std::string &marker)
{
	return {{"poke", line_of("poke")},
		{"crash_leaf", line_of("leaf")},
		{"crash_mid", line_of("mid")},
		{fn, line_of(marker)}};
}

} // namespace

TEST_CASE("SIGSEGV in a 4-thread target: every thread, inlined frames, agrees with gdb",
	  "[e2e][segv]")
{
	CrashRun run = run_crash("segv", 4);
	const ParsedThread &cur =
		check_common(run, SIGSEGV, "Fatal error: Segmentation fault", "main");
	FrameList want = chain_from("main", "main_segv");
	auto ours = frames_in(cur.frames, "tests/targets/crash.c");
	INFO(run.text);
	CHECK(ours == want);
	// The innermost frame is the faulting one, and the path is absolute.
	CHECK(cur.frames.front().function == "poke");
	CHECK(cur.frames.front().file.front() == '/');
	// Through Debian's libc, down to _start (no debug info: binary form).
	CHECK(cur.frames.back().function.rfind("_start", 0) == 0);
	CHECK(run.diagnostics.find("SIGSEGV (SEGV_MAPERR) at address 0x0") != std::string::npos);
	// Threads blocked in libc show the libc function they block in.
	for (const auto &t : run.tb.threads)
		if (!t.current)
			CHECK(t.frames.front().source);
	check_against_gdb(run, "segv", 4);
}

namespace {

// A fatal signal the main thread raises through a fixed call chain: the
// header, the chain in crash.c, the signal's si_code, and gdb's agreement.
CrashRun check_raised(const std::string &mode, int sig, const std::string &description,
		      const FrameList &chain, const std::string &code)
{
	CrashRun run = run_crash(mode, 4);
	const ParsedThread &cur = check_common(run, sig, "Fatal error: " + description, "main");
	CHECK(frames_in(cur.frames, "tests/targets/crash.c") == chain);
	CHECK(run.diagnostics.find(code) != std::string::npos);
	check_against_gdb(run, mode, 4);
	return run;
}

} // namespace

TEST_CASE("abort(): SIGABRT raised by the process itself", "[e2e][abort]")
{
	CrashRun run = check_raised("abort", SIGABRT, "Aborted",
				    {{"do_abort", line_of("abort")}, {"main", line_of("main_abort")}},
				    "SIGABRT (SI_TKILL)");
	// Through libc's abort() and raise().
	bool saw_abort = false;
	for (const auto &t : run.tb.threads)
		for (const auto &f : t.frames)
			saw_abort |= t.current && (f.function == "abort" || f.function == "__GI_abort");
	CHECK(saw_abort);
}

TEST_CASE("integer division by zero: SIGFPE", "[e2e][fpe]")
{
	check_raised("fpe", SIGFPE, "Floating point exception",
		     {{"divide", line_of("divide")}, {"main", line_of("main_fpe")}},
		     "SIGFPE (FPE_INTDIV)");
}

TEST_CASE("access past the end of a truncated mapped file: SIGBUS", "[e2e][bus]")
{
	check_raised("bus", SIGBUS, "Bus error",
		     {{"touch_truncated", line_of("bus")}, {"main", line_of("main_bus")}},
		     "SIGBUS (BUS_ADRERR)");
}

TEST_CASE("ud2: SIGILL", "[e2e][ill]")
{
	check_raised("ill", SIGILL, "Illegal instruction",
		     {{"illegal", line_of("ill")}, {"main", line_of("main_ill")}},
		     "SIGILL (ILL_ILLOPN)");
}

TEST_CASE("kill -SEGV from another process: captured in the target, sender named",
	  "[e2e][external]")
{
	Target target("wait", 4);
	// The oracle: gdb's backtrace of the parked target, taken before.
	auto gdb = gdb_frames_of(target.pid());
	REQUIRE(gdb.size() == 4);
	Watcher watcher(target.pid());
	// The sender is a child of the test with a name of its own.
	pid_t sender = fork();
	if (sender == 0) {
		execl("/bin/kill", "kill", "-SEGV", std::to_string(target.pid()).c_str(),
		      (char *)nullptr);
		_exit(127);
	}
	auto sst = wait_exit(sender, kGuardMs);
	REQUIRE(sst);
	REQUIRE(WIFEXITED(*sst));
	REQUIRE(WEXITSTATUS(*sst) == 0);
	int tst = target.wait();
	REQUIRE(WIFSIGNALED(tst));
	CHECK(WTERMSIG(tst) == SIGSEGV);
	REQUIRE(watcher.wait() == 3);

	std::string text = watcher.output();
	std::string diag = watcher.diagnostics();
	INFO(text << "\n" << diag);
	ParsedTraceback tb = parse_traceback(text);
	CHECK(tb.header == "Fatal error: Segmentation fault");
	REQUIRE(tb.threads.size() == 4);
	CHECK(diag.find("SIGSEGV (SI_USER), sent by pid " + std::to_string(sender) + " (kill)") !=
	      std::string::npos);
	int current = 0;
	for (const auto &t : tb.threads) {
		REQUIRE(target.by_pthread(t.pthread) != nullptr);
		if (!t.current)
			continue;
		current++;
		// The thread that dequeued the signal: the main thread, blocked in
		// wait_for_kill.
		CHECK(target.by_pthread(t.pthread)->role == "main");
		CHECK(is_subsequence({{"wait_for_kill", line_of("wait")}},
				     frames_in(t.frames, "tests/targets/crash.c")));
	}
	CHECK(current == 1);
	for (const auto &t : tb.threads) {
		auto ours = frames_in(t.frames, "tests/targets/crash.c");
		INFO("ours: " << Catch::Detail::stringify(ours)
			      << "\ngdb: " << Catch::Detail::stringify(gdb[t.pthread]));
		REQUIRE_FALSE(gdb[t.pthread].empty());
		CHECK(ours == gdb[t.pthread]);
	}
}

TEST_CASE("200 threads: every one captured with its pthread id", "[e2e][many]")
{
	CrashRun run = run_crash("segv", 200);
	const ParsedThread &cur =
		check_common(run, SIGSEGV, "Fatal error: Segmentation fault", "main");
	CHECK(is_subsequence({{"crash_leaf", line_of("leaf")}, {"crash_mid", line_of("mid")}},
			     frames_in(cur.frames, "tests/targets/crash.c")));
	CHECK(run.diagnostics.find("not captured") == std::string::npos);
	CHECK(run.diagnostics.find("lost") == std::string::npos);
	check_against_gdb(run, "segv", 200);
}

TEST_CASE("threads beyond --max-threads are counted and reported", "[e2e][limits]")
{
	CrashRun run = run_crash("segv", 12, {"--max-threads", "5"});
	INFO(run.text << "\n" << run.diagnostics);
	REQUIRE(run.fh_status == 3);
	CHECK(run.tb.threads.size() == 5);
	CHECK(run.diagnostics.find("fh-bpf: 7 threads beyond --max-threads not captured") !=
	      std::string::npos);
	// The same note goes into the output file, next to the traceback.
	CHECK(run.tb.notes ==
	      std::vector<std::string>{"fh-bpf: 7 threads beyond --max-threads not captured"});
}

TEST_CASE("code loaded with dlopen after attach is symbolized", "[e2e][dlopen]")
{
	std::string plugin = build_dir() + "/targets/libfhplugin.so";
	Target target("dlopen", 2, {"--plugin", plugin});
	Watcher watcher(target.pid(), {"-v"});
	target.go();
	REQUIRE(target.next_report_line() == "loaded");
	// fh-bpf saw the executable mapping and read the maps again.
	char real[4096];
	REQUIRE(realpath(plugin.c_str(), real) != nullptr);
	INFO(watcher.diagnostics());
	REQUIRE(watcher.wait_for_diagnostic(std::string(" ") + real));
	target.go();
	int st = target.wait();
	REQUIRE(WIFSIGNALED(st));
	REQUIRE(watcher.wait() == 3);
	std::string text = watcher.output();
	INFO(text << "\n" << watcher.diagnostics());
	ParsedTraceback tb = parse_traceback(text);
	const ParsedThread *cur = nullptr;
	for (const auto &t : tb.threads)
		if (t.current)
			cur = &t;
	REQUIRE(cur != nullptr);
	REQUIRE_FALSE(cur->frames.empty());
	CHECK(cur->frames[0].function == "plugin_crash");
	CHECK(cur->frames[0].file.find("tests/targets/plugin.c") != std::string::npos);
	CHECK(cur->frames[0].line == markers(source_dir() + "/tests/targets/plugin.c").at("plugin"));
	CHECK(is_subsequence({{"main", line_of("main_plugin")}},
			     frames_in(cur->frames, "tests/targets/crash.c")));
}

TEST_CASE("a call through a null function pointer: unknown frame, then the caller",
	  "[e2e][nullcall]")
{
	CrashRun run = run_crash("nullcall", 2);
	const ParsedThread &cur =
		check_common(run, SIGSEGV, "Fatal error: Segmentation fault", "main");
	INFO(run.text);
	REQUIRE(cur.frames.size() >= 3);
	CHECK(cur.frames[0].raw == "  Binary file '<unknown>' [0x0]");
	CHECK(frames_in(cur.frames, "tests/targets/crash.c") ==
	      FrameList{{"call_null", line_of("nullcall")}, {"main", line_of("main_nullcall")}});
	check_against_gdb(run, "nullcall", 2);
}

TEST_CASE("deep stacks: 100 frames then '  ...'; a stack deeper than the copy says so",
	  "[e2e][deep]")
{
	SECTION("the frame limit")
	{
		CrashRun run = run_crash("deep", 2);
		const ParsedThread &cur =
			check_common(run, SIGSEGV, "Fatal error: Segmentation fault", "main");
		INFO(run.text);
		CHECK(cur.frames.size() == 100);
		CHECK(cur.other_lines == std::vector<std::string>{"  ..."});
		for (size_t i = 1; i < cur.frames.size(); i++)
			CHECK(cur.frames[i].function == "recurse_small");
		CHECK(cur.frames[1].line == line_of("recurse_small"));
	}
	SECTION("the stack copy limit")
	{
		CrashRun run = run_crash("deepbig", 2, {"--stack-size", "4K"});
		const ParsedThread &cur =
			check_common(run, SIGSEGV, "Fatal error: Segmentation fault", "main");
		INFO(run.text << "\n" << run.diagnostics);
		CHECK(cur.frames.size() < 100);
		CHECK(cur.frames.size() >= 4);
		CHECK(cur.other_lines == std::vector<std::string>{"  ..."});
		for (const auto &f : cur.frames)
			CHECK(f.function == "recurse_big");
		CHECK(run.diagnostics.find("stack deeper than the bytes copied in 1 thread") !=
		      std::string::npos);
		CHECK(run.tb.notes ==
		      std::vector<std::string>{"fh-bpf: stack deeper than the bytes copied in 1 "
					       "thread (see --stack-size)"});
	}
}

TEST_CASE("a stack of the target's own making, its end found by what can be read: the chain "
	  "on it agrees with gdb",
	  "[e2e][deep][cstack]")
{
	// The main thread faults on a 64 KiB mapping of its own with an
	// inaccessible page above (swapcontext): its top is neither the
	// process's stack nor a glibc thread's, so the copy reads until that
	// page and keeps what lies below it: the frames on that stack, all
	// above the fault's (none, if nothing were kept).  With a 128 KiB
	// copy, the first read runs past that page whatever the layout.
	CrashRun run = run_crash("cstack", 4, {"--stack-size", "128K"});
	const ParsedThread &cur =
		check_common(run, SIGSEGV, "Fatal error: Segmentation fault", "main");
	INFO(run.text << "\n" << run.diagnostics);
	CHECK(frames_in(cur.frames, "tests/targets/crash.c") ==
	      chain_from("on_own_stack", "cstack"));
	check_against_gdb(run, "cstack", 4);
}

TEST_CASE("C++: demangled names of a template member, an inlined lambda and a namespace",
	  "[e2e][cxx]")
{
	Pipe report, go;
	SpawnOptions o;
	o.fds = {{3, report.write}, {4, go.read}};
	pid_t pid = spawn({build_dir() + "/targets/cxx_crash", "--report", "3", "--go", "4"}, o);
	report.close_write();
	go.close_read();
	auto first = read_line(report.read, kGuardMs);
	REQUIRE(first);
	REQUIRE(read_line(report.read, kGuardMs) == std::string("ready"));
	unsigned long pthread = std::stoul(first->substr(first->find("0x") + 2), nullptr, 16);

	Watcher watcher(pid);
	REQUIRE(write(go.write, "g", 1) == 1);
	auto st = wait_exit(pid, kGuardMs);
	REQUIRE(st);
	CHECK(WIFSIGNALED(*st));
	REQUIRE(watcher.wait() == 3);
	std::string text = watcher.output();
	INFO(text);
	ParsedTraceback tb = parse_traceback(text);
	REQUIRE(tb.threads.size() == 1);
	CHECK(tb.threads[0].current);
	CHECK(tb.threads[0].pthread == pthread);
	auto m = markers(source_dir() + "/tests/targets/cxx_crash.cpp");
	auto ours = frames_in(tb.threads[0].frames, "tests/targets/cxx_crash.cpp");
	REQUIRE(ours.size() >= 4);
	CHECK(ours[0] == std::make_pair(std::string("fh_demo::Holder<int>::store(int)"),
					m.at("cxx_store")));
	// An inlined lambda has no linkage name: its DWARF name, as eu-stack
	// prints it.
	CHECK(ours[1].first == "operator()");
	CHECK(ours[1].second == m.at("cxx_lambda"));
	CHECK(ours[2].first == "fh_demo::run(int)");
	CHECK(ours.back() == std::make_pair(std::string("main"), m.at("cxx_main")));
}

// Without --handled, a fault the target recovers from is no incident:
// tests/e2e/test_first_fault.cpp.
TEST_CASE("--handled: a fatal signal the target handles and survives is captured like any other",
	  "[e2e][handled]")
{
	Target target("handled", 2);
	Watcher watcher(target.pid(), {"--handled"});
	target.go();
	int st = target.wait();
	REQUIRE(WIFEXITED(st));
	CHECK(WEXITSTATUS(st) == 0);
	CHECK(watcher.wait() == 3);
	ParsedTraceback tb = parse_traceback(watcher.output());
	INFO(watcher.output());
	CHECK(tb.header == "Fatal error: Segmentation fault");
	REQUIRE(tb.threads.size() == 2);
	CHECK(tb.threads[0].current);
	CHECK(is_subsequence({{"crash_leaf", line_of("leaf")}, {"crash_mid", line_of("mid")}},
			     frames_in(tb.threads[0].frames, "tests/targets/crash.c")));
}

TEST_CASE("new executable mapping right before the crash: symbols kept", "[e2e][mapcrash]")
{
	// The mapping's notification and the crash arrive together; by then the
	// process is gone and its maps read empty: the known modules must stay.
	CrashRun run = run_crash("mapcrash", 2);
	const ParsedThread &cur =
		check_common(run, SIGSEGV, "Fatal error: Segmentation fault", "main");
	INFO(run.text << "\n" << run.diagnostics);
	CHECK(frames_in(cur.frames, "tests/targets/crash.c") ==
	      chain_from("main", "main_mapcrash"));
}

TEST_CASE("--signal on a target without a handler: warned at start, with the BPF LSM probe's "
	  "answer; dumped, then terminated (or kept alive where the kernel allows it)",
	  "[e2e][usr1]")
{
	Target target("wait", 3);
	Watcher watcher(target.pid(), {"--signal", "SIGUSR1"});
	REQUIRE(watcher.wait_for_diagnostic("does not handle SIGUSR1"));
	std::string start = watcher.diagnostics();
	INFO(start);
	bool kept_alive = start.find("each one is refused to it (BPF LSM)") != std::string::npos;
	if (!kept_alive)
		CHECK(start.find("does not handle SIGUSR1: one dumps it, then kills it (loading a "
				 "BPF LSM program: ") != std::string::npos);
	// One line said it.
	CHECK(start.find("does not handle SIGUSR1") == start.rfind("does not handle SIGUSR1"));
	if (kept_alive) {
		// The signal is refused: the sender is told, the target lives.
		CHECK(kill(target.pid(), SIGUSR1) == -1);
		CHECK(errno == EPERM);
		REQUIRE(watcher.wait_for_diagnostic("refused to keep pid"));
		CHECK(kill(target.pid(), 0) == 0);
		target.go();
		CHECK(WIFEXITED(target.wait()));
	} else {
		REQUIRE(kill(target.pid(), SIGUSR1) == 0);
		int st = target.wait();
		REQUIRE(WIFSIGNALED(st));
		CHECK(WTERMSIG(st) == SIGUSR1);
	}
	CHECK(watcher.wait() == 0); // a user signal is not a crash
	std::string text = watcher.output();
	INFO(text << "\n" << watcher.diagnostics());
	ParsedTraceback tb = parse_traceback(text, false); // no header line
	REQUIRE(tb.threads.size() == 3);
	// Every thread is there; the main thread waits where it waited and is
	// the current one: a kill() to the process goes to its main thread.
	// (The kernel kills all threads at once: the others may be caught
	// leaving.)
	int current = 0;
	for (const auto &t : tb.threads) {
		const TargetThread *tt = target.by_pthread(t.pthread);
		REQUIRE(tt != nullptr);
		current += t.current;
		if (tt->role == "main") {
			CHECK(t.current);
			CHECK(is_subsequence({{"wait_for_kill", line_of("wait")}},
					     frames_in(t.frames, "tests/targets/crash.c")));
		}
	}
	CHECK(current == 1);
	REQUIRE_FALSE(tb.notes.empty());
	if (kept_alive)
		CHECK(tb.notes[0] == "fh-bpf: SIGUSR1 refused to keep pid " +
					     std::to_string(target.pid()) + " alive (it does not handle it)");
	else
		CHECK(tb.notes[0] == "fh-bpf: pid " + std::to_string(target.pid()) +
					     " does not handle SIGUSR1: its default action terminates it");
	CHECK(watcher.diagnostics().find("sent by pid " + std::to_string(getpid())) !=
	      std::string::npos);
}
