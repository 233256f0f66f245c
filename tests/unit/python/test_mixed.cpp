// --native's merge of native and Python frames (python/mixed.h), and the
// evaluation loop calls python_threads() finds per version (3.10: one a
// frame; 3.11: is_entry; 3.12+: shim frames).
#include "python/mixed.h"
#include "python/py_report.h"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

extern "C" {
#include "fh/records.h"
}

using namespace fh;

namespace {

constexpr const char *kLib = "/usr/lib/libpython3.11.so.1.0";
constexpr const char *kExt = "/srv/ext.so";

NativeFrame nat(const std::string &fn, const std::string &module, bool inlined = false)
{
	NativeFrame f;
	f.function = fn;
	f.module = module;
	f.inlined = inlined;
	return f;
}

PyFrame py(const std::string &fn)
{
	return PyFrame{std::string("app.py"), 1, fn};
}

// A frame list as names: native "fn", Python "py:fn".
std::vector<std::string> names(const std::vector<StackFrame> &frames)
{
	std::vector<std::string> out;
	for (const auto &f : frames) {
		if (const auto *n = std::get_if<NativeFrame>(&f))
			out.push_back(n->function);
		else
			out.push_back("py:" + *std::get<PyFrame>(f).function);
	}
	return out;
}

Thread thread_of(uint64_t pthread, std::vector<StackFrame> frames)
{
	Thread t;
	t.pthread_id = pthread;
	t.frames = std::move(frames);
	return t;
}

// Python -> C -> Python -> C: make_thumbnail calls ext_crash, which crashes;
// callback ran it; ext_call called callback back; main called ext_call.
// The evaluation loop ran callback and make_thumbnail in one call (3.11+),
// main in another.
std::vector<StackFrame> callback_native()
{
	return {nat("blend_pixel", kExt),
		nat("ext_crash", kExt),
		nat("cfunction_call", kLib),
		nat("_PyObject_MakeTpCall", kLib),
		nat("call_function", kLib, true), // inlined into the loop: its work
		nat("_PyEval_EvalFrameDefault", kLib),
		nat("_PyFunction_Vectorcall", kLib),
		nat("ext_call", kExt),
		nat("cfunction_call", kLib),
		nat("_PyEval_EvalFrameDefault.cold", kLib),
		nat("PyEval_EvalCode", kLib),
		nat("Py_RunMain", kLib),
		nat("__libc_start_main", "/lib/libc.so.6")};
}

std::vector<StackFrame> callback_python()
{
	return {py("make_thumbnail"), py("callback"), py("main")};
}

} // namespace

TEST_CASE("the Python frames stand where the evaluation loop ran them", "[native][mixed]")
{
	MixStats st;
	std::vector<Thread> out = mix_threads({thread_of(0x7f01, callback_python())}, {{2, 1}},
					      {thread_of(0x7f01, callback_native())}, {}, false, st);
	REQUIRE(out.size() == 1);
	CHECK(names(out[0].frames) ==
	      std::vector<std::string>{"blend_pixel", "ext_crash", "py:make_thumbnail",
				       "py:callback", "ext_call", "py:main", "__libc_start_main"});
	CHECK(st.unpaired == 0);

	// --native-all: the interpreter's frames too, but never the loop's.
	MixStats st2;
	out = mix_threads({thread_of(0x7f01, callback_python())}, {{2, 1}},
			  {thread_of(0x7f01, callback_native())}, {}, true, st2);
	CHECK(names(out[0].frames) ==
	      std::vector<std::string>{"blend_pixel", "ext_crash", "cfunction_call",
				       "_PyObject_MakeTpCall", "py:make_thumbnail", "py:callback",
				       "_PyFunction_Vectorcall", "ext_call", "cfunction_call",
				       "py:main", "PyEval_EvalCode", "Py_RunMain",
				       "__libc_start_main"});
}

TEST_CASE("a crash or a wait inside the interpreter keeps its frames", "[native][mixed]")
{
	// A C extension passed garbage to PyList_Append, which crashed.
	std::vector<StackFrame> native = {nat("PyList_Append", kLib), nat("list_resize", kLib),
					  nat("ext_crash", kExt), nat("cfunction_call", kLib),
					  nat("_PyEval_EvalFrameDefault", kLib)};
	MixStats st;
	auto out = mix_threads({thread_of(1, {py("f")})}, {{1}}, {thread_of(1, native)}, {}, false, st);
	CHECK(names(out[0].frames) ==
	      std::vector<std::string>{"PyList_Append", "list_resize", "ext_crash", "py:f"});
	// time.sleep: libc's frame, then the interpreter's (left out).
	native = {nat("clock_nanosleep", "/lib/libc.so.6"), nat("pysleep", kLib),
		  nat("_PyEval_EvalFrameDefault", kLib)};
	out = mix_threads({thread_of(1, {py("f")})}, {{1}}, {thread_of(1, native)}, {}, false, st);
	CHECK(names(out[0].frames) == std::vector<std::string>{"clock_nanosleep", "py:f"});
	CHECK(st.unpaired == 0);
}

TEST_CASE("frames that do not pair up are kept, after the native ones, and said", "[native][mixed]")
{
	// No symbols for the interpreter: no evaluation loop found.
	std::vector<StackFrame> native = {nat("ext_crash", kExt), nat("", kLib), nat("", kLib)};
	MixStats st;
	auto out = mix_threads({thread_of(1, {py("f"), py("g")})}, {{1, 1}}, {thread_of(1, native)},
			       {}, false, st);
	CHECK(names(out[0].frames) == std::vector<std::string>{"ext_crash", "", "", "py:f", "py:g"});
	CHECK(st.unpaired == 1);

	// A stack deeper than the copy: the older Python frames follow, as
	// they should, and nothing is said but the truncation.
	native = {nat("ext_crash", kExt), nat("_PyEval_EvalFrameDefault", kLib)};
	Thread cut = thread_of(1, native);
	cut.truncated = true;
	MixStats st2;
	out = mix_threads({thread_of(1, {py("f"), py("g")})}, {{1, 1}}, {cut}, {}, false, st2);
	CHECK(names(out[0].frames) == std::vector<std::string>{"ext_crash", "py:f", "py:g"});
	CHECK(out[0].truncated);
	CHECK(st2.unpaired == 0);

	// More loop frames than calls (the thread ran on between the reads):
	// the extra one stays as a native frame.
	native = {nat("_PyEval_EvalFrameDefault", kLib), nat("_PyEval_EvalFrameDefault", kLib)};
	MixStats st3;
	out = mix_threads({thread_of(1, {py("f")})}, {{1}}, {thread_of(1, native)}, {}, false, st3);
	CHECK(names(out[0].frames) ==
	      std::vector<std::string>{"py:f", "_PyEval_EvalFrameDefault"});
	CHECK(st3.unpaired == 1);

	// Unless the Python frames were cut at 100: that loop frame ran the
	// frames not shown.
	Thread deep = thread_of(1, {py("f")});
	deep.truncated = true;
	MixStats st4;
	out = mix_threads({deep}, {{1}}, {thread_of(1, native)}, {}, false, st4);
	CHECK(names(out[0].frames) == std::vector<std::string>{"py:f"});
	CHECK(out[0].truncated);
	CHECK(st4.unpaired == 0);
}

TEST_CASE("threads are matched by pthread_t, then TID; C threads follow", "[native][mixed]")
{
	Thread a = thread_of(0xa, {py("a")});
	Thread b = thread_of(0, {py("b")});
	b.tid = 22;
	Thread lost = thread_of(0xc, {py("c")}); // no native capture
	Thread na = thread_of(0xa, {nat("_PyEval_EvalFrameDefault", kLib)});
	na.name = "worker-a";
	na.tid = 21;
	Thread nb = thread_of(0xb, {nat("read", "/lib/libc.so.6"), nat("_PyEval_EvalFrameDefault", kLib)});
	nb.tid = 22;
	Thread c_thread = thread_of(0xd, {nat("poll", "/lib/libc.so.6"), nat("io_loop", kExt)});
	Thread hit = thread_of(0xe, {nat("abort", "/lib/libc.so.6")});
	hit.current = true;
	MixStats st;
	// A thread state beyond those shown (faulthandler's 100 threads): its
	// thread is no C thread.
	Thread beyond = thread_of(0xf, {nat("futex_wait", "/lib/libc.so.6")});
	auto out = mix_threads({a, b, lost}, {{1}, {1}, {1}}, {c_thread, na, hit, nb, beyond},
			       {0xa, 0, 0xc, 0xf}, false, st);
	REQUIRE(out.size() == 5);
	CHECK(names(out[0].frames) == std::vector<std::string>{"abort"}); // hit, no thread state
	CHECK(names(out[1].frames) == std::vector<std::string>{"py:a"});
	CHECK(out[1].name == "worker-a");
	CHECK(out[1].tid == 21);
	CHECK(names(out[2].frames) == std::vector<std::string>{"read", "py:b"});
	CHECK(names(out[3].frames) == std::vector<std::string>{"py:c"});
	CHECK(names(out[4].frames) == std::vector<std::string>{"poll", "io_loop"});
	CHECK(st.no_native == 1);
	std::vector<Loss> losses;
	mix_losses(st, losses);
	REQUIRE(losses.size() == 1);
	CHECK(losses[0].kind == "native_missing");
}

TEST_CASE("at most 100 native frames, the Python ones older still in place", "[native][mixed]")
{
	std::vector<StackFrame> native;
	for (int i = 0; i < 150; i++)
		native.push_back(nat("recurse_c", kExt));
	native.push_back(nat("_PyEval_EvalFrameDefault", kLib));
	MixStats st;
	auto out = mix_threads({thread_of(1, {py("f")})}, {{1}}, {thread_of(1, native)}, {}, false, st);
	REQUIRE(out[0].frames.size() == kMaxFrames + 1);
	CHECK(names(out[0].frames).back() == "py:f");
	CHECK(out[0].truncated);
	CHECK(st.unpaired == 0);
}

namespace {

PyFrameCapture raw(uint64_t code, uint8_t owner = 0, uint8_t flags = 0)
{
	PyFrameCapture f;
	f.code = code;
	f.lasti = 0;
	f.owner = owner;
	f.flags = flags;
	return f;
}

std::vector<EvalCalls> calls_of(int minor, std::vector<PyFrameCapture> frames)
{
	PythonRuntime rt;
	rt.minor = minor;
	rt.offsets = *builtin_offsets(minor <= 12 ? minor : 12);
	if (minor >= 13)
		rt.offsets.owner_skip_min = 3;
	Event ev;
	PyThreadCapture t;
	t.frames = std::move(frames);
	ev.py_threads = {t};
	std::vector<EvalCalls> calls;
	python_threads(ev, rt, nullptr, &calls);
	return calls;
}

} // namespace

TEST_CASE("the evaluation loop's calls per version", "[native][mixed]")
{
	// 3.11's owner is the byte after is_entry: both are read at once.
	CHECK(builtin_offsets(11)->frame_owner == builtin_offsets(11)->frame_is_entry + 1);
	// Up to 3.10: a call a frame.
	CHECK(calls_of(10, {raw(1), raw(2), raw(3)}) == std::vector<EvalCalls>{{1, 1, 1}});
	// 3.11: is_entry marks the first frame a call ran.
	CHECK(calls_of(11, {raw(1), raw(2, 0, FH_PY_FRAME_ENTRY), raw(3), raw(4),
			    raw(5, 0, FH_PY_FRAME_ENTRY)}) == std::vector<EvalCalls>{{2, 3}});
	// 3.12, 3.13: the shim frame (owner 3) a call pushed below them, not
	// shown; a top one is shown (faulthandler does) and is its call's.
	CHECK(calls_of(12, {raw(1), raw(2), raw(9, 3), raw(3), raw(9, 3)}) ==
	      std::vector<EvalCalls>{{2, 1}});
	CHECK(calls_of(13, {raw(9, 3), raw(1), raw(9, 3)}) == std::vector<EvalCalls>{{1, 1}});
	// A generator's frame (owner 1) is run by a call like any other.
	CHECK(calls_of(12, {raw(1, 1), raw(9, 3), raw(2), raw(9, 3)}) ==
	      std::vector<EvalCalls>{{1, 1}});
}
