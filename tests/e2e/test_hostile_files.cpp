// --system-wide against the files a local user controls: the attacker runs
// as uid 65534 and prepares a FIFO behind a debug link, a thousand mount
// namespaces, a newline in a path, a bind mount over a mapped file (a file
// under a write lease: test_hostile_bounds.cpp).  Each test asserts that the agent neither hangs nor stalls
// nor reads what it should not, and that an in-scope crash beside the
// attack is still written, whole and promptly.  Oracles: the crash target's
// marker lines, the interpreters' own faulthandler, readelf, inotify, the
// agent's own timing line (--verbose).
#include <catch2/catch.hpp>

#include "harness.h"
#include "python_interpreters.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/inotify.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <memory>
#include <set>

using namespace fhtest;

namespace {

constexpr uid_t kNobody = 65534;
// An incident beside an attack is written in this time, or the attack won.
constexpr double kPromptMs = 5000;

std::vector<std::string> stop_agent(Watcher &agent)
{
	REQUIRE(kill(agent.pid(), SIGTERM) == 0);
	INFO(agent.diagnostics());
	REQUIRE(agent.wait() == 0);
	return split_dumps(agent.output(), "fh-bpf: pid ");
}

const std::string *incident_of(const std::vector<std::string> &incidents, pid_t pid)
{
	std::string head = "fh-bpf: pid " + std::to_string(pid) + " (";
	for (const auto &i : incidents)
		if (i.compare(0, head.size(), head) == 0)
			return &i;
	return nullptr;
}

int reap(pid_t pid)
{
	auto st = wait_exit(pid, kGuardMs);
	REQUIRE(st);
	return *st;
}

// The agent's time from the signal to the incident written, in ms, from its
// --verbose timing line (waited for: a hang fails here).
double written_ms(Watcher &agent, pid_t pid)
{
	std::string key = "timing: pid " + std::to_string(pid) + ",";
	INFO(agent.diagnostics());
	REQUIRE(agent.wait_for_diagnostic(key));
	std::string d = agent.diagnostics();
	size_t at = d.find("signal to written ", d.find(key));
	REQUIRE(at != std::string::npos);
	return std::stod(d.substr(at + 18));
}

// A directory of the test's, owned by `owner`; removed with what it holds.
struct TestDir {
	std::string path;
	TestDir(const std::string &stem, uid_t owner)
	{
		path = temp_path(stem);
		REQUIRE(mkdir(path.c_str(), 0755) == 0);
		REQUIRE(chown(path.c_str(), owner, owner) == 0);
	}
	~TestDir() { run_capture({"/bin/rm", "-rf", path}); }
};

void copy_file(const std::string &from, const std::string &to, mode_t mode)
{
	int status = -1;
	run_capture({"/bin/cp", from, to}, &status);
	REQUIRE(status == 0);
	REQUIRE(chmod(to.c_str(), mode) == 0);
}

// The log directory's files whose name holds the pid.
size_t files_of(const std::string &dir, pid_t pid)
{
	size_t n = 0;
	std::string tag = "-" + std::to_string(pid) + "-";
	if (DIR *d = opendir(dir.c_str())) {
		while (struct dirent *e = readdir(d))
			n += std::string(e->d_name).find(tag) != std::string::npos;
		closedir(d);
	}
	return n;
}

// Sets this process's descriptor limit (children inherit it); restores it.
struct FdLimit {
	struct rlimit saved = {};
	explicit FdLimit(rlim_t n)
	{
		REQUIRE(getrlimit(RLIMIT_NOFILE, &saved) == 0);
		struct rlimit low = {n, n};
		REQUIRE(setrlimit(RLIMIT_NOFILE, &low) == 0);
	}
	~FdLimit() { setrlimit(RLIMIT_NOFILE, &saved); } // as root: raised again
};

std::string comm_of(const std::string &path)
{
	return path.substr(path.rfind('/') + 1).substr(0, 15);
}

} // namespace

TEST_CASE("hostile files: a .gnu_debuglink leading to a FIFO blocks nothing",
	  "[e2e][hostile][debuglink]")
{
	TestDir dir("debuglink", kNobody);
	std::string fifo = dir.path + "/fifo";
	REQUIRE(mkfifo(fifo.c_str(), 0666) == 0);
	REQUIRE(chown(fifo.c_str(), kNobody, kNobody) == 0);
	// The crash program without DWARF and without build id, its debug
	// link the way from /usr/lib/debug up and down to the FIFO.
	std::string name = "../../../.." + fifo;
	std::string section(name);
	section.append(4 - name.size() % 4, '\0'); // NUL-terminated, 4-aligned
	section.append(4, '\0');		    // the CRC
	std::string link = dir.path + "/debuglink.bin";
	std::ofstream(link, std::ios::binary) << section;
	std::string lure = dir.path + "/crash";
	int status = -1;
	std::string err = run_capture({"/usr/bin/objcopy", "--strip-debug",
				       "--remove-section=.gnu_debuglink",
				       "--remove-section=.note.gnu.build-id", "--add-section",
				       ".gnu_debuglink=" + link, crash_path(), lure},
				      &status, true);
	INFO(err);
	REQUIRE(status == 0);
	REQUIRE(chmod(lure.c_str(), 0755) == 0);
	// What readelf sees in the lure: the link, no DWARF.
	CHECK(run_capture({"/usr/bin/readelf", "-p", ".gnu_debuglink", lure}).find(name) !=
	      std::string::npos);
	CHECK(run_capture({"/usr/bin/readelf", "-S", lure}).find(".debug_info") ==
	      std::string::npos);

	Watcher agent(0, {"-a", "--comm", "crash", "--verbose"});
	pid_t bait = start_crasher("segv", 1, kNobody, lure);
	int st = reap(bait);
	CHECK((WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV));
	written_ms(agent, bait);
	// Another crash just after: written at once.
	pid_t next = start_crasher("segv", 2);
	reap(next);
	CHECK(written_ms(agent, next) < kPromptMs);
	auto incidents = stop_agent(agent);
	const std::string *inc = incident_of(incidents, next);
	REQUIRE(inc);
	check_segv_chain(*inc);
	// The lure's own frames: its symbol table's names, no source lines.
	const std::string *lured = incident_of(incidents, bait);
	REQUIRE(lured);
	INFO(*lured);
	CHECK(lured->find("crash_leaf") != std::string::npos);
	CHECK(lured->find("crash.c") == std::string::npos);
}

TEST_CASE("hostile files: 1,100 processes, each with a root of its own, leave the agent "
	  "descriptors for an incident",
	  "[e2e][hostile][descriptors]")
{
	constexpr int kParked = 1100;
	std::string logs = temp_path("incidents");
	std::unique_ptr<Watcher> agent;
	{
		// The parked processes in scope too, as the crashers (out of it,
		// no root of theirs would be taken at all).
		FdLimit limit(1024); // a service's usual limit, soft and hard
		agent = std::make_unique<Watcher>(
			0, std::vector<std::string>{"-a", "--uid", std::to_string(kNobody),
						    "--log-dir", logs, "--rate-limit", "0",
						    "--verbose"});
	}
	std::string limits = read_file("/proc/" + std::to_string(agent->pid()) + "/limits");
	REQUIRE(limits.find("Max open files            1024                 1024") !=
		std::string::npos);

	Pipe go, report;
	SpawnOptions o;
	o.uid = kNobody;
	o.stdout_path = "/dev/null";
	o.fds = {{0, go.read}, {3, report.write}};
	pid_t park = spawn({build_dir() + "/targets/hostile_park", std::to_string(kParked)}, o);
	go.close_read();
	report.close_write();
	for (int i = 0; i < kParked; i++)
		REQUIRE(read_line(report.read, kGuardMs));

	// In scope: a crash on the host, and one in a namespace of its own
	// (its root among those not held).
	pid_t host = start_crasher("segv", 2, kNobody);
	reap(host);
	SpawnOptions u;
	u.uid = kNobody;
	u.stdout_path = "/dev/null";
	pid_t own = spawn({"/usr/bin/unshare", "-Ur", "-m", crash_path(), "--auto", "--threads", "1",
			   "segv"},
			  u);
	reap(own);
	CHECK(written_ms(*agent, host) < kPromptMs);
	CHECK(written_ms(*agent, own) < kPromptMs);
	go.close_write();
	CHECK(reap(park) == 0);
	auto incidents = stop_agent(*agent);
	std::string diag = agent->diagnostics();
	INFO(diag);
	for (pid_t pid : {host, own}) {
		const std::string *inc = incident_of(incidents, pid);
		REQUIRE(inc);
		check_segv_chain(*inc);
		CHECK(files_of(logs, pid) == 1);
	}
	// The limit was met, and said.
	CHECK(diag.find("processes' roots not held (descriptor limit") != std::string::npos);
	run_capture({"/bin/rm", "-rf", logs});
}

TEST_CASE("hostile files: Python processes running before the agent starts get their Python "
	  "frames, as their own faulthandler",
	  "[e2e][hostile][seeded][python]")
{
	std::vector<std::unique_ptr<PyTarget>> targets;
	std::vector<std::string> args = {"-a"};
	std::set<std::string> comms;
	for (const auto &py : python_interpreters()) {
		targets.push_back(std::make_unique<PyTarget>(py, "segv", 2)); // parked
		comms.insert(comm_of(py.path));
	}
	for (const auto &c : comms)
		args.insert(args.end(), {"--comm", c});
	Watcher agent(0, args); // seeds them from /proc
	for (auto &t : targets) {
		t->go();
		int st = t->wait();
		CHECK(WIFSIGNALED(st));
	}
	auto incidents = stop_agent(agent);
	INFO(agent.diagnostics());
	REQUIRE(incidents.size() == targets.size());
	for (size_t i = 0; i < targets.size(); i++) {
		INFO(python_interpreters()[i].path);
		const std::string *inc = incident_of(incidents, targets[i]->pid());
		REQUIRE(inc);
		std::string theirs = targets[i]->faulthandler_output();
		REQUIRE_FALSE(theirs.empty());
		CHECK(without_notes(*inc) == theirs);
	}
}

TEST_CASE("hostile files: an executable whose path holds a newline is symbolized",
	  "[e2e][hostile][newline]")
{
	TestDir dir("newline", kNobody);
	std::string sub = dir.path + "/two\nlines";
	REQUIRE(mkdir(sub.c_str(), 0755) == 0);
	copy_file(crash_path(), sub + "/crash", 0755);
	Watcher agent(0, {"-a", "--comm", "crash"});
	pid_t pid = start_crasher("segv", 2, kNobody, sub + "/crash");
	reap(pid);
	auto incidents = stop_agent(agent);
	const std::string *inc = incident_of(incidents, pid);
	REQUIRE(inc);
	check_segv_chain(*inc);
}

TEST_CASE("hostile files: a file bind-mounted over a mapped program's path is not read",
	  "[e2e][hostile][bind]")
{
	// The user's namespace mounts a tmpfs here (empty from the host),
	// runs a copy of the crash program from it, then puts a host file
	// over that path: an ELF of its own, whose names would be wrong.
	TestDir mnt("bind-mnt", kNobody);
	TestDir keep("bind-host", 0);
	std::string host_file = keep.path + "/host-elf";
	copy_file(build_dir() + "/targets/cxx_crash", host_file, 0644);
	int watch = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	REQUIRE(watch >= 0);
	REQUIRE(inotify_add_watch(watch, host_file.c_str(), IN_OPEN | IN_ACCESS) >= 0);

	Watcher agent(0, {"-a", "--comm", "crash"});
	Pipe report, go;
	SpawnOptions o;
	o.uid = kNobody;
	o.stdout_path = "/dev/null";
	o.stderr_path = temp_path("bind.err");
	o.fds = {{3, report.write}, {4, go.read}};
	const std::string script = R"(set -e
mount -t tmpfs none "$1"
cp "$2" "$1/crash"
mkfifo "$1/report"
"$1/crash" --threads 1 --report 5 --go 4 segv 5>"$1/report" 3>&- &
exec 6<"$1/report"
while read -r line <&6; do [ "$line" = ready ] && break; done
mount --bind "$3" "$1/crash"
echo ready >&3
exec 3>&-
wait $! || true
)";
	pid_t pid = spawn({"/usr/bin/unshare", "-Ur", "-m", "/bin/sh", "-c", script, "sh", mnt.path,
			   crash_path(), host_file},
			  o);
	report.close_write();
	go.close_read();
	auto line = read_line(report.read, kGuardMs);
	INFO(read_file(o.stderr_path));
	REQUIRE(line);
	REQUIRE(*line == "ready"); // mapped, then covered
	REQUIRE(write(go.write, "g", 1) == 1);
	CHECK(reap(pid) == 0);
	auto incidents = stop_agent(agent);
	REQUIRE(incidents.size() == 1);
	INFO(incidents[0]);
	// The host file was not opened, let alone read.
	char events[4096];
	CHECK(read(watch, events, sizeof(events)) < 0);
	close(watch);
	// The program's frames are unknown, not named from the other file.
	auto tb = parse_traceback(without_notes(incidents[0]));
	REQUIRE_FALSE(tb.threads.empty());
	size_t in_program = 0;
	for (const auto &f : tb.threads.front().frames) {
		if (f.raw.find(mnt.path + "/crash") == std::string::npos)
			continue;
		in_program++;
		CHECK_FALSE(f.source);
		CHECK(f.function.rfind("+0x", 0) == 0); // an offset, no name
	}
	CHECK(in_program > 0);
	unlink(o.stderr_path.c_str());
}

TEST_CASE("hostile files: a program on overlayfs in a container is still its own file",
	  "[e2e][hostile][overlay]")
{
	// The device and inode check must not refuse the files of an overlayfs
	// root (a container image): the crash program in the lower layer,
	// the overlay mounted in the container's mount namespace only.
	TestDir layers("overlay-layers", 0);
	TestDir mnt("overlay-mnt", 0);
	for (const char *d : {"/lower", "/upper", "/work"})
		REQUIRE(mkdir((layers.path + d).c_str(), 0755) == 0);
	copy_file(crash_path(), layers.path + "/lower/crash", 0755);
	Watcher agent(0, {"-a", "--comm", "crash"});
	SpawnOptions o;
	o.stdout_path = "/dev/null";
	o.stderr_path = temp_path("overlay.err");
	const std::string &l = layers.path;
	pid_t pid = spawn({"/usr/bin/unshare", "--pid", "--mount", "--fork", "--mount-proc", "/bin/sh",
			   "-c",
			   "mount -t overlay overlay -o lowerdir=" + l + "/lower,upperdir=" + l +
				   "/upper,workdir=" + l + "/work " + mnt.path + " && " + mnt.path +
				   "/crash --auto --threads 2 segv; true"},
			  o);
	CHECK(reap(pid) == 0);
	auto incidents = stop_agent(agent);
	INFO(read_file(o.stderr_path));
	REQUIRE(incidents.size() == 1);
	check_segv_chain(incidents[0]); // its DWARF read: the file was taken for its own
	unlink(o.stderr_path.c_str());
}
