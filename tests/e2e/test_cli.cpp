// Bad input gets a clear message and a non-zero exit, nothing else; a
// watch that ends without a crash exits 0; Ctrl-C detaches and leaves the
// target running.
#include <catch2/catch.hpp>

#include "harness.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sstream>
#include <ctime>

using namespace fhtest;

TEST_CASE("--help and --version", "[cli]")
{
	FhRun h = run_fh({"--help"});
	CHECK(h.status == 0);
	CHECK(contains(h.out, "Usage: fh-bpf -p PID"));
	CHECK(contains(h.out, "Exit status:"));
	FhRun v = run_fh({"--version"});
	CHECK(v.status == 0);
	CHECK(v.out.rfind("fh-bpf ", 0) == 0);
}

TEST_CASE("invalid command lines exit 2 with a reason", "[cli]")
{
	for (auto args : std::vector<std::vector<std::string>>{
		     {},
		     {"-p", "x"},
		     {"-p", "1", "--stack-size", "1"},
		     {"-p", "1", "--max-threads", "0"},
		     {"-p", "1", "--what"},
		     {"-p", "1", "--max-threads", "65536", "--stack-size", "256K"}}) {
		FhRun r = run_fh(args);
		INFO(r.err);
		CHECK(r.status == 2);
		CHECK(r.err.rfind("fh-bpf: ", 0) == 0);
		CHECK(contains(r.err, "--help"));
		CHECK(r.out.empty());
	}
}

TEST_CASE("targets that cannot be traced are refused clearly", "[cli]")
{
	SECTION("no such process")
	{
		// A pid that existed and was reaped.
		pid_t gone = fork();
		if (gone == 0)
			_exit(0);
		waitpid(gone, nullptr, 0);
		FhRun r = run_fh({"-p", std::to_string(gone)});
		CHECK(r.status == 1);
		CHECK(contains(r.err, "no such process: " + std::to_string(gone)));
	}
	SECTION("a kernel thread")
	{
		// Any kernel thread: PF_KTHREAD (0x00200000) in /proc/PID/stat.
		std::string kthread;
		for (int pid = 2; pid < 4096 && kthread.empty(); pid++) {
			std::string stat = read_file("/proc/" + std::to_string(pid) + "/stat");
			size_t close = stat.rfind(')');
			if (close == std::string::npos)
				continue;
			std::istringstream rest(stat.substr(close + 2));
			std::string field;
			unsigned long flags = 0;
			for (int i = 0; i < 6 && rest >> field; i++) {
			}
			if (rest >> flags && (flags & 0x00200000))
				kthread = std::to_string(pid);
		}
		REQUIRE_FALSE(kthread.empty());
		FhRun r = run_fh({"-p", kthread});
		CHECK(r.status == 1);
		CHECK(contains(r.err, "is a kernel thread"));
	}
	SECTION("a zombie")
	{
		pid_t z = fork();
		if (z == 0)
			_exit(0);
		// Wait for the exit without reaping: a zombie.
		siginfo_t si{};
		REQUIRE(waitid(P_PID, z, &si, WEXITED | WNOWAIT) == 0);
		FhRun r = run_fh({"-p", std::to_string(z)});
		waitpid(z, nullptr, 0);
		CHECK(r.status == 1);
		CHECK(contains(r.err, "zombie"));
	}
	SECTION("without privileges")
	{
		Target t("wait", 1);
		FhRun r = run_fh({"-p", std::to_string(t.pid())}, "", 65534);
		CHECK(r.status == 4);
		CHECK(contains(r.err, "insufficient privileges"));
		CHECK(contains(r.err, "CAP_BPF"));
	}
}

TEST_CASE("-o refuses a symbolic link and creates files 0600", "[cli]")
{
	Target t("wait", 1);
	std::string victim = temp_path("victim");
	std::string link = temp_path("link");
	{
		int fd = open(victim.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
		REQUIRE(fd >= 0);
		REQUIRE(write(fd, "keep", 4) == 4);
		close(fd);
	}
	REQUIRE(symlink(victim.c_str(), link.c_str()) == 0);
	FhRun r = run_fh({"-p", std::to_string(t.pid()), "-o", link});
	CHECK(r.status == 1);
	CHECK(contains(r.err, "symbolic link"));
	CHECK(read_file(victim) == "keep");
	unlink(link.c_str());
	unlink(victim.c_str());

	std::string fifo = temp_path("fifo");
	REQUIRE(mkfifo(fifo.c_str(), 0600) == 0);
	FhRun f = run_fh({"-p", std::to_string(t.pid()), "-o", fifo});
	CHECK(f.status == 1);
	CHECK(contains(f.err, "not a regular file"));
	unlink(fifo.c_str());

	std::string fresh = temp_path("fresh");
	{
		Watcher w(t.pid(), {"-o", fresh}); // the later -o wins
		struct stat st;
		REQUIRE(stat(fresh.c_str(), &st) == 0);
		CHECK((st.st_mode & 07777) == 0600);
	}
	unlink(fresh.c_str());
}

TEST_CASE("Ctrl-C detaches and leaves the target running; a clean exit is status 0",
	  "[cli]")
{
	Target t("wait", 2);
	std::string out = temp_path("out"), err = temp_path("err");
	Pipe ready;
	SpawnOptions o;
	o.fds = {{3, ready.write}};
	o.stderr_path = err;
	pid_t fh = spawn({fh_bpf_path(), "-p", std::to_string(t.pid()), "--ready-fd", "3"}, o);
	ready.close_write();
	REQUIRE(read_line(ready.read, kGuardMs) == std::string("ready"));
	REQUIRE(kill(fh, SIGINT) == 0);
	auto st = wait_exit(fh, kGuardMs);
	REQUIRE(st);
	REQUIRE(WIFEXITED(*st));
	CHECK(WEXITSTATUS(*st) == 0);
	// The target is alive and not stopped.
	CHECK(kill(t.pid(), 0) == 0);
	std::string stat = read_file("/proc/" + std::to_string(t.pid()) + "/stat");
	auto state = stat.substr(stat.rfind(')') + 2, 1);
	CHECK((state == "S" || state == "R"));
	CHECK(contains(read_file(err), "fh-bpf: detached from pid " + std::to_string(t.pid()) +
					       ", 0 events printed; none dropped\n"));
	unlink(err.c_str());

	// The target ends normally: fh-bpf ends with it, status 0.
	Watcher w(t.pid());
	t.go(); // "wait" mode: a byte makes the target return from main
	int tst = t.wait();
	CHECK(WIFEXITED(tst));
	CHECK(w.wait() == 0);
	CHECK(w.output().empty());
	CHECK(contains(w.diagnostics(), "fh-bpf: target exited: pid " + std::to_string(t.pid()) +
						", 0 events printed; none dropped\n"));
}

namespace {

// True once process `watcher` holds a pidfd for `target` (fh-bpf opens it
// just before it loads its BPF programs).
bool holds_pidfd(pid_t watcher, pid_t target)
{
	std::string dir = "/proc/" + std::to_string(watcher) + "/fd";
	for (int fd = 3; fd < 64; fd++) {
		char link[256];
		std::string path = dir + "/" + std::to_string(fd);
		ssize_t n = readlink(path.c_str(), link, sizeof(link) - 1);
		if (n <= 0)
			continue;
		link[n] = 0;
		if (std::string(link) != "anon_inode:[pidfd]")
			continue;
		std::string info = read_file("/proc/" + std::to_string(watcher) + "/fdinfo/" +
					     std::to_string(fd));
		if (contains(info, "Pid:\t" + std::to_string(target) + "\n"))
			return true;
	}
	return false;
}

} // namespace

TEST_CASE("a target that exits while fh-bpf attaches: a clear error", "[cli]")
{
	Target t("wait", 2);
	std::string err = temp_path("err");
	SpawnOptions o;
	o.stderr_path = err;
	pid_t fh = spawn({fh_bpf_path(), "-p", std::to_string(t.pid())}, o);
	// Poll (bounded) until fh-bpf holds its pidfd, then end the target
	// while the BPF programs load.
	bool attaching = false;
	for (int i = 0; i < 20000 && !attaching; i++) {
		attaching = holds_pidfd(fh, t.pid());
		if (!attaching) {
			struct timespec tick = {0, 100000};
			nanosleep(&tick, nullptr);
		}
	}
	REQUIRE(attaching);
	t.go();
	auto st = wait_exit(fh, kGuardMs);
	REQUIRE(st);
	REQUIRE(WIFEXITED(*st));
	std::string text = read_file(err);
	unlink(err.c_str());
	INFO(text);
	CHECK(WEXITSTATUS(*st) == 1);
	CHECK(contains(text, "exited while fh-bpf was attaching"));
	CHECK(WIFEXITED(t.wait()));
}

TEST_CASE("make install: the binary and a systemd unit that systemd accepts, whose command "
	  "line fh-bpf accepts",
	  "[cli][install]")
{
	std::string prefix = temp_path("prefix"), units = temp_path("units");
	int status = -1;
	std::string out = run_capture({"/usr/bin/make", "-s", "-C", source_dir(), "install",
				       "OUT=" + build_dir(), "DESTDIR=", "PREFIX=" + prefix,
				       "SYSTEMD_UNIT_DIR=" + units},
				      &status, true);
	INFO(out);
	REQUIRE(status == 0);
	std::string unit = units + "/fh-bpf.service";
	std::string text = read_file(unit);
	REQUIRE_FALSE(text.empty());
	CHECK(text.find("ExecStart=" + prefix + "/bin/fh-bpf --system-wide") != std::string::npos);
	CHECK(text.find("@BINDIR@") == std::string::npos);
	// systemd's own check (with the installed binary in place): nothing to say.
	std::string verify =
		run_capture({"/usr/bin/systemd-analyze", "verify", unit}, &status, true);
	INFO(verify);
	CHECK(status == 0);
	CHECK(verify.find("fh-bpf.service") == std::string::npos);
	// Its command line is one fh-bpf takes.
	size_t at = text.find("\nExecStart=");
	REQUIRE(at != std::string::npos);
	std::string line = text.substr(at + 11, text.find('\n', at + 1) - at - 11);
	std::istringstream words(line);
	std::vector<std::string> args;
	for (std::string w; words >> w;)
		args.push_back(w);
	REQUIRE(args.size() > 1);
	args.erase(args.begin());
	args.push_back("--help");
	FhRun r = run_fh(args);
	CHECK(r.status == 0);
	args.pop_back();
	args.push_back("--bogus-option");
	r = run_fh(args);
	CHECK(r.status == 2);
	CHECK(r.err.find("unknown option '--bogus-option'") != std::string::npos);
}
