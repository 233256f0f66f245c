// Whose view faulthandler takes, and which names it leaves out: the
// interpreter of the current thread state (a subinterpreter's, read from
// the thread's TSS), "Current thread" in a pid namespace of its own, and
// the extension modules against sys.stdlib_module_names as it was at the
// signal.
#include <catch2/catch.hpp>

#include "python/py_report.h"
#include "python/py_walk.h"
#include "python/python.h"
#include "report/text.h"

#include "py_image.h"

#include <linux/types.h>

extern "C" {
#include "fh/records.h"
}

using namespace fh;
using fhtest::ascii_str;
using fhtest::Obj;

namespace
{

// CPython 3.12 (built-in offsets) with its runtime at kRuntime: a main
// interpreter of two threads (the main thread, pthread kP0, namespace TID
// 1, in run_plugin; a worker, kP1, TID 2) and a subinterpreter the main
// thread runs (its thread state there in plugin_step).
constexpr uint64_t kRuntime = 0x10000, kMain = 0x20000, kSub = 0x24000;
constexpr uint64_t kTMain = 0x30000, kTWorker = 0x31000, kTSub = 0x32000;
constexpr uint64_t kP0 = 0x7f0000001000, kP1 = 0x7f0000002000;
constexpr uint64_t kStrType = 0x60000, kFile = 0x61000;
constexpr uint64_t kCodeRun = 0x50000, kCodeWork = 0x51000, kCodeStep = 0x52000;
constexpr uint64_t kLines = 0x53000; // every instruction on the first line

PythonRuntime runtime_312()
{
	auto offsets = builtin_offsets(12);
	REQUIRE(offsets);
	PythonRuntime rt;
	rt.minor = 12;
	rt.runtime_addr = kRuntime;
	rt.offsets = *offsets;
	rt.offsets.version = 0x030c01f0;
	return rt;
}

// A thread state (3.12: cframe at 56, its current_frame at 0) with one
// frame of `code` at its first instruction.
void thread_state(ImageMemory &mem, uint64_t at, uint64_t next, uint64_t pthread, uint32_t tid,
		  uint64_t interp, uint64_t code)
{
	uint64_t cframe = at + 0x400, frame = at + 0x500;
	mem.add(at, Obj(0x600)
			.at<uint64_t>(8, next)
			.at<uint64_t>(16, interp)
			.at<uint64_t>(56, cframe)
			.at<uint64_t>(136, pthread)
			.at<uint32_t>(144, tid)
			.at<uint64_t>(0x400, frame)	      // cframe->current_frame
			.at<uint64_t>(0x500, code)	      // f_code
			.at<uint64_t>(0x500 + 56, code + 192) // prev_instr: index 0
			.bytes);
}

void code_object(ImageMemory &mem, uint64_t at, const std::string &name, int first)
{
	uint64_t name_at = at + 0x800;
	mem.add(at, Obj(0x800)
			.at<uint64_t>(112, kFile)
			.at<uint64_t>(120, name_at)
			.at<uint64_t>(136, kLines)
			.at<int32_t>(68, first)
			.bytes);
	mem.add(name_at, ascii_str(kStrType, name).bytes);
}

// The image; `tss`: what the main thread's TSS holds for autoTSSkey (key 2).
ImageMemory subinterpreter_image(uint64_t tss)
{
	ImageMemory mem;
	mem.add(kRuntime, Obj(2048)
			      .at<uint64_t>(40, kSub)  // interpreters.head: the newest
			      .at<uint64_t>(48, kMain) // interpreters.main
			      .at<int32_t>(1544, 1)    // autoTSSkey: initialised,
			      .at<uint32_t>(1548, 2)   // key 2
			      .bytes);
	mem.add(kMain, Obj(512).at<uint64_t>(72, kTWorker).bytes);
	mem.add(kSub, Obj(512).at<uint64_t>(72, kTSub).bytes);
	thread_state(mem, kTWorker, kTMain, kP1, 2, kMain, kCodeWork);
	thread_state(mem, kTMain, 0, kP0, 1, kMain, kCodeRun);
	thread_state(mem, kTSub, 0, kP0, 1, kSub, kCodeStep);
	code_object(mem, kCodeRun, "run_plugin", 19);
	code_object(mem, kCodeWork, "worker", 30);
	code_object(mem, kCodeStep, "plugin_step", 4);
	mem.add(kStrType, Obj(176).at<uint64_t>(168, 1ul << 28).bytes);
	mem.add(kFile, ascii_str(kStrType, "<string>").bytes);
	// A bytes object: one location entry (ONE_LINE0, one code unit).
	mem.add(kLines, Obj(40).at<uint64_t>(16, 3).data(32, {0xd0, 0, 0}).bytes);
	// glibc's struct pthread of each thread: its TSS slots.
	mem.add(kP0,
		Obj(0x400).at<uint64_t>(FH_GLIBC_TSS_DATA + 2 * FH_GLIBC_TSS_STRIDE, tss).bytes);
	mem.add(
	    kP1,
	    Obj(0x400).at<uint64_t>(FH_GLIBC_TSS_DATA + 2 * FH_GLIBC_TSS_STRIDE, kTWorker).bytes);
	return mem;
}

std::string text_of(const Event &ev, const PythonRuntime &rt)
{
	Incident inc;
	inc.trigger = ev.trigger;
	python_traceback(ev, rt, nullptr, inc);
	return render_text(inc);
}

} // namespace

TEST_CASE("a subinterpreter: the dump is of the interpreter of the current thread state",
	  "[pywalk][subinterpreter]")
{
	PythonRuntime rt = runtime_312();
	WalkView main_thread{1, true};

	// The main thread runs the subinterpreter: its TSS holds that
	// thread state, and faulthandler dumps that interpreter's threads.
	ImageMemory mem = subinterpreter_image(kTSub);
	Event ev;
	ev.trigger = FH_TRIGGER_DEMAND;
	walk_python(mem, rt, ev, main_thread);
	REQUIRE(ev.py_threads.size() == 1);
	CHECK(ev.py_threads[0].flags & FH_PY_THREAD_TSS_READ);
	CHECK(ev.py_threads[0].flags & FH_PY_THREAD_CURRENT);
	CHECK(text_of(ev, rt) == "Current thread 0x00007f0000001000 (most recent call first):\n"
				 "  File \"<string>\", line 4 in plugin_step\n");

	// Back in the main interpreter: the main thread's thread state there.
	mem = subinterpreter_image(kTMain);
	ev = Event{};
	ev.trigger = FH_TRIGGER_DEMAND;
	walk_python(mem, rt, ev, main_thread);
	REQUIRE(ev.py_threads.size() == 2);
	CHECK(text_of(ev, rt) == "Thread 0x00007f0000002000 (most recent call first):\n"
				 "  File \"<string>\", line 30 in worker\n"
				 "\n"
				 "Current thread 0x00007f0000001000 (most recent call first):\n"
				 "  File \"<string>\", line 19 in run_plugin\n");

	// A timeout's watchdog has no thread state: the main interpreter,
	// nobody current.
	mem = subinterpreter_image(kTSub);
	ev = Event{};
	ev.trigger = FH_TRIGGER_TIMEOUT;
	walk_python(mem, rt, ev);
	REQUIRE(ev.py_threads.size() == 2);
	CHECK_FALSE(ev.py_threads[0].flags & FH_PY_THREAD_TSS_READ);
	CHECK(text_of(ev, rt).find("Current") == std::string::npos);

	// A TSS slot that names another thread's state is not glibc's layout:
	// not read, the main interpreter walked.
	mem = subinterpreter_image(kTWorker);
	ev = Event{};
	walk_python(mem, rt, ev, main_thread);
	REQUIRE(ev.py_threads.size() == 2);
	CHECK_FALSE(ev.py_threads[1].flags & FH_PY_THREAD_TSS_READ);
}

namespace
{

PyThreadCapture py_thread(uint64_t pthread, uint32_t native_tid, uint32_t flags = 0)
{
	PyThreadCapture t;
	t.tstate = pthread + 0x100;
	t.thread_id = pthread;
	t.native_thread_id = native_tid;
	t.flags = flags;
	return t;
}

ThreadCapture native(uint64_t pthread, uint32_t tid, uint32_t ns_tid)
{
	ThreadCapture t;
	t.pthread_id = pthread;
	t.tid = tid;
	t.ns_tid = ns_tid;
	return t;
}

} // namespace

TEST_CASE("a pid namespace: host and namespace TIDs, the current thread", "[pywalk][pidns]")
{
	PythonRuntime rt = runtime_312();
	// A crash of thread 5001 (1 in its namespace), the process at level 1;
	// thread states hold namespace TIDs.
	Event ev;
	ev.trigger = FH_TRIGGER_FATAL_SIGNAL;
	ev.hit_tid = 5001;
	ev.identity.known = true;
	ev.identity.ns_tid = 1;
	ev.identity.pid_ns_level = 1;
	ev.threads = {native(kP0, 5001, 1), native(kP1, 5002, 2)};
	uint32_t tss = FH_PY_THREAD_TSS_READ;
	ev.py_threads = {py_thread(kP1, 2, tss), py_thread(kP0, 1, tss | FH_PY_THREAD_CURRENT)};
	auto threads = python_threads(ev, rt);
	REQUIRE(threads.size() == 2);
	CHECK(threads[0].tid == 5002);
	CHECK(threads[0].ns_tid == 2);
	CHECK_FALSE(threads[0].current);
	CHECK(threads[1].tid == 5001);
	CHECK(threads[1].ns_tid == 1);
	CHECK(threads[1].current);

	// Where the TSS was not read: by pthread_t through the native capture,
	// never by comparing a namespace TID with a host one.
	for (auto &t : ev.py_threads)
		t.flags = 0;
	threads = python_threads(ev, rt);
	CHECK(threads[1].current);
	CHECK_FALSE(threads[0].current);

	// Without a native capture (a live walk): /proc's map of namespace
	// TIDs to host ones.
	ev.threads.clear();
	ev.identity = {};
	ev.host_tid_of = {{1, 5001}, {2, 5002}};
	threads = python_threads(ev, rt);
	CHECK(threads[1].current);
	CHECK(threads[1].tid == 5001);
	CHECK(threads[0].tid == 5002);
	CHECK(threads[0].ns_tid == 2);

	// A thread state whose TID /proc does not list: unknown on the host.
	ev.host_tid_of = {{1, 5001}};
	threads = python_threads(ev, rt);
	CHECK(threads[0].tid == 0);
	CHECK(threads[0].ns_tid == 2);
}

namespace
{

PyModuleName module_name(uint32_t index, const std::string &s)
{
	PyModuleName m;
	m.index = index;
	m.readable = true;
	m.name.assign(s.begin(), s.end());
	m.length = s.size();
	return m;
}

} // namespace

TEST_CASE("Extension modules: sys.stdlib_module_names as it was at the signal", "[pywalk][stdlib]")
{
	PythonRuntime rt = runtime_312();
	Event ev;
	ev.py_modules = {module_name(0, "sys"), module_name(1, "_json"),
			 module_name(2, "fhfake_ext._json")};
	std::set<std::string> at_attach = {"sys", "_json"};
	using V = std::vector<std::string>;

	// Not read at the signal: the names read before.
	CHECK(extension_modules(ev, rt, &at_attach) == V{"fhfake_ext._json"});
	ev.py_stdlib = FH_PY_STDLIB_UNREADABLE;
	CHECK(extension_modules(ev, rt, &at_attach) == V{"fhfake_ext._json"});

	// Replaced by frozenset(): nothing is left out.
	ev.py_stdlib = FH_PY_STDLIB_FOUND;
	CHECK(extension_modules(ev, rt, &at_attach) == V{"sys", "_json", "fhfake_ext._json"});
	// By a set of its own.
	ev.py_stdlib_names = {module_name(0, "sys")};
	CHECK(extension_modules(ev, rt, &at_attach) == V{"_json", "fhfake_ext._json"});
	// No frozenset there at all: nothing left out.
	ev.py_stdlib = FH_PY_STDLIB_ABSENT;
	ev.py_stdlib_names.clear();
	CHECK(extension_modules(ev, rt, &at_attach) == V{"sys", "_json", "fhfake_ext._json"});
}

TEST_CASE("sys.stdlib_module_names read from memory: a frozenset only", "[pywalk][stdlib]")
{
	PythonRuntime rt = runtime_312();
	constexpr uint64_t kDict = 0x400000, kKeys = 0x410000, kKey = 0x420000, kSet = 0x430000;
	constexpr uint64_t kTable = 0x440000, kName = 0x450000, kSetType = 0x460000,
			   kTypeName = 0x470000;
	auto image = [&](const std::string &type_name) {
		ImageMemory mem;
		mem.add(kRuntime, Obj(64).at<uint64_t>(48, kMain).bytes);
		mem.add(kMain, Obj(512).at<uint64_t>(352, kDict).bytes); // 3.12: sysdict at 352
		mem.add(kDict, Obj(48).at<uint64_t>(32, kKeys).bytes);
		// Unicode keys (kind 1), 8 index bytes, one entry.
		mem.add(kKeys, Obj(64)
				   .at<uint8_t>(9, 3)
				   .at<uint8_t>(10, 1)
				   .at<uint64_t>(24, 1)
				   .at<uint64_t>(40, kKey)
				   .at<uint64_t>(48, kSet)
				   .bytes);
		mem.add(kKey, ascii_str(kStrType, "stdlib_module_names").bytes);
		mem.add(kStrType, Obj(176).at<uint64_t>(168, 1ul << 28).bytes);
		mem.add(kSetType, Obj(264).at<uint64_t>(24, kTypeName).bytes);
		const char *tn = type_name.c_str();
		mem.add(kTypeName, std::vector<uint8_t>(tn, tn + type_name.size() + 1));
		mem.add(kSet, Obj(64)
				  .at<uint64_t>(8, kSetType)
				  .at<int64_t>(32, 1)
				  .at<uint64_t>(40, kTable)
				  .bytes);
		mem.add(kTable, Obj(32).at<uint64_t>(16, kName).bytes); // slot 1
		mem.add(kName, ascii_str(kStrType, "posix").bytes);
		return mem;
	};
	ImageMemory mem = image("frozenset");
	auto names = stdlib_module_names(mem, rt);
	REQUIRE(names);
	CHECK(*names == std::set<std::string>{"posix"});
	// A set, not a frozenset: faulthandler leaves nothing out.
	mem = image("set");
	names = stdlib_module_names(mem, rt);
	REQUIRE(names);
	CHECK(names->empty());
}
