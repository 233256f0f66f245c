// Native frames right at the first fault, against the core of the same crash.
//
// Each target (tests/targets/inline_chain.c, cxx_inline.cpp, overflow.c)
// chdirs into a fresh directory and lifts its RLIMIT_CORE, so the kernel
// writes the core of the very crash fh-bpf captured there: core_pattern is
// a plain file name on this project's machines (a pipe, systemd-coredump or
// apport, would take the core away: the test then fails and says so).  The
// oracles read that core: eu-stack -i (elfutils; inlined calls as frames of
// their own) for the inlined chains, gdb's backtrace for the overflow.
// Targets and fh-bpf are synchronised through pipes, never sleeps.
#include <catch2/catch.hpp>

#include "harness.h"

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <regex>
#include <sstream>

using namespace fhtest;

namespace {

struct Frame {
	std::string function;
	std::string file; // base name; empty: no source position
	int line = 0;
	bool operator==(const Frame &o) const
	{
		return function == o.function && file == o.file && line == o.line;
	}
};

std::ostream &operator<<(std::ostream &os, const Frame &f)
{
	return os << f.function << " " << f.file << ":" << f.line;
}

std::string base_name(const std::string &path) { return path.substr(path.rfind('/') + 1); }

// A target of tests/targets/ run to its crash under fh-bpf, its core kept.
struct CoreCrash {
	std::string program;
	std::string dir; // where its core was written
	std::string core;
	std::map<unsigned long, std::pair<pid_t, std::string>> threads; // pthread -> tid, role
	std::vector<std::string> report;				  // other report lines
	std::string text;
	std::string diagnostics;
	ParsedTraceback tb;

	CoreCrash(const std::string &name, std::vector<std::string> fh_args = {})
	{
		std::string pattern = read_file("/proc/sys/kernel/core_pattern");
		INFO("kernel.core_pattern: " << pattern);
		REQUIRE(pattern.find_first_of("|/%") == std::string::npos); // a file in the cwd
		program = build_dir() + "/targets/" + name;
		dir = temp_path("core-dir");
		REQUIRE(mkdir(dir.c_str(), 0700) == 0);

		Pipe rep, go;
		SpawnOptions o;
		o.fds = {{3, rep.write}, {4, go.read}};
		pid_t pid = spawn({program, "--report", "3", "--go", "4", "--core-dir", dir}, o);
		rep.close_write();
		go.close_read();
		static const std::regex thread_re(R"(^thread (\d+) 0x([0-9a-f]+) (\w+)$)");
		for (;;) {
			auto line = read_line(rep.read, kGuardMs);
			REQUIRE(line);
			if (*line == "ready")
				break;
			std::smatch m;
			if (std::regex_match(*line, m, thread_re))
				threads[std::stoul(m[2], nullptr, 16)] = {std::stoi(m[1]), m[3]};
			else
				report.push_back(*line);
		}
		Watcher watcher(pid, fh_args);
		REQUIRE(write(go.write, "g", 1) == 1);
		auto st = wait_exit(pid, kGuardMs);
		REQUIRE(st);
		REQUIRE(WIFSIGNALED(*st));
		CHECK(WTERMSIG(*st) == SIGSEGV);
		CHECK(WCOREDUMP(*st));
		REQUIRE(watcher.wait() == 3);
		text = watcher.output();
		diagnostics = watcher.diagnostics();
		tb = parse_traceback(text);
		for (const auto &f : files_in(dir))
			if (f == "core" || f.rfind("core.", 0) == 0)
				core = dir + "/" + f;
		REQUIRE_FALSE(core.empty());
	}
	~CoreCrash() { remove_dir(dir); }

	const std::string &role(unsigned long pthread) const
	{
		static const std::string none;
		auto it = threads.find(pthread);
		return it == threads.end() ? none : it->second.second;
	}
};

// Our frames as the oracles give them: a source frame's function, file
// base name and line; a binary one's symbol alone (without "+0x...").
std::vector<Frame> our_frames(const ParsedThread &t)
{
	std::vector<Frame> out;
	for (const auto &f : t.frames) {
		if (f.source)
			out.push_back({f.function, base_name(f.file), f.line});
		else
			out.push_back({f.function.substr(0, f.function.rfind('+')), "", 0});
	}
	return out;
}

// eu-stack -i -s on a core: each thread's frames, by tid.
std::map<pid_t, std::vector<Frame>> eu_stack(const std::string &program, const std::string &core)
{
	static const std::regex tid_re(R"(^TID (\d+):$)");
	static const std::regex frame_re(R"(^#\d+\s+0x[0-9a-f]+(?: (.*))?$)");
	static const std::regex src_re(R"(^    (.*?):(\d+)(?::\d+)?$)");
	std::map<pid_t, std::vector<Frame>> out;
	std::istringstream in(run_capture({"/usr/bin/eu-stack", "-i", "-s", "-n", "0",
					   "--core=" + core, "--executable=" + program}));
	std::string line;
	std::vector<Frame> *cur = nullptr;
	while (std::getline(in, line)) {
		std::smatch m;
		if (std::regex_match(line, m, tid_re)) {
			cur = &out[std::stoi(m[1])];
		} else if (cur && std::regex_match(line, m, frame_re)) {
			cur->push_back({m[1], "", 0});
		} else if (cur && !cur->empty() && std::regex_match(line, m, src_re)) {
			cur->back().file = base_name(m[1]);
			cur->back().line = std::stoi(m[2]);
		}
	}
	return out;
}

// Every thread's every frame equals eu-stack's on the core.  Where we print
// a binary frame (no DWARF for the address: _start, libstdc++ without its
// debug information), only the symbol is compared: eu-stack gives _start
// the line of whatever unit libdw falls back to.
void check_against_eu_stack(const CoreCrash &run)
{
	auto theirs = eu_stack(run.program, run.core);
	INFO("fh-bpf:\n" << run.text << "\n" << run.diagnostics);
	REQUIRE(run.tb.threads.size() == run.threads.size());
	REQUIRE(theirs.size() == run.threads.size());
	for (const auto &t : run.tb.threads) {
		auto it = run.threads.find(t.pthread);
		REQUIRE(it != run.threads.end());
		std::vector<Frame> ours = our_frames(t), eu = theirs[it->second.first];
		for (size_t i = 0; i < ours.size() && i < eu.size(); i++)
			if (ours[i].file.empty())
				eu[i].file.clear(), eu[i].line = 0;
		INFO("thread " << it->second.second << "\nours: " << Catch::Detail::stringify(ours)
			       << "\neu-stack: " << Catch::Detail::stringify(eu));
		CHECK(ours == eu);
		CHECK(t.other_lines.empty());
	}
}

// The frames, innermost first, of the first thread whose role is `role`.
std::vector<Frame> frames_of(const CoreCrash &run, const std::string &role)
{
	for (const auto &t : run.tb.threads)
		if (run.role(t.pthread) == role)
			return our_frames(t);
	FAIL("no thread " << role);
	return {};
}

// Frames of `ours` from the first one in `file` on, n of them at most.
std::vector<Frame> from_file(const std::vector<Frame> &ours, const std::string &file, size_t n)
{
	std::vector<Frame> out;
	for (const auto &f : ours)
		if ((f.file == file || !out.empty()) && out.size() < n)
			out.push_back(f);
	return out;
}

} // namespace

TEST_CASE("C, three levels of always_inline in every thread: each inlined call its own frame, "
	  "every frame as eu-stack -i prints it from the core",
	  "[e2e][inlines]")
{
	CoreCrash run("inline_chain");
	check_against_eu_stack(run);
	auto m = markers(source_dir() + "/tests/targets/inline_chain.c");
	const std::string f = "inline_chain.c";
	REQUIRE_FALSE(run.tb.threads.empty());
	CHECK(run.role(run.tb.threads[0].pthread) == "main");
	CHECK(run.tb.threads[0].current);
	CHECK(from_file(frames_of(run, "main"), f, 5) ==
	      std::vector<Frame>{{"store_cell", f, m.at("c_store")},
				 {"fill_row", f, m.at("c_row")},
				 {"fill_table", f, m.at("c_table")},
				 {"update", f, m.at("c_update")},
				 {"main", f, m.at("c_main")}});
	CHECK(from_file(frames_of(run, "read"), f, 4) ==
	      std::vector<Frame>{{"read_one", f, m.at("w_read_one")},
				 {"next_byte", f, m.at("w_next_byte")},
				 {"drain", f, m.at("w_drain")},
				 {"reader_main", f, m.at("w_reader_main")}});
	CHECK(from_file(frames_of(run, "futex"), f, 4) ==
	      std::vector<Frame>{{"sleep_on", f, m.at("w_sleep_on")},
				 {"hold", f, m.at("w_hold")},
				 {"keep_waiting", f, m.at("w_keep_waiting")},
				 {"waiter_main", f, m.at("w_waiter_main")}});
}

TEST_CASE("C++: a lookup inlined into a lambda inlined through std::function, a thread blocked "
	  "in std::mutex::lock: every frame as eu-stack -i prints it from the core",
	  "[e2e][inlines][cxx]")
{
	CoreCrash run("cxx_inline");
	check_against_eu_stack(run);
	auto m = markers(source_dir() + "/tests/targets/cxx_inline.cpp");
	const std::string f = "cxx_inline.cpp";
	// The fault: lookup's line under lookup's name, then each caller.
	auto main_frames = frames_of(run, "main");
	REQUIRE(main_frames.size() >= 8);
	CHECK(main_frames[0] == Frame{"shop::Table<int, 3>::lookup(int) const", f, m.at("cxx_lookup")});
	CHECK(main_frames[1] == Frame{"operator()", f, m.at("cxx_lambda")});
	CHECK(main_frames[2].function.rfind("__invoke_impl<", 0) == 0);
	CHECK(main_frames[3].function.rfind("__invoke_r<", 0) == 0);
	CHECK(main_frames[4].function == "_M_invoke");
	CHECK(main_frames[5].function == "std::function<int (int)>::operator()(int) const");
	CHECK(main_frames[6] ==
	      Frame{"shop::run_job(std::function<int (int)> const&, int)", f, m.at("cxx_run_job")});
	CHECK(main_frames[7] == Frame{"main", f, m.at("cxx_main")});
	// Blocked in the mutex: libstdc++'s inline functions, then locker_main
	// at its own line.
	auto locker = from_file(frames_of(run, "locker"), "gthr-default.h", 4);
	REQUIRE(locker.size() == 4);
	CHECK(locker[0].function == "__gthread_mutex_lock");
	CHECK(locker[1] == Frame{"std::mutex::lock()", "std_mutex.h", locker[1].line});
	CHECK(locker[2].function == "std::lock_guard<std::mutex>::lock_guard(std::mutex&)");
	CHECK(locker[3] == Frame{"locker_main", f, m.at("cxx_locker")});
	CHECK(from_file(frames_of(run, "reader"), f, 3) ==
	      std::vector<Frame>{{"shop::Source<char>::next(char*) const", f, m.at("cxx_next")},
				 {"shop::Source<char>::drain() const", f, m.at("cxx_drain")},
				 {"reader_main", f, m.at("cxx_reader")}});
}

TEST_CASE("stack overflow of a 256 KiB thread stack: the newest frames, from the first readable "
	  "page above the guard page, as gdb prints them from the core; older frames said cut",
	  "[e2e][overflow]")
{
	CoreCrash run("overflow");
	REQUIRE(run.report.size() == 1);
	unsigned long guard_lo = 0, guard_hi = 0;
	REQUIRE(std::sscanf(run.report[0].c_str(), "guard 0x%lx 0x%lx", &guard_lo, &guard_hi) == 2);

	// gdb on the core: the faulting thread is its current one.
	std::string gdb = run_capture({"/usr/bin/gdb", "-batch", "-nx", "-ex", "p/x $sp", "-ex", "bt",
				       run.program, run.core});
	static const std::regex sp_re(R"(\$1 = 0x([0-9a-f]+))");
	static const std::regex frame_re(
		R"(^#\d+\s+(?:0x[0-9a-f]+ in )?([^\s(]+) \(.*\) at (\S+):(\d+)$)");
	std::smatch sm;
	REQUIRE(std::regex_search(gdb, sm, sp_re));
	unsigned long sp = std::stoul(sm[1], nullptr, 16);
	// The backtrace follows $sp (gdb shows frame #0 once before, on
	// loading the core).
	std::vector<Frame> theirs;
	std::istringstream in(gdb.substr(gdb.find("$1 = ")));
	std::string line;
	while (std::getline(in, line))
		if (std::regex_match(line, sm, frame_re))
			theirs.push_back({sm[1], base_name(sm[2]), std::stoi(sm[3])});

	INFO("fh-bpf:\n" << run.text << "\n" << run.diagnostics << "\ngdb: " << theirs.size()
			 << " frames, sp 0x" << std::hex << sp);
	// What this test is about: the stack pointer is in the guard page, so
	// a copy from sp would hold nothing.
	REQUIRE(sp >= guard_lo);
	REQUIRE(sp < guard_hi);
	REQUIRE(theirs.size() > 1000); // 256 KiB of recursion

	REQUIRE_FALSE(run.tb.threads.empty());
	const ParsedThread &cur = run.tb.threads[0];
	CHECK(cur.current);
	CHECK(run.role(cur.pthread) == "diver");
	std::vector<Frame> ours = our_frames(cur);
	REQUIRE(ours.size() >= 50);
	CHECK(ours.size() < 100); // the default --stack-size holds fewer
	CHECK(ours == std::vector<Frame>(theirs.begin(), theirs.begin() + ours.size()));
	auto m = markers(source_dir() + "/tests/targets/overflow.c");
	for (size_t i = 1; i < ours.size(); i++)
		CHECK(ours[i].line == m.at(ours[i].function));
	// Older frames cut, as faulthandler says it: "  ...", and why.
	CHECK(cur.other_lines == std::vector<std::string>{"  ..."});
	CHECK(run.tb.notes == std::vector<std::string>{"fh-bpf: stack deeper than the bytes copied "
						       "in 1 thread (see --stack-size)"});
	// The other thread, waiting in pthread_join, is whole.
	REQUIRE(run.tb.threads.size() == 2);
	CHECK(run.tb.threads[1].other_lines.empty());
	auto joined = from_file(our_frames(run.tb.threads[1]), "overflow.c", 1);
	CHECK(joined == std::vector<Frame>{{"main", "overflow.c", m.at("main_join")}});
}
