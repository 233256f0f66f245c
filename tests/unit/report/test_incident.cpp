// Incident records: JSON that any parser takes whatever bytes the target
// held (checked with Python's json module), and the log directory's
// promises: 0600 files written whole, never over anything, retention.
#include <catch2/catch.hpp>

#include "util/error.h"
#include "output/json.h"
#include "report/incident.h"
#include "report/text.h"
#include "output/log_dir.h"
#include "support.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <set>

extern "C" {
#include <linux/types.h>
#include "fh/records.h"
}

using namespace fh;
using fhtest::python_json;
using fhtest::read_file;
using fhtest::temp_path;

namespace {

std::set<std::string> list_dir(const std::string &dir)
{
	std::set<std::string> out;
	DIR *d = opendir(dir.c_str());
	REQUIRE(d != nullptr);
	while (struct dirent *e = readdir(d))
		if (std::string(e->d_name) != "." && std::string(e->d_name) != "..")
			out.insert(e->d_name);
	closedir(d);
	return out;
}

std::string fresh_dir()
{
	std::string d = temp_path("logdir");
	REQUIRE(mkdir(d.c_str(), 0700) == 0);
	return d;
}

void remove_dir(const std::string &d)
{
	for (const auto &name : list_dir(d))
		unlink((d + "/" + name).c_str());
	rmdir(d.c_str());
}

} // namespace

TEST_CASE("JSON strings: escapes, UTF-8 kept, any other byte as the text \\xHH", "[incident]")
{
	CHECK(json_string("plain") == "\"plain\"");
	CHECK(json_string("a\"b\\c") == "\"a\\\"b\\\\c\"");
	CHECK(json_string(std::string("\x01\n\x7f", 3)) == "\"\\u0001\\n\\u007f\"");
	CHECK(json_string("f\xc3\xbcnf \xce\xbb \xf0\x9f\x90\x8d") ==
	      "\"f\xc3\xbcnf \xce\xbb \xf0\x9f\x90\x8d\"");
	CHECK(json_string("\xff") == "\"\\\\xff\"");
	CHECK(json_string("\xc3") == "\"\\\\xc3\"");		 // cut short
	CHECK(json_string("\xc0\x80") == "\"\\\\xc0\\\\x80\"");	 // overlong
	CHECK(json_string("\xed\xa0\x80") == "\"\\\\xed\\\\xa0\\\\x80\""); // a surrogate
	// Whatever the bytes, Python reads it back: text as the bytes said.
	std::string nasty = std::string("\x00\xff\"\\\xe2\x82\xac\n", 8);
	CHECK(python_json("[" + json_string(nasty) + "]", "d[0]") ==
	      "'\\x00\\\\xff\"\\\\€\\n'");
}

TEST_CASE("an incident record as JSON, read back by Python's json module", "[incident]")
{
	Event ev;
	ev.trigger = FH_TRIGGER_FATAL_SIGNAL;
	ev.tgid = 4242;
	ev.hit_tid = 4243;
	ev.sig = 11;
	ev.si_code = 1;
	ev.fault_addr = 0x10;
	ev.comm = "my app";
	ev.sender = Sender{7, 7, 1000, "kill", false};
	ev.complete = true;
	ev.threads_skipped = 2;
	ProcessMeta meta;
	meta.exe = "/usr/bin/app\xff";
	meta.cmdline = {"app", "--flag"};
	meta.uid = 1000;
	meta.cgroup = "/system.slice/app.service";
	meta.ns_pid = 12;
	// The record of the event, as the pipeline makes it.
	auto record = [&] {
		Incident inc = make_incident(ev, meta);
		inc.time_ns = 1764585067123456789ull; // 2025-12-01T10:31:07.123456Z
		inc.host = "node-7";
		inc.kernel = "6.18.0";
		Thread t;
		t.pthread_id = 0x7f0000001000;
		t.tid = 4243;
		t.name = "worker";
		t.current = true;
		NativeFrame native;
		native.function = "poke";
		native.file = "x.c";
		native.line = 9;
		native.module = "/usr/bin/app";
		native.module_offset = 0x1234;
		native.build_id = "c0ffee";
		native.pc = 0x555500001234;
		native.inlined = true;
		NativeFrame unknown; // an address outside any mapping
		t.frames = {native, unknown};
		inc.threads = {t};
		inc.losses = {{"threads_skipped", 2, "2 threads beyond --max-threads not captured"}};
		inc.header = fatal_header(11);
		return inc;
	};
	Incident inc = record();
	std::string j = incident_json(inc);
	CHECK(j.find('\n') == std::string::npos); // one line
	CHECK(python_json(j, "d['schema'], d['time'], d['host'], d['trigger']") ==
	      "(3, '2025-12-01T10:31:07.123456Z', 'node-7', 'fatal_signal')");
	CHECK(python_json(j, "d['pid'], d['ns_pid'], d['tid'], d['comm'], d['uid']") ==
	      "(4242, 12, 4243, 'my app', 1000)");
	CHECK(python_json(j, "d['exe'], d['cmdline'], d['cgroup']") ==
	      "('/usr/bin/app\\\\xff', ['app', '--flag'], '/system.slice/app.service')");
	CHECK(python_json(j, "d['signal']") ==
	      "{'number': 11, 'name': 'SIGSEGV', 'code': 'SEGV_MAPERR', 'delivered': True, "
	      "'address': '0x10'}");
	CHECK(python_json(j, "d['sender']") ==
	      "{'kernel': False, 'pid': 7, 'comm': 'kill', 'uid': 1000}");
	CHECK(python_json(j, "d['python'], d['extension_modules']") == "(None, [])");
	// Not captured at a signal (no identity): its namespace facts are unknown.
	CHECK(python_json(j, "d['ns_tid'], d['pid_namespace_level']") == "(None, None)");

	// Killed without delivery, by the kernel's OOM killer in the context of
	// another process.
	ev.terminated = true;
	ev.sig = 9;
	ev.si_code = 0x80;
	ev.sender = Sender{99, 99, 0, "hog", true};
	ev.sender->kernel_function = "oom_kill_process";
	ev.sender->kernel_what = "the OOM killer";
	ev.identity.known = true;
	ev.identity.ns_tid = 3;
	ev.identity.pid_ns_level = 1;
	std::string k = incident_json(record());
	CHECK(python_json(k, "d['signal']") ==
	      "{'number': 9, 'name': 'SIGKILL', 'code': 'SI_KERNEL', 'delivered': False, "
	      "'address': None}");
	CHECK(python_json(k, "d['sender']") ==
	      "{'kernel': True, 'function': 'oom_kill_process', 'cause': 'the OOM killer', "
	      "'context_pid': 99, 'context_comm': 'hog'}");
	CHECK(python_json(k, "d['ns_tid'], d['pid_namespace_level']") == "(3, 1)");
	ev.terminated = false;
	ev.sig = 11;
	ev.si_code = 1;
	ev.sender = Sender{7, 7, 1000, "kill", false};
	ev.identity = {};
	CHECK(python_json(j, "[(x['pthread'], x['tid'], x['name'], x['current']) for x in "
			      "d['threads']]") == "[('0x7f0000001000', 4243, 'worker', True)]");
	CHECK(python_json(j, "d['threads'][0]['frames'][0]") ==
	      "{'kind': 'native', 'function': 'poke', 'file': 'x.c', 'line': 9, 'module': "
	      "'/usr/bin/app', 'offset': '0x1234', 'build_id': 'c0ffee', 'address': "
	      "'0x555500001234', 'inlined': True, 'function_offset': None}");
	CHECK(python_json(j, "d['threads'][0]['frames'][1]") ==
	      "{'kind': 'native', 'function': None, 'file': None, 'line': None, 'module': None, "
	      "'offset': None, 'build_id': None, 'address': '0x0', 'inlined': False, "
	      "'function_offset': None}");
	CHECK(python_json(j, "d['lost']") ==
	      "{'threads_skipped': 2, 'threads_lost': 0, 'complete': True, 'losses': [{'kind': "
	      "'threads_skipped', 'count': 2, 'text': '2 threads beyond --max-threads not "
	      "captured'}]}");
	CHECK(python_json(j, "d['text']") ==
	      "'Fatal error: Segmentation fault\\n\\nCurrent thread 0x00007f0000001000 (most "
	      "recent call first):\\n  File \"x.c\", line 9 in poke\\n  Binary file "
	      "\\'<unknown>\\' [0x0]\\n'");

	// A timeout's record: no signal, no sender; a Python frame.
	ev.trigger = FH_TRIGGER_TIMEOUT;
	ev.sender.reset();
	ev.hit_tid = 0;
	inc = record();
	PyFrame py{"/srv/app.py", 12, "<module>"};
	inc.threads[0].frames = {py};
	inc.threads[0].current = false;
	inc.python = PythonDialect{11, 0x030b07f0, "3.11.7"};
	j = incident_json(inc);
	CHECK(python_json(j, "d['trigger'], d['signal'], d['sender'], d['tid'], d['python']") ==
	      "('timeout', None, None, None, '3.11.7')");
	CHECK(python_json(j, "d['threads'][0]['frames']") ==
	      "[{'kind': 'python', 'function': '<module>', 'file': '/srv/app.py', 'line': 12}]");
	CHECK(incident_stem(inc) == "20251201T103107.123456Z-my_app-4242-timeout");
	ev.trigger = FH_TRIGGER_FATAL_SIGNAL;
	CHECK(incident_stem(record()) == "20251201T103107.123456Z-my_app-4242-SIGSEGV");
	CHECK(utc_time(0) == "1970-01-01T00:00:00.000000Z");
}

TEST_CASE("--log-dir: 0600 files written whole, never over anything, stale temporaries gone",
	  "[incident][logdir]")
{
	std::string d = fresh_dir();
	// What a dead fh-bpf left, what a running one is writing, and a file
	// that is not ours.
	pid_t dead = fork();
	REQUIRE(dead >= 0);
	if (dead == 0)
		_exit(0);
	REQUIRE(waitpid(dead, nullptr, 0) == dead);
	std::string stale = ".fh-bpf-tmp-" + std::to_string(dead) + "-0";
	std::string live = ".fh-bpf-tmp-" + std::to_string(getppid()) + "-3";
	for (const std::string &name : {stale, live, std::string("notes.txt")}) {
		int fd = open((d + "/" + name).c_str(), O_WRONLY | O_CREAT, 0600);
		REQUIRE(fd >= 0);
		close(fd);
	}
	// Someone plants a symlink where the first file will go.
	std::string victim = temp_path("victim");
	{
		int fd = open(victim.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
		REQUIRE(fd >= 0);
		REQUIRE(write(fd, "keep", 4) == 4);
		close(fd);
	}
	const std::string stem = "20261201T103107.123456Z-app-42-SIGSEGV";
	REQUIRE(symlink(victim.c_str(), (d + "/" + stem + ".txt").c_str()) == 0);

	LogDir dir(d, 100, 1 << 20);
	CHECK(list_dir(d).count(stale) == 0);
	CHECK(list_dir(d).count(live) == 1);
	REQUIRE(unlink((d + "/" + live).c_str()) == 0);
	std::string a = dir.write(stem, "txt", "first\n");
	std::string b = dir.write(stem, "txt", "second\n");
	CHECK(a == stem + "-1.txt");
	CHECK(b == stem + "-2.txt");
	CHECK(read_file(victim) == "keep");
	CHECK(read_file(d + "/" + a) == "first\n");
	CHECK(read_file(d + "/" + b) == "second\n");
	struct stat st;
	REQUIRE(lstat((d + "/" + a).c_str(), &st) == 0);
	CHECK(S_ISREG(st.st_mode));
	CHECK((st.st_mode & 07777) == 0600);
	for (const auto &name : list_dir(d))
		CHECK(name.rfind(".fh-bpf-tmp-", 0) != 0);
	CHECK(list_dir(d).count("notes.txt") == 1);
	CHECK(dir.removed() == 0);
	remove_dir(d);
	unlink(victim.c_str());
}

TEST_CASE("--log-dir retention: by count and by size, oldest first, the newest kept",
	  "[incident][logdir]")
{
	std::string d = fresh_dir();
	{
		LogDir dir(d, 3, 1 << 20);
		for (int i = 0; i < 5; i++)
			dir.write("2026120" + std::to_string(i) + "T000000.000000Z-app-1-SIGSEGV", "txt",
				  "x\n");
		CHECK(dir.removed() == 2);
		CHECK(list_dir(d) == std::set<std::string>{"20261202T000000.000000Z-app-1-SIGSEGV.txt",
							   "20261203T000000.000000Z-app-1-SIGSEGV.txt",
							   "20261204T000000.000000Z-app-1-SIGSEGV.txt"});
	}
	{
		// 16000 bytes at most (2000 a file): the oldest go first.
		LogDir dir(d, 100, 16000);
		std::string k1500(1500, 'k');
		dir.write("20261205T000000.000000Z-app-1-SIGSEGV", "json", k1500);
		dir.write("20261206T000000.000000Z-app-1-SIGSEGV", "json", k1500);
		// Three files of 2 bytes and two of 1500 fit: none goes.
		CHECK(list_dir(d).size() == 5);
		for (int i = 0; i < 9; i++)
			dir.write("2026121" + std::to_string(i) + "T000000.000000Z-app-1-SIGSEGV",
				  "json", k1500);
		// 16,506 bytes: the three of 2 bytes and the first of 1500 go.
		CHECK(list_dir(d).size() == 10);
		CHECK(list_dir(d).count("20261204T000000.000000Z-app-1-SIGSEGV.txt") == 0);
		CHECK(list_dir(d).count("20261205T000000.000000Z-app-1-SIGSEGV.json") == 0);
		CHECK(list_dir(d).count("20261206T000000.000000Z-app-1-SIGSEGV.json") == 1);
	}
	{
		// Names of the same microsecond: the one without a suffix is the
		// oldest, then -1, -2, ..., -10 after -9.
		remove_dir(d);
		d = fresh_dir();
		const std::string stem = "20261208T000000.000000Z-app-1-SIGSEGV";
		LogDir all(d, 100, 1 << 20);
		for (int i = 0; i < 12; i++)
			all.write(stem, "txt", "x\n");
		LogDir dir(d, 3, 1 << 20);
		CHECK(dir.write(stem, "txt", "x\n") == stem + "-12.txt");
		CHECK(list_dir(d) == std::set<std::string>{stem + "-10.txt", stem + "-11.txt",
							   stem + "-12.txt"});
	}
	CHECK_FALSE(is_incident_file("notes.txt"));
	CHECK_FALSE(is_incident_file("20261207T000000.000000Z-app.log"));
	CHECK(is_incident_file("20261207T000000.000000Z-app-1-SIGSEGV.json"));
	remove_dir(d);
}

TEST_CASE("--log-dir: one record never pushes the others out: a text over an eighth of "
	  "--log-max-size is cut, any other file refused, both counted",
	  "[incident][logdir]")
{
	std::string d = fresh_dir();
	LogDir dir(d, 1000, 64 * 1024); // 8192 bytes a file
	REQUIRE(dir.file_limit() == 8192);
	std::set<std::string> before;
	for (int i = 0; i < 7; i++) {
		std::string name = dir.write("2026120" + std::to_string(i) +
						     "T000000.000000Z-app-1-SIGSEGV",
					     "txt", std::string(4000, 'a' + i) + "\n");
		before.insert(name);
	}
	// 10 MB of text: its start and its end, and a line on what was cut.
	std::string big = "Fatal Python error: Segmentation fault\n\n";
	while (big.size() < 10'000'000)
		big += "  File \"" + std::string(200, 'f') + "\", line 1 in g\n";
	big += "fh-bpf: the last line\n";
	std::string name = dir.write("20261208T000000.000000Z-evil-2-SIGSEGV", "txt", big);
	std::string got = read_file(d + "/" + name);
	CHECK(got.size() <= 8192);
	CHECK(got.rfind("Fatal Python error: Segmentation fault\n\n", 0) == 0);
	CHECK(got.size() >= 8192 - 300); // no more cut than lines need
	CHECK(got.find("fh-bpf: this file was cut to an eighth of --log-max-size (8192 bytes): ") !=
	      std::string::npos);
	CHECK(got.substr(got.size() - 22) == "fh-bpf: the last line\n");
	CHECK(dir.cut() == 1);
	// JSON is not cut (it would not parse): refused, the file not there.
	CHECK_THROWS_AS(dir.write("20261209T000000.000000Z-evil-2-SIGSEGV", "json",
				  "{\"text\":\"" + std::string(9000, 'x') + "\"}\n"),
			Error);
	CHECK(dir.refused() == 1);
	// Every earlier record still there: nothing had to go.
	auto after = list_dir(d);
	for (const auto &b : before)
		CHECK(after.count(b) == 1);
	CHECK(after.size() == before.size() + 1);
	CHECK(dir.removed() == 0);
	remove_dir(d);
}

TEST_CASE("incidents are held to their bytes: text cut at a line, threads' frames in order",
	  "[incident]")
{
	std::string text;
	for (int i = 0; i < 1000; i++)
		text += "line " + std::to_string(i) + "\n";
	std::string whole = text;
	CHECK(cut_text(text, 1 << 20) == 0);
	CHECK(text == whole);
	size_t cut = cut_text(text, 100);
	CHECK(text.size() <= 100);
	CHECK(text.substr(text.size() - 4) == "...\n");
	CHECK(whole.compare(0, text.size() - 4, text, 0, text.size() - 4) == 0);
	CHECK(cut == whole.size() - (text.size() - 4));
	// One line of a megabyte: cut inside it, never inside a UTF-8 character.
	std::string wide;
	for (int i = 0; i < 400'000; i++)
		wide += "\xe2\x82\xac";
	cut_text(wide, 1000);
	CHECK(wide.size() <= 1000);
	CHECK((wide.size() - 4) % 3 == 0);

	std::vector<Thread> threads(50);
	for (auto &t : threads)
		for (int i = 0; i < 100; i++) {
			NativeFrame f;
			f.function = std::string(1000, 'n');
			f.file = std::string(1000, 'f');
			t.frames.push_back(f);
		}
	uint64_t frames = cut_threads(threads, 100'000);
	size_t kept = 0, bytes = 0;
	for (const auto &t : threads) {
		kept += t.frames.size();
		for (const auto &f : t.frames) {
			const auto &n = std::get<NativeFrame>(f);
			bytes += n.function.size() + n.file.size();
		}
	}
	CHECK(bytes <= 100'000);
	CHECK(kept + frames == 5000);
	CHECK(kept > 0);
	CHECK(threads.front().truncated);

	// The record cut to a size: its losses say so.
	Incident inc;
	inc.header = fatal_header(11);
	inc.threads = std::vector<Thread>(20, Thread{});
	for (auto &t : inc.threads)
		for (int i = 0; i < 100; i++) {
			NativeFrame f;
			f.function = std::string(500, 'x');
			t.frames.push_back(f);
		}
	for (int i = 0; i < 100; i++)
		inc.extension_modules.push_back(std::string(100, 'm'));
	Incident small = cut_incident(inc, 9000);
	CHECK(render_text(small).size() <= 3000);
	CHECK(small.extension_modules.size() < 10);
	REQUIRE(small.losses.size() == 1);
	CHECK(small.losses[0].kind == "record_cut");
	CHECK(small.losses[0].text.rfind("this record was cut to 9000 bytes: ", 0) == 0);
	CHECK(incident_json(small).size() < 9000);
}

TEST_CASE("the scope of --comm, --exclude-comm, --uid and --cgroup as /proc shows a process",
	  "[incident]")
{
	std::string comm = read_file("/proc/self/comm");
	REQUIRE_FALSE(comm.empty());
	comm.pop_back();
	ScopeFilter none;
	CHECK_FALSE(none.any());
	ScopeFilter by_comm;
	by_comm.comms = {"other", comm};
	CHECK(by_comm.admits(getpid()));
	by_comm.exclude_comms = {comm};
	CHECK_FALSE(by_comm.admits(getpid()));
	ScopeFilter by_uid;
	by_uid.uids = {getuid() + 1};
	CHECK_FALSE(by_uid.admits(getpid()));
	by_uid.uids.push_back(getuid());
	CHECK(by_uid.admits(getpid()));
	std::string cg = read_file("/proc/self/cgroup");
	size_t at = cg.find("0::");
	REQUIRE(at != std::string::npos);
	std::string path = cg.substr(at + 3, cg.find('\n', at) - at - 3);
	ScopeFilter by_cgroup;
	by_cgroup.cgroups = {path + "-not"};
	CHECK_FALSE(by_cgroup.admits(getpid()));
	by_cgroup.cgroups.push_back(path == "/" ? "/" : path.substr(0, path.rfind('/')) + "");
	if (path.rfind('/') == 0)
		by_cgroup.cgroups.back() = "/";
	CHECK(by_cgroup.admits(getpid()));
	// A process that is gone is in no scope.
	pid_t child = fork();
	if (child == 0)
		_exit(0);
	REQUIRE(waitpid(child, nullptr, 0) == child);
	CHECK_FALSE(by_uid.admits(child));
}

TEST_CASE("--log-dir: a directory that cannot be used is a clear error", "[incident][logdir]")
{
	std::string file = temp_path("not-a-dir");
	int fd = open(file.c_str(), O_WRONLY | O_CREAT, 0600);
	REQUIRE(fd >= 0);
	close(fd);
	CHECK_THROWS_AS(LogDir(file, 10, 1 << 20), Error);
	CHECK_THROWS_AS(LogDir(file + "/sub", 10, 1 << 20), Error);
	unlink(file.c_str());
	// Root writes and deletes there: not through a symbolic link, not in a
	// directory others may write to.
	std::string d = fresh_dir();
	std::string link = temp_path("logdir-link");
	REQUIRE(symlink(d.c_str(), link.c_str()) == 0);
	auto message = [](const std::string &dir) {
		try {
			LogDir l(dir, 10, 1 << 20);
		} catch (const Error &e) {
			return std::string(e.what());
		}
		return std::string("no error");
	};
	CHECK_THAT(message(link), Catch::Contains("is a symbolic link"));
	REQUIRE(chmod(d.c_str(), 0770) == 0);
	CHECK_THAT(message(d), Catch::Contains("with mode 0770") && Catch::Contains("chmod go-w"));
	REQUIRE(chmod(d.c_str(), 0755) == 0);
	CHECK(message(d) == "no error");
	unlink(link.c_str());
	remove_dir(d);
}
