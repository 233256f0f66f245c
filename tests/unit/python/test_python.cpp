// Finding CPython in a process, for every interpreter on this machine: the
// module, the version, the runtime address and the offsets, checked against
// the live interpreter (what it reports of itself through ctypes, and its
// memory read through /proc/PID/mem of this test's own child).
#include <catch2/catch.hpp>

#include "process/mappings.h"
#include "python/python.h"
#include "python_interpreters.h"
#include "support.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <sstream>

using namespace fh;
using namespace fhtest;

namespace {

// The child prints what it knows of itself, then waits on stdin.
const char *kSelfReport = R"(
import ctypes, sys, threading
api = ctypes.pythonapi
api.PyInterpreterState_Head.restype = ctypes.c_void_p
api.PyThreadState_Get.restype = ctypes.c_void_p
native = threading.get_native_id() if hasattr(threading, 'get_native_id') else 0
print(api.PyInterpreterState_Head(), api.PyThreadState_Get(), threading.get_ident(), native)
sys.stdout.flush()
sys.stdin.read()
)";

struct Child {
	pid_t pid = -1;
	Pipe in, out;
	uint64_t interp = 0, tstate = 0, ident = 0, native = 0;

	explicit Child(const std::string &python)
	{
		SpawnOptions o;
		o.fds = {{0, in.read}, {1, out.write}};
		pid = spawn({python, "-c", kSelfReport}, o);
		in.close_read();
		out.close_write();
		auto line = read_line(out.read, 30000);
		REQUIRE(line);
		std::istringstream s(*line);
		REQUIRE(s >> interp >> tstate >> ident >> native);
	}
	~Child()
	{
		in.close_write();
		kill(pid, SIGKILL);
		waitpid(pid, nullptr, 0);
	}
	uint64_t read_u64(uint64_t addr) const
	{
		UniqueFd fd(open(("/proc/" + std::to_string(pid) + "/mem").c_str(), O_RDONLY));
		uint64_t v = 0;
		REQUIRE(fd);
		REQUIRE(pread(fd.get(), &v, sizeof(v), static_cast<off_t>(addr)) == sizeof(v));
		return v;
	}
};

} // namespace

TEST_CASE("CPython is found with its version, runtime and offsets, in every build here",
	  "[python]")
{
	for (const auto &py : python_interpreters()) {
		INFO(py.path);
		Child child(py.path);
		PythonDetection d = detect_python(read_maps(child.pid));
		INFO(d.unsupported);
		REQUIRE(d.runtime);
		const PythonRuntime &rt = *d.runtime;
		CHECK(rt.minor == py.minor);
		if (py.libpython.empty())
			CHECK(rt.module == py.path); // Debian: libpython linked in
		else
			CHECK(rt.module.find("libpython3." + std::to_string(py.minor)) !=
			      std::string::npos);
		const fh_py_offsets &o = rt.offsets;
		CHECK((o.version >> 16 & 0xff) == static_cast<uint32_t>(py.minor));

		// The runtime address and the interpreter list.
		uint64_t head = child.read_u64(rt.runtime_addr +
					       static_cast<uint64_t>(o.runtime_interpreters_head));
		CHECK(head == child.interp);
		// The thread list of this single-threaded interpreter.
		uint64_t tstate = child.read_u64(head + static_cast<uint64_t>(o.interp_threads_head));
		CHECK(tstate == child.tstate);
		CHECK(child.read_u64(tstate + static_cast<uint64_t>(o.tstate_thread_id)) ==
		      child.ident);
		if (o.tstate_native_thread_id != FH_PY_NONE)
			CHECK((child.read_u64(tstate +
					      static_cast<uint64_t>(o.tstate_native_thread_id)) &
			       0xffffffff) == child.native);
		CHECK(child.read_u64(tstate + static_cast<uint64_t>(o.tstate_next)) == 0);
	}
}

TEST_CASE("versions from file names", "[python]")
{
	CHECK(python_minor_from_path("/usr/bin/python3.11") == 11);
	CHECK(python_minor_from_path("/x/lib/libpython3.7m.so.1.0") == 7);
	CHECK(python_minor_from_path("/x/lib/libpython3.13.so") == 13);
	// Any file may be named so (the agent looks at every process's): no throw.
	CHECK(python_minor_from_path("/tmp/python3.99999999999") == 0);
	CHECK(python_minor_from_path("/tmp/python3.") == 0);
	CHECK(python_minor_from_path("/usr/bin/python3") == 0);
	CHECK(python_minor_from_path("/usr/lib/libc.so.6") == 0);
}

TEST_CASE("a native process is not Python", "[python]")
{
	PythonDetection d = detect_python(read_maps(getpid()));
	CHECK_FALSE(d.runtime);
	CHECK(d.unsupported.empty());
}

namespace {

// A _Py_DebugOffsets image: the given layout's fields, each set to `base +
// index`, except the ABI fixed points.
std::vector<uint8_t> debug_image(uint64_t version, const std::vector<std::string> &layout,
				 uint64_t free_threaded = 0)
{
	std::vector<uint8_t> img(24 + 8 * layout.size());
	std::memcpy(img.data(), "xdebugpy", 8);
	std::memcpy(img.data() + 8, &version, 8);
	std::memcpy(img.data() + 16, &free_threaded, 8);
	for (size_t i = 0; i < layout.size(); i++) {
		uint64_t v = 1000 + i;
		const std::string &f = layout[i];
		if (f == "object.size")
			v = 16;
		else if (f == "object.ob_type")
			v = 8;
		else if (f == "unicode.length" || f == "bytes.ob_size" || f == "tuple.ob_size" ||
			 f == "list.ob_size")
			v = 16;
		else if (f == "unicode.state")
			v = 32;
		else if (f == "unicode.asciiobject_size")
			v = 40;
		std::memcpy(img.data() + 24 + 8 * i, &v, 8);
	}
	return img;
}

size_t index_of(const std::vector<std::string> &layout, const std::string &f)
{
	for (size_t i = 0; i < layout.size(); i++)
		if (layout[i] == f)
			return i;
	FAIL("no field " << f);
	return 0;
}

} // namespace

TEST_CASE("3.14 from its debug offsets: both layouts of its development, tagged executable",
	  "[python]")
{
	// The 3.14 layout with the thread-local bytecode fields, and the one
	// without (3.14 prereleases).
	for (bool tlbc : {true, false}) {
		std::vector<std::string> layout = {
			"runtime.size", "runtime.finalizing", "runtime.interpreters_head",
			"interp.size", "interp.id", "interp.next", "interp.threads_head",
			"interp.threads_main", "interp.gc", "interp.imports_modules",
			"interp.sysdict", "interp.builtins", "interp.ceval_gil", "interp.gil",
			"interp.gil_enabled", "interp.gil_locked", "interp.gil_holder"};
		if (tlbc)
			layout.insert(layout.end(),
				      {"interp.code_object_generation", "interp.tlbc_generation"});
		layout.insert(layout.end(),
			      {"tstate.size", "tstate.prev", "tstate.next", "tstate.interp",
			       "tstate.current_frame", "tstate.thread_id", "tstate.native_thread_id",
			       "tstate.datastack_chunk", "tstate.status", "frame.size",
			       "frame.previous", "frame.executable", "frame.instr_ptr",
			       "frame.localsplus", "frame.owner", "frame.stackpointer"});
		if (tlbc)
			layout.push_back("frame.tlbc_index");
		layout.insert(layout.end(),
			      {"code.size", "code.filename", "code.name", "code.qualname",
			       "code.linetable", "code.firstlineno", "code.argcount",
			       "code.localsplusnames", "code.localspluskinds",
			       "code.co_code_adaptive"});
		if (tlbc)
			layout.push_back("code.co_tlbc");
		layout.insert(layout.end(),
			      {"object.size", "object.ob_type", "type.size", "type.tp_name",
			       "type.tp_repr", "type.tp_flags", "tuple.size", "tuple.ob_item",
			       "tuple.ob_size", "list.size", "list.ob_item", "list.ob_size",
			       "set.size", "set.used", "set.table", "set.mask", "dict.size",
			       "dict.ma_keys", "dict.ma_values", "float.size", "float.ob_fval",
			       "long.size", "long.lv_tag", "long.ob_digit", "bytes.size",
			       "bytes.ob_size", "bytes.ob_sval", "unicode.size", "unicode.state",
			       "unicode.length", "unicode.asciiobject_size", "gc.size",
			       "gc.collecting", "gen.size", "gen.gi_name", "gen.gi_iframe",
			       "gen.gi_frame_state"});
		auto img = debug_image(0x030e00f0, layout);
		std::optional<fh_py_offsets> o;
		REQUIRE_NOTHROW(o = offsets_from_debug(img.data(), img.size()));
		CHECK(o->version == 0x030e00f0u);
		CHECK((o->flags & FH_PY_TAGGED_EXECUTABLE));
		CHECK(o->owner_skip_min == 3);
		CHECK(o->frame_kind == FH_PY_FRAME_INTERPRETER);
		auto at = [&](const char *f) { return static_cast<int>(1000 + index_of(layout, f)); };
		CHECK(o->runtime_interpreters_head == at("runtime.interpreters_head"));
		CHECK(o->interp_threads_head == at("interp.threads_head"));
		CHECK(o->tstate_current_frame == at("tstate.current_frame"));
		CHECK(o->frame_code == at("frame.executable"));
		CHECK(o->frame_owner == at("frame.owner"));
		CHECK(o->code_linetable == at("code.linetable"));
		CHECK(o->code_adaptive == at("code.co_code_adaptive"));
		CHECK(o->interp_gc_collecting == at("interp.gc") + at("gc.collecting"));
		CHECK(o->str_ascii_data == 40);
		CHECK(o->str_compact_data == 56);
	}
}

TEST_CASE("debug offsets that do not check out are refused with a reason", "[python]")
{
	using Catch::Matchers::Contains;
	std::vector<uint8_t> bad(600, 0);
	CHECK_THROWS_WITH(offsets_from_debug(bad.data(), bad.size()), Contains("cookie"));

	std::memcpy(bad.data(), "xdebugpy", 8);
	uint64_t v313 = 0x030d00f0;
	std::memcpy(bad.data() + 8, &v313, 8);
	// Fixed points missing.
	CHECK_THROWS_WITH(offsets_from_debug(bad.data(), bad.size()), Contains("layout"));

	uint64_t one = 1;
	std::memcpy(bad.data() + 16, &one, 8);
	CHECK_THROWS_WITH(offsets_from_debug(bad.data(), bad.size()), Contains("free-threaded"));
	CHECK_THROWS(offsets_from_debug(bad.data(), 20)); // truncated
}

TEST_CASE("unsupported interpreters are named, and left to native frames", "[python]")
{
	char real[4096];
	for (auto [file, words] : std::vector<std::pair<std::string, std::string>>{
		     {"libpython3.5m.so", "Python 3.5 is not supported"},
		     {"libpython3.13t.so", "free-threaded"}}) {
		std::string path = build_dir() + "/targets/" + file;
		REQUIRE(realpath(path.c_str(), real) != nullptr);
		MappingSet maps = parse_maps(
			"555555554000-555555556000 r-xp 00000000 00:00 0 /usr/bin/app\n"
			"7f0000000000-7f0000001000 r--p 00000000 00:00 0 " +
			std::string(real) + "\n");
		PythonDetection d = detect_python(maps);
		INFO(file << ": " << d.unsupported);
		CHECK_FALSE(d.runtime);
		CHECK(d.unsupported.find(words) != std::string::npos);
	}
}
