// libFuzzer harness: the Python walker (userspace/python/py_walk.cpp) over a hostile
// memory image, through its MemoryReader seam: thread and frame chains,
// code objects, strings, line tables and sys.stdlib_module_names as a
// target's memory may hold them, then rendered as faulthandler text.
//
// Input:
//   byte    mode: Python 3.(6 + (mode & 15) % 9); 0x40: the offsets are
//           raw bytes of struct fh_py_offsets that follow; 0x80: they come
//           from a _Py_DebugOffsets image that follows (uint16 length,
//           bytes; 3.13+'s parser); otherwise the built-in offsets; 0x20:
//           walked for the main thread (namespace TID 1), as --dump does
//           (its TSS read, the interpreter of its thread state walked)
//   uint16  where _PyRuntime is in the image
//   ...     the image, mapped at kBase (pointers into it are small numbers)
// Checked: the walk keeps faulthandler's bounds (threads, frames), and the
// text holds only printable ASCII and newlines.
#include "fuzz_input.h"
#include "util/error.h"
#include "python/py_report.h"
#include "report/incident.h"
#include "report/text.h"
#include "python/py_walk.h"
#include "python/python.h"

extern "C" {
#include "fh/records.h"
}

using namespace fh;

namespace {
constexpr uint64_t kBase = 0x10000;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fhfuzz::Input in(data, size);
	uint8_t mode = in.take<uint8_t>();
	PythonRuntime rt;
	rt.minor = 6 + (mode & 15) % 9;
	std::optional<fh_py_offsets> offsets;
	if (mode & 0x80) {
		auto image = in.bytes(in.take<uint16_t>());
		try {
			offsets = offsets_from_debug(image.data(), image.size());
		} catch (const Error &e) {
			FUZZ_CHECK(*e.what() != 0); // refused, with a reason
		}
	} else if (!(mode & 0x40)) {
		offsets = builtin_offsets(rt.minor);
	}
	rt.offsets = offsets ? *offsets : in.take<fh_py_offsets>();
	rt.runtime_addr = kBase + in.take<uint16_t>();
	rt.placed = true;

	ImageMemory mem;
	mem.add(kBase, in.rest());
	Event ev;
	ev.trigger = FH_TRIGGER_FATAL_SIGNAL;
	ev.sig = 11;
	walk_python(mem, rt, ev, (mode & 0x20) ? WalkView{1, true} : WalkView{});
	FUZZ_CHECK(ev.py_threads.size() <= FH_PY_MAX_THREADS);
	for (const auto &t : ev.py_threads)
		FUZZ_CHECK(t.frames.size() <= FH_PY_MAX_FRAMES);
	FUZZ_CHECK(ev.py_codes.size() <= FH_PY_MAX_THREADS * FH_PY_MAX_FRAMES);

	auto stdlib = stdlib_module_names(mem, rt);
	Incident inc = make_incident(ev, ProcessMeta{});
	python_traceback(ev, rt, stdlib ? &*stdlib : nullptr, inc);
	inc.header = fatal_header(ev.sig, true);
	for (char c : render_text(inc) + loss_lines(inc))
		FUZZ_CHECK(c == '\n' || (c >= 0x20 && c <= 0x7e));
	return 0;
}
