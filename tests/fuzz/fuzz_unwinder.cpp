// libFuzzer harness: the unwinder (userspace/symbolize/unwinder.cpp, libdw's CFI) and
// the native traceback (userspace/report/report.cpp, traceback.cpp) on hostile
// registers and stack bytes, against real binaries' maps: this process's
// own (the harness itself, libc, libstdc++, libdw...), with their DWARF
// and CFI loaded once.
//
// Input: the 17 registers (DWARF order: rax..r15, rip), uint32 thread
// flags, then the stack bytes (copied from stack_addr up).  So that a
// fuzzer reaches real code, values are placed: rip and any stack word
// whose top byte is 0xfe are made an address in one of the executable
// mappings (byte 6: which one, bytes 0-5: the offset in it), and rsp, rbp
// and any stack word whose top byte is 0xfd an address in the stack copy.
// Checked: the frame limits hold, and the text holds only printable ASCII
// and newlines.
#include "fuzz_input.h"
#include "process/mappings.h"
#include "symbolize/native.h"
#include "report/incident.h"
#include "report/text.h"
#include "symbolize/unwinder.h"

#include <linux/types.h>
#include <unistd.h>

#include <memory>

extern "C" {
#include "fh/records.h"
}

using namespace fh;

namespace {

constexpr uint64_t kStackAddr = 0x7ffd00000000;

struct Self {
	std::unique_ptr<Unwinder> unwinder;
	std::vector<Mapping> code;
};

Self &self()
{
	static Self s = [] {
		Self s;
		MappingSet maps = read_maps(getpid());
		s.unwinder = std::make_unique<Unwinder>(getpid());
		s.unwinder->report_maps(maps);
		s.unwinder->prewarm();
		for (const Mapping &m : maps)
			if (m.perms.find('x') != std::string::npos && m.maps_file())
				s.code.push_back(m);
		FUZZ_CHECK(!s.code.empty());
		return s;
	}();
	return s;
}

uint64_t place(uint64_t v, size_t stack_len)
{
	const auto &code = self().code;
	switch (v >> 56) {
	case 0xfe: {
		const Mapping &m = code[(v >> 48 & 0xff) % code.size()];
		return m.start + (v & 0xffffffffffff) % (m.end - m.start);
	}
	case 0xfd:
		return kStackAddr + (v & 0xffff) % (stack_len + 64);
	default:
		return v;
	}
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fhfuzz::Input in(data, size);
	Event ev;
	ev.trigger = FH_TRIGGER_FATAL_SIGNAL;
	ev.sig = 11;
	ev.si_code = 1;
	ev.tgid = ev.hit_tid = static_cast<uint32_t>(getpid());
	ThreadCapture t;
	t.tid = ev.hit_tid;
	for (auto &r : t.regs)
		r = in.take<uint64_t>();
	t.flags = in.take<uint32_t>() | FH_THREAD_HIT;
	t.stack_addr = kStackAddr;
	t.stack = in.rest();
	t.regs[16] = place(t.regs[16] | 0xfe00000000000000, t.stack.size());
	t.regs[7] = place(t.regs[7], t.stack.size());
	t.regs[6] = place(t.regs[6], t.stack.size());
	for (size_t i = 0; i + 8 <= t.stack.size(); i += 8) {
		uint64_t w;
		std::memcpy(&w, t.stack.data() + i, 8);
		w = place(w, t.stack.size());
		std::memcpy(t.stack.data() + i, &w, 8);
	}
	ev.threads.push_back(t);
	ev.complete = true;

	NativeStats stats;
	Incident inc = make_incident(ev, ProcessMeta{});
	inc.threads = native_threads(ev, *self().unwinder, stats);
	FUZZ_CHECK(inc.threads.size() == 1);
	FUZZ_CHECK(inc.threads[0].frames.size() <= kMaxFrames);
	capture_losses(ev, stats, true, inc.losses);
	std::string text = render_text(inc) + headline(inc) + loss_lines(inc);
	for (char c : text)
		FUZZ_CHECK(c == '\n' || (c >= 0x20 && c <= 0x7e));
	return 0;
}
