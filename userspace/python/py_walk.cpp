#include "python/py_walk.h"

#include "python/py_report.h"
#include "python/py_traceback.h"

#include <sys/uio.h>

#include <algorithm>
#include <cstring>
#include <set>

extern "C" {
#include "fh/records.h"
}

namespace fh {

bool ProcessMemory::read_direct(uint64_t addr, void *dst, size_t len)
{
	struct iovec local = {dst, len};
	struct iovec remote = {reinterpret_cast<void *>(addr), len};
	return process_vm_readv(pid_, &local, 1, &remote, 1, 0) == static_cast<ssize_t>(len);
}

// The block at base, read once; nullptr when it cannot be read whole (a
// page of it unmapped: reads in it then go direct).
const uint8_t *ProcessMemory::block(uint64_t base)
{
	auto it = blocks_.find(base);
	if (it == blocks_.end()) {
		// A bound on what a walk keeps, whatever the target's pointers.
		if (blocks_.size() >= 4096)
			blocks_.clear();
		std::vector<uint8_t> bytes(kBlock);
		if (!read_direct(base, bytes.data(), kBlock))
			bytes.clear();
		it = blocks_.emplace(base, std::move(bytes)).first;
	}
	return it->second.empty() ? nullptr : it->second.data();
}

bool ProcessMemory::read(uint64_t addr, void *dst, size_t len)
{
	uint64_t base = addr & ~uint64_t{kBlock - 1};
	// Within one block: from it.  Larger reads, and reads across blocks
	// or in a block with an unreadable part, go direct.
	if (len == 0 || len > kBlock || addr - base > kBlock - len)
		return read_direct(addr, dst, len);
	const uint8_t *b = block(base);
	if (!b)
		return read_direct(addr, dst, len);
	std::memcpy(dst, b + (addr - base), len);
	return true;
}

bool ImageMemory::read(uint64_t addr, void *dst, size_t len)
{
	auto it = regions_.upper_bound(addr);
	if (it == regions_.begin())
		return false;
	--it;
	uint64_t off = addr - it->first;
	if (off > it->second.size() || it->second.size() - off < len)
		return false;
	std::memcpy(dst, it->second.data() + off, len);
	return true;
}

namespace {

constexpr uint64_t kUnicodeSubclass = 1ul << 28;
constexpr int kRetries = 3;
// Thread states looked at for the dumping thread's (the main thread's is
// the oldest: the last of the list).
constexpr size_t kThreadSearch = 1u << 14;

class Walker {
public:
	Walker(MemoryReader &mem, const fh_py_offsets &o, Event &ev) : mem_(mem), o_(o), ev_(ev) {}

	template <typename T> bool get(uint64_t addr, T &out) { return mem_.read(addr, &out, sizeof(T)); }
	uint64_t ptr(uint64_t addr)
	{
		uint64_t v = 0;
		return get(addr, v) ? v : 0;
	}
	static bool has(int32_t off) { return off >= 0; }

	// A str's code points (at most max); false when obj is not a readable
	// str.
	bool str(uint64_t obj, std::vector<uint32_t> &cps, uint64_t &length, size_t max = 501)
	{
		uint64_t type = obj ? ptr(obj + o_.object_type) : 0;
		uint64_t flags = 0;
		uint32_t state = 0;
		if (!type || !get(type + o_.type_flags, flags) || !(flags & kUnicodeSubclass) ||
		    !get(obj + o_.str_state, state) || !get(obj + o_.str_length, length))
			return false;
		int kind = state >> 2 & 7;
		if (kind != 1 && kind != 2 && kind != 4)
			return false;
		uint64_t data = (state & 1 << 5)
					? obj + static_cast<uint64_t>((state & 1 << 6) ? o_.str_ascii_data
										: o_.str_compact_data)
					: ptr(obj + o_.str_legacy_data);
		size_t n = static_cast<size_t>(std::min<uint64_t>(length, max)) * kind;
		std::vector<uint8_t> bytes(n);
		if (!data || (n && !mem_.read(data, bytes.data(), n)))
			return false;
		cps = py_code_points(bytes.data(), n, kind, length, max);
		return true;
	}

	void code(uint64_t addr)
	{
		if (ev_.py_codes.count(addr))
			return;
		PyCodeCapture c;
		get(addr + o_.code_firstlineno, c.firstlineno);
		if (str(ptr(addr + o_.code_filename), c.filename, c.filename_length))
			c.flags |= FH_PY_CODE_FILENAME;
		if (str(ptr(addr + o_.code_name), c.name, c.name_length))
			c.flags |= FH_PY_CODE_NAME;
		uint64_t table = ptr(addr + o_.code_linetable);
		int64_t size = 0;
		if (table && get(table + o_.bytes_size, size) && size >= 0) {
			size_t n = static_cast<size_t>(std::min<int64_t>(size, FH_PY_LINETABLE_BYTES));
			c.linetable.resize(n);
			if (n == 0 || mem_.read(table + o_.bytes_data, c.linetable.data(), n)) {
				c.flags |= FH_PY_CODE_LINETABLE;
				c.linetable_size = static_cast<uint64_t>(size);
			} else {
				c.linetable.clear();
			}
		}
		ev_.py_codes.emplace(addr, std::move(c));
	}

	// A live thread's chain can change while it is read: read it again
	// until two reads agree on the code objects (lines may move on).
	void thread(uint64_t tstate, uint32_t index, bool gc)
	{
		PyThreadCapture t = read_thread(tstate, index, gc);
		for (int attempt = 0; attempt < kRetries; attempt++) {
			mem_.refresh(); // read again: has it changed?
			PyThreadCapture again = read_thread(tstate, index, gc);
			if (same_codes(t, again))
				break;
			t = std::move(again);
			if (attempt == kRetries - 1)
				t.flags |= FH_PY_THREAD_READ_FAILED; // changed at every read
		}
		for (const auto &f : t.frames) {
			bool shim = has(o_.owner_skip_min) && f.owner >= o_.owner_skip_min;
			if (f.code && !shim)
				code(f.code);
		}
		ev_.py_threads.push_back(std::move(t));
	}

	static bool same_codes(const PyThreadCapture &a, const PyThreadCapture &b)
	{
		if (a.frames.size() != b.frames.size())
			return false;
		for (size_t i = 0; i < a.frames.size(); i++)
			if (a.frames[i].code != b.frames[i].code)
				return false;
		return true;
	}

	PyThreadCapture read_thread(uint64_t tstate, uint32_t index, bool gc)
	{
		PyThreadCapture t;
		t.tstate = tstate;
		t.thread_id = ptr(tstate + o_.tstate_thread_id);
		if (has(o_.tstate_native_thread_id))
			get(tstate + o_.tstate_native_thread_id, t.native_thread_id);
		t.index = index;
		t.flags = gc ? FH_PY_THREAD_GC : 0;
		uint64_t frame;
		if (o_.frame_kind == FH_PY_FRAME_OBJECT)
			frame = ptr(tstate + o_.tstate_frame);
		else if (has(o_.tstate_current_frame))
			frame = ptr(tstate + o_.tstate_current_frame);
		else
			frame = ptr(ptr(tstate + o_.tstate_cframe) + o_.cframe_current_frame);
		std::set<uint64_t> seen; // a chain that comes back ends there
		for (int i = 0; frame; i++) {
			if (i == FH_PY_MAX_FRAMES) {
				t.flags |= FH_PY_THREAD_MORE_FRAMES;
				break;
			}
			if (!seen.insert(frame).second) {
				t.flags |= FH_PY_THREAD_FRAME_LOOP;
				break;
			}
			PyFrameCapture f;
			f.code = ptr(frame + o_.frame_code);
			if (o_.flags & FH_PY_TAGGED_EXECUTABLE)
				f.code &= ~uint64_t{7};
			if (o_.frame_kind == FH_PY_FRAME_OBJECT) {
				get(frame + o_.frame_lasti, f.lasti);
			} else {
				uint64_t instr = ptr(frame + o_.frame_instr_ptr);
				// Unsigned difference: hostile pointers far apart
				// must not overflow; the range check below decides.
				int64_t index =
					static_cast<int64_t>(instr - (f.code + o_.code_adaptive)) >> 1;
				if (instr && index >= -1 && index < (1 << 24))
					f.lasti = static_cast<int32_t>(index);
				// 3.11: is_entry and owner side by side, in one read.
				uint8_t b[2] = {};
				if (has(o_.frame_is_entry) ? mem_.read(frame + o_.frame_is_entry, b, 2)
							   : get(frame + o_.frame_owner, b[1])) {
					f.owner = b[1];
					f.flags = b[0] ? FH_PY_FRAME_ENTRY : 0;
				}
			}
			t.frames.push_back(f);
			frame = ptr(frame + o_.frame_back);
		}
		return t;
	}

	// The main interpreter (interpreters.main follows interpreters.head).
	uint64_t interp(uint64_t runtime)
	{
		if (o_.flags & FH_PY_RUNTIME_IS_INTERP_HEAD)
			return ptr(runtime);
		uint64_t main = ptr(runtime + o_.runtime_interpreters_head + 8);
		return main ? main : ptr(runtime + o_.runtime_interpreters_head);
	}

	// (key, value) of a combined dict, in order; at most `max`.
	std::vector<std::pair<uint64_t, uint64_t>> dict_items(uint64_t dict, int minor, size_t max)
	{
		std::vector<std::pair<uint64_t, uint64_t>> out;
		uint64_t keys = dict ? ptr(dict + 32) : 0;
		if (!keys || ptr(dict + 40))
			return out;
		uint64_t entries, n;
		uint32_t size_of, key_off, value_off;
		if (minor == 10) {
			uint64_t size = ptr(keys + 8);
			uint64_t ib = size <= 0xff ? 1 : size <= 0xffff ? 2 : size <= 0xffffffffu ? 4 : 8;
			n = ptr(keys + 32);
			entries = keys + 40 + size * ib;
			size_of = 24, key_off = 8, value_off = 16;
		} else {
			uint8_t log2_index_bytes = 0, kind = 0;
			if (!get(keys + 9, log2_index_bytes) || !get(keys + 10, kind) ||
			    log2_index_bytes > 40)
				return out;
			n = ptr(keys + 24);
			entries = keys + 32 + (uint64_t{1} << log2_index_bytes);
			if (kind == 0)
				size_of = 24, key_off = 8, value_off = 16;
			else
				size_of = 16, key_off = 0, value_off = 8;
		}
		for (uint64_t i = 0; i < n && i < max; i++) {
			uint64_t e = entries + i * size_of;
			uint64_t value = ptr(e + value_off);
			if (value)
				out.emplace_back(ptr(e + key_off), value);
		}
		return out;
	}

	// PyFrozenSet_Check(), by the type's name (tp_name, then tp_base):
	// a frozenset or a subclass of it, a few bases deep.
	bool frozenset(uint64_t obj)
	{
		uint64_t type = ptr(obj + o_.object_type);
		for (int depth = 0; depth < 4 && type; depth++) {
			char name[10] = {};
			uint64_t at = ptr(type + 24);
			if (at && mem_.read(at, name, sizeof(name)) &&
			    std::memcmp(name, "frozenset", sizeof(name)) == 0)
				return true;
			type = ptr(type + 256);
		}
		return false;
	}

	std::optional<std::set<std::string>> stdlib_names(uint64_t runtime, int minor,
							  StdlibRead &r)
	{
		if (minor < 10 || o_.interp_sysdict < 0)
			return std::nullopt;
		uint64_t in = interp(runtime);
		if (!in)
			return std::nullopt;
		for (auto [key, value] :
		     dict_items(ptr(in + o_.interp_sysdict), minor, kSysDictEntries)) {
			r.items++;
			std::vector<uint32_t> cps;
			uint64_t length;
			// The key is looked at only as long as the name sought.
			constexpr size_t kKey = sizeof("stdlib_module_names") - 1;
			if (!str(key, cps, length, kKey + 1) || length != kKey ||
			    py_escape(cps, length) != "stdlib_module_names")
				continue;
			// A frozenset: table of (key, hash) entries, mask + 1 of them.
			// Anything else: faulthandler leaves nothing out.
			r.found = true;
			if (!frozenset(value))
				return std::set<std::string>{};
			uint64_t mask = ptr(value + 32), table = ptr(value + 40);
			if (!table || mask >= kStdlibSlots)
				return std::nullopt;
			std::set<std::string> names;
			for (uint64_t i = 0; i <= mask; i++) {
				r.items++;
				uint64_t item = ptr(table + 16 * i);
				if (item && str(item, cps, length, kStdlibNameMax))
					names.insert(py_escape(cps, length));
			}
			return names;
		}
		return std::nullopt;
	}

	// The thread state a thread's TSS holds for autoTSSkey (what
	// PyGILState_GetThisThreadState() returns in that thread), from its
	// pthread_t; nullopt when it cannot be read (or names another thread).
	std::optional<uint64_t> tss_tstate(uint64_t runtime, uint64_t pthread)
	{
		int32_t initialized = 0;
		uint32_t key = 0;
		if (!pthread || !has(o_.runtime_autotss_key) || !has(o_.tstate_interp) ||
		    (o_.flags & FH_PY_RUNTIME_IS_INTERP_HEAD))
			return std::nullopt;
		uint64_t at = runtime + static_cast<uint64_t>(o_.runtime_autotss_key);
		uint64_t tstate = 0;
		if (!get(at, initialized) || !initialized || !get(at + 4, key) ||
		    key >= FH_GLIBC_TSS_KEYS ||
		    !get(pthread + FH_GLIBC_TSS_DATA + uint64_t{FH_GLIBC_TSS_STRIDE} * key, tstate))
			return std::nullopt;
		if (tstate && ptr(tstate + o_.tstate_thread_id) != pthread)
			return std::nullopt;
		return tstate;
	}

	// The pthread_t of the dumping thread, from its thread state in the
	// main interpreter: the one with its TID (3.11+), or for the main thread
	// the oldest (the list's last).
	uint64_t viewer_pthread(uint64_t in, const WalkView &view)
	{
		uint64_t tstate = ptr(in + o_.interp_threads_head), last = 0;
		std::set<uint64_t> seen;
		for (size_t i = 0; tstate && i < kThreadSearch && seen.insert(tstate).second; i++) {
			uint32_t tid = 0;
			if (has(o_.tstate_native_thread_id) &&
			    get(tstate + o_.tstate_native_thread_id, tid) && tid == view.ns_tid)
				return ptr(tstate + o_.tstate_thread_id);
			last = tstate;
			tstate = ptr(tstate + o_.tstate_next);
		}
		return view.main && last ? ptr(last + o_.tstate_thread_id) : 0;
	}

	void run(uint64_t runtime, const WalkView &view)
	{
		uint64_t in = interp(runtime);
		if (!in)
			return;
		// faulthandler dumps the interpreter of the dumping thread's
		// current thread state (a subinterpreter's, when it runs one),
		// and marks that thread state current.
		std::optional<uint64_t> tss;
		if (view.ns_tid)
			tss = tss_tstate(runtime, viewer_pthread(in, view));
		if (tss && *tss)
			if (uint64_t sub = ptr(*tss + o_.tstate_interp))
				in = sub;
		int32_t gc = 0;
		if (has(o_.interp_gc_collecting))
			get(in + o_.interp_gc_collecting, gc);
		uint64_t tstate = ptr(in + o_.interp_threads_head);
		std::set<uint64_t> seen; // a list that comes back ends there
		for (uint32_t i = 0; tstate && i < FH_PY_MAX_THREADS; i++) {
			seen.insert(tstate);
			thread(tstate, i, gc != 0);
			if (tss)
				ev_.py_threads.back().flags |=
					FH_PY_THREAD_TSS_READ | (tstate == *tss ? FH_PY_THREAD_CURRENT : 0);
			tstate = ptr(tstate + o_.tstate_next);
			if (seen.count(tstate)) {
				ev_.py_threads.back().flags |= FH_PY_THREAD_LIST_LOOP;
				break;
			}
		}
	}

private:
	MemoryReader &mem_;
	const fh_py_offsets &o_;
	Event &ev_;
};

} // namespace

// Each walk reads the process as it is now: nothing kept from a reader's
// earlier walks (a reader polled until the interpreter is ready, say).
void walk_python(MemoryReader &mem, const PythonRuntime &rt, Event &ev, const WalkView &view)
{
	mem.refresh();
	Walker(mem, rt.offsets, ev).run(rt.runtime_addr, view);
}

std::optional<std::set<std::string>> stdlib_module_names(MemoryReader &mem,
							 const PythonRuntime &rt, StdlibRead *read)
{
	mem.refresh();
	Event scratch;
	StdlibRead local;
	return Walker(mem, rt.offsets, scratch)
		.stdlib_names(rt.runtime_addr, rt.minor, read ? *read : local);
}

} // namespace fh
