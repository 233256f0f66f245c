// Incident records of real crashes: --format json read back by Python's
// json module, and --log-dir files (0600, named by time, comm, pid and
// signal, holding exactly what was printed).  Oracles: the pthread ids the
// target reports, marker lines, the target's own faulthandler text.
#include <catch2/catch.hpp>

#include "harness.h"
#include "python_interpreters.h"

#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <regex>

using namespace fhtest;

namespace {

std::string canonical(const std::string &path)
{
	char buf[PATH_MAX];
	return realpath(path.c_str(), buf) ? std::string(buf) : path;
}

const std::map<std::string, int> &mark()
{
	static const auto m = markers(source_dir() + "/tests/targets/crash.c");
	return m;
}

} // namespace

TEST_CASE("--format json and --log-dir on a native crash: the record says what the text says, "
	  "and more",
	  "[e2e][incident]")
{
	Target target("segv", 4);
	std::string dir = temp_path("incidents");
	Watcher watcher(target.pid(), {"--format", "json", "--log-dir", dir});
	target.go();
	int st = target.wait();
	REQUIRE(WIFSIGNALED(st));
	REQUIRE(watcher.wait() == 3);
	std::string out = watcher.output();
	INFO(out << "\n" << watcher.diagnostics());
	// One line, one object.
	REQUIRE(std::count(out.begin(), out.end(), '\n') == 1);
	std::string pid = std::to_string(target.pid());
	CHECK(python_json(out, "d['schema'], d['trigger'], d['pid'], d['comm'], d['tid']") ==
	      "(3, 'fatal_signal', " + pid + ", 'crash', " + pid + ")");
	CHECK(python_json(out, "d['signal']") ==
	      "{'number': 11, 'name': 'SIGSEGV', 'code': 'SEGV_MAPERR', 'delivered': True, "
	      "'address': '0x0'}");
	CHECK(python_json(out, "d['exe']") == "'" + canonical(crash_path()) + "'");
	CHECK(python_json(out, "d['cmdline'][0], d['cmdline'][-1]") ==
	      "('" + crash_path() + "', 'segv')");
	CHECK(python_json(out, "d['uid'], d['sender'], d['python']") == "(0, None, None)");
	CHECK(python_json(out, "d['lost']['complete'], d['lost']['threads_lost']") == "(True, 0)");
	// Every thread, with the pthread id the target reported.
	std::string pthreads = python_json(out, "sorted(int(t['pthread'], 16) for t in d['threads'])");
	std::vector<unsigned long> want;
	for (const auto &t : target.threads())
		want.push_back(t.pthread);
	std::sort(want.begin(), want.end());
	std::string want_text = "[";
	for (size_t i = 0; i < want.size(); i++)
		want_text += (i ? ", " : "") + std::to_string(want[i]);
	CHECK(pthreads == want_text + "]");
	// The current thread's frames: the fault's chain, at the marker lines.
	CHECK(python_json(out, "[(f['function'], f['line']) for t in d['threads'] if t['current'] "
			       "for f in t['frames'] if f['function'] in ('crash_leaf', 'crash_mid')]") ==
	      "[('crash_leaf', " + std::to_string(mark().at("leaf")) + "), ('crash_mid', " +
		      std::to_string(mark().at("mid")) + ")]");
	CHECK(python_json(out, "all(f['kind'] == 'native' and f['address'].startswith('0x') "
			       "for t in d['threads'] for f in t['frames'])") == "True");
	// The faulthandler text is in the record.
	CHECK(python_json(out, "d['text'].splitlines()[0]") == "'Fatal error: Segmentation fault'");

	// The log directory: one file, 0600, named for it, holding that line.
	auto files = files_in(dir);
	REQUIRE(files.size() == 1);
	static const std::regex name_re(R"(^\d{8}T\d{6}\.\d{6}Z-crash-(\d+)-SIGSEGV\.json$)");
	std::smatch m;
	REQUIRE(std::regex_match(files[0], m, name_re));
	CHECK(m[1] == pid);
	struct stat sb;
	REQUIRE(stat((dir + "/" + files[0]).c_str(), &sb) == 0);
	CHECK((sb.st_mode & 07777) == 0600);
	CHECK(read_file(dir + "/" + files[0]) == out);
	remove_dir(dir);
}

TEST_CASE("--log-dir in text format: one .txt file per incident, the printed traceback "
	  "after the headline that names it",
	  "[e2e][incident]")
{
	Target target("abort", 2);
	std::string dir = temp_path("incidents");
	Watcher watcher(target.pid(), {"--log-dir", dir});
	target.go();
	target.wait();
	REQUIRE(watcher.wait() == 3);
	auto files = files_in(dir);
	REQUIRE(files.size() == 1);
	CHECK(files[0].find("-crash-" + std::to_string(target.pid()) + "-SIGABRT.txt") !=
	      std::string::npos);
	// A file read alone says whose incident it is; the watch's own output
	// stays faulthandler's text.
	std::string pid = std::to_string(target.pid());
	CHECK(read_file(dir + "/" + files[0]) == "fh-bpf: pid " + pid + " (crash), thread " + pid +
							  " (crash): SIGABRT (SI_TKILL)\n" +
							  watcher.output());
	CHECK(watcher.output().rfind("Fatal error: Aborted\n", 0) == 0);
	remove_dir(dir);
}

TEST_CASE("Python: --format json carries faulthandler's text and its frames, structured",
	  "[e2e][incident][python]")
{
	for (const auto &py : python_interpreters()) {
		INFO(py.path);
		PyTarget target(py, "segv", 10);
		Watcher watcher(target.pid(), {"--format", "json"});
		target.go();
		target.wait();
		REQUIRE(watcher.wait() == 3);
		std::string out = watcher.output();
		std::string theirs = target.faulthandler_output();
		REQUIRE_FALSE(theirs.empty());
		// The text is faulthandler's, byte for byte; the frames say the same.
		CHECK(python_json(out, "d['text']") ==
		      python_json("[" + python_json_literal(theirs) + "]", "d[0]"));
		std::string rebuilt = python_json(
			out, "''.join('  File \"%s\", line %s in %s\\n' % (f['file'], f['line'], "
			     "f['function']) for t in d['threads'] if t['current'] for f in "
			     "t['frames'])");
		std::string current_block;
		{
			size_t at = theirs.find("Current thread ");
			REQUIRE(at != std::string::npos);
			size_t start = theirs.find('\n', at) + 1;
			size_t end = theirs.find("\n\n", start);
			current_block = theirs.substr(start, end == std::string::npos ? std::string::npos
										   : end - start + 1);
		}
		CHECK(rebuilt == python_json("[" + python_json_literal(current_block) + "]", "d[0]"));
		CHECK(python_json(out, "d['python'].startswith('3.'), d['trigger']") ==
		      "(True, 'fatal_signal')");
	}
}
