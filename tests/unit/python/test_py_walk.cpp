// The userspace walk over images of interpreter memory: Python 3.14 from
// its debug offsets (tagged f_executable, shim frames owned by the C stack
// and by the interpreter), strings of every kind, hostile memory.
#include <catch2/catch.hpp>

#include "python/py_report.h"
#include "report/text.h"
#include "python/py_walk.h"
#include "python/python.h"

#include "py_image.h"

#include <csignal>
#include <cstring>

using namespace fh;

namespace {

// An event's Python traceback as text, with its loss lines apart.
struct PythonText {
	std::string text;
	std::string notes;
	bool cut = false;
};

PythonText python_text(const Event &ev, const PythonRuntime &rt, const std::string &header)
{
	Incident inc;
	inc.trigger = ev.trigger;
	python_traceback(ev, rt, nullptr, inc);
	inc.header = header;
	PythonText p;
	p.text = render_text(inc);
	p.notes = loss_lines(inc);
	for (const auto &l : inc.losses)
		p.cut |= l.kind == "python_cut";
	return p;
}

} // namespace

namespace {

using fhtest::Obj;
using fhtest::ascii_str;

// _Py_DebugOffsets of a 3.14 build (the layout with thread-local bytecode
// fields), with the offsets this image uses.
std::vector<uint8_t> debug_offsets_314()
{
	std::vector<std::pair<std::string, uint64_t>> fields = {
		{"runtime.size", 4096}, {"runtime.finalizing", 16}, {"runtime.interpreters_head", 40},
		{"interp.size", 8192}, {"interp.id", 4}, {"interp.next", 0}, {"interp.threads_head", 72},
		{"interp.threads_main", 80}, {"interp.gc", 100}, {"interp.imports_modules", 200},
		{"interp.sysdict", 208}, {"interp.builtins", 216}, {"interp.ceval_gil", 224},
		{"interp.gil", 232}, {"interp.gil_enabled", 0}, {"interp.gil_locked", 240},
		{"interp.gil_holder", 248}, {"interp.code_object_generation", 256},
		{"interp.tlbc_generation", 0}, {"tstate.size", 400}, {"tstate.prev", 0},
		{"tstate.next", 8}, {"tstate.interp", 16}, {"tstate.current_frame", 72},
		{"tstate.thread_id", 152}, {"tstate.native_thread_id", 160},
		{"tstate.datastack_chunk", 232}, {"tstate.status", 32}, {"frame.size", 80},
		{"frame.previous", 8}, {"frame.executable", 0}, {"frame.instr_ptr", 56},
		{"frame.localsplus", 80}, {"frame.owner", 74}, {"frame.stackpointer", 64},
		{"frame.tlbc_index", 0}, {"code.size", 224}, {"code.filename", 112},
		{"code.name", 120}, {"code.qualname", 128}, {"code.linetable", 136},
		{"code.firstlineno", 68}, {"code.argcount", 52}, {"code.localsplusnames", 96},
		{"code.localspluskinds", 104}, {"code.co_code_adaptive", 200}, {"code.co_tlbc", 0},
		{"object.size", 16}, {"object.ob_type", 8}, {"type.size", 416},
		{"type.tp_name", 24}, {"type.tp_repr", 88}, {"type.tp_flags", 168},
		{"tuple.size", 32}, {"tuple.ob_item", 24}, {"tuple.ob_size", 16}, {"list.size", 40},
		{"list.ob_item", 24}, {"list.ob_size", 16}, {"set.size", 200}, {"set.used", 24},
		{"set.table", 40}, {"set.mask", 32}, {"dict.size", 48}, {"dict.ma_keys", 32},
		{"dict.ma_values", 40}, {"float.size", 24}, {"float.ob_fval", 16}, {"long.size", 32},
		{"long.lv_tag", 16}, {"long.ob_digit", 24}, {"bytes.size", 40}, {"bytes.ob_size", 16},
		{"bytes.ob_sval", 32}, {"unicode.size", 64}, {"unicode.state", 32},
		{"unicode.length", 16}, {"unicode.asciiobject_size", 40}, {"gc.size", 240},
		{"gc.collecting", 8}, {"gen.size", 80}, {"gen.gi_name", 48}, {"gen.gi_iframe", 88},
		{"gen.gi_frame_state", 64}};
	std::vector<uint8_t> img(24 + 8 * fields.size());
	std::memcpy(img.data(), "xdebugpy", 8);
	uint64_t version = 0x030e00f0, ft = 0;
	std::memcpy(img.data() + 8, &version, 8);
	std::memcpy(img.data() + 16, &ft, 8);
	for (size_t i = 0; i < fields.size(); i++)
		std::memcpy(img.data() + 24 + 8 * i, &fields[i].second, 8);
	return img;
}

constexpr uint64_t kRuntime = 0x10000, kInterp = 0x20000, kT1 = 0x30000, kT2 = 0x31000;
constexpr uint64_t kF1 = 0x40000, kShim = 0x40100, kF3 = 0x40200, kEntry = 0x40300;
constexpr uint64_t kCode1 = 0x50000, kCode3 = 0x51000, kShimCode = 0x52000;
constexpr uint64_t kStrType = 0x60000, kFile = 0x61000, kName1 = 0x62000, kName3 = 0x63000;
constexpr uint64_t kTable = 0x64000;

// CPython 3.minor with these offsets, its runtime at kRuntime.
PythonRuntime runtime_at(int minor, const fh_py_offsets &offsets)
{
	PythonRuntime rt;
	rt.minor = minor;
	rt.runtime_addr = kRuntime;
	rt.offsets = offsets;
	return rt;
}

// CPython 3.11 with fh-bpf's built-in offsets.
PythonRuntime runtime_311()
{
	auto offsets = builtin_offsets(11);
	REQUIRE(offsets);
	return runtime_at(11, *offsets);
}

// A compact non-ASCII str of 2-byte characters: data after 56 bytes.
Obj ucs2_str(uint64_t type, const std::vector<uint16_t> &s)
{
	Obj o(56 + 2 * s.size() + 2);
	o.at<uint64_t>(8, type).at<uint64_t>(16, s.size());
	o.at<uint32_t>(32, 2u << 2 | 1u << 5); // kind 2, compact
	for (size_t i = 0; i < s.size(); i++)
		o.at<uint16_t>(56 + 2 * i, s[i]);
	return o;
}

Obj code(uint64_t filename, uint64_t name, int first)
{
	Obj o(224 + 64);
	o.at<uint64_t>(112, filename).at<uint64_t>(120, name).at<uint64_t>(136, kTable);
	o.at<int32_t>(68, first);
	return o;
}

Obj frame(uint64_t exec, uint64_t instr, uint8_t owner, uint64_t previous)
{
	Obj o(80);
	o.at<uint64_t>(0, exec).at<uint64_t>(56, instr).at<uint8_t>(74, owner);
	o.at<uint64_t>(8, previous);
	return o;
}

} // namespace

TEST_CASE("3.14 memory image: tagged executables, shim frames skipped, lines, strings",
	  "[pywalk]")
{
	auto debug = debug_offsets_314();
	PythonRuntime rt = runtime_at(14, offsets_from_debug(debug.data(), debug.size()));

	ImageMemory mem;
	mem.add(kRuntime, Obj(64).at<uint64_t>(48, kInterp).bytes); // interpreters.main
	mem.add(kInterp, Obj(128).at<uint64_t>(72, kT1).at<int32_t>(108, 0).bytes);
	// Two threads: T1 (native tid 101) runs handler <- [C shim] <- caller
	// <- [interpreter entry]; T2 has no frame.
	mem.add(kT1, Obj(400).at<uint64_t>(8, kT2).at<uint64_t>(72, kF1)
			     .at<uint64_t>(152, 0x7f0000001000).at<uint32_t>(160, 101).bytes);
	mem.add(kT2, Obj(400).at<uint64_t>(152, 0x7f0000002000).at<uint32_t>(160, 102).bytes);
	// f_executable is a tagged stack reference: low bits set.
	mem.add(kF1, frame(kCode1 | 1, kCode1 + 200 + 2 * 2, 0, kShim).bytes);
	mem.add(kShim, frame(kShimCode | 1, kShimCode + 200, 4, kF3).bytes);	// C stack
	mem.add(kF3, frame(kCode3 | 1, kCode3 + 200 + 2 * 0, 0, kEntry).bytes);
	mem.add(kEntry, frame(kShimCode | 1, kShimCode + 200, 3, 0).bytes);	// interpreter
	mem.add(kCode1, code(kFile, kName1, 10).bytes);
	mem.add(kCode3, code(kFile, kName3, 20).bytes);
	mem.add(kShimCode, code(kFile, kName3, 1).bytes);
	mem.add(kStrType, Obj(176).at<uint64_t>(168, 1ul << 28).bytes);
	mem.add(kFile, ascii_str(kStrType, "/app/main.py").bytes);
	mem.add(kName1, ucs2_str(kStrType, {'h', 0x3bb, 0x416}).bytes);
	mem.add(kName3, ascii_str(kStrType, "caller").bytes);
	// Location table: three ONE_LINE1 entries (one code unit, +1 line each).
	mem.add(kTable, Obj(48).at<uint64_t>(16, 9).data(32, {0xd8, 0, 0, 0xd8, 0, 0, 0xd8, 0, 0})
				.bytes);

	Event ev;
	ev.hit_tid = 101;
	walk_python(mem, rt, ev);
	REQUIRE(ev.py_threads.size() == 2);
	CHECK(ev.py_threads[0].frames.size() == 4); // raw chain, shims included
	CHECK(ev.py_codes.count(kCode1));	    // tag bits cleared
	CHECK_FALSE(ev.py_codes.count(kShimCode));  // shim code not fetched

	std::string text = python_text(ev, rt, "").text;
	CHECK(text == "Current thread 0x00007f0000001000 (most recent call first):\n"
		      "  File \"/app/main.py\", line 13 in h\\u03bb\\u0416\n"
		      "  File \"/app/main.py\", line 21 in caller\n"
		      "\n"
		      "Thread 0x00007f0000002000 (most recent call first):\n"
		      "  <no Python frame>\n");
}

TEST_CASE("hostile memory: cycles, garbage and holes end as ???, bounded", "[pywalk]")
{
	PythonRuntime rt = runtime_311();
	ImageMemory mem;
	mem.add(kRuntime, Obj(64).at<uint64_t>(48, kInterp).bytes);
	// A thread list that loops on itself, a frame chain that loops too.
	mem.add(kInterp, Obj(64).at<uint64_t>(16, kT1).bytes);
	mem.add(kT1, Obj(256).at<uint64_t>(8, kT1).at<uint64_t>(56, kT1 + 200)
			     .at<uint64_t>(kT1 + 200 - kT1 + 8, kF1).bytes);
	mem.add(kF1, Obj(80).at<uint64_t>(32, 0xdeadbeef).at<uint64_t>(48, kF1).bytes);
	Event ev;
	walk_python(mem, rt, ev);
	// Each chain ends where it comes back, flagged.
	REQUIRE(ev.py_threads.size() == 1);
	CHECK(ev.py_threads[0].frames.size() == 1);
	CHECK(ev.py_threads[0].flags & FH_PY_THREAD_FRAME_LOOP);
	CHECK(ev.py_threads[0].flags & FH_PY_THREAD_LIST_LOOP);
	PythonText p = python_text(ev, rt, "");
	CHECK(p.text == "Thread 0x0000000000000000 (most recent call first):\n"
			"  File ???, line ??? in ???\n"
			"  ...\n");
	CHECK(p.notes.rfind("fh-bpf: the interpreter's structures are implausible (", 0) == 0);
	CHECK(p.notes.find("its thread list loops") != std::string::npos);
	CHECK(p.notes.find("a thread's frame chain loops") != std::string::npos);
}

namespace {

// A str of n characters U+10FFFF (compact, kind 4: data after 72 bytes in
// 3.11).
Obj wide_str(uint64_t type, size_t n)
{
	Obj o(72 + 4 * n);
	o.at<uint64_t>(8, type).at<uint64_t>(16, n);
	o.at<uint32_t>(32, 4u << 2 | 1u << 5);
	for (size_t i = 0; i < n; i++)
		o.at<uint32_t>(72 + 4 * i, 0x10ffff);
	return o;
}

// 3.11: the runtime, the interpreter, `threads` thread states each on its
// own chain of `frames` frames (the last one's previous: `loop_to`, or
// none), one code object named by a 500-character str.
void loopy_image(ImageMemory &mem, int threads, int frames, int loop_to)
{
	constexpr uint64_t kTs = 0x100000, kCode = 0x300000, kFr = 0x1000000;
	mem.add(kRuntime, Obj(64).at<uint64_t>(48, kInterp).bytes);
	mem.add(kInterp, Obj(1024).at<uint64_t>(16, kTs).bytes);
	Obj str_type(256);
	str_type.at<uint64_t>(168, 1ull << 28);
	mem.add(kStrType, str_type.bytes);
	mem.add(kName1, wide_str(kStrType, 500).bytes);
	mem.add(kCode, Obj(256).at<uint64_t>(112, kName1).at<uint64_t>(120, kName1).bytes);
	for (int t = 0; t < threads; t++) {
		uint64_t ts = kTs + 0x1000 * static_cast<uint64_t>(t);
		uint64_t cframe = ts + 0x800, first = kFr + 0x10000 * static_cast<uint64_t>(t);
		Obj o(0x800 + 16);
		o.at<uint64_t>(8, t + 1 < threads ? ts + 0x1000 : 0).at<uint64_t>(56, cframe);
		o.at<uint64_t>(152, 0x1000 + static_cast<uint64_t>(t));
		o.at<uint64_t>(0x800 + 8, first);
		mem.add(ts, o.bytes);
		for (int f = 0; f < frames; f++) {
			uint64_t prev = f + 1 < frames ? first + 0x100 * static_cast<uint64_t>(f + 1)
				      : loop_to >= 0 ? first + 0x100 * static_cast<uint64_t>(loop_to)
						     : 0;
			mem.add(first + 0x100 * static_cast<uint64_t>(f),
				Obj(80).at<uint64_t>(32, kCode).at<uint64_t>(48, prev).bytes);
		}
	}
}

} // namespace

TEST_CASE("hostile names: 100 threads of 100 frames of 500 characters U+10FFFF stay within "
	  "the text's bytes, said cut",
	  "[pywalk]")
{
	PythonRuntime rt = runtime_311();
	rt.offsets.version = 0x030b07f0;
	ImageMemory mem;
	loopy_image(mem, 100, 150, 100); // every chain loops back to its 100th frame
	Event ev;
	ev.trigger = FH_TRIGGER_FATAL_SIGNAL;
	walk_python(mem, rt, ev);
	REQUIRE(ev.py_threads.size() == 100);
	for (const auto &t : ev.py_threads) {
		CHECK(t.frames.size() == 150);
		CHECK(t.flags & FH_PY_THREAD_FRAME_LOOP);
	}
	PythonText p = python_text(ev, rt, fatal_header(SIGSEGV, true));
	// Unbounded, 100 x 100 lines of two names of 5,000 bytes each: 100 MB.
	CHECK(p.text.size() <= kPyTextMaxBytes + 4096);
	CHECK(p.text.size() >= kPyTextMaxBytes - 20'000);
	CHECK(p.cut);
	CHECK(p.notes.find("fh-bpf: the Python traceback was cut at " +
			   std::to_string(kPyTextMaxBytes) + " bytes: ") != std::string::npos);
	CHECK(p.notes.find("implausible (a thread's frame chain loops)") != std::string::npos);
	// faulthandler's own shape: the first thread whole, "..." after cuts.
	auto first = p.text.find("Thread 0x0000000000001000 (most recent call first):\n");
	REQUIRE(first != std::string::npos);
	std::string name;
	for (int i = 0; i < 500; i++)
		name += "\\U0010ffff";
	CHECK(p.text.find("  File \"" + name + "\", line ") != std::string::npos);
	CHECK(p.text.substr(p.text.size() - 5) == "\n...\n");
}

TEST_CASE("sys.stdlib_module_names: a sys dict of 4,096 keys costs a bounded read", "[pywalk]")
{
	PythonRuntime rt = runtime_311();
	ImageMemory mem;
	loopy_image(mem, 1, 1, -1);
	// sys.__dict__ (3.11: at 904): 4,096 keys, each a 500-character str.
	constexpr uint64_t kDict = 0x400000, kKeys = 0x410000;
	mem.add(kInterp, Obj(1024).at<uint64_t>(16, 0).at<uint64_t>(904, kDict).bytes);
	mem.add(kDict, Obj(48).at<uint64_t>(32, kKeys).bytes);
	Obj keys(40 + 16 * 4096);
	keys.at<uint8_t>(9, 3).at<uint8_t>(10, 1).at<uint64_t>(24, 4096);
	for (int i = 0; i < 4096; i++)
		keys.at<uint64_t>(40 + 16 * i, kName1).at<uint64_t>(40 + 16 * i + 8, kName1);
	mem.add(kKeys, keys.bytes);
	StdlibRead r;
	CHECK_FALSE(stdlib_module_names(mem, rt, &r));
	CHECK(r.items == kSysDictEntries);
	CHECK_FALSE(r.found);
}

TEST_CASE("ProcessMemory: small reads come from blocks kept until refresh, large ones direct",
	  "[pywalk][memory]")
{
	// This process's own memory, read as a target's.
	alignas(512) static std::array<uint8_t, 2048> bytes;
	for (size_t i = 0; i < bytes.size(); i++)
		bytes[i] = static_cast<uint8_t>(i * 7);
	auto at = reinterpret_cast<uint64_t>(bytes.data());
	fh::ProcessMemory mem(getpid());
	uint64_t v = 0, want = 0;
	REQUIRE(mem.read(at + 8, &v, sizeof(v)));
	std::memcpy(&want, bytes.data() + 8, 8);
	CHECK(v == want);
	// Kept: a change is not seen until refresh().
	bytes[8] ^= 0xff;
	REQUIRE(mem.read(at + 8, &v, sizeof(v)));
	CHECK(v == want);
	mem.refresh();
	REQUIRE(mem.read(at + 8, &v, sizeof(v)));
	std::memcpy(&want, bytes.data() + 8, 8);
	CHECK(v == want);
	// Across two blocks, and larger than one: read whole, direct.
	std::array<uint8_t, 16> across{};
	REQUIRE(mem.read(at + fh::ProcessMemory::kBlock - 8, across.data(), across.size()));
	CHECK(std::memcmp(across.data(), bytes.data() + fh::ProcessMemory::kBlock - 8, 16) == 0);
	std::vector<uint8_t> big(1500);
	REQUIRE(mem.read(at + 100, big.data(), big.size()));
	CHECK(std::memcmp(big.data(), bytes.data() + 100, big.size()) == 0);
	// Nothing mapped there: a failed read, whatever the size.
	CHECK_FALSE(mem.read(8, &v, sizeof(v)));
	CHECK_FALSE(mem.read(8, big.data(), big.size()));
}
