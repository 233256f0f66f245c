// The agent against local users who make it work for them: a program that
// maps a fake libpython whose structures loop and whose names are as long
// as faulthandler allows (amplification), sys dicts that cost every read,
// thousands of lure files, a lease on a file the agent would open.  Each
// attacker runs as uid 65534 (nobody), started by the test; the agent is
// the real fh-bpf -a with its BPF programs.  Synchronised by pipes and the
// agent's own lines; the timeouts only guard.
#include <catch2/catch.hpp>

#include "harness.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <cstdlib>
#include <chrono>
#include <cstring>
#include <fstream>
#include <memory>
#include <set>
#include <sstream>
#include <thread>

using namespace fhtest;

namespace {

constexpr uid_t kNobody = 65534;

std::string hostile_path() { return build_dir() + "/targets/hostile_py"; }
// Absolute: the agent names the file as the process mapped it.
std::string fake_lib()
{
	char buf[PATH_MAX];
	std::string path = build_dir() + "/targets/libpython3.11.so";
	REQUIRE(realpath(path.c_str(), buf));
	return buf;
}

// hostile_py MODE ARGS... as nobody, its stdin and stdout on pipes; it
// says "ready" once it has mapped what it maps.
class Hostile {
public:
	explicit Hostile(const std::vector<std::string> &args)
	{
		SpawnOptions o;
		o.fds = {{0, in_.read}, {1, out_.write}};
		o.uid = kNobody;
		std::vector<std::string> argv = {hostile_path()};
		argv.insert(argv.end(), args.begin(), args.end());
		pid_ = spawn(argv, o);
		in_.close_read();
		out_.close_write();
		auto line = read_line(out_.read, kGuardMs);
		REQUIRE(line);
		REQUIRE(*line == "ready");
	}
	~Hostile()
	{
		in_.close_write();
		if (!reaped_ && pid_ > 0) {
			if (!wait_exit(pid_, 2000)) {
				kill(pid_, SIGKILL);
				wait_exit(pid_, kGuardMs);
			}
		}
	}
	pid_t pid() const { return pid_; }
	void send(const std::string &s) { REQUIRE(write(in_.write, s.data(), s.size()) == (ssize_t)s.size()); }
	std::string line()
	{
		auto l = read_line(out_.read, kGuardMs);
		REQUIRE(l);
		return *l;
	}
	int wait()
	{
		auto st = wait_exit(pid_, kGuardMs);
		REQUIRE(st);
		reaped_ = true;
		return *st;
	}

private:
	pid_t pid_ = -1;
	bool reaped_ = false;
	Pipe in_, out_;
};

// A /proc/PID/status field in kB.
uint64_t status_kb(pid_t pid, const std::string &field)
{
	std::istringstream in(read_file("/proc/" + std::to_string(pid) + "/status"));
	std::string line;
	while (std::getline(in, line))
		if (line.rfind(field + ":", 0) == 0)
			return std::stoull(line.substr(field.size() + 1));
	FAIL("no " << field << " in /proc/" << pid << "/status");
	return 0;
}

// utime + stime of a process, in seconds.
double cpu_seconds(pid_t pid)
{
	std::string stat = read_file("/proc/" + std::to_string(pid) + "/stat");
	std::istringstream in(stat.substr(stat.rfind(')') + 2));
	std::string field;
	unsigned long long utime = 0, stime = 0;
	for (int i = 3; i <= 15 && in >> field; i++) {
		if (i == 14)
			utime = std::stoull(field);
		if (i == 15)
			stime = std::stoull(field);
	}
	return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

std::string pid_line(pid_t pid) { return "fh-bpf: pid " + std::to_string(pid) + " ("; }

// A syslog daemon's socket: counts the records and bytes sent to it.
class SyslogCounter {
public:
	SyslogCounter() : path_(temp_path("syslog.sock"))
	{
		fd_ = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		REQUIRE(fd_ >= 0);
		struct sockaddr_un a = {};
		a.sun_family = AF_UNIX;
		std::strncpy(a.sun_path, path_.c_str(), sizeof(a.sun_path) - 1);
		REQUIRE(bind(fd_, reinterpret_cast<struct sockaddr *>(&a), sizeof(a)) == 0);
		reader_ = std::thread([this] {
			static char buf[256 * 1024];
			for (;;) {
				ssize_t n = recv(fd_, buf, sizeof(buf), 0);
				if (n <= 0)
					break;
				records_++;
				bytes_ += static_cast<uint64_t>(n);
			}
		});
	}
	~SyslogCounter()
	{
		shutdown(fd_, SHUT_RDWR);
		reader_.join();
		close(fd_);
		unlink(path_.c_str());
	}
	const std::string &path() const { return path_; }
	uint64_t bytes() const { return bytes_; }

private:
	std::string path_;
	int fd_ = -1;
	std::thread reader_;
	std::atomic<uint64_t> records_{0}, bytes_{0};
};

std::string stop(Watcher &agent)
{
	REQUIRE(kill(agent.pid(), SIGTERM) == 0);
	REQUIRE(agent.wait() == 0);
	return agent.diagnostics();
}

} // namespace

TEST_CASE("hostile: a fake libpython with looping chains and huge names costs a bounded, "
	  "fast incident that pushes no other out",
	  "[e2e][hostile][amplify]")
{
	std::string dir = temp_path("hostile-logs");
	REQUIRE(mkdir(dir.c_str(), 0700) == 0);
	SyslogCounter syslog;
	// 4 MiB of log directory: a file takes 512 KiB at most.
	Watcher agent(0, {"-a", "-v", "--comm", "crash", "--comm", "hostile_py", "--log-dir", dir,
			  "--log-max-size", "4M", "--syslog-socket", syslog.path()});
	uint64_t hwm_start = status_kb(agent.pid(), "VmHWM");

	// An earlier incident in the log directory.
	pid_t early = start_crasher("segv", 1, kNobody);
	REQUIRE(wait_exit(early, kGuardMs));
	REQUIRE(agent.wait_for_diagnostic("timing: pid " + std::to_string(early) + ","));
	auto before = files_in(dir);
	REQUIRE(before.size() == 1);

	Hostile target({"crash", fake_lib()});
	REQUIRE(agent.wait_for_diagnostic("Python 3.11 in " + fake_lib()));
	auto t0 = std::chrono::steady_clock::now();
	target.send("go\n");
	int st = target.wait();
	CHECK((WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV));
	REQUIRE(agent.wait_for_diagnostic("timing: pid " + std::to_string(target.pid()) + ","));
	std::chrono::duration<double> took = std::chrono::steady_clock::now() - t0;
	uint64_t hwm = status_kb(agent.pid(), "VmHWM");
	std::string diag = stop(agent);
	INFO(diag.substr(0, 4000));
	UNSCOPED_INFO("incident in " << took.count() << " s; agent VmHWM " << hwm_start
				     << " kB at start, " << hwm << " kB after; syslog "
				     << syslog.bytes() << " bytes");

	// Fast: seconds, not minutes; small: tens of MB, not a gigabyte.
	CHECK(took.count() < 10);
	CHECK(hwm < hwm_start + 64 * 1024);
	CHECK(hwm < 256 * 1024);

	// The incident: bounded, cut visibly, said implausible.
	auto incidents = split_dumps(agent.output(), "fh-bpf: pid ");
	const std::string *inc = nullptr;
	for (const auto &i : incidents)
		if (i.rfind(pid_line(target.pid()), 0) == 0)
			inc = &i;
	REQUIRE(inc);
	CHECK(inc->size() < (1u << 20) + 8192);
	CHECK(inc->find("Fatal Python error: Segmentation fault\n\n"
			"Thread 0x0000000000001000 (most recent call first):\n"
			"  File \"\\U0010ffff") != std::string::npos);
	CHECK(inc->find("fh-bpf: the interpreter's structures are implausible (") !=
	      std::string::npos);
	CHECK(inc->find("frame chain loops") != std::string::npos);
	CHECK(inc->find("fh-bpf: the Python traceback was cut at ") != std::string::npos);
	CHECK(diag.find("incidents cut to their size limit") != std::string::npos);

	// Syslog: one incident's parts, not a hundred megabytes.
	CHECK(syslog.bytes() < 3u << 20);

	// The log directory: the earlier incident is still there, the new one
	// within its share, saying it is cut and implausible.
	auto after = files_in(dir);
	CHECK(after.size() == 2);
	CHECK(std::find(after.begin(), after.end(), before[0]) != after.end());
	for (const auto &f : after) {
		struct stat s;
		REQUIRE(stat((dir + "/" + f).c_str(), &s) == 0);
		CHECK(static_cast<uint64_t>(s.st_size) <= (4u << 20) / 8);
		if (f != before[0]) {
			std::string text = read_file(dir + "/" + f);
			CHECK(text.find("fh-bpf: this file was cut to an eighth of --log-max-size") !=
			      std::string::npos);
			CHECK(text.find("implausible") != std::string::npos);
		}
	}
	for (const auto &f : after)
		unlink((dir + "/" + f).c_str());
	rmdir(dir.c_str());
}

TEST_CASE("hostile: sys dicts of 4,096 keys and a hundred lure files cost bounded work, "
	  "memory and messages",
	  "[e2e][hostile][burn]")
{
	// A hundred distinct files named like a libpython fh-bpf cannot walk.
	constexpr int kLures = 100, kLive = 150;
	std::string base = temp_path("lures");
	REQUIRE(mkdir(base.c_str(), 0755) == 0);
	std::vector<std::string> args = {"map"};
	std::string lure = read_file(build_dir() + "/targets/libpython3.5m.so");
	REQUIRE_FALSE(lure.empty());
	for (int i = 0; i < kLures; i++) {
		std::string d = base + "/" + std::to_string(i);
		REQUIRE(mkdir(d.c_str(), 0755) == 0);
		std::ofstream(d + "/libpython3.5m.so", std::ios::binary) << lure;
		args.push_back(d + "/libpython3.5m.so");
	}
	Watcher agent(0, {"-a", "--comm", "hostile_py"});
	std::vector<std::unique_ptr<Hostile>> live;
	for (int i = 0; i < kLive; i++)
		live.push_back(std::make_unique<Hostile>(std::vector<std::string>{"live", fake_lib()}));
	// The agent gives up on the build's standard library names (its
	// first message of the kind)...
	REQUIRE(agent.wait_for_diagnostic("cost more than 32768 reads: no longer looked for"));
	// ... names 15 lures, and says once that the others are counted.
	auto lures = std::make_unique<Hostile>(args);
	REQUIRE(agent.wait_for_diagnostic("further messages on interpreters are counted, not said"));
	// While the 150 processes live: the agent's CPU over a measured
	// interval (a window of time measured, not a wait for anything).
	double cpu0 = cpu_seconds(agent.pid());
	auto t0 = std::chrono::steady_clock::now();
	std::this_thread::sleep_for(std::chrono::seconds(3));
	double cpu = cpu_seconds(agent.pid()) - cpu0;
	std::chrono::duration<double> window = std::chrono::steady_clock::now() - t0;
	uint64_t rss = status_kb(agent.pid(), "VmRSS");
	live.clear();
	lures.reset();
	std::string diag = stop(agent);
	INFO(diag.substr(0, 6000));
	UNSCOPED_INFO("agent CPU " << cpu << " s over " << window.count() << " s; VmRSS " << rss
				    << " kB");
	CHECK(cpu < 0.1 * window.count());
	CHECK(rss < 128 * 1024);
	// Sixteen messages named, the others counted on the closing lines: a
	// hundred lure paths and the standard library's give-up, 101 in all.
	size_t named = 0;
	for (size_t at = 0; (at = diag.find("its processes get native frames", at)) != std::string::npos;
	     at++)
		named++;
	CHECK(named == 15);
	CHECK(diag.find(std::to_string(kLures) +
			" interpreters met that fh-bpf cannot walk (native frames)") !=
	      std::string::npos);
	CHECK(diag.find("85 messages not said (the first 16 were)") != std::string::npos);
	CHECK(diag.find("1 Python builds whose standard library names cost too much to read") !=
	      std::string::npos);
	for (int i = 0; i < kLures; i++) {
		std::string d = base + "/" + std::to_string(i);
		unlink((d + "/libpython3.5m.so").c_str());
		rmdir(d.c_str());
	}
	rmdir(base.c_str());
}

TEST_CASE("hostile: a write lease on a file named like libpython is never broken, and stalls "
	  "nothing: out of scope its file is not looked at, in scope it is not opened",
	  "[e2e][hostile][scope][lease]")
{
	std::string dir = temp_path("lease");
	REQUIRE(mkdir(dir.c_str(), 0755) == 0);
	REQUIRE(chown(dir.c_str(), kNobody, kNobody) == 0);
	// Out of scope (--uid 4242), or in scope (a user names a process as
	// he likes): either way no open of the file, which would start the
	// lease's break (a SIGIO to its holder) and, blocking, wait 45 s.
	bool in_scope = GENERATE(false, true);
	INFO((in_scope ? "holder in scope" : "holder out of scope"));
	std::vector<std::string> args = {"-a", "--comm", "crash", "--comm", "hostile_py"};
	if (!in_scope)
		args.insert(args.end(), {"--uid", "4242"});
	Watcher agent(0, args);
	Hostile holder({"lease", fake_lib(), dir + "/libpython3.11.so"});
	holder.send("?\n");
	REQUIRE(holder.line() == "lease=1 sigio=0"); // F_WRLCK, no break yet
	// An in-scope crash after the holder mapped the file: once its
	// incident is out, the agent has read and handled the mapping before.
	pid_t in = start_crasher("segv", 1, 4242);
	REQUIRE(wait_exit(in, kGuardMs));
	auto t0 = std::chrono::steady_clock::now();
	REQUIRE(agent.wait_for_diagnostic(pid_line(in)));
	auto waited = std::chrono::steady_clock::now() - t0;
	CHECK(waited < std::chrono::seconds(5)); // not the lease-break time
	holder.send("?\n");
	CHECK(holder.line() == "lease=1 sigio=0");
	std::string diag = stop(agent);
	INFO(diag);
	holder.send("?\n");
	CHECK(holder.line() == "lease=1 sigio=0");
	unlink((dir + "/libpython3.11.so").c_str());
	rmdir(dir.c_str());
}
