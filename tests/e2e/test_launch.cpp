// Launch mode: fh-bpf [options] -- CMD [ARGS...] starts CMD already
// watched, forwards its standard streams and exits with its status.
// Oracles: marker lines and gdb's backtrace of the same program, the exit
// statuses a shell reports, and for Python the interpreter's own
// faulthandler (-X faulthandler) writing to the stderr fh-bpf forwards.
#include <catch2/catch.hpp>

#include "harness.h"
#include "python_interpreters.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace fhtest;

namespace {

struct Run {
	int status = -1; // fh-bpf's exit code
	std::string out, err, file;
};

// fh-bpf -o FILE [extra] -- argv, with `input` on its standard input.
Run launch(const std::vector<std::string> &extra, const std::vector<std::string> &argv,
	   const std::string &input = "")
{
	std::string file = temp_path("launch.txt");
	std::vector<std::string> args = {"-o", file};
	args.insert(args.end(), extra.begin(), extra.end());
	args.push_back("--");
	args.insert(args.end(), argv.begin(), argv.end());
	FhRun r = run_fh(args, input);
	Run out{r.status, r.out, r.err, read_file(file)};
	unlink(file.c_str());
	return out;
}

const std::map<std::string, int> &mark()
{
	static const auto m = markers(source_dir() + "/tests/targets/crash.c");
	return m;
}

} // namespace

TEST_CASE("launch mode: a crash in main's first instructions is caught, fully symbolized, and "
	  "its status forwarded",
	  "[e2e][launch]")
{
	// "early" faults first thing in main: a millisecond after exec.
	Run r = launch({}, {crash_path(), "--auto", "--threads", "1", "early"});
	INFO("traceback:\n" << r.file << "\nstderr:\n" << r.err);
	CHECK(r.status == 128 + SIGSEGV);
	ParsedTraceback tb = parse_traceback(without_notes(r.file));
	CHECK(tb.header == "Fatal error: Segmentation fault");
	REQUIRE(tb.threads.size() == 1);
	CHECK(tb.threads[0].current);
	auto ours = frames_in(tb.threads[0].frames, "tests/targets/crash.c");
	REQUIRE(ours.size() >= 3);
	CHECK(ours[0].first == "poke");
	CHECK(ours[1].first == "crash_leaf");
	CHECK(ours[2].first == "crash_mid");
	CHECK(ours.back() == std::make_pair(std::string("main"), mark().at("main_early")));
	// libc, mapped by the dynamic loader after exec, is symbolized too.
	bool libc = false;
	for (const auto &f : tb.threads[0].frames)
		libc |= f.function == "__libc_start_call_main";
	CHECK(libc);
	// gdb running the same program stops at the same frames (it shows no
	// frame for the inlined poke() at the faulting instruction).
	auto gdb = gdb_frames_by_role("early", 1);
	REQUIRE(gdb.size() == 1);
	REQUIRE(gdb.begin()->second.size() >= 3);
	CHECK(is_subsequence(gdb.begin()->second, ours));
	CHECK(contains(r.err, "killed by SIGSEGV, 1 event printed; none dropped"));
}

TEST_CASE("five threads faulting at once: one incident, the others counted", "[e2e][launch]")
{
	// Each fault after the first waits for the siglock the first one's
	// capture holds, then raises its own SIGSEGV before the process dies.
	Run r = launch({}, {crash_path(), "--auto", "--threads", "1", "segvall"});
	INFO(r.err << r.file);
	CHECK(r.status == 128 + SIGSEGV);
	CHECK(contains(r.err, "killed by SIGSEGV, 1 event printed; none dropped"));
	size_t fatal = 0;
	for (size_t at = r.file.find("Fatal error: Segmentation fault"); at != std::string::npos;
	     at = r.file.find("Fatal error: Segmentation fault", at + 1))
		fatal++;
	CHECK(fatal == 1);
}

TEST_CASE("launch mode: standard streams forwarded, exit statuses as a shell reports them",
	  "[e2e][launch]")
{
	Run cat = launch({}, {"/bin/cat"}, "hello\nworld\n");
	CHECK(cat.status == 0);
	CHECK(cat.out == "hello\nworld\n");
	CHECK(cat.file.empty());

	Run sh = launch({}, {"/bin/sh", "-c", "echo to-stderr >&2; exit 7"});
	CHECK(sh.status == 7);
	CHECK(contains(sh.err, "to-stderr\n"));
	CHECK(contains(sh.err, "status 7, 0 events printed; none dropped"));

	Run term = launch({}, {"/bin/sh", "-c", "kill -TERM $$"});
	CHECK(term.status == 128 + SIGTERM);

	Run missing = launch({}, {"/nonexistent/program"});
	CHECK(missing.status == 127);
	CHECK(contains(missing.err, "cannot run /nonexistent/program: No such file or directory"));
	Run not_exec = launch({}, {"/etc/passwd"});
	CHECK(not_exec.status == 126);
	CHECK(contains(not_exec.err, "Permission denied"));
}

TEST_CASE("launch mode: --timeout 0.5 --repeat over a 2.2-second command prints exactly 4 "
	  "dumps; --exit ends it after the first",
	  "[e2e][launch][timeout]")
{
	Run r = launch({"--timeout", "0.5", "--repeat"},
		       {crash_path(), "--auto", "--threads", "3", "linger"});
	INFO("traceback:\n" << r.file << "\nstderr:\n" << r.err);
	CHECK(r.status == 0);
	auto dumps = split_dumps(without_notes(r.file), "Timeout (");
	CHECK(dumps.size() == 4);
	for (const auto &d : dumps) {
		ParsedTraceback tb = parse_traceback(d);
		CHECK(tb.header == "Timeout (0:00:00.500000)!");
		CHECK(tb.threads.size() == 3);
		for (const auto &t : tb.threads)
			CHECK_FALSE(t.current);
	}

	Run once = launch({"--timeout", "0.5", "--exit"},
			  {crash_path(), "--auto", "--threads", "2", "linger"});
	INFO("traceback:\n" << once.file << "\nstderr:\n" << once.err);
	CHECK(once.status == 128 + SIGKILL);
	CHECK(split_dumps(without_notes(once.file), "Timeout (").size() == 1);
	CHECK(contains(once.err, "(SIGKILL) after the timeout dump"));
}

namespace {

// A Python program that enables its own faulthandler (to FAULT_FILE), reads a
// line from LINE_FIFO, then crashes: PY -c CODE FAULT_FILE LINE_FIFO.
const char *const kCrashOnLine = "import ctypes, faulthandler, sys\n"
				 "faulthandler.enable(open(sys.argv[1], 'w'), all_threads=True)\n"
				 "open(sys.argv[2]).readline()\n"
				 "def crash():\n"
				 "    ctypes.string_at(0)\n"
				 "crash()\n";

struct Fifo {
	std::string path = temp_path("line.fifo");
	int fd = -1;
	Fifo()
	{
		REQUIRE(mkfifo(path.c_str(), 0600) == 0);
		fd = open(path.c_str(), O_RDWR); // never blocks
		REQUIRE(fd >= 0);
	}
	~Fifo()
	{
		close(fd);
		unlink(path.c_str());
	}
	void line() { REQUIRE(write(fd, "x\n", 2) == 2); }
};

} // namespace

TEST_CASE("launch mode through a wrapper that execs Python: the programs are rebuilt for the "
	  "interpreter, and its crash matches its faulthandler",
	  "[e2e][launch][python][exec]")
{
	for (const auto &py : python_interpreters()) {
		INFO(py.path);
		Fifo fifo;
		std::string fault = temp_path("fault.txt");
		// sh is no Python: fh-bpf learns it at the exec.
		Watcher w(0, {"--", "/bin/sh", "-c", "exec \"$0\" -c \"$1\" \"$2\" \"$3\"", py.path,
			      kCrashOnLine, fault, fifo.path});
		REQUIRE(w.wait_for_diagnostic("Python frames from now on"));
		fifo.line();
		CHECK(w.wait() == 128 + SIGSEGV);
		check_same_as_faulthandler(read_file(fault), w);
		unlink(fault.c_str());
	}
}

TEST_CASE("a Python program that execs its own interpreter again: placed anew, Python frames",
	  "[e2e][launch][python][exec]")
{
	// PY -c STAGE STAGE FAULT_FILE READY_FIFO 1 LINE_FIFO: stage 1 execs
	// sys.executable as stage 2, which says so on READY_FIFO, then crashes
	// on a line from LINE_FIFO, its faulthandler on.
	const std::string stage = "import ctypes, faulthandler, os, sys\n"
				  "if sys.argv[4] == '1':\n"
				  "    os.execv(sys.executable, [sys.executable, '-c', sys.argv[1], sys.argv[1], "
				  "sys.argv[2], sys.argv[3], '2', sys.argv[5]])\n"
				  "faulthandler.enable(open(sys.argv[2], 'w'), all_threads=True)\n"
				  "with open(sys.argv[3], 'w') as ready: ready.write('stage2\\n')\n"
				  "open(sys.argv[5]).readline()\n"
				  "def crash():\n"
				  "    ctypes.string_at(0)\n"
				  "crash()\n";
	for (const auto &py : python_interpreters()) {
		INFO(py.path);
		Fifo ready, line;
		std::string fault = temp_path("fault.txt");
		Watcher w(0, {"--", py.path, "-c", stage, stage, fault, ready.path, "1", line.path});
		auto said = read_line(ready.fd, kGuardMs);
		REQUIRE(said);
		CHECK(*said == "stage2");
		line.line();
		CHECK(w.wait() == 128 + SIGSEGV);
		check_same_as_faulthandler(read_file(fault), w);
		unlink(fault.c_str());
	}
}

TEST_CASE("-p on a process that execs Python: Python frames after the exec",
	  "[e2e][python][exec]")
{
	const PythonBuild &py = python_interpreters().front();
	Fifo go, line;
	std::string fault = temp_path("fault.txt");
	pid_t sh = spawn({"/bin/sh", "-c", "read x < \"$4\"; exec \"$0\" -c \"$1\" \"$2\" \"$3\"",
			  py.path, kCrashOnLine, fault, line.path, go.path});
	Watcher w(sh);
	go.line(); // the shell execs Python
	REQUIRE(w.wait_for_diagnostic("Python frames from now on"));
	line.line();
	auto st = wait_exit(sh, kGuardMs);
	REQUIRE(st);
	CHECK(WIFSIGNALED(*st));
	CHECK(w.wait() == 3);
	check_same_as_faulthandler(read_file(fault), w);
	unlink(fault.c_str());
}

TEST_CASE("launch mode: a Python program crashing at once gets the Python traceback its own "
	  "faulthandler prints",
	  "[e2e][launch][python]")
{
	// The interpreter's own faulthandler writes to the stderr fh-bpf
	// forwards; fh-bpf's traceback goes to its file.
	const std::string code = "import ctypes, threading, _json\n"
				 "def crash():\n"
				 "    ctypes.string_at(0)\n"
				 "crash()\n";
	for (const auto &py : python_interpreters()) {
		INFO(py.path);
		Run r = launch({}, {py.path, "-X", "faulthandler", "-c", code});
		CHECK(r.status == 128 + SIGSEGV);
		std::string theirs = without_notes(r.err);
		std::string ours = without_notes(r.file);
		INFO("faulthandler:\n" << theirs << "\nfh-bpf:\n" << ours << "\nstderr:\n" << r.err);
		REQUIRE_FALSE(theirs.empty());
		CHECK(ours == theirs);
	}
}
