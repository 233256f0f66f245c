// A local user against the root agent's text: names a process gives itself
// (its comm, its threads' names, the name of a process that kills another)
// and files planted where fh-bpf is told to write.  The attacker runs as
// nobody; the agent as root.  What is wanted: no forged line and no terminal
// control in any text output, and no write into a file someone else owns
// or can write.
#include <catch2/catch.hpp>

#include "harness.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>

using namespace fhtest;

namespace {

constexpr uid_t kNobody = 65534;

// 15 bytes, the most a comm holds: a new line that looks like fh-bpf's
// own, and an ESC sequence that erases the line on a terminal.
const std::string kEvilName = "a\nFatal\x1b[2Kxyz";
const std::string kEvilShown = "a\\x0aFatal\\x1b[2Kxyz";

// No byte of a control character but the newline, and no line that does
// not start as fh-bpf's lines and faulthandler's do.
void check_clean(const std::string &what, const std::string &text)
{
	INFO(what << ":\n" << text);
	for (unsigned char c : text)
		CHECK((c >= 0x20 || c == '\n'));
	CHECK(text.find("\nFatal\x1b") == std::string::npos);
	CHECK(text.find('\x1b') == std::string::npos);
	size_t at = 0;
	while (at < text.size()) {
		size_t nl = text.find('\n', at);
		std::string line = text.substr(at, nl == std::string::npos ? std::string::npos : nl - at);
		at = nl == std::string::npos ? text.size() : nl + 1;
		// A forged line would start with the name's second half.
		CHECK(line.rfind("Fatal\x1b", 0) != 0);
		CHECK(line.rfind("xyz", 0) != 0);
	}
}

} // namespace

TEST_CASE("hostile names: a comm, thread names and a killer's name with a newline and ESC "
	  "are escaped in stderr, -o, the log directory and the held-back summary",
	  "[e2e][hostile][system]")
{
	std::string dir = temp_path("incidents");
	Watcher agent(0, {"-a", "--uid", std::to_string(kNobody), "--signals", "SIGTERM",
			  "--log-dir", dir, "--rate-limit", "2/1h"});
	// A crash, then a process killed by another that names itself too.
	Target crasher("segv", 3, {"--name", kEvilName}, kNobody);
	crasher.go();
	int st = crasher.wait();
	REQUIRE((WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV));
	Target victim("wait", 2, {"--name", kEvilName}, kNobody);
	SpawnOptions o;
	o.uid = kNobody;
	pid_t killer = spawn({"/usr/bin/python3", "-c",
			      "import ctypes, os, sys\n"
			      "ctypes.CDLL(None).prctl(15, sys.argv[1].encode('latin-1'), 0, 0, 0)\n"
			      "os.kill(int(sys.argv[2]), 15)\n",
			      std::string("k\nFatal\x1b[2K"), std::to_string(victim.pid())},
			     o);
	auto kst = wait_exit(killer, kGuardMs);
	REQUIRE(kst);
	REQUIRE(*kst == 0);
	st = victim.wait();
	REQUIRE((WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM));
	// A third of the same name is held back by --rate-limit 2: summarised.
	Target held("segv", 1, {"--name", kEvilName}, kNobody);
	held.go();
	held.wait();

	REQUIRE(kill(agent.pid(), SIGTERM) == 0);
	REQUIRE(agent.wait() == 0);
	std::string out = agent.output(), err = agent.diagnostics();
	check_clean("-o", out);
	check_clean("stderr", err);
	auto files = files_in(dir);
	CHECK(files.size() >= 3); // two incidents and the summary
	for (const auto &f : files)
		check_clean(f, read_file(dir + "/" + f));
	// Shown, escaped, where each name is said.
	CHECK(out.find("fh-bpf: pid " + std::to_string(crasher.pid()) + " (" + kEvilShown +
		       "), thread ") != std::string::npos);
	CHECK(out.find("(" + kEvilShown + "): SIGSEGV") != std::string::npos);
	CHECK(out.find("sent by pid " + std::to_string(killer) + " (k\\x0aFatal\\x1b[2K), uid " +
		       std::to_string(kNobody)) != std::string::npos);
	// The summary names the program, and the name in its command line.
	size_t held_at = err.find("fh-bpf: held back 1 incident of ");
	REQUIRE(held_at != std::string::npos);
	std::string held_line = err.substr(held_at, err.find('\n', held_at) - held_at);
	char exe[PATH_MAX];
	REQUIRE(realpath(crash_path().c_str(), exe));
	CHECK(held_line.find("held back 1 incident of " + std::string(exe) + " (SIGSEGV 1)") !=
	      std::string::npos);
	CHECK(held_line.find("; command line: ") != std::string::npos);
	CHECK(held_line.find(" --name " + kEvilShown + " ") != std::string::npos);
	remove_dir(dir);
}

TEST_CASE("-o FILE: a file another user owns, or others can write, or with a second name, is "
	  "refused and left as it was",
	  "[e2e][hostile][cli]")
{
	std::string dir = temp_path("planted");
	REQUIRE(mkdir(dir.c_str(), 01777) == 0);
	REQUIRE(chmod(dir.c_str(), 01777) == 0);
	std::string file = dir + "/out";
	auto plant = [&](uid_t owner, mode_t mode) {
		unlink(file.c_str());
		int fd = open(file.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0600);
		REQUIRE(fd >= 0);
		REQUIRE(write(fd, "mine\n", 5) == 5);
		close(fd);
		REQUIRE(chown(file.c_str(), owner, owner) == 0);
		REQUIRE(chmod(file.c_str(), mode) == 0);
	};
	auto refused = [&](const std::string &why) {
		INFO(why);
		Target target("wait", 1);
		auto run = run_fh({"-p", std::to_string(target.pid()), "-o", file});
		CHECK(run.status == 1);
		CHECK(run.err.find("refusing to write to " + file) != std::string::npos);
		CHECK(read_file(file) == "mine\n");
	};
	SECTION("owned by nobody, mode 0666")
	{
		plant(kNobody, 0666);
		refused("another user's, writable by all");
	}
	SECTION("owned by nobody, mode 0600")
	{
		plant(kNobody, 0600);
		refused("another user's");
	}
	SECTION("root's, writable by its group")
	{
		plant(0, 0620);
		refused("writable by the group");
	}
	SECTION("root's own, with a second name")
	{
		plant(0, 0600);
		std::string other = dir + "/other";
		REQUIRE(link(file.c_str(), other.c_str()) == 0);
		refused("two names");
		unlink(other.c_str());
	}
	SECTION("root's own, mode 0600: appended to")
	{
		plant(0, 0600);
		Target target("wait", 2);
		auto run = run_fh({"-p", std::to_string(target.pid()), "--dump", "-o", file});
		CHECK(run.status == 0);
		INFO(run.err);
		std::string text = read_file(file);
		CHECK(text.rfind("mine\n", 0) == 0);
		CHECK(text.find("(most recent call first):") != std::string::npos);
	}
	unlink(file.c_str());
	rmdir(dir.c_str());
}
