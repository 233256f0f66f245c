// Live dumps over a process tree: --timeout, --dump and SIGUSR1 sent to
// fh-bpf dump every process of the watched tree, the watched one first,
// then its descendants by pid, each block headed by its headline and each
// JSON record carrying the dump's dump_id; --signal dumps the descendant
// that receives the signal, and only it.
//
// The tree is tests/targets/py_tree.py: a Python master, a Python worker it
// forked (no exec) and a native child it forked and exec'd (the crash
// target), every thread parked.  Oracles from outside fh-bpf: the text each
// Python process's own faulthandler.dump_traceback(all_threads=True) wrote
// on the very line it is parked at (faulthandler.register's own output for
// a signal), the pids the processes report of themselves, the pthread ids
// and roles the native child reports and the marker lines of its source.
// Every step is a line on a fifo or a pipe; timeouts only guard against a
// hang.  --no-children, where the descendants are absent, must fail every
// check of a descendant: the timeout test runs it alongside.
#include <catch2/catch.hpp>

#include "harness.h"
#include "python_interpreters.h"
#include "tree.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <optional>
#include <regex>
#include <set>
#include <sstream>

using namespace fhtest;

namespace {

const std::string kTimeoutHeader = "Timeout (0:00:01)!";

// tests/targets/py_tree.py, parked: started by the test (then watched with
// -p, the Watcher made by the test) or by fh-bpf in launch mode.
class ParkedTree {
public:
	// With `launch`: fh-bpf LAUNCH... -- PYTHON py_tree.py ...; without,
	// the test starts the tree.
	ParkedTree(const PythonBuild &py, bool usr1,
		   std::optional<std::vector<std::string>> launch = std::nullopt)
	    : in_("tree-in"), out_("tree-out"), prefix_(temp_path("tree-dump")),
	      launched_(launch.has_value())
	{
		removed_.paths = {prefix_ + ".master", prefix_ + ".worker", prefix_ + ".usr1"};
		std::vector<std::string> argv = {py.path, target_script("py_tree.py"), crash_path(),
						 prefix_, in_.path(), out_.path()};
		if (usr1)
			argv.push_back("usr1");
		if (launch) {
			std::vector<std::string> extra = *launch;
			extra.push_back("--");
			extra.insert(extra.end(), argv.begin(), argv.end());
			watcher.emplace(0, extra);
		} else {
			guard_.watch(spawn(argv), true);
		}
		// Launch mode: fh-bpf has said "ready", just after it started its
		// timer (and COMMAND).
		auto start = std::chrono::steady_clock::now();
		std::string first = out_.next_line();
		REQUIRE(first.rfind("master ", 0) == 0);
		master = std::stoi(first.substr(7));
		if (launch)
			guard_.watch(master, false);
		static const std::regex thread_re(R"(^native thread (\d+) 0x([0-9a-f]+) (\w+)$)");
		for (std::string line = out_.next_line(); line != "ready"; line = out_.next_line()) {
			std::smatch m;
			if (std::regex_match(line, m, thread_re))
				native_threads.push_back(
					{std::stoi(m[1]), std::stoul(m[2], nullptr, 16), m[3]});
			else if (line.rfind("worker ", 0) == 0)
				worker = std::stoi(line.substr(7));
			else if (line.rfind("native ", 0) == 0)
				native = std::stoi(line.substr(7));
			else
				FAIL("py_tree.py said: " << line);
		}
		parked_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
				    std::chrono::steady_clock::now() - start)
				    .count();
		REQUIRE(worker > 0);
		REQUIRE(native > 0);
		REQUIRE(native_threads.size() == 4);
		master_dump = read_file(prefix_ + ".master");
		worker_dump = read_file(prefix_ + ".worker");
		REQUIRE_FALSE(master_dump.empty());
		REQUIRE_FALSE(worker_dump.empty());
		master_comm = comm_of(master);
		worker_comm = comm_of(worker);
	}

	// The worker reads a byte sent after everything the test did before:
	// a SIGUSR1 sent to it has been handled.
	void ping()
	{
		in_.send("ping");
		REQUIRE(out_.next_line() == "pong");
	}

	// Both children told to exit and reaped: they exited 0; then the
	// master exits 0 (reaped here, unless fh-bpf launched it).
	void quit()
	{
		in_.send("quit");
		CHECK(out_.next_line() == "bye 0 0");
		if (launched_)
			return;
		auto st = wait_exit(master, kGuardMs);
		REQUIRE(st);
		guard_.release();
		CHECK(WIFEXITED(*st));
		CHECK(WEXITSTATUS(*st) == 0);
	}

	// fh-bpf's exit code, once the tree is gone.
	int finish()
	{
		int status = watcher->wait();
		guard_.release();
		return status;
	}

	std::string usr1_output() const { return read_file(prefix_ + ".usr1"); }

	// The pids in the order of a dump's blocks: the watched process, then
	// its descendants by pid.
	std::vector<pid_t> dump_order() const
	{
		return {master, std::min(worker, native), std::max(worker, native)};
	}

	// The headline of pid's block in a dump of the tree ("timeout" or
	// "dump on demand"): the master's names no parent.
	std::string headline(pid_t pid, const std::string &what) const
	{
		std::string parent = pid == master ? "" : ", parent pid " + std::to_string(master);
		std::string comm = pid == master ? master_comm : pid == worker ? worker_comm : "crash";
		int threads = pid == native ? static_cast<int>(native_threads.size()) : 2;
		return "fh-bpf: pid " + std::to_string(pid) + " (" + comm + ")" + parent + ": " + what +
		       ", " + std::to_string(threads) + " threads\n";
	}

	pid_t master = 0, worker = 0, native = 0;
	std::vector<TargetThread> native_threads; // as the crash target reported them
	// Each Python process's own faulthandler.dump_traceback(all_threads=True),
	// from its main thread, on the line it is parked at.
	std::string master_dump, worker_dump;
	std::string master_comm, worker_comm;
	long parked_ms = 0; // from the start (launch mode: fh-bpf's "ready") to parked
	std::optional<Watcher> watcher;

private:
	Channel in_, out_;
	std::string prefix_;
	bool launched_;
	Removed removed_;
	TreeGuard guard_; // destroyed first: the tree ends before fh-bpf does
};

// What faulthandler.dump_traceback_later(1) writes where `dump` was taken:
// the header, and no thread is the "Current thread" (its own watchdog
// thread writes it).
std::string as_timeout(const std::string &dump)
{
	static const std::string current = "Current thread ";
	std::string out = kTimeoutHeader + "\n";
	std::istringstream in(dump);
	for (std::string line; std::getline(in, line);)
		out += (line.rfind(current, 0) == 0 ? "Thread " + line.substr(current.size()) : line) +
		       "\n";
	return out;
}

// A Python process's block or record: its own faulthandler's text, byte for
// byte (under the timeout's header for a timeout).
void check_python(const std::string &text, const std::string &own, bool timeout)
{
	std::string want = timeout ? as_timeout(own) : own;
	std::string ours = without_notes(text);
	INFO("faulthandler:\n" << want << "\nfh-bpf:\n" << ours);
	CHECK(ours == want);
}

// The native child's block or record: every thread it reported, once; its
// workers parked at their marker lines, its main thread in wait_for_kill;
// in a dump on demand its main thread is the "Current thread", first, in a
// timeout's none is.
void check_native(const std::string &text, const ParkedTree &tree, bool timeout)
{
	INFO("the native child's dump:\n" << text);
	ParsedTraceback tb = parse_traceback(without_notes(text), timeout);
	if (timeout)
		CHECK(tb.header == kTimeoutHeader);
	CHECK(tb.unparsed.empty());
	REQUIRE(tb.threads.size() == tree.native_threads.size());
	std::set<unsigned long> seen;
	for (const auto &t : tb.threads) {
		INFO("thread 0x" << std::hex << t.pthread);
		auto it = std::find_if(tree.native_threads.begin(), tree.native_threads.end(),
				       [&](const TargetThread &x) { return x.pthread == t.pthread; });
		REQUIRE(it != tree.native_threads.end());
		CHECK(seen.insert(t.pthread).second);
		bool main = it->role == "main";
		CHECK(t.current == (main && !timeout));
		auto ours = frames_in(t.frames, "tests/targets/crash.c");
		REQUIRE(ours.size() >= 2);
		if (main) {
			CHECK(ours.front() == std::make_pair(std::string("wait_for_kill"),
							     crash_marker("wait")));
			CHECK(ours.back().first == "main");
		} else {
			CHECK(ours.front() == parked_frames(it->role).front());
			CHECK(ours.back().first == "worker_main");
		}
	}
	if (!timeout)
		CHECK(tb.threads.front().current);
}

// One dump of the tree in the text output: a block per process in the
// dump's order, each headed by its headline, each its process's threads.
void check_text_dump(const std::string &output, const ParkedTree &tree, const std::string &what)
{
	bool timeout = what == "timeout";
	auto blocks = live_blocks_in(output);
	INFO("fh-bpf output:\n" << output);
	REQUIRE(blocks.size() == 3);
	auto order = tree.dump_order();
	for (size_t i = 0; i < blocks.size(); i++) {
		const LiveBlock &b = blocks[i];
		pid_t pid = order[i];
		INFO("block " << i << ", pid " << pid);
		REQUIRE(b.headline);
		CHECK(b.pid == pid);
		CHECK(b.what == what);
		if (pid == tree.master) {
			CHECK(b.ppid == 0);
			CHECK(b.comm == tree.master_comm);
			CHECK(b.threads == 2);
			check_python(b.text, tree.master_dump, timeout);
		} else if (pid == tree.worker) {
			CHECK(b.ppid == tree.master);
			CHECK(b.comm == tree.worker_comm);
			CHECK(b.threads == 2);
			check_python(b.text, tree.worker_dump, timeout);
		} else {
			CHECK(b.ppid == tree.master);
			CHECK(b.comm == "crash");
			CHECK(b.threads == 4);
			check_native(b.text, tree, timeout);
		}
	}
}

// The three records of one dump of the tree from records[first] on (the
// master's parent: master_ppid): one per process in the dump's order, all
// with one dump_id, which is returned.
uint64_t check_json_dump(const std::vector<nlohmann::json> &records, size_t first,
			 const ParkedTree &tree, pid_t master_ppid)
{
	REQUIRE(records.size() >= first + 3);
	const nlohmann::json &id = records[first]["dump_id"];
	INFO("dump_id " << id.dump());
	REQUIRE(id.is_number_unsigned());
	auto order = tree.dump_order();
	for (size_t i = 0; i < 3; i++) {
		const nlohmann::json &j = records[first + i];
		pid_t pid = order[i];
		INFO("record " << first + i << ", pid " << pid);
		CHECK(j["dump_id"] == id);
		CHECK(j["trigger"] == "demand");
		CHECK(j["pid"] == pid);
		std::string text = j["text"].get<std::string>();
		if (pid == tree.master) {
			CHECK(json_ppid(j) == master_ppid);
			CHECK(j["comm"] == tree.master_comm);
			CHECK(j["threads"].size() == 2);
			check_python(text, tree.master_dump, false);
		} else if (pid == tree.worker) {
			CHECK(json_ppid(j) == tree.master);
			CHECK(j["comm"] == tree.worker_comm);
			CHECK(j["threads"].size() == 2);
			check_python(text, tree.worker_dump, false);
		} else {
			CHECK(json_ppid(j) == tree.master);
			CHECK(j["comm"] == "crash");
			CHECK(j["threads"].size() == 4);
			check_native(text, tree, false);
		}
	}
	return id.get<uint64_t>();
}

// The closing line's count, by process when more than one printed:
// ", 6 events printed (pid 100: 2, pid 101: 2, pid 102: 2); none dropped".
std::string closing_counts(const ParkedTree &tree, int each)
{
	std::vector<pid_t> pids = {tree.master, tree.worker, tree.native};
	std::sort(pids.begin(), pids.end());
	std::string by_pid;
	for (pid_t pid : pids)
		by_pid += (by_pid.empty() ? "pid " : ", pid ") + std::to_string(pid) + ": " +
			  std::to_string(each);
	return events_printed(3 * each) + " (" + by_pid + "); none dropped\n";
}

} // namespace

TEST_CASE("--timeout 1 over a 3-process tree in launch mode: the master, its forked Python worker "
	  "and its native child, each in a block of its own headed by its pid and parent",
	  "[e2e][tree][live][timeout][launch]")
{
	for (const auto &py : tree_pythons()) {
		INFO(py.path);
		ParkedTree tree(py, false, std::vector<std::string>{"--timeout", "1"});
		INFO("the tree parked " << tree.parked_ms << " ms after fh-bpf said ready");
		Watcher &watcher = *tree.watcher;
		// The tree is parked before the timer fires (1 s after the start):
		// the tree waits until the test has seen every process's dump.
		for (pid_t pid : tree.dump_order())
			REQUIRE(watcher.wait_for_diagnostic(tree.headline(pid, "timeout")));
		tree.quit();
		CHECK(tree.finish() == 0); // the master's status
		std::string diag = watcher.diagnostics();
		INFO("fh-bpf stderr:\n" << diag);
		check_text_dump(watcher.output(), tree, "timeout");
		CHECK(contains(diag, "fh-bpf: target exited: pid " + std::to_string(tree.master) +
					     ", status 0 (2 descendants ended: 2 exited with status 0)" +
					     closing_counts(tree, 1)));
	}
}

TEST_CASE("--timeout 1 --no-children over the same tree: the master's block alone, as "
	  "faulthandler.dump_traceback_later writes it, no headline",
	  "[e2e][tree][live][timeout][launch][nochildren]")
{
	for (const auto &py : tree_pythons()) {
		INFO(py.path);
		ParkedTree tree(py, false, std::vector<std::string>{"--timeout", "1", "--no-children"});
		INFO("the tree parked " << tree.parked_ms << " ms after fh-bpf said ready");
		Watcher &watcher = *tree.watcher;
		REQUIRE(watcher.wait_for_diagnostic(tree.headline(tree.master, "timeout")));
		tree.quit();
		CHECK(tree.finish() == 0);
		std::string output = watcher.output(), diag = watcher.diagnostics();
		INFO("fh-bpf output:\n" << output << "\nfh-bpf stderr:\n" << diag);
		auto blocks = live_blocks_in(output);
		REQUIRE(blocks.size() == 1);
		CHECK_FALSE(blocks[0].headline);
		check_python(blocks[0].text, tree.master_dump, true);
		CHECK_FALSE(contains(diag, "fh-bpf: pid " + std::to_string(tree.worker)));
		CHECK_FALSE(contains(diag, "fh-bpf: pid " + std::to_string(tree.native)));
		CHECK(contains(diag, events_printed(1) + "; none dropped\n"));
	}
}

TEST_CASE("--dump -p MASTER of a parked tree: one JSON record per process sharing one dump_id, "
	  "each Python record's text its own faulthandler.dump_traceback; in text, a block each",
	  "[e2e][tree][live][dump]")
{
	for (const auto &py : tree_pythons()) {
		INFO(py.path);
		ParkedTree tree(py, false);
		std::string file = temp_path("tree-dump.json");
		Removed removed{{file}};
		FhRun r = run_fh({"-p", std::to_string(tree.master), "--dump", "--format", "json",
				  "-o", file});
		std::string output = read_file(file);
		INFO("fh-bpf output:\n" << output << "\nfh-bpf stderr:\n" << r.err);
		CHECK(r.status == 0);
		auto records = json_lines(output);
		REQUIRE(records.size() == 3);
		check_json_dump(records, 0, tree, getpid());

		unlink(file.c_str());
		r = run_fh({"-p", std::to_string(tree.master), "--dump", "-o", file});
		CHECK(r.status == 0);
		check_text_dump(read_file(file), tree, "dump on demand");

		// Neither dump stopped or disturbed the tree.
		tree.quit();
	}
}

TEST_CASE("SIGUSR1 sent to fh-bpf -p MASTER, twice: two dumps of the whole tree, each with a "
	  "dump_id of its own",
	  "[e2e][tree][live][usr1]")
{
	for (const auto &py : tree_pythons()) {
		INFO(py.path);
		ParkedTree tree(py, false);
		tree.watcher.emplace(tree.master, std::vector<std::string>{"--format", "json"});
		Watcher &watcher = *tree.watcher;
		for (int round = 1; round <= 2; round++) {
			INFO("dump " << round);
			REQUIRE(kill(watcher.pid(), SIGUSR1) == 0);
			for (pid_t pid : tree.dump_order())
				REQUIRE(watcher.wait_for_diagnostic(tree.headline(pid, "dump on demand")));
			watcher.forget_diagnostics();
		}
		tree.quit();
		CHECK(tree.finish() == 0);
		std::string output = watcher.output(), diag = watcher.diagnostics();
		INFO("fh-bpf output:\n" << output << "\nfh-bpf stderr (after the dumps):\n" << diag);
		auto records = json_lines(output);
		REQUIRE(records.size() == 6);
		uint64_t first = check_json_dump(records, 0, tree, getpid());
		uint64_t second = check_json_dump(records, 3, tree, getpid());
		CHECK(first != second);
		CHECK(contains(diag, closing_counts(tree, 2)));
	}
}

TEST_CASE("--signal: the descendant that registered faulthandler for SIGUSR1 and receives it is "
	  "dumped as its own faulthandler writes it; the master, which did not, prints nothing",
	  "[e2e][tree][live][signal]")
{
	for (const auto &py : tree_pythons()) {
		INFO(py.path);
		ParkedTree tree(py, true);
		tree.watcher.emplace(tree.master);
		Watcher &watcher = *tree.watcher;
		REQUIRE(kill(tree.worker, SIGUSR1) == 0);
		std::string head = "fh-bpf: pid " + std::to_string(tree.worker) + " (" +
				   tree.worker_comm + "), parent pid " + std::to_string(tree.master) +
				   ", thread " + std::to_string(tree.worker) + " (" + tree.worker_comm +
				   "): SIGUSR1 (SI_USER), sent by pid " + std::to_string(getpid()) + " (";
		REQUIRE(watcher.wait_for_diagnostic(head));
		tree.ping(); // its own faulthandler has written
		tree.quit();
		CHECK(tree.finish() == 0);
		std::string output = watcher.output(), diag = watcher.diagnostics();
		std::string theirs = tree.usr1_output();
		INFO("fh-bpf output:\n" << output << "\nfh-bpf stderr:\n" << diag);
		auto incidents = incidents_in(output);
		REQUIRE(incidents.size() == 1);
		const TreeIncident &inc = incidents[0];
		REQUIRE(inc.headline);
		CHECK(inc.pid == tree.worker);
		CHECK(inc.ppid == tree.master);
		CHECK(inc.tid == tree.worker); // its main thread: its sleeper blocks SIGUSR1
		CHECK(inc.comm == tree.worker_comm);
		CHECK(inc.what.rfind("SIGUSR1 (SI_USER), sent by pid " + std::to_string(getpid()), 0) ==
		      0);
		REQUIRE_FALSE(theirs.empty());
		check_python(inc.text, theirs, false);
		CHECK(parse_traceback(theirs, false).threads.size() == 2);
		CHECK(contains(diag, events_printed(1) + "; none dropped\n"));
	}
}
