// --system-wide: one fh-bpf for every process in scope.  Every target here
// starts after fh-bpf is armed (it was never seen in /proc), most crash a
// few milliseconds after they start.  Oracles: gdb's backtrace of the same
// program, the targets' own faulthandler output, their marker lines.  The
// agent is stopped with SIGTERM, which drains what it captured.
#include <catch2/catch.hpp>

#include "harness.h"
#include "python_interpreters.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>

using namespace fhtest;

namespace {

// The agent's incidents, one text each (fh-bpf's own lines kept).
std::vector<std::string> stop_agent(Watcher &agent)
{
	REQUIRE(kill(agent.pid(), SIGTERM) == 0);
	INFO(agent.diagnostics());
	REQUIRE(agent.wait() == 0);
	auto incidents = split_dumps(agent.output(), "fh-bpf: pid ");
	// What each incident is, for a test that finds more or fewer.
	std::string heads;
	for (const auto &i : incidents)
		heads += i.substr(0, i.find('\n')) + "\n";
	UNSCOPED_INFO("incidents:\n" << heads);
	return incidents;
}

int reap(pid_t pid)
{
	auto st = wait_exit(pid, kGuardMs);
	REQUIRE(st);
	return *st;
}

std::string pid_line(pid_t pid) { return "fh-bpf: pid " + std::to_string(pid) + " ("; }

const std::string *incident_of(const std::vector<std::string> &incidents, pid_t pid)
{
	for (const auto &i : incidents)
		if (i.compare(0, pid_line(pid).size(), pid_line(pid)) == 0)
			return &i;
	return nullptr;
}

// The fields the README's incident schema table documents (first column),
// and the keys it gives the signal object ("`{number, name, ...}`").
std::set<std::string> documented_fields(std::string *signal_keys)
{
	std::string readme = read_file(source_dir() + "/README.md");
	size_t from = readme.find("### Incident records");
	size_t to = readme.find("\n### ", from + 1);
	REQUIRE(from != std::string::npos);
	std::istringstream in(readme.substr(from, to - from));
	std::set<std::string> fields;
	for (std::string line; std::getline(in, line);) {
		if (line.compare(0, 3, "| `") != 0)
			continue;
		std::string first = line.substr(2, line.find('|', 2) - 2);
		for (size_t at = first.find('`'); at != std::string::npos;
		     at = first.find('`', first.find('`', at + 1) + 1))
			fields.insert(first.substr(at + 1, first.find('`', at + 1) - at - 1));
		if (line.compare(0, 15, "| `signal` | `{") == 0)
			*signal_keys = line.substr(15, line.find("}`") - 15);
	}
	return fields;
}

std::string comm_of(const std::string &path)
{
	return path.substr(path.rfind('/') + 1).substr(0, 15);
}

struct Cgroup {
	std::string path; // below the cgroup2 mount
	std::string dir;
	explicit Cgroup(const std::string &name)
	{
		dir = cgroup2_mount() + "/" + name;
		path = "/" + name;
		REQUIRE((mkdir(dir.c_str(), 0755) == 0 || errno == EEXIST));
	}
	~Cgroup() { rmdir(dir.c_str()); }
	void enter(pid_t pid) const
	{
		std::ofstream f(dir + "/cgroup.procs");
		f << pid << "\n";
		f.flush();
		REQUIRE(f.good());
	}
	static std::string cgroup2_mount()
	{
		std::ifstream in("/proc/self/mountinfo");
		std::string line;
		while (std::getline(in, line)) {
			auto dash = line.find(" - cgroup2 ");
			if (dash == std::string::npos)
				continue;
			std::istringstream f(line.substr(0, dash));
			std::string a, b, c, d, point;
			f >> a >> b >> c >> d >> point;
			return point;
		}
		FAIL("no cgroup2 mount on this machine");
		return "";
	}
};

} // namespace

TEST_CASE("system-wide: a native process never seen before gets every thread, as gdb shows",
	  "[e2e][system]")
{
	Watcher agent(0, {"-a", "--comm", "crash"});
	Target target("segv", 4); // started after the agent was armed
	target.go();
	CrashRun run;
	run.target_status = target.wait();
	auto incidents = stop_agent(agent);
	REQUIRE(incidents.size() == 1);
	run.text = without_notes(incidents[0]);
	run.tb = parse_traceback(run.text);
	run.threads = target.threads();
	run.diagnostics = agent.diagnostics();
	run.fh_status = -1;
	check_common(run, SIGSEGV, "Fatal error: Segmentation fault", "main");
	check_against_gdb(run, "segv", 4);
}

TEST_CASE("system-wide: Python processes never seen before match their own faulthandler",
	  "[e2e][system][python]")
{
	std::vector<std::string> args = {"-a"};
	std::set<std::string> comms;
	for (const auto &py : python_interpreters())
		comms.insert(comm_of(py.path));
	for (const auto &c : comms)
		args.insert(args.end(), {"--comm", c});
	Watcher agent(0, args);
	std::vector<std::pair<pid_t, std::string>> theirs;
	for (const auto &py : python_interpreters()) {
		PyTarget t(py, "segv", 3);
		t.go();
		int st = t.wait();
		REQUIRE(WIFSIGNALED(st));
		theirs.emplace_back(t.pid(), t.faulthandler_output());
	}
	auto incidents = stop_agent(agent);
	INFO(agent.diagnostics());
	REQUIRE(incidents.size() == theirs.size());
	for (size_t i = 0; i < theirs.size(); i++) {
		INFO(python_interpreters()[i].path);
		const std::string *inc = incident_of(incidents, theirs[i].first);
		REQUIRE(inc != nullptr);
		REQUIRE_FALSE(theirs[i].second.empty());
		CHECK(without_notes(*inc) == theirs[i].second);
	}
}

TEST_CASE("system-wide: --comm, --exclude-comm, --uid and --cgroup choose the processes",
	  "[e2e][system][filter]")
{
	const PythonBuild &py = python_interpreters().front();
	SECTION("--comm: a native crasher in, a Python one out")
	{
		Watcher agent(0, {"-a", "--comm", "crash"});
		pid_t in = start_crasher("segv", 2);
		PyTarget out(py, "segv", 1);
		out.go();
		reap(in);
		out.wait();
		auto incidents = stop_agent(agent);
		REQUIRE(incidents.size() == 1);
		check_segv_chain(incidents[0]);
		CHECK(incident_of(incidents, in) != nullptr);
		CHECK(agent.diagnostics().find("watched signals of processes out of scope") !=
		      std::string::npos);
	}
	SECTION("--exclude-comm: the named process out, the others in")
	{
		Watcher agent(0, {"-a", "--exclude-comm", "crash", "--comm", comm_of(py.path),
				  "--comm", "crash"});
		pid_t out = start_crasher("segv", 1);
		PyTarget in(py, "segv", 1);
		in.go();
		reap(out);
		in.wait();
		auto incidents = stop_agent(agent);
		CHECK(incident_of(incidents, out) == nullptr);
		const std::string *inc = incident_of(incidents, in.pid());
		REQUIRE(inc != nullptr);
		CHECK(without_notes(*inc) == in.faulthandler_output());
	}
	SECTION("--uid: by the process's real uid, with --comm")
	{
		Watcher agent(0, {"-a", "--uid", "4242,4243", "--comm", "crash"});
		pid_t in = start_crasher("segv", 1, 4242);
		pid_t out = start_crasher("segv", 1); // root's
		reap(in);
		reap(out);
		auto incidents = stop_agent(agent);
		REQUIRE(incidents.size() == 1);
		REQUIRE(incident_of(incidents, in) != nullptr);
		check_segv_chain(incidents[0]);
	}
	SECTION("--cgroup: a cgroup and its descendants")
	{
		Cgroup parent("fh-bpf-test-" + std::to_string(getpid()));
		Cgroup child(parent.path.substr(1) + "/svc");
		Watcher agent(0, {"-a", "--cgroup", parent.path});
		Target in("segv", 2), out("segv", 2);
		child.enter(in.pid());
		in.go();
		out.go();
		in.wait();
		out.wait();
		auto incidents = stop_agent(agent);
		REQUIRE(incident_of(incidents, in.pid()) != nullptr);
		CHECK(incident_of(incidents, out.pid()) == nullptr);
	}
}

TEST_CASE("system-wide: processes that crash a few milliseconds after they start are "
	  "symbolized in full",
	  "[e2e][system][short]")
{
	Watcher agent(0, {"-a", "--comm", "crash", "--rate-limit", "0", "--process-rate-limit", "0"});
	std::vector<pid_t> pids;
	for (int i = 0; i < 20; i++) {
		pids.push_back(start_crasher("segv", 1 + i % 3));
		reap(pids.back());
	}
	auto incidents = stop_agent(agent);
	REQUIRE(incidents.size() == pids.size());
	for (pid_t pid : pids) {
		const std::string *inc = incident_of(incidents, pid);
		REQUIRE(inc != nullptr);
		check_segv_chain(*inc);
	}
}

TEST_CASE("system-wide: a burst of 200 crashes in a second: every incident written whole",
	  "[e2e][system][burst]")
{
	std::string dir = temp_path("incidents");
	Watcher agent(0, {"-a", "--comm", "crash", "--format", "json", "--log-dir", dir,
			  "--rate-limit", "0"});
	std::set<pid_t> pids;
	for (int i = 0; i < 200; i++)
		pids.insert(start_crasher("segv", 1));
	for (pid_t pid : pids)
		reap(pid);
	REQUIRE(kill(agent.pid(), SIGTERM) == 0);
	REQUIRE(agent.wait() == 0);
	std::string diag = agent.diagnostics();
	INFO(diag);
	// Nothing lost here (the ring holds the burst); were anything lost it
	// would be counted on a "lost:" line.
	CHECK(diag.find("lost:") == std::string::npos);
	DIR *d = opendir(dir.c_str());
	REQUIRE(d);
	size_t files = 0;
	std::string all = "[";
	while (struct dirent *e = readdir(d)) {
		std::string name = e->d_name;
		if (name[0] == '.')
			continue;
		files++;
		std::string json = read_file(dir + "/" + name);
		INFO(name << ": " << json.substr(0, 300));
		// Whole: one line, its newline last.
		REQUIRE_FALSE(json.empty());
		CHECK(json.find('\n') == json.size() - 1);
		all += (files > 1 ? "," : "") + json;
	}
	closedir(d);
	all += "]";
	// Valid JSON, each with its own pid, the signal and the crashing chain.
	std::string want = "[";
	for (pid_t pid : pids)
		want += std::string(want.size() > 1 ? ", " : "") + "(" + std::to_string(pid) +
			", 'SIGSEGV', ('poke', 'crash_leaf', 'crash_mid', 'main'))";
	want += "]";
	// Every record has the fields the README documents, and no other.
	std::string signal_keys;
	auto fields = documented_fields(&signal_keys);
	REQUIRE(fields.erase("frames") == 1); // each thread's, documented with them
	std::string keys = "[";
	for (const auto &f : fields)
		keys += std::string(keys.size() > 1 ? ", " : "") + "'" + f + "'";
	keys += "]";
	CHECK(python_json(all, "sorted(set().union(*[x.keys() for x in d]))") == keys);
	CHECK(python_json(all, "all(x.keys() == d[0].keys() for x in d)") == "True");
	CHECK(python_json(all, "', '.join(d[0]['signal'].keys())") == "'" + signal_keys + "'");
	CHECK(python_json(all, "sorted(d[0]['threads'][0]['frames'][0].keys())") ==
	      "['address', 'build_id', 'file', 'function', 'function_offset', 'inlined', 'kind', "
	      "'line', 'module', 'offset']");
	CHECK(python_json(all, "sorted((x['pid'], x['signal']['name'], "
			       "tuple(f['function'] for f in x['threads'][0]['frames'][:4])) for x in d)") ==
	      want);
	CHECK(files == pids.size());
}

TEST_CASE("system-wide: a crash loop is held back by the rate limit, and every held-back "
	  "incident is counted",
	  "[e2e][system][flood]")
{
	std::string dir = temp_path("incidents");
	Watcher agent(0, {"-a", "--comm", "crash", "--rate-limit", "5/1h", "--log-dir", dir});
	for (int i = 0; i < 30; i++)
		reap(start_crasher("segv", 1));
	auto incidents = stop_agent(agent);
	std::string diag = agent.diagnostics();
	INFO(diag);
	CHECK(incidents.size() == 5);
	// Named by its program: the executable.
	char exe[PATH_MAX];
	REQUIRE(realpath(crash_path().c_str(), exe));
	CHECK(contains(diag, "held back 25 incidents of " + std::string(exe) + " (SIGSEGV 25)"));
	CHECK(diag.find("5 incidents; 25 held back by the rate limits") != std::string::npos);
	// The summary is a file of its own beside the five incidents.
	size_t files = 0, summaries = 0;
	DIR *d = opendir(dir.c_str());
	REQUIRE(d);
	while (struct dirent *e = readdir(d)) {
		std::string name = e->d_name;
		if (name[0] == '.')
			continue;
		files++;
		if (name.find("-crash-0-suppressed.txt") != std::string::npos) {
			summaries++;
			CHECK(read_file(dir + "/" + name).find("held back 25 incidents") !=
			      std::string::npos);
		}
	}
	closedir(d);
	CHECK(files == 6);
	CHECK(summaries == 1);
}

TEST_CASE("system-wide: --signals names who killed a process: SIGTERM, SIGKILL, the OOM killer",
	  "[e2e][system][signals]")
{
	SECTION("SIGTERM and SIGKILL from another process")
	{
		Watcher agent(0, {"-a", "--comm", "crash", "--signals", "SIGTERM,SIGKILL"});
		Target term("wait", 3), killed("wait", 1);
		REQUIRE(kill(term.pid(), SIGTERM) == 0);
		REQUIRE(kill(killed.pid(), SIGKILL) == 0);
		int st1 = term.wait(), st2 = killed.wait();
		CHECK((WIFSIGNALED(st1) && WTERMSIG(st1) == SIGTERM));
		CHECK((WIFSIGNALED(st2) && WTERMSIG(st2) == SIGKILL));
		auto incidents = stop_agent(agent);
		REQUIRE(incidents.size() == 2);
		std::string me = "sent by pid " + std::to_string(getpid()) + " (";
		const std::string *t = incident_of(incidents, term.pid());
		const std::string *k = incident_of(incidents, killed.pid());
		REQUIRE(t);
		REQUIRE(k);
		CHECK(t->find("SIGTERM (SI_USER), which kills without delivery") != std::string::npos);
		CHECK(t->find(me) != std::string::npos);
		CHECK(k->find("SIGKILL (SI_USER)") != std::string::npos);
		CHECK(k->find(me) != std::string::npos);
		// Every thread, where it was parked.
		CrashRun run;
		run.text = without_notes(*t);
		run.tb = parse_traceback(run.text);
		run.threads = term.threads();
		run.target_status = st1;
		run.fh_status = -1;
		check_common(run, SIGTERM, "Fatal error: Terminated", "main");
	}
	SECTION("a SIGTERM every thread blocks, read with sigwait before a clean exit: no incident")
	{
		Watcher agent(0, {"-a", "--comm", "crash", "--signals", "SIGTERM,SIGKILL"});
		Target daemon("sigwait", 3);
		REQUIRE(kill(daemon.pid(), SIGTERM) == 0);
		int st = daemon.wait();
		CHECK((WIFEXITED(st) && WEXITSTATUS(st) == 0));
		auto incidents = stop_agent(agent);
		CHECK(incidents.empty());
		CHECK(agent.diagnostics().find("system-wide watch ended: 0 incidents") != std::string::npos);
	}
	SECTION("a fatal signal sent from outside: native, and Python whose faulthandler raises it "
		"again")
	{
		const PythonBuild &py = python_interpreters().front();
		Watcher agent(0, {"-a", "--comm", "crash", "--comm", comm_of(py.path)});
		Target native("wait", 4);
		REQUIRE(kill(native.pid(), SIGSEGV) == 0);
		CrashRun run;
		run.target_status = native.wait();
		PyTarget python(py, "wait", 2);
		REQUIRE(kill(python.pid(), SIGSEGV) == 0);
		int st = python.wait();
		CHECK((WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV));
		auto incidents = stop_agent(agent);
		REQUIRE(incidents.size() == 2);
		std::string me = "sent by pid " + std::to_string(getpid()) + " (";
		const std::string *n = incident_of(incidents, native.pid());
		const std::string *p = incident_of(incidents, python.pid());
		REQUIRE(n);
		REQUIRE(p);
		CHECK(n->find("SIGSEGV (SI_USER), " + me) != std::string::npos);
		CHECK(p->find(me) != std::string::npos);
		run.text = without_notes(*n);
		run.tb = parse_traceback(run.text);
		run.threads = native.threads();
		run.fh_status = -1;
		check_common(run, SIGSEGV, "Fatal error: Segmentation fault", "main");
		CHECK(without_notes(*p) == python.faulthandler_output());
	}
	SECTION("the OOM killer, in a memory cgroup")
	{
		MemoryCgroup cg("fh-bpf-oom", 32 << 20);
		Watcher agent(0, {"-a", "--comm", "python3", "--signals", "SIGKILL", "--format", "json"});
		SpawnOptions o;
		o.stdout_path = "/dev/null";
		pid_t pid = spawn(cg.memory_hog(), o);
		int status = reap(pid);
		CHECK((WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL));
		REQUIRE(kill(agent.pid(), SIGTERM) == 0);
		REQUIRE(agent.wait() == 0);
		std::string json = agent.output();
		INFO(agent.diagnostics() << json);
		REQUIRE(json.find('\n') == json.size() - 1); // one incident
		CHECK(python_json(json, "d['pid']") == std::to_string(pid));
		CHECK(python_json(json, "d['signal']['name']") == "'SIGKILL'");
		CHECK(python_json(json, "d['sender']['kernel']") == "True");
		CHECK(python_json(json, "d['sender']['cause']") == "'the OOM killer'");
		CHECK(python_json(json, "'oom_kill_process' in d['sender']['function']") == "True");
		CHECK(python_json(json, "d['python'] is not None") == "True");
		CHECK(python_json(json, "d['threads'][0]['frames'][0]['line']") == "3");
	}
}

TEST_CASE("system-wide: a crash in a container (its own pid and mount namespaces): binaries "
	  "found through its root, host and namespace pids",
	  "[e2e][system][container]")
{
	// The crasher runs from a tmpfs mounted in the container's mount
	// namespace only: from the host, its path is an empty directory.
	std::string dir = temp_path("container-root");
	REQUIRE(mkdir(dir.c_str(), 0755) == 0);
	Watcher agent(0, {"-a", "--comm", "crash", "--format", "json"});
	SpawnOptions o;
	o.stdout_path = "/dev/null";
	o.stderr_path = temp_path("container.err");
	pid_t pid = spawn({"/usr/bin/unshare", "--pid", "--mount", "--fork", "--mount-proc", "/bin/sh", "-c",
			   "mount -t tmpfs none " + dir + " && cp " + crash_path() + " " + dir +
				   "/crash && " + dir + "/crash --auto --threads 2 segv; true"},
			  o);
	int status = reap(pid);
	REQUIRE(kill(agent.pid(), SIGTERM) == 0);
	REQUIRE(agent.wait() == 0);
	std::string json = agent.output();
	INFO(agent.diagnostics() << json << "\ncontainer: status " << status << ", stderr:\n"
				 << read_file(o.stderr_path));
	REQUIRE_FALSE(json.empty());
	REQUIRE(json.find('\n') == json.size() - 1);
	CHECK(python_json(json, "d['ns_pid'] < 10") == "True"); // sh is 1 there, then mount, cp
	CHECK(python_json(json, "d['pid'] != d['ns_pid']") == "True");
	CHECK(python_json(json, "d['pid_namespace_level']") == "1");
	CHECK(python_json(json, "d['exe']") == "'" + dir + "/crash'");
	CHECK(python_json(json, "[f['function'] for f in d['threads'][0]['frames']][:4]") ==
	      "['poke', 'crash_leaf', 'crash_mid', 'main']");
	CHECK(python_json(json, "d['threads'][0]['frames'][0]['module']") == "'" + dir + "/crash'");
	CHECK(python_json(json, "d['threads'][0]['frames'][0]['line']") ==
	      std::to_string(crash_marker("poke")));
	struct stat st;
	CHECK(stat((dir + "/crash").c_str(), &st) != 0); // never visible from here
	rmdir(dir.c_str());
}
