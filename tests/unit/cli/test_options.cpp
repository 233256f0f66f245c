// Command line: every bad value is a usage error with a reason.
#include <catch2/catch.hpp>

#include "util/error.h"
#include "cli/options.h"
#include "cli/usage.h"
#include "unit/cli/usage_status.h"
#include "util/signals.h"

using namespace fh;

TEST_CASE("defaults and accepted spellings", "[options]")
{
	Options o = parse_options({"-p", "123"});
	CHECK(o.pid == 123);
	CHECK(o.stack_size == 16384);
	CHECK(o.max_threads == 256);
	CHECK(o.output.empty());
	CHECK_FALSE(o.verbose);

	o = parse_options({"--pid=42", "-o", "/tmp/x", "--stack-size", "20000", "--max-threads=9",
			   "-v"});
	CHECK(o.pid == 42);
	CHECK(o.output == "/tmp/x");
	CHECK(o.stack_size == 20480); // rounded up to whole pages
	CHECK(o.max_threads == 9);
	CHECK(o.verbose);

	CHECK(parse_options({"-p7", "--stack-size", "64K"}).stack_size == 65536);
	CHECK(parse_options({"-p", "1", "--handled"}).handled);
	CHECK(parse_options({"--help"}).help);
	CHECK(parse_options({"--version"}).version);
}

TEST_CASE("invalid command lines are usage errors", "[options]")
{
	CHECK(usage_status({}) == kExitUsage);
	CHECK(usage_status({"-p"}) == kExitUsage);
	CHECK(usage_status({"-p", "abc"}) == kExitUsage);
	CHECK(usage_status({"-p", "0"}) == kExitUsage);
	CHECK(usage_status({"-p", "-5"}) == kExitUsage);
	CHECK(usage_status({"-p", "99999999999"}) == kExitUsage);
	CHECK(usage_status({"-p", "1", "--stack-size", "100"}) == kExitUsage);
	CHECK(usage_status({"-p", "1", "--stack-size", "1G"}) == kExitUsage);
	CHECK(usage_status({"-p", "1", "--stack-size", "12Q"}) == kExitUsage);
	CHECK(usage_status({"-p", "1", "--max-threads", "0"}) == kExitUsage);
	CHECK(usage_status({"-p", "1", "--max-threads", "1e3"}) == kExitUsage);
	CHECK(usage_status({"-p", "1", "-o", ""}) == kExitUsage);
	CHECK(usage_status({"-p", "1", "--bogus"}) == kExitUsage);
	CHECK(usage_status({"-p", "1", "extra"}) == kExitUsage);
	// More ring buffer than fh-bpf will take from the kernel.
	CHECK(usage_status({"-p", "1", "--max-threads", "8192", "--stack-size", "256K"}) ==
	      kExitUsage);
	CHECK(usage_status({"-p", "1", "--max-threads", "4096", "--stack-size", "16K"}) == -1);
}

TEST_CASE("--timeout, --repeat, --exit and launch mode", "[options]")
{
	Options o = parse_options({"-p", "5", "--timeout", "2", "--repeat", "--exit"});
	CHECK(o.timeout_us == 2000000);
	CHECK(o.repeat);
	CHECK(o.exit_after);
	CHECK(parse_options({"-p", "5", "--timeout=0.5"}).timeout_us == 500000);
	CHECK_FALSE(parse_options({"-p", "5"}).timeout_us);

	o = parse_options({"--timeout", "1", "--", "ls", "-p", "5", "--", "x"});
	CHECK(o.pid == 0);
	CHECK(o.command == std::vector<std::string>{"ls", "-p", "5", "--", "x"});

	CHECK(usage_status({"-p", "5", "--timeout", "0"}) == kExitUsage);
	CHECK(usage_status({"-p", "5", "--timeout", "-1"}) == kExitUsage);
	CHECK(usage_status({"-p", "5", "--timeout", "1e3"}) == kExitUsage);
	CHECK(usage_status({"-p", "5", "--timeout", "2."}) == kExitUsage);
	CHECK(usage_status({"-p", "5", "--timeout", "two"}) == kExitUsage);
	CHECK(usage_status({"-p", "5", "--timeout", ""}) == kExitUsage);
	CHECK(usage_status({"-p", "5", "--timeout", "99999999999999"}) == kExitUsage);
	CHECK(usage_status({"-p", "5", "--repeat"}) == kExitUsage);
	CHECK(usage_status({"-p", "5", "--exit"}) == kExitUsage);
	CHECK(usage_status({"-p", "5", "--dump", "--timeout", "1"}) == kExitUsage);
	CHECK(usage_status({"--dump", "--", "ls"}) == kExitUsage);
	CHECK(usage_status({"-p", "5", "--", "ls"}) == kExitUsage);
	CHECK(usage_status({"--"}) == kExitUsage);
	CHECK(usage_status({"ls"}) == kExitUsage);
}

TEST_CASE("--format, --log-dir and its retention", "[options]")
{
	Options o = parse_options({"-p", "5"});
	CHECK_FALSE(o.json);
	CHECK(o.log_dir.empty());
	o = parse_options({"-p", "5", "--format", "json", "--log-dir", "/var/log/fh", "--log-keep",
			   "10", "--log-max-size", "2M"});
	CHECK(o.json);
	CHECK(o.log_dir == "/var/log/fh");
	CHECK(o.log_keep == 10);
	CHECK(o.log_max_bytes == 2u << 20);
	CHECK(parse_options({"-p", "5", "--format=text"}).json == false);
	CHECK(parse_options({"-p", "5", "--log-dir", "d", "--log-max-size", "1G"}).log_max_bytes ==
	      1ull << 30);
	CHECK(usage_status({"-p", "5", "--format", "xml"}) == kExitUsage);
	CHECK(usage_status({"-p", "5", "--log-dir", ""}) == kExitUsage);
	CHECK(usage_status({"-p", "5", "--log-dir", "d", "--log-keep", "0"}) == kExitUsage);
	CHECK(usage_status({"-p", "5", "--log-dir", "d", "--log-max-size", "100"}) == kExitUsage);
	CHECK(usage_status({"-p", "5", "--log-keep", "5"}) == kExitUsage);
	CHECK(usage_status({"-p", "5", "--dump", "--log-dir", "d"}) == kExitUsage);
	CHECK(usage_status({"-p", "5", "--dump", "--format", "json"}) == -1);
}

TEST_CASE("seconds as faulthandler takes them, and its timeout header", "[options]")
{
	uint64_t us = 0;
	CHECK((parse_seconds("2", us) && us == 2000000));
	CHECK((parse_seconds("0.5", us) && us == 500000));
	CHECK((parse_seconds(".25", us) && us == 250000));
	CHECK((parse_seconds("1.000001", us) && us == 1000001));
	// Past the microsecond: rounded up, never down to zero.
	CHECK((parse_seconds("0.0000001", us) && us == 1));
	CHECK((parse_seconds("1.0000000", us) && us == 1000000));
	CHECK_FALSE(parse_seconds("0.0000000", us));
	CHECK_FALSE(parse_seconds("0", us));
	CHECK_FALSE(parse_seconds(".", us));
	CHECK_FALSE(parse_seconds("1.2.3", us));
	CHECK_FALSE(parse_seconds("+1", us));

	// faulthandler's spelling: hours not padded, microseconds only when set.
	CHECK(timeout_header(2000000) == "Timeout (0:00:02)!\n");
	CHECK(timeout_header(500000) == "Timeout (0:00:00.500000)!\n");
	CHECK(timeout_header(1250000) == "Timeout (0:00:01.250000)!\n");
	CHECK(timeout_header(3723000001ull) == "Timeout (1:02:03.000001)!\n");
	CHECK(timeout_header(90000ull * 1000000) == "Timeout (25:00:00)!\n");
}

TEST_CASE("signal names and codes", "[signals]")
{
	CHECK(signal_abbrev(11) == "SIGSEGV");
	CHECK(si_code_name(11, 1) == "SEGV_MAPERR");
	CHECK(si_code_name(7, 2) == "BUS_ADRERR");
	CHECK(si_code_name(8, 1) == "FPE_INTDIV");
	CHECK(si_code_name(4, 2) == "ILL_ILLOPN");
	CHECK(si_code_name(6, -6) == "SI_TKILL");
	CHECK(si_code_name(11, 0) == "SI_USER");
	CHECK(signal_has_fault_address(11, 1));
	CHECK_FALSE(signal_has_fault_address(11, 0));
	CHECK(parse_signal("SIGUSR1") == 10);
	CHECK(parse_signal("usr1") == 10);
	CHECK(parse_signal("15") == 15);
	CHECK_FALSE(parse_signal("SIGNOPE"));
	CHECK_FALSE(parse_signal("0"));
}

namespace {

// The reason a command line is refused with; "" when it is taken.
std::string usage_reason(const std::vector<std::string> &args)
{
	try {
		parse_options(args);
	} catch (const Error &e) {
		return e.what();
	}
	return "";
}

bool refused_with(const std::vector<std::string> &args, const std::string &reason)
{
	return usage_reason(args) == reason + " (see fh-bpf --help)";
}

} // namespace

TEST_CASE("each option in a word of its own, spelled in full", "[options]")
{
	// What getopt alone would take, fh-bpf refuses as it always has.
	CHECK(refused_with({"-vp1"}, "unknown option '-vp1'"));
	CHECK(refused_with({"-p1", "-hv"}, "unknown option '-hv'"));
	CHECK(refused_with({"--pi=3"}, "unknown option '--pi=3'"));
	CHECK(refused_with({"-p1", "--verb"}, "unknown option '--verb'"));
	CHECK(refused_with({"-p1", "--s"}, "unknown option '--s'"));
	CHECK(refused_with({"--pid="}, "unknown option '--pid='"));
	CHECK(refused_with({"-p1", "--help=x"}, "unknown option '--help=x'"));
	CHECK(refused_with({"-pabc"}, "unknown option '-pabc'"));
	CHECK(refused_with({"-p1", "-ofile"}, "unknown option '-ofile'"));
	CHECK(refused_with({"-p1", "-"}, "unknown option '-'"));
	CHECK(refused_with({"--pi"}, "unknown option '--pi'"));
	CHECK(refused_with({"--pid"}, "option --pid needs a value"));
	CHECK(refused_with({"-p1", "-o"}, "option -o needs a value"));
	CHECK(refused_with({"-p", "1", "extra"},
			   "unexpected argument 'extra' (to start a command under fh-bpf, put it after --)"));
	// An exact name wins over a longer one it begins.
	CHECK(parse_options({"-p1", "--signal", "USR2"}).user_signal == 12);
	CHECK(parse_options({"-p1", "--signals=TERM"}).extra_signals == 1ull << 14);
	// A value after "=", also for a short option; -p's number also right after it.
	CHECK(parse_options({"-p=12", "-o=f"}).pid == 12);
	CHECK(parse_options({"-p=12", "-o=f"}).output == "f");
	CHECK(parse_options({"-p007"}).pid == 7);
	// A value is the next word, whatever it looks like.
	CHECK(refused_with({"-p", "--dump"}, "invalid PID '--dump'"));
	CHECK(parse_options({"-p1", "-o", "--", "--dump"}).output == "--");
	CHECK(parse_options({"-p1", "-o", "--", "--dump"}).dump);
	// --help ends the reading: what follows is not looked at, what comes
	// before is.
	CHECK(parse_options({"-h", "--bogus"}).help);
	CHECK(refused_with({"--bogus", "-h"}, "unknown option '--bogus'"));
}

TEST_CASE("a command line read many times over reads the same", "[options]")
{
	// getopt keeps its place between calls; every parse starts afresh, even
	// after one that stopped in the middle of a word.
	for (int i = 0; i < 100; i++) {
		CHECK(usage_status({"-vp1"}) == kExitUsage);
		CHECK(usage_status({"-p"}) == kExitUsage);
		Options o = parse_options({"-v", "--timeout", "1", "--", "ls", "-p", "5"});
		CHECK((o.verbose && o.timeout_us == 1000000 && o.pid == 0));
		CHECK(o.command == std::vector<std::string>{"ls", "-p", "5"});
		o = parse_options({"-p", "9", "--dump"});
		CHECK((o.pid == 9 && o.dump && o.command.empty()));
	}
}

TEST_CASE("a first argument that names a command", "[options]")
{
	CHECK(usage_status({"incidents"}) == kExitUsage);
	CHECK(usage_status({"incidents", "list"}) == kExitUsage);
	std::string why = usage_reason({"incidents", "show", "x"});
	CHECK(why.rfind("unknown command 'incidents'", 0) == 0);
	CHECK(why.find("put it after --") != std::string::npos);
	// Only as the first argument; after "--" it is a program to start.
	CHECK(refused_with({"-p", "1", "incidents"}, "unexpected argument 'incidents' (to start a "
						     "command under fh-bpf, put it after --)"));
	Options o = parse_options({"--", "incidents", "list"});
	CHECK(o.command == std::vector<std::string>{"incidents", "list"});
	CHECK(o.subcommand.empty());
	// Any other word is what it always was.
	CHECK(refused_with({"ls"},
			   "unexpected argument 'ls' (to start a command under fh-bpf, put it after --)"));
}

TEST_CASE("every option in --help is read, and every option read is in --help", "[options]")
{
	std::string help = usage_text();
	for (const OptionRow &row : watch_options()) {
		if (row.kind != OptionRow::option)
			continue;
		std::string name = std::string("--") + row.name;
		INFO(name);
		std::vector<std::string> args{name};
		if (row.arg)
			args.push_back("x");
		// Taken, or refused for its value or its company: never unknown,
		// never an option no part of the parser reads.
		std::string why;
		CHECK_NOTHROW(why = usage_reason(args));
		CHECK(why.find("unknown option") == std::string::npos);
		CHECK(help.find(name + (row.arg ? std::string(" ") + row.arg : "")) !=
		      std::string::npos);
		if (row.id < kLongOnly) {
			std::string letter = std::string("-") + static_cast<char>(row.id) + ", " + name;
			CHECK(help.find(letter) != std::string::npos);
			args[0] = std::string("-") + static_cast<char>(row.id);
			CHECK(usage_reason(args).find("unknown option") == std::string::npos);
		}
	}
}
