#include "harness.h"

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <cerrno>
#include <chrono>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

namespace fhtest {

std::string fh_bpf_path() { return build_dir() + "/fh-bpf"; }
std::string crash_path() { return build_dir() + "/targets/crash"; }

pid_t start_crasher(const std::string &mode, int threads, uid_t uid, const std::string &program)
{
	SpawnOptions o;
	o.stdout_path = "/dev/null";
	o.uid = uid;
	return spawn({program, "--auto", "--threads", std::to_string(threads), mode}, o);
}

void check_segv_chain(const std::string &incident)
{
	INFO(incident);
	auto tb = parse_traceback(without_notes(incident));
	REQUIRE_FALSE(tb.threads.empty());
	REQUIRE(tb.threads.front().current);
	auto ours = frames_in(tb.threads.front().frames, "tests/targets/crash.c");
	std::vector<std::pair<std::string, int>> want = {{"poke", crash_marker("poke")},
							  {"crash_leaf", crash_marker("leaf")},
							  {"crash_mid", crash_marker("mid")},
							  {"main", crash_marker("main_segv")}};
	CHECK(is_subsequence(want, ours));
	for (const auto &f : tb.threads.front().frames)
		CHECK(f.raw.find("???") == std::string::npos);
}

Target::Target(const std::string &mode, int threads, std::vector<std::string> extra, uid_t uid)
{
	SpawnOptions o;
	o.uid = uid;
	o.fds = {{3, report_.write}, {4, go_.read}};
	std::vector<std::string> argv = {crash_path(), "--threads", std::to_string(threads),
					 "--report", "3", "--go", "4"};
	argv.insert(argv.end(), extra.begin(), extra.end());
	argv.push_back(mode);
	pid_ = spawn(argv, o);
	report_.close_write();
	go_.close_read();
	static const std::regex re(R"(^thread (\d+) 0x([0-9a-f]+) (\w+)$)");
	for (;;) {
		auto line = read_line(report_.read, kGuardMs);
		REQUIRE(line);
		if (*line == "ready")
			break;
		std::smatch m;
		REQUIRE(std::regex_match(*line, m, re));
		threads_.push_back({static_cast<pid_t>(std::stoi(m[1])), std::stoul(m[2], nullptr, 16),
				    m[3]});
	}
	size_t spinners = 0;
	for (size_t i = 0; i + 1 < extra.size(); i++)
		if (extra[i] == "--spinners")
			spinners = std::stoul(extra[i + 1]);
	REQUIRE(threads_.size() == static_cast<size_t>(threads) + spinners);
}

Target::~Target()
{
	if (!reaped_) {
		kill(pid_, SIGKILL);
		waitpid(pid_, nullptr, 0);
	}
}

const TargetThread *Target::by_pthread(unsigned long p) const
{
	for (const auto &t : threads_)
		if (t.pthread == p)
			return &t;
	return nullptr;
}

void Target::go() { REQUIRE(write(go_.write, "g", 1) == 1); }

void Target::send(const std::string &bytes)
{
	REQUIRE(write(go_.write, bytes.data(), bytes.size()) == static_cast<ssize_t>(bytes.size()));
}

std::string Target::next_report_line()
{
	auto line = read_line(report_.read, kGuardMs);
	REQUIRE(line);
	return *line;
}

int Target::wait()
{
	auto st = wait_exit(pid_, kGuardMs);
	REQUIRE(st);
	reaped_ = true;
	return *st;
}

void check_same_as_faulthandler(const PyTarget &target, Watcher &watcher)
{
	check_same_as_faulthandler(target.faulthandler_output(), watcher);
}

void check_same_as_faulthandler(const std::string &theirs, Watcher &watcher)
{
	std::string ours = without_notes(watcher.output());
	INFO("faulthandler:\n" << theirs << "\nfh-bpf:\n" << ours << "\ndiagnostics:\n"
			       << watcher.diagnostics());
	REQUIRE_FALSE(theirs.empty());
	CHECK(ours == theirs);
}

FhRun run_fh(std::vector<std::string> args, const std::string &input, uid_t uid)
{
	args.insert(args.begin(), fh_bpf_path());
	return run_command(args, input, uid);
}

FhRun run_command(const std::vector<std::string> &args, const std::string &input, uid_t uid)
{
	FhRun r;
	std::string out = temp_path("out"), err = temp_path("err");
	Pipe in;
	SpawnOptions o;
	o.fds = {{0, in.read}};
	o.stdout_path = out;
	o.stderr_path = err;
	o.uid = uid;
	pid_t pid = spawn(args, o);
	in.close_read();
	if (!input.empty())
		REQUIRE(write(in.write, input.data(), input.size()) ==
			static_cast<ssize_t>(input.size()));
	in.close_write();
	auto st = wait_exit(pid, kGuardMs);
	REQUIRE(st);
	REQUIRE(WIFEXITED(*st));
	r.status = WEXITSTATUS(*st);
	r.out = read_file(out);
	r.err = read_file(err);
	unlink(out.c_str());
	unlink(err.c_str());
	return r;
}

pid_t descendant(pid_t pid, int depth)
{
	for (int i = 0; i < depth && pid > 0; i++) {
		std::string path = "/proc/" + std::to_string(pid) + "/task/" + std::to_string(pid) +
				   "/children";
		std::istringstream in(read_file(path));
		pid = -1;
		in >> pid;
	}
	return pid;
}

PyTarget::PyTarget(const PythonBuild &py, const std::string &mode, int threads,
		   const PyTargetOptions &opts)
{
	fault_file_ = temp_path("faulthandler.txt");
	SpawnOptions o;
	o.fds = {{0, in_.read}, {1, out_.write}};
	std::vector<std::string> argv = opts.wrapper;
	// A shell in between: the interpreter is not the namespace's init (whose
	// signals without a handler are ignored); the shell's own words (a
	// child's death) to /dev/null.
	if (!opts.wrapper.empty())
		argv.insert(argv.end(),
			    {"/bin/sh", "-c", "exec 3>&2 2>/dev/null; \"$@\" 2>&3 3>&-; exit $?", "sh"});
	argv.insert(argv.end(), {py.path, source_dir() + "/tests/targets/" + opts.script,
				 fault_file_, mode, std::to_string(threads)});
	pid_ = spawn(argv, o);
	in_.close_read();
	out_.close_write();
	auto line = read_line(out_.read, kGuardMs);
	REQUIRE(line);
	REQUIRE(*line == "ready");
	// The wrapper's child is the shell, whose child is the interpreter.
	python_pid_ = opts.wrapper.empty() ? pid_ : descendant(pid_, 2);
	if (!opts.wrapper.empty())
		init_pid_ = descendant(pid_, 1);
	REQUIRE(python_pid_ > 0);
}

PyTarget::~PyTarget()
{
	if (!reaped_) {
		if (init_pid_ > 0)
			kill(init_pid_, SIGKILL);
		kill(pid_, SIGKILL);
		waitpid(pid_, nullptr, 0);
	}
	unlink(fault_file_.c_str());
}

void PyTarget::send(const std::string &text)
{
	REQUIRE(write(in_.write, text.data(), text.size()) == static_cast<ssize_t>(text.size()));
}

std::string PyTarget::next_line()
{
	auto line = read_line(out_.read, kGuardMs);
	REQUIRE(line);
	return *line;
}

int PyTarget::wait()
{
	auto st = wait_exit(pid_, kGuardMs);
	REQUIRE(st);
	reaped_ = true;
	return *st;
}

Watcher::Watcher(pid_t pid, std::vector<std::string> extra)
{
	out_ = temp_path("traceback.txt");
	Pipe ready;
	Pipe err;
	SpawnOptions o;
	o.fds = {{3, ready.write}, {2, err.write}};
	std::vector<std::string> argv = {fh_bpf_path(), "-o", out_, "--ready-fd", "3"};
	if (pid)
		argv.insert(argv.begin() + 1, {"-p", std::to_string(pid)});
	argv.insert(argv.end(), extra.begin(), extra.end());
	pid_ = spawn(argv, o);
	ready.close_write();
	err.close_write();
	// fh-bpf's stderr is read as it comes, so it never blocks on a full pipe.
	int fd = err.read;
	err.read = -1;
	reader_ = std::thread([this, fd] { drain_stderr(fd); });
	auto line = read_line(ready.read, kGuardMs);
	if (!line || *line != "ready") {
		// Not armed: fh-bpf and the reader end here, since a constructor
		// that fails runs no destructor (and a joinable thread destroyed
		// would end the whole test run).
		kill(pid_, SIGKILL);
		waitpid(pid_, nullptr, 0);
		reaped_ = true;
		reader_.join();
	}
	INFO("fh-bpf stderr: " << diagnostics());
	REQUIRE(line);
	REQUIRE(*line == "ready");
}

void Watcher::drain_stderr(int fd)
{
	char buf[4096];
	for (;;) {
		ssize_t n = ::read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		std::lock_guard<std::mutex> lock(mu_);
		if (n <= 0) {
			err_eof_ = true;
			cv_.notify_all();
			break;
		}
		err_text_.append(buf, static_cast<size_t>(n));
		cv_.notify_all();
	}
	close(fd);
}

std::string Watcher::diagnostics()
{
	std::lock_guard<std::mutex> lock(mu_);
	return err_text_;
}

bool Watcher::wait_for_diagnostic(const std::string &text)
{
	std::unique_lock<std::mutex> lock(mu_);
	return cv_.wait_for(lock, std::chrono::milliseconds(kGuardMs), [&] {
		return err_text_.find(text) != std::string::npos || err_eof_;
	}) && err_text_.find(text) != std::string::npos;
}

void Watcher::forget_diagnostics()
{
	std::lock_guard<std::mutex> lock(mu_);
	err_text_.clear();
}

Watcher::~Watcher()
{
	if (!reaped_) {
		kill(pid_, SIGKILL);
		waitpid(pid_, nullptr, 0);
	}
	if (reader_.joinable())
		reader_.join();
	unlink(out_.c_str());
}

int Watcher::wait()
{
	auto st = wait_exit(pid_, kGuardMs);
	INFO("fh-bpf stderr: " << diagnostics());
	REQUIRE(st);
	reaped_ = true;
	if (reader_.joinable())
		reader_.join();
	REQUIRE(WIFEXITED(*st));
	return WEXITSTATUS(*st);
}

namespace {

// gdb's "thread apply all bt": frames in crash.c per pthread id, and the
// roles the target reported on stdout ("thread TID 0xPTHREAD ROLE").
struct GdbThreads {
	std::map<unsigned long, std::vector<std::pair<std::string, int>>> frames;
	std::map<unsigned long, std::string> roles;
};

GdbThreads parse_gdb(const std::string &text)
{
	static const std::regex report_re(R"(^thread (\d+) 0x([0-9a-f]+) (\w+)$)");
	static const std::regex head_re(R"(^Thread \d+ \(Thread 0x([0-9a-f]+) \(LWP \d+\).*\):$)");
	static const std::regex frame_re(
		R"(^#\d+\s+(?:0x[0-9a-f]+ in )?([^\s(]+) \(.*\) at (\S+):(\d+)$)");
	GdbThreads out;
	std::istringstream in(text);
	std::string line;
	unsigned long current = 0;
	while (std::getline(in, line)) {
		std::smatch m;
		if (std::regex_match(line, m, report_re)) {
			out.roles[std::stoul(m[2], nullptr, 16)] = m[3];
		} else if (std::regex_match(line, m, head_re)) {
			current = std::stoul(m[1], nullptr, 16);
			out.frames[current];
		} else if (current && std::regex_match(line, m, frame_re)) {
			std::string file = m[2];
			if (file.size() >= 7 && file.compare(file.size() - 7, 7, "crash.c") == 0)
				out.frames[current].emplace_back(m[1], std::stoi(m[3]));
		}
	}
	return out;
}

} // namespace

std::map<std::string, std::vector<std::pair<std::string, int>>>
gdb_frames_by_role(const std::string &mode, int threads)
{
	GdbThreads g = parse_gdb(run_capture({"/usr/bin/gdb", "-batch", "-nx", "-ex", "run", "-ex",
					      "thread apply all bt", "--args", crash_path(),
					      "--auto", "--threads", std::to_string(threads),
					      mode}));
	// Threads of one role run the same code: the first of each stands for all.
	std::map<std::string, std::vector<std::pair<std::string, int>>> out;
	for (const auto &[pthread, frames] : g.frames) {
		auto it = g.roles.find(pthread);
		std::string role = it == g.roles.end() ? "?" : it->second;
		out.emplace(role, frames);
	}
	return out;
}

std::map<unsigned long, std::vector<std::pair<std::string, int>>> gdb_frames_of(pid_t pid)
{
	return parse_gdb(run_capture({"/usr/bin/gdb", "-batch", "-nx", "-p", std::to_string(pid),
				      "-ex", "thread apply all bt"}))
		.frames;
}

CrashRun run_crash(const std::string &mode, int threads, std::vector<std::string> extra)
{
	Target target(mode, threads);
	Watcher watcher(target.pid(), extra);
	target.go();
	return finish_crash(target, watcher);
}

CrashRun finish_crash(Target &target, Watcher &watcher)
{
	CrashRun run;
	run.target_status = target.wait();
	run.fh_status = watcher.wait();
	run.text = watcher.output();
	run.diagnostics = watcher.diagnostics();
	run.tb = parse_traceback(run.text);
	run.threads = target.threads();
	return run;
}

int crash_marker(const std::string &name)
{
	static const auto m = markers(source_dir() + "/tests/targets/crash.c");
	return m.at(name);
}

// What a parked worker's stack must show, innermost first.
std::vector<std::pair<std::string, int>> parked_frames(const std::string &role)
{
	static const std::map<std::string, std::pair<std::string, std::string>> park = {
		{"sleep", {"park_sleep", "park_sleep"}},
		{"futex", {"park_futex", "park_futex"}},
		{"read", {"park_read", "park_read"}},
	};
	auto [fn, m] = park.at(role);
	return {{fn, crash_marker(m)}};
}

// Checks shared by every crash: header, every thread present once with the
// right pthread id, the right current thread, parked workers where they
// were parked; returns the current thread.
const ParsedThread &check_common(const CrashRun &run, int sig, const std::string &header,
				 const std::string &current_role)
{
	INFO("traceback:\n" << run.text << "\ndiagnostics:\n" << run.diagnostics);
	REQUIRE(WIFSIGNALED(run.target_status));
	REQUIRE(WTERMSIG(run.target_status) == sig);
	if (run.fh_status >= 0)
		REQUIRE(run.fh_status == 3);
	CHECK(run.tb.header == header);
	CHECK(run.tb.unparsed.empty());
	REQUIRE(run.tb.threads.size() == run.threads.size());

	std::set<unsigned long> seen;
	const ParsedThread *current = nullptr;
	for (const auto &t : run.tb.threads) {
		const TargetThread *tt = nullptr;
		for (const auto &x : run.threads)
			if (x.pthread == t.pthread)
				tt = &x;
		INFO("thread 0x" << std::hex << t.pthread);
		REQUIRE(tt != nullptr);
		CHECK(seen.insert(t.pthread).second);
		CHECK_FALSE(t.frames.empty());
		if (t.current) {
			CHECK(current == nullptr);
			current = &t;
			CHECK(tt->role == current_role);
		} else if (tt->role != "main") {
			auto ours = frames_in(t.frames, "tests/targets/crash.c");
			CHECK(is_subsequence(parked_frames(tt->role), ours));
			REQUIRE_FALSE(ours.empty());
			CHECK(ours.back().first == "worker_main");
		}
	}
	REQUIRE(current != nullptr);
	// The current thread is printed first.
	CHECK(run.tb.threads.front().current);
	return *current;
}

// gdb's frames in crash.c, per role, must appear in ours in the same order
// with the same lines.  gdb hides an inlined call whose first instruction
// faulted; fh-bpf shows it, so ours may hold more.
void check_against_gdb(const CrashRun &run, const std::string &mode, int threads)
{
	auto gdb = gdb_frames_by_role(mode, threads);
	REQUIRE(gdb.count("main"));
	for (const auto &t : run.tb.threads) {
		std::string role;
		for (const auto &x : run.threads)
			if (x.pthread == t.pthread)
				role = x.role;
		auto ours = frames_in(t.frames, "tests/targets/crash.c");
		const auto &theirs = gdb[role];
		INFO("role " << role << "\nours:\n" << Catch::Detail::stringify(ours) << "\ngdb:\n"
			     << Catch::Detail::stringify(theirs));
		REQUIRE_FALSE(theirs.empty());
		CHECK(is_subsequence(theirs, ours));
		CHECK(ours.size() <= theirs.size() + 1);
	}
}


MemoryCgroup::MemoryCgroup(const std::string &name, uint64_t limit_bytes)
{
	std::string mem = "/sys/fs/cgroup/memory";
	struct stat st;
	REQUIRE(stat(mem.c_str(), &st) == 0); // the cgroup v1 memory controller
	dir = mem + "/" + name + "-" + std::to_string(getpid());
	REQUIRE(mkdir(dir.c_str(), 0755) == 0);
	std::ofstream f(dir + "/memory.limit_in_bytes");
	f << limit_bytes << "\n";
	f.flush();
	REQUIRE(f.good());
}

MemoryCgroup::~MemoryCgroup() { rmdir(dir.c_str()); }

std::vector<std::string> MemoryCgroup::memory_hog() const
{
	return {"/bin/sh", "-c",
		"echo $$ > " + dir + "/cgroup.procs && exec python3 -c '\n"
		"x = []\nwhile True: x.append(bytearray(1 << 20))'"};
}

std::vector<nlohmann::json> json_lines(const std::string &out)
{
	std::vector<nlohmann::json> v;
	std::istringstream in(out);
	for (std::string line; std::getline(in, line);)
		if (!line.empty())
			v.push_back(nlohmann::json::parse(line));
	return v;
}

} // namespace fhtest
