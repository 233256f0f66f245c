// Live dumps of running processes: --dump, --timeout (with --repeat and
// --exit), SIGUSR1 sent to fh-bpf, and --signal on targets that handle it
// or not.  The target is never stopped: blocked threads are read from
// their saved registers, threads spinning on a CPU from a timer sample.
// Oracles: the pthread ids the target reports, marker lines in its source,
// gdb's backtrace, and for Python the target's own faulthandler output.
#include <catch2/catch.hpp>

#include "harness.h"
#include "python_interpreters.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <set>

using namespace fhtest;

namespace {

const std::map<std::string, int> &mark()
{
	static const auto m = markers(source_dir() + "/tests/targets/crash.c");
	return m;
}

using FrameList = std::vector<std::pair<std::string, int>>;

// The crash.c frames a thread of each role shows while parked.
FrameList parked(const std::string &role)
{
	static const std::map<std::string, std::string> fn = {
		{"sleep", "park_sleep"}, {"futex", "park_futex"}, {"read", "park_read"},
		{"spin", "park_spin"}};
	return {{fn.at(role), mark().at(fn.at(role))}, {"worker_main", 0}};
}

// Every thread of the target once, with its pthread id; workers where they
// were parked (the spinner in its C loop); `current` the one marked current
// (0: none).  Returns the main thread's block.
const ParsedThread &check_live(const ParsedTraceback &tb, const Target &target,
			       unsigned long current, const std::string &text)
{
	INFO("dump:\n" << text);
	CHECK(tb.unparsed.empty());
	REQUIRE(tb.threads.size() == target.threads().size());
	const ParsedThread *main = nullptr;
	std::set<unsigned long> seen;
	for (const auto &t : tb.threads) {
		const TargetThread *tt = target.by_pthread(t.pthread);
		INFO("thread 0x" << std::hex << t.pthread);
		REQUIRE(tt != nullptr);
		CHECK(seen.insert(t.pthread).second);
		CHECK(t.current == (t.pthread == current));
		if (tt->role == "main") {
			main = &t;
			continue;
		}
		auto ours = frames_in(t.frames, "tests/targets/crash.c");
		FrameList want = parked(tt->role);
		REQUIRE(ours.size() >= 2);
		CHECK(ours.front() == want.front());
		CHECK(ours.back().first == "worker_main");
	}
	REQUIRE(main != nullptr);
	return *main;
}

unsigned long main_pthread(const Target &t)
{
	for (const auto &x : t.threads())
		if (x.role == "main")
			return x.pthread;
	return 0;
}

char proc_state(pid_t pid)
{
	std::string stat = read_file("/proc/" + std::to_string(pid) + "/stat");
	size_t at = stat.rfind(')');
	return at == std::string::npos || at + 2 >= stat.size() ? '?' : stat[at + 2];
}

} // namespace

TEST_CASE("--dump of a native process: every thread, a spinning one sampled in its C loop, "
	  "the same frames as gdb, and the target is never stopped",
	  "[e2e][live][dump]")
{
	Target target("wait", 4, {"--spinners", "1"});
	// The spinner is on a CPU, or preempted (then its saved registers are
	// right): dump until one dump has had to sample it, checking each (on
	// a loaded host it is on a CPU at few of them).
	bool sampled = false;
	std::string text;
	ParsedTraceback tb;
	for (int attempt = 0; attempt < 40 && !sampled; attempt++) {
		std::string out = temp_path("dump.txt"), err = temp_path("err.txt");
		SpawnOptions o;
		o.stderr_path = err;
		pid_t fh = spawn(
			{fh_bpf_path(), "-p", std::to_string(target.pid()), "--dump", "-o", out, "-v"}, o);
		auto st = wait_exit(fh, kGuardMs);
		REQUIRE(st);
		text = read_file(out);
		std::string diag = read_file(err);
		unlink(out.c_str());
		unlink(err.c_str());
		INFO("diagnostics:\n" << diag);
		REQUIRE(WIFEXITED(*st));
		CHECK(WEXITSTATUS(*st) == 0);
		sampled = contains(diag, ", 1 running threads sampled in ");
		// Alive, and running: never stopped.
		CHECK(kill(target.pid(), 0) == 0);
		CHECK(proc_state(target.pid()) != 'T');
		CHECK(proc_state(target.pid()) != 't');

		tb = parse_traceback(text, false);
		const ParsedThread &main = check_live(tb, target, main_pthread(target), text);
		CHECK(tb.threads.front().current); // the main thread, as if it asked
		auto ours = frames_in(main.frames, "tests/targets/crash.c");
		REQUIRE(ours.size() >= 2);
		CHECK(ours.front() == std::make_pair(std::string("wait_for_kill"), mark().at("wait")));
		CHECK(ours.back().first == "main");
	}
	CHECK(sampled);

	// gdb, attached now (it stops the target; fh-bpf did not), sees the
	// same frames for every thread: the spinner is on its one-line loop.
	auto gdb = gdb_frames_of(target.pid());
	for (const auto &t : tb.threads) {
		INFO("thread 0x" << std::hex << t.pthread << "\n" << text);
		auto it = gdb.find(t.pthread);
		REQUIRE(it != gdb.end());
		CHECK(frames_in(t.frames, "tests/targets/crash.c") == it->second);
	}
}

TEST_CASE("--dump of 200 threads through a ring sized for 64: the iterator waits for room, "
	  "nothing is lost",
	  "[e2e][live][dump]")
{
	Target target("wait", 200);
	std::string out = temp_path("dump.txt"), err = temp_path("err.txt");
	SpawnOptions o;
	o.stderr_path = err;
	pid_t fh = spawn({fh_bpf_path(), "-p", std::to_string(target.pid()), "--dump", "-o", out}, o);
	auto st = wait_exit(fh, kGuardMs);
	REQUIRE(st);
	std::string text = read_file(out), diag = read_file(err);
	unlink(out.c_str());
	unlink(err.c_str());
	INFO("diagnostics:\n" << diag);
	REQUIRE(WIFEXITED(*st));
	CHECK(WEXITSTATUS(*st) == 0);
	// Nothing lost, nothing to say but the headline that names the dump.
	CHECK(diag == "fh-bpf: pid " + std::to_string(target.pid()) +
			      " (crash): dump on demand, 200 threads\n");
	ParsedTraceback tb = parse_traceback(text, false);
	check_live(tb, target, main_pthread(target), text);
}

TEST_CASE("--timeout 0.5 --repeat over a 2.2-second native target: exactly 4 dumps",
	  "[e2e][live][timeout]")
{
	Target target("linger", 3, {"--spinners", "1"});
	Watcher watcher(target.pid(), {"--timeout", "0.5", "--repeat"});
	target.go(); // the target sleeps 2.2 s, then exits 0
	int tst = target.wait();
	CHECK(WIFEXITED(tst));
	CHECK(WEXITSTATUS(tst) == 0);
	CHECK(watcher.wait() == 0);
	std::string text = watcher.output();
	INFO("output:\n" << text << "\ndiagnostics:\n" << watcher.diagnostics());
	auto dumps = split_dumps(without_notes(text), "Timeout (");
	REQUIRE(dumps.size() == 4);
	for (const auto &d : dumps) {
		ParsedTraceback tb = parse_traceback(d);
		CHECK(tb.header == "Timeout (0:00:00.500000)!");
		const ParsedThread &main = check_live(tb, target, 0, d);
		auto ours = frames_in(main.frames, "tests/targets/crash.c");
		REQUIRE_FALSE(ours.empty());
		CHECK(ours.front() == std::make_pair(std::string("linger"), mark().at("linger")));
	}
	CHECK(contains(watcher.diagnostics(), "fh-bpf: target exited: pid " +
						       std::to_string(target.pid()) +
						       ", 4 events printed; none dropped\n"));
}

TEST_CASE("--timeout --exit: the target is terminated after the first dump, and told so",
	  "[e2e][live][timeout]")
{
	Target target("linger", 2);
	Watcher watcher(target.pid(), {"--timeout", "0.5", "--exit"});
	target.go();
	int tst = target.wait();
	REQUIRE(WIFSIGNALED(tst));
	CHECK(WTERMSIG(tst) == SIGKILL);
	CHECK(watcher.wait() == 0);
	std::string text = watcher.output();
	INFO("output:\n" << text << "\ndiagnostics:\n" << watcher.diagnostics());
	auto dumps = split_dumps(without_notes(text), "Timeout (");
	REQUIRE(dumps.size() == 1);
	check_live(parse_traceback(dumps[0]), target, 0, dumps[0]);
	CHECK(contains(watcher.diagnostics(),
		       "fh-bpf: --exit: terminated pid " + std::to_string(target.pid()) +
			       " (SIGKILL) after the timeout dump\n"));
}

TEST_CASE("--timeout --repeat keeps fatal-signal capture on", "[e2e][live][timeout]")
{
	Target target("segv", 3);
	Watcher watcher(target.pid(), {"--timeout", "0.2", "--repeat"});
	// After the first timeout's dump, the target faults.
	REQUIRE(watcher.wait_for_diagnostic("): timeout, 3 threads"));
	target.go();
	int st = target.wait();
	REQUIRE(WIFSIGNALED(st));
	CHECK(WTERMSIG(st) == SIGSEGV);
	CHECK(watcher.wait() == 3);
	std::string text = without_notes(watcher.output());
	INFO(text);
	CHECK_FALSE(split_dumps(text, "Timeout (").empty());
	auto fatal = split_dumps(text, "Fatal error: ");
	REQUIRE(fatal.size() == 1);
	ParsedTraceback tb = parse_traceback(fatal[0].substr(0, fatal[0].find("Timeout (")));
	CHECK(tb.header == "Fatal error: Segmentation fault");
	CHECK(tb.threads.size() == 3);
	CHECK(tb.threads.front().current);
}

TEST_CASE("SIGUSR1 sent to fh-bpf dumps the target now; -o appends every dump",
	  "[e2e][live][demand]")
{
	Target target("wait", 3, {"--spinners", "1"});
	Watcher watcher(target.pid(), {"-v"});
	for (int round = 1; round <= 2; round++) {
		REQUIRE(kill(watcher.pid(), SIGUSR1) == 0);
		REQUIRE(watcher.wait_for_diagnostic("fh-bpf: capture: "));
		watcher.forget_diagnostics();
	}
	std::string text = watcher.output();
	auto dumps = split_dumps(without_notes(text), "Current thread ");
	REQUIRE(dumps.size() == 2);
	for (const auto &d : dumps)
		check_live(parse_traceback(d, false), target, main_pthread(target), d);
	CHECK(kill(target.pid(), 0) == 0);
	target.go();
	CHECK(WIFEXITED(target.wait()));
	CHECK(watcher.wait() == 0);
}

TEST_CASE("--signal: a native target with a SIGUSR1 handler is dumped at each signal, in the "
	  "thread that receives it, and keeps running",
	  "[e2e][live][usr1]")
{
	Target target("usr1", 3);
	Watcher watcher(target.pid(), {"-v"});
	CHECK_FALSE(contains(watcher.diagnostics(), "does not handle"));
	for (int round = 1; round <= 2; round++) {
		REQUIRE(kill(target.pid(), SIGUSR1) == 0);
		REQUIRE(watcher.wait_for_diagnostic("fh-bpf: capture: "));
		watcher.forget_diagnostics();
		// The target's handler ran, and it goes on serving.
		target.go();
		CHECK(target.next_report_line() == "ack " + std::to_string(round));
	}
	std::string text = watcher.output();
	INFO("output:\n" << text);
	auto dumps = split_dumps(without_notes(text), "Current thread ");
	REQUIRE(dumps.size() == 2);
	for (const auto &d : dumps) {
		ParsedTraceback tb = parse_traceback(d, false);
		const ParsedThread &main = check_live(tb, target, main_pthread(target), d);
		auto ours = frames_in(main.frames, "tests/targets/crash.c");
		REQUIRE_FALSE(ours.empty());
		// In its read, or (the signal may come before it is back there
		// after answering the previous line) writing its answer.
		CHECK(ours.front().first == "serve_usr1");
		CHECK(ours.front().second >= mark().at("serve_signals"));
		CHECK(ours.front().second <= mark().at("serve_signals") + 2);
	}
	target.send("q");
	CHECK(WIFEXITED(target.wait()));
	CHECK(watcher.wait() == 0);
}

TEST_CASE("Python: --timeout 0.5 --repeat prints the four dumps faulthandler.dump_traceback_later "
	  "writes, byte for byte",
	  "[e2e][python][live][timeout]")
{
	for (const auto &py : python_interpreters()) {
		INFO(py.path);
		PyTarget target(py, "timeout", 10);
		Watcher watcher(target.pid(), {"--timeout", "0.5", "--repeat"});
		target.go(); // its own dump_traceback_later(0.5, repeat=True), 2.2 s asleep
		int st = target.wait();
		CHECK(WIFEXITED(st));
		CHECK(watcher.wait() == 0);
		CHECK(split_dumps(target.faulthandler_output(), "Timeout (").size() == 4);
		CHECK(split_dumps(without_notes(watcher.output()), "Timeout (").size() == 4);
		check_same_as_faulthandler(target, watcher);
	}
}

TEST_CASE("Python: SIGUSR1 sent to fh-bpf prints what faulthandler.dump_traceback prints from "
	  "the main thread",
	  "[e2e][python][live][demand]")
{
	for (const auto &py : python_interpreters()) {
		INFO(py.path);
		PyTarget target(py, "dump", 10);
		Watcher watcher(target.pid(), {"-v"});
		target.go();
		REQUIRE(target.next_line() == "dumped");
		REQUIRE(kill(watcher.pid(), SIGUSR1) == 0);
		REQUIRE(watcher.wait_for_diagnostic("fh-bpf: capture: "));
		check_same_as_faulthandler(target, watcher);
		target.go();
		CHECK(WIFEXITED(target.wait()));
		CHECK(watcher.wait() == 0);
	}
}

TEST_CASE("Python: --signal on a target that does not handle SIGUSR1: warned, dumped as "
	  "dump_traceback would, then terminated by it",
	  "[e2e][python][live][usr1]")
{
	for (const auto &py : python_interpreters()) {
		INFO(py.path);
		PyTarget target(py, "dump", 10);
		Watcher watcher(target.pid(), {"--signal", "SIGUSR1"});
		CHECK(contains(watcher.diagnostics(), "does not handle SIGUSR1"));
		target.go();
		REQUIRE(target.next_line() == "dumped");
		REQUIRE(kill(target.pid(), SIGUSR1) == 0);
		int st = target.wait();
		REQUIRE(WIFSIGNALED(st));
		CHECK(WTERMSIG(st) == SIGUSR1);
		CHECK(watcher.wait() == 0);
		check_same_as_faulthandler(target, watcher);
		CHECK(contains(watcher.diagnostics(), "its default action terminates it"));
	}
}
