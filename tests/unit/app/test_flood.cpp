// Flood control of the host agent: which program an incident is of (the
// executable, the script an interpreter runs), and what is let through,
// held back and summarised per program and per process.
#include <catch2/catch.hpp>

#include "app/flood.h"

using namespace fh;

namespace {

constexpr uint64_t kSec = 1000000000ull;

const std::string kPy = "/usr/bin/python3.11";

std::string python(std::vector<std::string> argv) { return program_identity(kPy, argv, "python3"); }

FloodControl::Subject subject(pid_t pid, const std::string &program, const std::string &comm,
			      std::vector<std::string> cmdline = {})
{
	return {pid, program, comm, std::move(cmdline)};
}

} // namespace

TEST_CASE("flood control's programs: the executable, and what an interpreter runs",
	  "[fleet][flood]")
{
	// A native program is its executable, whatever its arguments.
	CHECK(program_identity("/usr/bin/crash", {"./crash", "--auto", "segv"}, "crash") ==
	      "/usr/bin/crash");
	// Python: the script as given, after options with and without values.
	CHECK(python({"python3", "a.py", "x"}) == kPy + " a.py");
	CHECK(python({"python3", "-u", "-X", "dev", "-W", "ignore", "path/s.py", "-m", "x"}) ==
	      kPy + " path/s.py");
	CHECK(python({"python3", "-Wignore", "-OO", "-bb", "s.py"}) == kPy + " s.py");
	CHECK(python({"python3", "--check-hash-based-pycs", "always", "s.py"}) == kPy + " s.py");
	CHECK(python({"python3", "--", "-odd.py"}) == kPy + " -odd.py");
	// A module, however its name is given.
	CHECK(python({"python3", "-m", "pkg.mod", "arg"}) == kPy + " -m pkg.mod");
	CHECK(python({"python3", "-mjson.tool", "f"}) == kPy + " -m json.tool");
	CHECK(python({"python3", "-Im", "http.server", "8000"}) == kPy + " -m http.server");
	CHECK(python({"python3", "-m"}) == kPy + " -m");
	// Inline code is "-c", whatever the code; standard input "-".
	CHECK(python({"python3", "-c", "import os; os.abort()"}) == kPy + " -c");
	CHECK(python({"python3", "-Ic", "x"}) == kPy + " -c");
	CHECK(python({"python3", "-cprint(1)"}) == kPy + " -c");
	CHECK(python({"python3", "-E", "-"}) == kPy + " -");
	// Nothing run (a REPL): the interpreter alone.
	CHECK(python({"python3"}) == kPy);
	CHECK(python({"python3", "-i"}) == kPy);
	// A script started by its #! line; a virtual environment's python.
	CHECK(python({"/usr/bin/python3", "/opt/tool/run.py", "--flag"}) ==
	      kPy + " /opt/tool/run.py");
	CHECK(python({"/srv/venv/bin/python", "manage.py", "runserver"}) == kPy + " manage.py");
	CHECK(program_identity("/usr/bin/pypy3.10", {"pypy3", "x.py"}, "pypy3") ==
	      "/usr/bin/pypy3.10 x.py");
	// Renamed (setproctitle): that name.
	CHECK(python({"gunicorn: worker [app]"}) == kPy + " gunicorn: worker [app]");
	// No executable known: the first argument stands for it; nothing: the name.
	CHECK(program_identity("", {"python3", "-m", "svc"}, "python3") == "python3 -m svc");
	CHECK(program_identity("", {"/opt/bin/app", "x"}, "app") == "/opt/bin/app");
	CHECK(program_identity("", {}, "crash") == "[crash]");
	CHECK(program_identity("/usr/bin/python3.11", {}, "python3") == kPy);

	// Perl, Ruby, Node.js, shells: their own options.
	CHECK(program_identity("/usr/bin/perl", {"perl", "-w", "-I", "lib", "x.pl"}, "perl") ==
	      "/usr/bin/perl x.pl");
	CHECK(program_identity("/usr/bin/perl5.36.0", {"perl", "-le", "print 1"}, "perl") ==
	      "/usr/bin/perl5.36.0 -e");
	CHECK(program_identity("/usr/bin/ruby3.1", {"ruby", "-rjson", "-I", "lib", "app.rb"},
			       "ruby") == "/usr/bin/ruby3.1 app.rb");
	CHECK(program_identity("/usr/bin/node",
			       {"node", "--require", "dotenv/config", "--inspect=9229", "srv.js"},
			       "node") == "/usr/bin/node srv.js");
	CHECK(program_identity("/usr/bin/node", {"node", "--eval", "x"}, "node") ==
	      "/usr/bin/node --eval");
	CHECK(program_identity("/usr/bin/node", {"node", "-p", "1+1"}, "node") ==
	      "/usr/bin/node -p");
	CHECK(program_identity("/usr/bin/bash", {"bash", "-e", "-o", "pipefail", "deploy.sh"},
			       "bash") == "/usr/bin/bash deploy.sh");
	CHECK(program_identity("/usr/bin/bash", {"bash", "+o", "posix", "--rcfile", "rc", "x.sh"},
			       "bash") == "/usr/bin/bash x.sh");
	CHECK(program_identity("/usr/bin/dash", {"sh", "-c", "exec crash"}, "sh") ==
	      "/usr/bin/dash -c");
	CHECK(program_identity("/usr/bin/dash", {"/bin/sh", "-ec", "x"}, "sh") ==
	      "/usr/bin/dash -c");
	// Names that only start like an interpreter's are programs of their own.
	for (const char *exe : {"/usr/bin/perlbrew", "/usr/bin/node_exporter",
				"/usr/bin/shellcheck", "/usr/bin/rubocop"})
		CHECK(program_identity(exe, {exe, "x.py"}, "x") == exe);

	CHECK(command_line_text({"python3", "a b.py", "it's", "", "\x1b[2J"}) ==
	      "python3 'a b.py' 'it'\\''s' '' \\x1b[2J");
}

TEST_CASE("flood control: per program and per process, refilled in time, all held back counted",
	  "[fleet][flood]")
{
	FloodControl f({2, 60 * kSec}, {3, 60 * kSec});
	uint64_t t = 1000 * kSec;
	auto svc = [](pid_t pid) { return subject(pid, "/usr/bin/svc", "svc", {"svc", "-d"}); };
	// One process: its own limit (2) first.
	CHECK(f.admit(svc(10), "SIGSEGV", t));
	CHECK(f.admit(svc(10), "SIGSEGV", t));
	CHECK_FALSE(f.admit(svc(10), "SIGSEGV", t));
	// Another process of the same program: the program's limit (3).
	CHECK(f.admit(svc(11), "SIGSEGV", t));
	CHECK_FALSE(f.admit(svc(12), "SIGABRT", t));
	CHECK(f.admit(subject(13, "/usr/bin/other", "svc"), "SIGSEGV", t)); // programs apart
	CHECK(f.suppressed_total() == 2);
	CHECK(f.take_summaries(t + kSec, false).empty()); // the window has not passed
	// A third of the window gives the program one incident again.
	CHECK(f.admit(svc(14), "SIGSEGV", t + 20 * kSec));
	CHECK_FALSE(f.admit(svc(15), "SIGSEGV", t + 20 * kSec));
	auto s = f.take_summaries(t + 61 * kSec, false);
	REQUIRE(s.size() == 1);
	CHECK(s[0].program == "/usr/bin/svc");
	CHECK(s[0].comm == "svc");
	CHECK(s[0].suppressed == 3);
	CHECK(s[0].pids == std::vector<pid_t>{10, 12, 15});
	CHECK(s[0].what.at("SIGSEGV") == 2);
	CHECK(s[0].what.at("SIGABRT") == 1);
	CHECK(FloodControl::describe(s[0]) ==
	      "held back 3 incidents of /usr/bin/svc (SIGABRT 1, SIGSEGV 2) over 20.0 s: pids 10, "
	      "12, 15; command line: svc -d");
	CHECK(f.take_summaries(t + 62 * kSec, true).empty());

	// Ten pids and three command lines are named; "..." only when there
	// were more.
	FloodControl g({1, 60 * kSec}, {0, kSec});
	for (pid_t p = 100; p < 110; p++) {
		auto who = subject(p, "/bin/loop", "loop", {"loop", std::to_string(p % 3)});
		CHECK(g.admit(who, "SIGSEGV", t));
		CHECK_FALSE(g.admit(who, "SIGSEGV", t));
	}
	auto ten = g.take_summaries(t, true);
	REQUIRE(ten.size() == 1);
	CHECK_THAT(FloodControl::describe(ten[0]),
		   Catch::EndsWith("pids 100, 101, 102, 103, 104, 105, 106, 107, 108, 109; command "
				   "lines: loop 1 | loop 2 | loop 0"));
	CHECK(g.admit(subject(110, "/bin/loop", "loop"), "SIGSEGV", t));
	for (pid_t p = 100; p <= 110; p++)
		CHECK_FALSE(g.admit(subject(p, "/bin/loop", "loop", {"loop", std::to_string(p)}),
				    "SIGSEGV", t));
	CHECK_THAT(FloodControl::describe(g.take_summaries(t, true).at(0)),
		   Catch::EndsWith(
			   ", 109, ...; command lines: loop 100 | loop 101 | loop 102 | ..."));

	// Programs and pids that keep changing (any user may start scripts of
	// any name) cost a window's worth of buckets, not more: a full one goes.
	FloodControl churn({5, 60 * kSec}, {5, 60 * kSec});
	for (int i = 0; i < 20000; i++)
		CHECK(churn.admit(subject(1000 + i, "n" + std::to_string(i), "n"), "SIGSEGV", t));
	CHECK(churn.buckets() == 40000);
	for (int i = 0; i < 100; i++)
		CHECK(churn.admit(subject(50000 + i, "m" + std::to_string(i), "m"), "SIGSEGV",
				  t + 61 * kSec));
	CHECK(churn.buckets() == 200);

	FloodControl none({0, kSec}, {0, kSec});
	for (int i = 0; i < 1000; i++)
		CHECK(none.admit(subject(1, "x", "x"), "SIGSEGV", t));
}

TEST_CASE("flood control: a crash-looping script does not hold back another script of the same "
	  "interpreter",
	  "[fleet][flood]")
{
	// The defaults: 10 a minute per program, 3 per process.
	FloodControl f({3, 60 * kSec}, {10, 60 * kSec});
	uint64_t t = 1000 * kSec;
	auto run = [&](pid_t pid, std::vector<std::string> argv) {
		return subject(pid, program_identity(kPy, argv, "python3"), "python3", argv);
	};
	int admitted = 0;
	for (pid_t p = 200; p < 215; p++)
		admitted += f.admit(run(p, {"python3", "/srv/a.py"}), "SIGABRT", t + p);
	CHECK(admitted == 10);
	// Another script, a module and inline code: each a program of its own.
	CHECK(f.admit(run(300, {"python3", "/srv/b.py"}), "SIGABRT", t + 300));
	CHECK(f.admit(run(301, {"python3", "-m", "svc"}), "SIGKILL", t + 301));
	CHECK(f.admit(run(302, {"python3", "-c", "import os; os.abort()"}), "SIGABRT", t + 302));
	// The same script run another way is the same program.
	CHECK_FALSE(f.admit(run(303, {"/usr/bin/python3", "-u", "/srv/a.py", "--again"}), "SIGSEGV",
			    t + 303));
	auto s = f.take_summaries(t + 400, true);
	REQUIRE(s.size() == 1);
	CHECK(s[0].program == kPy + " /srv/a.py");
	CHECK(s[0].suppressed == 6);
	CHECK(FloodControl::describe(s[0]) ==
	      "held back 6 incidents of /usr/bin/python3.11 /srv/a.py (SIGABRT 5, SIGSEGV 1) over "
	      "0.0 s: pids 210, 211, 212, 213, 214, 303; command lines: python3 /srv/a.py | "
	      "/usr/bin/python3 -u /srv/a.py --again");
}
