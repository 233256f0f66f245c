#include "python/py_report.h"

#include "python/linetable.h"
#include "python/py_traceback.h"

#include <algorithm>

extern "C" {
#include "fh/records.h"
}

namespace fh {

namespace {

// The native capture of a thread state's thread: the same pthread_t (its
// fs_base).
const ThreadCapture *native_of(const Event &ev, const PyThreadCapture &t)
{
	for (const auto &n : ev.threads)
		if (n.pthread_id == t.thread_id)
			return &n;
	return nullptr;
}

// The thread hit, in the target's pid namespace: a thread state's
// native_thread_id (3.11+) is that one.
uint32_t ns_hit_tid(const Event &ev)
{
	if (ev.identity.known && ev.identity.ns_tid)
		return ev.identity.ns_tid;
	for (const auto &[ns, host] : ev.host_tid_of)
		if (host == ev.hit_tid)
			return ns;
	return ev.hit_tid;
}

// faulthandler's "Current thread": the thread state the thread hit has in
// its TSS, when the walk read it (every version with autoTSSkey, 3.7+);
// otherwise the thread state of the thread hit, by its pthread_t or its
// namespace TID.
bool is_current(const Event &ev, const PyThreadCapture &t, bool tss_read)
{
	if (tss_read)
		return t.flags & FH_PY_THREAD_CURRENT;
	if (const ThreadCapture *n = native_of(ev, t))
		return n->tid == ev.hit_tid;
	return t.native_thread_id && t.native_thread_id == ns_hit_tid(ev);
}

// A thread state's thread on the host, and in its pid namespace.
void thread_ids(const Event &ev, const PyThreadCapture &t, Thread &out)
{
	const ThreadCapture *n = native_of(ev, t);
	out.ns_tid = t.native_thread_id ? t.native_thread_id : n ? n->ns_tid : 0;
	if (n) {
		out.name = n->name;
		out.tid = n->tid;
		return;
	}
	if (!t.native_thread_id)
		out.tid = 0;
	else if (!ev.host_tid_of.empty())
		out.tid = ev.host_tid_of.count(t.native_thread_id)
				  ? ev.host_tid_of.at(t.native_thread_id)
				  : 0;
	else if (!ev.identity.known || ev.identity.pid_ns_level == 0)
		out.tid = t.native_thread_id; // the host's namespace (or said nowhere)
	// A live walk's thread: its name from /proc.
	if (auto it = ev.thread_names.find(out.tid); out.tid && it != ev.thread_names.end())
		out.name = it->second;
}

// The owner of a shim frame, pushed by a C call of the evaluation loop
// below the first frame it runs (FRAME_OWNED_BY_CSTACK): 3.12, 3.13: 3;
// 3.14: 4.
int cstack_owner(int minor) { return minor >= 14 ? 4 : 3; }

// Whether a C call of the evaluation loop was entered at this frame: the
// oldest frame of those the call runs.
bool entered_here(int minor, const PyFrameCapture &f)
{
	if (minor <= 10)
		return true; // one call a frame
	if (minor == 11)
		return f.flags & FH_PY_FRAME_ENTRY;
	return false; // 3.12+: the shim frame below says it
}

int line_of(int minor, const PyCodeCapture &c, int32_t lasti)
{
	if (!(c.flags & FH_PY_CODE_LINETABLE))
		return -1;
	const uint8_t *t = c.linetable.data();
	size_t n = c.linetable.size();
	if (minor <= 9)
		return lnotab_line(t, n, c.firstlineno, lasti);
	if (minor == 10)
		// 3.10 counts instructions, its table bytes: a hostile lasti past
		// INT32_MAX / 2 is past any table (-1), not an overflow.
		return linetable310_line(t, n, c.firstlineno,
					 lasti < 0 ? lasti
						   : static_cast<int>(std::min<int64_t>(
							     int64_t{lasti} * 2, INT32_MAX)));
	return location_table_line(t, n, c.firstlineno, lasti);
}

PyFrame frame_text(int minor, const Event &ev, const PyFrameCapture &f)
{
	PyFrame out;
	auto it = ev.py_codes.find(f.code);
	if (f.code == 0 || it == ev.py_codes.end())
		return out;
	const PyCodeCapture &c = it->second;
	if (c.flags & FH_PY_CODE_FILENAME)
		out.file = py_escape(c.filename, c.filename_length);
	if (c.flags & FH_PY_CODE_NAME)
		out.function = py_escape(c.name, c.name_length);
	out.line = line_of(minor, c, f.lasti);
	return out;
}

} // namespace

namespace {

// What one frame's line takes in the text.
size_t frame_bytes(const PyFrame &f)
{
	return 32 + (f.file ? f.file->size() : 0) + (f.function ? f.function->size() : 0);
}

// Values no interpreter holds: said once each.
void implausible(PyTextBounds &b, const std::string &what)
{
	for (const auto &s : b.implausible)
		if (s == what)
			return;
	b.implausible.push_back(what);
}

void check_code(PyTextBounds &b, const Event &ev, uint64_t code)
{
	auto it = ev.py_codes.find(code);
	if (it == ev.py_codes.end())
		return;
	const PyCodeCapture &c = it->second;
	// A str longer than 2^32 characters, a negative first line.
	constexpr uint64_t kMaxLength = uint64_t{1} << 32;
	if (c.filename_length > kMaxLength || c.name_length > kMaxLength)
		implausible(b, "a code object's name or file name is longer than 2^32 characters");
	if ((c.flags & FH_PY_CODE_LINETABLE) && c.firstlineno < 0)
		implausible(b, "a code object starts at a negative line");
}

} // namespace

std::vector<Thread> python_threads(const Event &ev, const PythonRuntime &rt, PyTextBounds *bounds,
				   std::vector<EvalCalls> *groups)
{
	std::vector<Thread> out;
	PyTextBounds local;
	PyTextBounds &b = bounds ? *bounds : local;
	const fh_py_offsets &o = rt.offsets;
	std::set<uint64_t> tstates;
	bool tss_read = false;
	for (const auto &t : ev.py_threads)
		tss_read |= (t.flags & FH_PY_THREAD_TSS_READ) != 0;
	for (size_t k = 0; k < ev.py_threads.size(); k++) {
		const PyThreadCapture &t = ev.py_threads[k];
		// A thread list that comes back to a thread state: the rest
		// would be the same threads again.
		if (t.tstate && !tstates.insert(t.tstate).second) {
			implausible(b, "its thread list loops");
			break;
		}
		if (t.flags & FH_PY_THREAD_LIST_LOOP)
			implausible(b, "its thread list loops");
		if (t.flags & FH_PY_THREAD_FRAME_LOOP)
			implausible(b, "a thread's frame chain loops");
		if (b.used >= b.max_bytes) {
			b.threads_cut++;
			b.frames_cut += t.frames.size();
			continue;
		}
		Thread tt;
		tt.pthread_id = t.thread_id;
		thread_ids(ev, t, tt);
		tt.current = is_current(ev, t, tss_read);
		tt.garbage_collecting = t.flags & FH_PY_THREAD_GC;
		tt.truncated = t.flags & (FH_PY_THREAD_MORE_FRAMES | FH_PY_THREAD_FRAME_LOOP);
		b.used += 64;
		EvalCalls calls;
		uint32_t ran = 0; // frames of the current call
		for (size_t i = 0; i < t.frames.size(); i++) {
			const PyFrameCapture &f = t.frames[i];
			// A shim frame ends the frames of the call that pushed it.
			bool shim = rt.minor >= 12 && f.owner == cstack_owner(rt.minor);
			// From 3.12 a shim frame (owned by the C stack) below the
			// top one is not printed.
			if (i > 0 && o.owner_skip_min != FH_PY_NONE && f.owner >= o.owner_skip_min) {
				if (shim) {
					calls.push_back(ran);
					ran = 0;
				}
				continue;
			}
			if (tt.frames.size() == kMaxFrames) {
				tt.truncated = true;
				break; // faulthandler prints no more
			}
			PyFrame text = frame_text(rt.minor, ev, f);
			if (b.used + frame_bytes(text) > b.max_bytes) {
				b.frames_cut += t.frames.size() - i;
				b.used = b.max_bytes; // the next threads go whole
				tt.truncated = true;
				break;
			}
			check_code(b, ev, f.code);
			b.used += frame_bytes(text);
			tt.frames.push_back(std::move(text));
			ran++;
			if (shim || entered_here(rt.minor, f)) {
				calls.push_back(ran);
				ran = 0;
			}
		}
		if (ran)
			calls.push_back(ran);
		if (groups)
			groups->push_back(std::move(calls));
		out.push_back(std::move(tt));
	}
	return out;
}

std::vector<std::string> extension_modules(const Event &ev, const PythonRuntime &rt,
					   const std::set<std::string> *stdlib)
{
	std::vector<std::string> out;
	if (rt.minor < 10)
		return out;
	// As the set was at the signal, when it could be read then.
	std::set<std::string> at_signal;
	if (ev.py_stdlib == FH_PY_STDLIB_FOUND) {
		for (const auto &n : ev.py_stdlib_names)
			at_signal.insert(py_escape(n.name, n.length));
		stdlib = &at_signal;
	} else if (ev.py_stdlib == FH_PY_STDLIB_ABSENT) {
		stdlib = nullptr;
	}
	std::vector<const PyModuleName *> order;
	for (const auto &m : ev.py_modules)
		order.push_back(&m);
	std::sort(order.begin(), order.end(),
		  [](auto *a, auto *b) { return a->index < b->index; });
	for (const PyModuleName *m : order) {
		if (!m->readable)
			continue; // faulthandler skips keys that are not str
		std::string name = py_escape(m->name, m->length);
		if (stdlib && stdlib->count(name))
			continue;
		out.push_back(std::move(name));
	}
	return out;
}

namespace {

// Losses for what bounds left out or found implausible.
void bounds_losses(const PyTextBounds &b, const PythonRuntime &rt, std::vector<Loss> &out)
{
	if (!b.implausible.empty()) {
		std::string why;
		for (size_t i = 0; i < b.implausible.size(); i++)
			why += (i ? "; " : "") + b.implausible[i];
		out.push_back({"implausible_interpreter", b.implausible.size(),
			       "the interpreter's structures are implausible (" + why +
				       "): this may be no Python 3." + std::to_string(rt.minor) +
				       " interpreter, and what is shown of it may be garbage"});
	}
	if (b.frames_cut || b.threads_cut || b.modules_cut)
		out.push_back({"python_cut", b.frames_cut + b.modules_cut,
			       "the Python traceback was cut at " + std::to_string(b.max_bytes) +
				       " bytes: " + std::to_string(b.frames_cut) + " frames (" +
				       std::to_string(b.threads_cut) + " whole threads) and " +
				       std::to_string(b.modules_cut) +
				       " extension module names not shown"});
}

} // namespace

std::string python_version(const PythonRuntime &rt)
{
	uint32_t v = rt.offsets.version;
	if ((v & 0xffff) == 0) // minor only
		return "3." + std::to_string(rt.minor);
	return std::to_string(v >> 24) + "." + std::to_string(v >> 16 & 0xff) + "." +
	       std::to_string(v >> 8 & 0xff);
}

PythonDialect python_dialect(const PythonRuntime &rt)
{
	return PythonDialect{rt.minor, rt.offsets.version, python_version(rt)};
}

void python_traceback(const Event &ev, const PythonRuntime &rt,
		      const std::set<std::string> *stdlib, Incident &inc,
		      std::vector<EvalCalls> *calls)
{
	PyTextBounds b;
	inc.python = python_dialect(rt);
	inc.threads = python_threads(ev, rt, &b, calls);
	if (ev.trigger == FH_TRIGGER_FATAL_SIGNAL) {
		std::vector<std::string> all = extension_modules(ev, rt, stdlib);
		inc.modules_total = all.size();
		for (auto &name : all) {
			if (b.used + name.size() + 2 > b.max_bytes) {
				b.modules_cut = all.size() - inc.extension_modules.size();
				break;
			}
			b.used += name.size() + 2;
			inc.extension_modules.push_back(std::move(name));
		}
	}
	// More threads than shown: the list went on past the walk's limit
	// (not round to the start again), or some were cut for room.
	bool list_loops = false;
	for (const auto &t : ev.py_threads)
		list_loops |= (t.flags & FH_PY_THREAD_LIST_LOOP) != 0;
	list_loops |= inc.threads.size() < ev.py_threads.size() && !b.threads_cut;
	inc.threads_cut = b.threads_cut != 0;
	inc.more_threads = (!list_loops && ev.py_threads.size() >= FH_PY_MAX_THREADS) ||
			   b.threads_cut || inc.threads.size() > kMaxThreads;
	if (inc.threads.size() > kMaxThreads)
		inc.threads.resize(kMaxThreads);
	if (calls && calls->size() > inc.threads.size())
		calls->resize(inc.threads.size());
	bounds_losses(b, rt, inc.losses);
}

} // namespace fh
