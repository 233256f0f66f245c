// CPython's own Lib/test/test_faulthandler.py judging fh-bpf, one case per
// interpreter: tests/python/faulthandler_suite.py runs the interpreter's own
// test case with each child under fh-bpf instead of its own faulthandler
// (enable() -> the watch, dump_traceback() -> --dump, dump_traceback_later()
// -> --timeout/--repeat, register() -> --signal), its own regexes and
// equalities judging fh-bpf's output.  What cannot apply is reported with
// its reason by the driver; here every case must pass, be not applicable,
// or be skipped by the test itself (Windows).
#include <catch2/catch.hpp>

#include "harness.h"
#include "python_interpreters.h"

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace fhtest;

namespace
{

// A build's test_faulthandler, or (Debian's ships none) that of a pyenv
// build of the same minor version: the directory holding package 'test'.
std::string test_dir_for(const PythonBuild &py)
{
	auto lib_of = [](const PythonBuild &b) {
		std::string prefix = b.path.substr(0, b.path.rfind("/bin/"));
		return prefix + "/lib/python3." + std::to_string(b.minor);
	};
	struct stat st;
	if (stat((lib_of(py) + "/test/test_faulthandler.py").c_str(), &st) == 0)
		return "";
	for (const auto &b : python_interpreters())
		if (b.minor == py.minor && !b.libpython.empty() &&
		    stat((lib_of(b) + "/test/test_faulthandler.py").c_str(), &st) == 0)
			return lib_of(b);
	FAIL("no test_faulthandler.py for " << py.path);
	return "";
}

void run_suite(const std::string &version)
{
	const PythonBuild *py = nullptr;
	for (const auto &b : python_interpreters())
		if (b.version == version)
			py = &b;
	REQUIRE(py);
	std::vector<std::string> argv = {py->path,
					 source_dir() + "/tests/python/faulthandler_suite.py",
					 "--fh-bpf", fh_bpf_path()};
	if (std::string dir = test_dir_for(*py); !dir.empty())
		argv.insert(argv.end(), {"--test-dir", dir});
	std::string out = temp_path("suite.json"), err = temp_path("suite.err");
	SpawnOptions o;
	o.stdout_path = out;
	o.stderr_path = err;
	pid_t pid = spawn(argv, o);
	auto st = wait_exit(pid, 15 * 60 * 1000);
	if (!st) {
		kill(pid, SIGKILL);
		waitpid(pid, nullptr, 0);
	}
	std::string json = read_file(out), errors = read_file(err);
	unlink(out.c_str());
	unlink(err.c_str());
	INFO(py->path << "\nthe driver's stderr:\n" << errors);
	REQUIRE(st);
	REQUIRE(WIFEXITED(*st));
	REQUIRE(WEXITSTATUS(*st) == 0);
	CHECK(python_json(json, "d['python']") == "'" + version + "'");
	// Every failure, with the test's own message.
	std::string failures = python_json(
	    json, "'\\n'.join('%s: %s: %s' % (c['name'], c['outcome'], c['detail']) for c in "
		  "d['cases'] if c['outcome'] not in ('passed', 'not applicable', 'skipped'))");
	INFO("failed cases:\n" << failures);
	CHECK(failures == "''");
	// What ran: crashes of every signal, the timeout's and the user
	// signal's dumps, dump_traceback(all_threads=True), the extension
	// modules (3.10+).
	std::string must =
	    "['test_read_null', 'test_sigsegv', 'test_sigabrt', 'test_sigfpe', "
	    "'test_gil_released', 'test_stack_overflow', 'test_enable_file', "
	    "'test_dump_traceback_threads', 'test_dump_traceback_later', "
	    "'test_dump_traceback_later_repeat', 'test_register_threads'" +
	    std::string(py->minor >= 10 ? ", 'test_gc', 'test_dump_ext_modules'" : "") + "]";
	CHECK(python_json(json, "[n for n in " + must +
				    " if n not in [c['name'] for c in "
				    "d['cases'] if c['outcome'] == 'passed']]") == "[]");
	// Nothing is left out silently: each case not run says why.
	CHECK(python_json(json, "all(c['detail'] for c in d['cases'] if c['outcome'] in "
				"('not applicable', 'skipped'))") == "True");
}

} // namespace

#define FAULTHANDLER_SUITE(version)                                                                \
	TEST_CASE("CPython " version "'s own test_faulthandler judges fh-bpf",                     \
		  "[e2e][python][faulthandler-suite]")                                             \
	{                                                                                          \
		run_suite(version);                                                                \
	}

FAULTHANDLER_SUITE("3.6.15")
FAULTHANDLER_SUITE("3.7.16")
FAULTHANDLER_SUITE("3.8.18")
FAULTHANDLER_SUITE("3.9.18")
FAULTHANDLER_SUITE("3.10.13")
FAULTHANDLER_SUITE("3.11.7")
FAULTHANDLER_SUITE("3.11.2")
FAULTHANDLER_SUITE("3.12.1")
FAULTHANDLER_SUITE("3.13.0")
