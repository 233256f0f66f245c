// --native: a Python process's threads with their native frames, the Python
// frames in place of the evaluation loop's, on every CPython here (3.6 to
// 3.13 and Debian's static, stripped python3.11).  A C extension
// (tests/targets/fhext.c) is built -O2 -g for each interpreter; the target
// is tests/targets/py_native.py.
//
// Oracles from outside fh-bpf: gdb's backtrace of the same crash run under
// gdb (the extension's frames, function and line), the target's own
// faulthandler (the Python frames), the extension's marker lines, the
// program's known call structure (which Python frames call which C
// function), eu-stack's addresses for SQLite's frames, readelf's build id,
// the OS thread name the target set.
#include <catch2/catch.hpp>

#include "harness.h"
#include "python_interpreters.h"

#include <nlohmann/json.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <map>
#include <regex>
#include <sstream>

using namespace fhtest;

namespace {

using Frame = std::pair<std::string, int>; // function, line

std::string script() { return source_dir() + "/tests/targets/py_native.py"; }
std::string fhext_source() { return source_dir() + "/tests/targets/fhext.c"; }

int fhext_marker(const std::string &name)
{
	static const auto m = markers(fhext_source());
	return m.at(name);
}

// fhext built for this interpreter, -O2 -g, once a run: its directory.
std::string fhext_dir(const PythonBuild &py)
{
	static std::map<std::string, std::string> built;
	if (auto it = built.find(py.path); it != built.end())
		return it->second;
	std::string dir = build_dir() + "/targets/fhext-" + py.version +
			  (py.libpython.empty() ? "-static" : "");
	int st = -1;
	std::string info = run_capture(
		{py.path, "-c",
		 "import sysconfig; print(sysconfig.get_paths()['include']); "
		 "print(sysconfig.get_config_var('EXT_SUFFIX') or '.so')"},
		&st);
	REQUIRE(st == 0);
	std::istringstream lines(info);
	std::string include, suffix;
	std::getline(lines, include);
	std::getline(lines, suffix);
	run_capture({"/bin/mkdir", "-p", dir});
	std::string out = run_capture({"/usr/bin/cc", "-shared", "-fPIC", "-O2", "-g", "-I" + include,
				       fhext_source(), "-o", dir + "/fhext" + suffix},
				      &st, true);
	INFO("building fhext for " << py.path << ": " << out);
	REQUIRE(st == 0);
	built[py.path] = dir;
	return dir;
}

bool is_python(const ParsedFrame &f) { return f.source && f.file.size() > 3 &&
					       f.file.compare(f.file.size() - 3, 3, ".py") == 0; }
bool is_fhext(const ParsedFrame &f) { return f.source && contains(f.file, "fhext.c"); }

// Frames of the extension and of Python, in order: "c:function:line",
// "py:file:function:line".
std::vector<std::string> interleaved(const std::vector<ParsedFrame> &frames)
{
	std::vector<std::string> out;
	for (const auto &f : frames) {
		if (is_fhext(f))
			out.push_back("c:" + f.function + ":" + std::to_string(f.line));
		else if (is_python(f))
			out.push_back("py:" + f.file + ":" + f.function + ":" + std::to_string(f.line));
	}
	return out;
}

// gdb's backtrace of the crash mode run under gdb: the frames in fhext.c.
std::vector<Frame> gdb_fhext_frames(const PythonBuild &py, const std::string &ext)
{
	std::string bt = run_capture({"/usr/bin/gdb", "-batch", "-nx", "-ex", "run", "-ex", "bt", "--args",
				      py.path, script(), "crash", ext, "/dev/null"},
				     nullptr, true);
	static const std::regex re(R"(^#\d+\s+(?:0x[0-9a-f]+ in )?(\w+) \(.*\) at (\S+):(\d+)\s*$)");
	std::vector<Frame> out;
	std::istringstream in(bt);
	for (std::string line; std::getline(in, line);) {
		std::smatch m;
		if (std::regex_match(line, m, re) && contains(m[2], "fhext.c"))
			out.emplace_back(m[1], std::stoi(m[3]));
	}
	INFO("gdb:\n" << bt);
	REQUIRE(out.size() >= 5);
	return out;
}

// The Python frames of the current thread in a faulthandler text.
std::vector<ParsedFrame> current_python_frames(const std::string &text)
{
	ParsedTraceback tb = parse_traceback(text);
	for (const auto &t : tb.threads)
		if (t.current)
			return t.frames;
	return {};
}

const ParsedThread *thread_with(const ParsedTraceback &tb, const std::string &function)
{
	for (const auto &t : tb.threads)
		for (const auto &f : t.frames)
			if (f.function == function)
				return &t;
	return nullptr;
}

} // namespace

namespace {

// The crash of `crash` as fh-bpf printed it with --native: the thread hit
// holds gdb's frames in the extension and faulthandler's Python frames,
// each C function right after its Python caller's frames.
void check_callback_crash(const std::string &text, const PythonBuild &py,
			  const std::string &fault_text)
{
	std::vector<Frame> c = gdb_fhext_frames(py, fhext_dir(py));
	std::vector<ParsedFrame> theirs = current_python_frames(fault_text);
	REQUIRE(theirs.size() == 5); // make_thumbnail ... <module>
	ParsedTraceback tb = parse_traceback(text);
	const ParsedThread *cur = nullptr;
	for (const auto &t : tb.threads)
		if (t.current)
			cur = &t;
	REQUIRE(cur);

	// Which Python frames call which C functions is the program's:
	// make_thumbnail calls fhext.crash, via_callback calls fhext.call.
	// The C frames are gdb's, the Python ones faulthandler's.
	std::vector<std::string> expected;
	auto add_c = [&](size_t from, size_t to) {
		for (size_t i = from; i < to; i++)
			expected.push_back("c:" + c[i].first + ":" + std::to_string(c[i].second));
	};
	auto add_py = [&](size_t from, size_t to) {
		for (size_t i = from; i < to; i++)
			expected.push_back("py:" + theirs[i].file + ":" + theirs[i].function + ":" +
					   std::to_string(theirs[i].line));
	};
	size_t crash_c = 0;
	while (crash_c < c.size() && c[crash_c].first != "fhext_crash")
		crash_c++;
	REQUIRE(crash_c + 4 == c.size()); // then invoke, dispatch, fhext_call
	add_c(0, crash_c + 1);
	add_py(0, 2); // make_thumbnail, callback
	add_c(crash_c + 1, c.size());
	add_py(2, theirs.size());
	CHECK(interleaved(cur->frames) == expected);
	CHECK(c[0] == Frame("blend_pixel", fhext_marker("blend_pixel")));

	// Nothing of the interpreter's machinery between a C function and its
	// Python caller.
	for (size_t i = 0; i + 1 < cur->frames.size(); i++)
		if (cur->frames[i].function == "fhext_crash" || cur->frames[i].function == "fhext_call")
			CHECK(is_python(cur->frames[i + 1]));
	CHECK(contains(text, "Fatal Python error: Segmentation fault"));
}

} // namespace

TEST_CASE("--native: a crash in C called back from Python, between its Python callers",
	  "[native][python]")
{
	for (const auto &py : python_interpreters()) {
		DYNAMIC_SECTION(py.path << " " << py.version)
		{
			std::string ext = fhext_dir(py);
			std::string fault = temp_path("faulthandler.txt");
			Watcher w(0, {"--native", "--", py.path, script(), "crash", ext, fault});
			int status = w.wait();
			std::string text = w.output();
			INFO("fh-bpf:\n" << text << "\ndiagnostics:\n" << w.diagnostics());
			CHECK(status == 128 + SIGSEGV);
			check_callback_crash(text, py, read_file(fault));

			// Without --native: faulthandler's text, byte for byte.
			std::string fault2 = temp_path("faulthandler.txt");
			Watcher plain(0, {"--", py.path, script(), "crash", ext, fault2});
			CHECK(plain.wait() == 128 + SIGSEGV);
			check_same_as_faulthandler(read_file(fault2), plain);
		}
	}
}

namespace {

// py_native.py MODE: started, and its "ready TID" line read.
struct NativeTarget {
	pid_t pid = -1;
	pid_t tid = 0; // the thread that waits in C
	Pipe in, out;
	std::string fault = temp_path("faulthandler.txt");

	NativeTarget(const PythonBuild &py, const std::string &mode)
	{
		SpawnOptions o;
		o.fds = {{0, in.read}, {1, out.write}};
		pid = spawn({py.path, script(), mode, fhext_dir(py), fault}, o);
		in.close_read();
		out.close_write();
		auto line = read_line(out.read, kGuardMs);
		REQUIRE(line);
		REQUIRE(line->rfind("ready ", 0) == 0);
		tid = std::stoi(line->substr(6));
	}
	~NativeTarget()
	{
		if (pid > 0 && !reaped) {
			kill(pid, SIGKILL);
			waitpid(pid, nullptr, 0);
		}
	}
	int finish()
	{
		REQUIRE(write(in.write, "go\n", 3) == 3);
		auto st = wait_exit(pid, kGuardMs);
		reaped = true;
		REQUIRE(st);
		return *st;
	}
	bool reaped = false;
};

// The reader thread of `block`, as fh-bpf printed it: blocked in read() in
// C, at the extension's markers, then the Python frames faulthandler
// printed for it, right after the C function they called.
void check_reader(const ParsedTraceback &ours, const std::string &fault_text)
{
	ParsedTraceback theirs = parse_traceback(fault_text, false);
	const ParsedThread *their_reader = thread_with(theirs, "reader");
	REQUIRE(their_reader);
	const ParsedThread *reader = thread_with(ours, "wait_input");
	REQUIRE(reader);
	CHECK(reader->pthread == their_reader->pthread);
	std::vector<std::string> expected = {
		"c:wait_input:" + std::to_string(fhext_marker("wait_input")),
		"c:wait_unlocked:" + std::to_string(fhext_marker("wait_unlocked")),
		"c:fhext_block:" + std::to_string(fhext_marker("fhext_block"))};
	for (const auto &f : their_reader->frames)
		expected.push_back("py:" + f.file + ":" + f.function + ":" + std::to_string(f.line));
	CHECK(interleaved(reader->frames) == expected);
	REQUIRE(reader->frames.size() > 4);
	CHECK(contains(reader->frames[0].function, "read")); // libc's, the newest
	for (size_t i = 0; i + 1 < reader->frames.size(); i++)
		if (reader->frames[i].function == "fhext_block")
			CHECK(is_python(reader->frames[i + 1]));
}

std::string build_id_of(const std::string &file)
{
	std::string notes = run_capture({"/usr/bin/readelf", "-n", file});
	static const std::regex re(R"(Build ID: ([0-9a-f]+))");
	std::smatch m;
	REQUIRE(std::regex_search(notes, m, re));
	return m[1];
}

} // namespace

TEST_CASE("--native --dump: a thread blocked in C without the GIL", "[native][python]")
{
	for (const auto &py : python_interpreters()) {
		DYNAMIC_SECTION(py.path << " " << py.version)
		{
			NativeTarget target(py, "block");
			std::string text_file = temp_path("dump.txt"), json_file = temp_path("dump.json");
			FhRun r = run_fh({"-p", std::to_string(target.pid), "--dump", "--native", "-o",
					  text_file});
			FhRun j = run_fh({"-p", std::to_string(target.pid), "--dump", "--native",
					  "--format", "json", "-o", json_file});
			std::string fault = read_file(target.fault), text = read_file(text_file);
			INFO("fh-bpf:\n" << text << r.err << "\nfaulthandler:\n" << fault);
			CHECK(r.status == 0);
			check_reader(parse_traceback(text, false), fault);

			// JSON: one ordered list of both kinds; the thread's OS
			// name; the extension's build id.
			REQUIRE(j.status == 0);
			auto recs = json_lines(read_file(json_file));
			REQUIRE(recs.size() == 1);
			const nlohmann::json *reader = nullptr;
			for (const auto &t : recs[0]["threads"])
				if (t["tid"] == target.tid)
					reader = &t;
			REQUIRE(reader);
			CHECK((*reader)["name"] == "fh-reader");
			std::string kinds;
			std::string ext_build_id;
			for (const auto &f : (*reader)["frames"]) {
				kinds += f["kind"] == "python" ? 'p' : 'n';
				if (f["function"] == "fhext_block")
					ext_build_id = f["build_id"];
			}
			// Native frames (libc, the extension), then Python ones,
			// then the thread's start in libc.
			CHECK(std::regex_match(kinds, std::regex("n{4,}p{3,}n+")));
			std::string so;
			for (const auto &name : files_in(fhext_dir(py)))
				if (name.rfind("fhext", 0) == 0)
					so = fhext_dir(py) + "/" + name;
			CHECK(ext_build_id == build_id_of(so));
			CHECK(WIFEXITED(target.finish()));
		}
	}
}

TEST_CASE("--native --timeout: the watch's dump of a Python process", "[native][python]")
{
	const PythonBuild &py = python_interpreters().back();
	NativeTarget target(py, "block");
	Watcher w(target.pid, {"--native", "--timeout", "0.2", "--exit"});
	CHECK(w.wait() == 0);
	target.reaped = true;
	waitpid(target.pid, nullptr, 0);
	std::string text = w.output();
	INFO("fh-bpf:\n" << text << "\ndiagnostics:\n" << w.diagnostics());
	CHECK(contains(text, "Timeout (0:00:00.200000)!\n"));
	check_reader(parse_traceback(text, false), read_file(target.fault));
}

TEST_CASE("--native: a query waiting in SQLite's busy handler (Debian's python3.11)",
	  "[native][python]")
{
	const PythonBuild *debian = nullptr;
	for (const auto &py : python_interpreters())
		if (py.path == "/usr/bin/python3.11")
			debian = &py;
	REQUIRE(debian);
	NativeTarget target(*debian, "sqlite");
	std::string json_file = temp_path("dump.json");
	FhRun j = run_fh({"-p", std::to_string(target.pid), "--dump", "--native", "--format", "json",
			  "-o", json_file});
	std::string json_text = read_file(json_file);
	// The oracle: eu-stack's frames of the same thread (it stops the
	// process while it reads, after fh-bpf's dump).
	std::string eu = run_capture({"/usr/bin/eu-stack", "-m", "-p", std::to_string(target.pid)});
	INFO("fh-bpf:\n" << json_text << j.err << "\neu-stack:\n" << eu);
	REQUIRE(j.status == 0);
	std::vector<std::string> theirs;
	{
		std::istringstream in(eu);
		bool ours = false;
		static const std::regex frame(R"(^#\d+\s+0x0*([0-9a-f]+)\s+(?:.*\s)?- (\S+)$)");
		for (std::string line; std::getline(in, line);) {
			if (line.rfind("TID ", 0) == 0)
				ours = line == "TID " + std::to_string(target.tid) + ":";
			std::smatch m;
			if (ours && std::regex_match(line, m, frame) && contains(m[2], "sqlite3"))
				theirs.push_back("0x" + m[1].str());
		}
	}
	REQUIRE(theirs.size() >= 3);
	auto recs = json_lines(json_text);
	REQUIRE(recs.size() == 1);
	std::vector<std::string> mine;
	std::string after; // the frame after the last of SQLite's
	for (const auto &t : recs[0]["threads"]) {
		if (t["tid"] != target.tid)
			continue;
		CHECK(t["name"] == "fh-query");
		for (const auto &f : t["frames"]) {
			if (f["kind"] == "native" && f["module"].is_string() &&
			    contains(f["module"].get<std::string>(), "sqlite3")) {
				mine.push_back(f["address"]);
				after.clear();
			} else if (after.empty() && !mine.empty()) {
				after = f.dump();
			}
		}
	}
	CHECK(mine == theirs);
	int line = markers(script()).at("query");
	CHECK(contains(after, "\"kind\":\"python\""));
	CHECK(contains(after, "\"function\":\"query\""));
	CHECK(contains(after, "\"line\":" + std::to_string(line)));
	CHECK(WIFEXITED(target.finish()));
}

TEST_CASE("--native -p: the crash of a process attached to", "[native][python]")
{
	const PythonBuild &py = python_interpreters().front();
	NativeTarget target(py, "crash_on_go");
	Watcher w(target.pid, {"--native"});
	REQUIRE(write(target.in.write, "go\n", 3) == 3);
	CHECK(w.wait() == 3); // the target died of a fatal signal
	target.reaped = true;
	waitpid(target.pid, nullptr, 0);
	std::string text = w.output();
	INFO("fh-bpf:\n" << text << "\ndiagnostics:\n" << w.diagnostics());
	check_callback_crash(text, py, read_file(target.fault));
}

TEST_CASE("--native --system-wide: the agent's incident of a Python crash", "[native][python]")
{
	// The interpreters under a name of their own: no other process of the
	// host is in scope.
	std::string dir = temp_path("pylinks");
	run_capture({"/bin/mkdir", "-p", dir});
	std::string link = dir + "/py-fhnative";
	Watcher agent(0, {"-a", "--native", "--comm", "py-fhnative"});
	std::vector<std::pair<const PythonBuild *, std::string>> runs;
	for (const auto &py : python_interpreters()) {
		if (py.path != "/usr/bin/python3.11" && &py != &python_interpreters().back())
			continue;
		::unlink(link.c_str());
		REQUIRE(symlink(py.path.c_str(), link.c_str()) == 0);
		std::string fault = temp_path("faulthandler.txt");
		pid_t pid = spawn({link, script(), "crash", fhext_dir(py), fault});
		auto st = wait_exit(pid, kGuardMs);
		REQUIRE(st);
		CHECK(WIFSIGNALED(*st));
		runs.emplace_back(&py, read_file(fault));
	}
	REQUIRE(kill(agent.pid(), SIGTERM) == 0);
	CHECK(agent.wait() == 0);
	std::vector<std::string> incidents = split_dumps(agent.output(), "fh-bpf: pid ");
	INFO("fh-bpf:\n" << agent.output() << "\ndiagnostics:\n" << agent.diagnostics());
	REQUIRE(incidents.size() == runs.size());
	for (size_t i = 0; i < runs.size(); i++) {
		INFO(runs[i].first->path);
		check_callback_crash(incidents[i], *runs[i].first, runs[i].second);
	}
	remove_dir(dir);
}

TEST_CASE("--native --signal: a user signal the target registered faulthandler for",
	  "[native][python]")
{
	const PythonBuild &py = python_interpreters().back();
	NativeTarget target(py, "block");
	Watcher w(target.pid, {"--native"});
	REQUIRE(kill(target.pid, SIGUSR1) == 0);
	// Its handler runs before its main thread reads stdin again.
	CHECK(WIFEXITED(target.finish()));
	CHECK(w.wait() == 0);
	std::string text = w.output(), theirs = read_file(target.fault + ".usr1");
	INFO("fh-bpf:\n" << text << "\ndiagnostics:\n" << w.diagnostics() << "\nfaulthandler:\n"
			 << theirs);
	ParsedTraceback ours = parse_traceback(text, false);
	check_reader(ours, theirs);
	// The thread the signal hit: the same Python frames.
	std::vector<std::string> mine, their_main;
	for (const auto &t : ours.threads)
		if (t.current)
			mine = interleaved(t.frames);
	for (const auto &t : parse_traceback(theirs, false).threads)
		if (t.current)
			their_main = interleaved(t.frames);
	REQUIRE_FALSE(their_main.empty());
	CHECK(mine == their_main);
}

TEST_CASE("--native: a Python stack deeper than the native stack copied keeps every Python "
	  "frame, in order",
	  "[native][python]")
{
	for (const auto &py : python_interpreters()) {
		DYNAMIC_SECTION(py.path << " " << py.version)
		{
			std::string fault = temp_path("faulthandler.txt");
			Watcher w(0, {"--native", "--stack-size", "8K", "--", py.path, script(),
				      "deep", fhext_dir(py), fault});
			CHECK(w.wait() == 128 + SIGSEGV);
			std::string text = w.output();
			INFO("fh-bpf:\n" << text << "\ndiagnostics:\n" << w.diagnostics());
			std::vector<std::string> theirs, mine;
			for (const auto &f : current_python_frames(read_file(fault)))
				theirs.push_back(f.file + ":" + f.function + ":" + std::to_string(f.line));
			for (const auto &f : current_python_frames(text))
				if (is_python(f))
					mine.push_back(f.file + ":" + f.function + ":" +
						       std::to_string(f.line));
			REQUIRE(theirs.size() == 64); // make_thumbnail, 61 recurse, main, <module>
			CHECK(mine == theirs);
			// Up to 3.10 each Python call nests C frames: the copy ran
			// out before the oldest ones, which is said.  From 3.11
			// Python calls Python without C: the stack is shallow.
			CHECK(contains(text, "stack deeper than the bytes copied") ==
			      (py.minor <= 10));
			CHECK_FALSE(contains(text, "did not pair up"));
			ParsedTraceback tb = parse_traceback(text);
			for (const auto &t : tb.threads)
				if (t.current) {
					REQUIRE(t.frames.size() > 2);
					CHECK(t.frames[0].function == "blend_pixel");
				}
		}
	}
}
