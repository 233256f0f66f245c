#include "capture/records.h"

#include "capture/abi.h"
#include "util/clock.h"

#include <linux/types.h>

#include <cstddef>
#include <algorithm>
#include <cstring>

#include "python/py_traceback.h"

extern "C" {
#include "fh/python.h"
#include "fh/records.h"
}

namespace fh {

bool ThreadCapture::hit() const { return flags & FH_THREAD_HIT; }

bool Event::live() const
{
	return trigger == FH_TRIGGER_TIMEOUT || trigger == FH_TRIGGER_DEMAND || refused;
}

uint64_t ring_size_for(uint64_t stack_size, uint32_t max_threads)
{
	uint64_t per_thread = sizeof(fh_thread_record) + stack_size + FH_PAGE_SIZE + 8;
	uint64_t need = per_thread * max_threads + 4096;
	uint64_t size = 256 * 1024;
	while (size < need)
		size <<= 1;
	return size;
}

namespace {

template <typename T> bool read_record(const void *data, size_t len, T &out)
{
	if (len < sizeof(T))
		return false;
	std::memcpy(&out, data, sizeof(T));
	return out.hdr.size >= sizeof(T) && out.hdr.size <= len;
}

std::string fixed_string(const char *s, size_t n)
{
	return std::string(s, strnlen(s, n));
}

} // namespace

Event *Assembler::pending_event(uint64_t id)
{
	auto it = pending_.find(id);
	if (it == pending_.end()) {
		orphans_++;
		return nullptr;
	}
	return &it->second.ev;
}

// An event begins: its signal, sender and identity.  False: malformed.
bool Assembler::take_event(const void *data, size_t len)
{
	fh_event_record r;
	if (!read_record(data, len, r))
		return false;
	Event ev;
	ev.id = r.hdr.event_id;
	ev.trigger = r.trigger;
	ev.tgid = r.tgid;
	ev.hit_tid = r.tid;
	ev.sig = r.sig;
	ev.si_code = r.si_code;
	ev.fault_addr = r.fault_addr;
	ev.comm = fixed_string(r.comm, sizeof(r.comm));
	ev.ktime_start = r.ktime_ns;
	if (r.flags & FH_EVENT_EXTERNAL)
		ev.sender = Sender{r.sender_tgid, r.sender_tid, r.sender_uid,
				   fixed_string(r.sender_comm, sizeof(r.sender_comm)), false};
	else if (r.flags & FH_EVENT_KERNEL_SENDER) {
		ev.sender = Sender{r.sender_tgid, r.sender_tid, r.sender_uid,
				   fixed_string(r.sender_comm, sizeof(r.sender_comm)), true};
		uint32_t n = std::min<uint32_t>(r.sender_kstack_len, FH_KSTACK_DEPTH);
		ev.sender->kstack.assign(r.sender_kstack, r.sender_kstack + n);
	}
	ev.default_action = r.flags & FH_EVENT_DEFAULT_ACTION;
	ev.terminated = r.flags & FH_EVENT_TERMINATED;
	ev.provisional = r.flags & FH_EVENT_PROVISIONAL;
	ev.handled = r.flags & FH_EVENT_HANDLED;
	if (ev.trigger == FH_TRIGGER_FATAL_SIGNAL || ev.trigger == FH_TRIGGER_USER_SIGNAL) {
		TargetIdentity &id = ev.identity;
		id.uid = r.uid;
		id.ppid = r.ppid;
		id.ns_tgid = r.ns_tgid;
		id.ns_tid = r.ns_tid;
		id.pid_ns_level = r.pid_ns_level;
		id.cgroup_id = r.cgroup_id;
		id.known = true;
	}
	ev.record_bytes = len;
	uint64_t id = ev.id;
	pending_[id] = {std::move(ev), monotonic_ns()};
	return true;
}

// One thread: registers and stack bytes (a live sample replaces its stale
// copy).  False: malformed.
bool Assembler::take_thread(const void *data, size_t len)
{
	fh_thread_record r;
	if (!read_record(data, len, r) || r.stack_len > r.hdr.size - sizeof(fh_thread_record))
		return false;
	Event *ev = pending_event(r.hdr.event_id);
	if (!ev)
		return true;
	ThreadCapture t;
	t.tid = r.tid;
	t.ns_tid = r.ns_tid;
	t.flags = r.flags;
	t.pthread_id = r.fs_base;
	t.name = fixed_string(r.comm, sizeof(r.comm));
	std::memcpy(t.regs.data(), r.regs, sizeof(r.regs));
	t.stack_addr = r.stack_addr;
	t.stack_err = r.stack_err;
	const auto *bytes = static_cast<const uint8_t *>(data) + sizeof(fh_thread_record);
	t.stack.assign(bytes, bytes + r.stack_len);
	ev->record_bytes += len;
	// A live dump's sample or retake replaces the stale copy.
	if (r.flags & (FH_THREAD_SAMPLED | FH_THREAD_RETAKEN)) {
		auto it = std::find_if(ev->threads.begin(), ev->threads.end(),
				       [&](const ThreadCapture &o) { return o.tid == t.tid; });
		if (it != ev->threads.end()) {
			*it = std::move(t);
			return true;
		}
	}
	ev->threads.push_back(std::move(t));
	return true;
}

// The event is whole: handed on.  False: malformed.
bool Assembler::take_end(const void *data, size_t len, Output &out)
{
	fh_event_end_record r;
	if (!read_record(data, len, r))
		return false;
	Event *ev = pending_event(r.hdr.event_id);
	if (!ev)
		return true;
	ev->threads_skipped = r.threads_skipped;
	ev->threads_lost = r.threads_lost;
	ev->ktime_end = r.ktime_ns;
	ev->complete = true;
	out.events.push_back(std::move(*ev));
	pending_.erase(r.hdr.event_id);
	return true;
}

// A Python thread state and its frames.  False: malformed.
bool Assembler::take_py_thread(const void *data, size_t len)
{
	constexpr size_t fixed = offsetof(fh_py_thread_record, frames);
	if (len < fixed)
		return false;
	fh_py_thread_record r;
	std::memcpy(&r, data, std::min(len, sizeof(r)));
	if (r.hdr.size > len || r.nframes > FH_PY_MAX_FRAMES ||
	    fixed + r.nframes * sizeof(fh_py_frame) > std::min<size_t>(len, r.hdr.size))
		return false;
	Event *ev = pending_event(r.hdr.event_id);
	if (!ev)
		return true;
	PyThreadCapture t;
	t.tstate = r.tstate;
	t.thread_id = r.thread_id;
	t.native_thread_id = r.native_thread_id;
	t.index = r.index;
	t.flags = r.flags;
	for (uint32_t i = 0; i < r.nframes; i++)
		t.frames.push_back({r.frames[i].code, r.frames[i].lasti, r.frames[i].owner, r.frames[i].flags});
	ev->py_threads.push_back(std::move(t));
	ev->record_bytes += len;
	return true;
}

// A code object: names and line table.  False: malformed.
bool Assembler::take_py_code(const void *data, size_t len)
{
	constexpr size_t fixed = offsetof(fh_py_code_record, data);
	if (len < fixed)
		return false;
	fh_py_code_record r;
	std::memcpy(&r, data, std::min(len, sizeof(r)));
	size_t avail = std::min<size_t>(len, r.hdr.size);
	uint64_t used = uint64_t{r.filename_bytes} + r.name_bytes + r.linetable_bytes;
	if (r.hdr.size > len || avail < fixed || used > avail - fixed)
		return false;
	Event *ev = pending_event(r.hdr.event_id);
	if (!ev)
		return true;
	PyCodeCapture c;
	c.flags = r.flags;
	c.firstlineno = r.firstlineno;
	const uint8_t *p = r.data;
	c.filename = py_code_points(p, r.filename_bytes, static_cast<int>(r.filename_kind),
				    r.filename_length, 501);
	c.filename_length = r.filename_length;
	p += r.filename_bytes;
	c.name = py_code_points(p, r.name_bytes, static_cast<int>(r.name_kind), r.name_length,
				501);
	c.name_length = r.name_length;
	p += r.name_bytes;
	c.linetable.assign(p, p + r.linetable_bytes);
	c.linetable_size = r.linetable_size;
	ev->py_codes.emplace(r.code, std::move(c));
	ev->record_bytes += len;
	return true;
}

// A module name of sys.modules.  False: malformed.
bool Assembler::take_py_module(const void *data, size_t len)
{
	constexpr size_t fixed = offsetof(fh_py_module_record, data);
	if (len < fixed)
		return false;
	fh_py_module_record r;
	std::memcpy(&r, data, std::min(len, sizeof(r)));
	if (r.hdr.size > len || r.hdr.size < fixed || r.bytes > r.hdr.size - fixed)
		return false;
	Event *ev = pending_event(r.hdr.event_id);
	if (!ev)
		return true;
	PyModuleName m;
	m.index = r.index;
	m.readable = r.kind != 0;
	m.name = py_code_points(r.data, r.bytes, static_cast<int>(r.kind), r.length, 501);
	m.length = r.length;
	ev->py_modules.push_back(std::move(m));
	ev->record_bytes += len;
	return true;
}

// Names of sys.stdlib_module_names, and at the last record what became of
// the read.  False: malformed.
bool Assembler::take_py_stdlib(const void *data, size_t len)
{
	constexpr size_t fixed = offsetof(fh_py_stdlib_record, data);
	if (len < fixed)
		return false;
	fh_py_stdlib_record r;
	std::memcpy(&r, data, std::min(len, sizeof(r)));
	if (r.hdr.size > len || r.hdr.size < fixed || r.bytes > r.hdr.size - fixed ||
	    r.status < FH_PY_STDLIB_PART || r.status > FH_PY_STDLIB_UNREADABLE)
		return false;
	// Each name: kind, 0, its bytes (16 bits), its length, the bytes; 8-aligned.
	std::vector<PyModuleName> names;
	for (size_t at = 0; at < r.bytes;) {
		uint16_t bytes;
		uint32_t length;
		if (r.bytes - at < 8)
			return false;
		std::memcpy(&bytes, r.data + at + 2, sizeof(bytes));
		std::memcpy(&length, r.data + at + 4, sizeof(length));
		int kind = r.data[at];
		if ((kind != 1 && kind != 2 && kind != 4) || bytes > r.bytes - at - 8 ||
		    bytes > FH_PY_STR_BYTES)
			return false;
		PyModuleName m;
		m.index = static_cast<uint32_t>(names.size());
		m.readable = true;
		m.name = py_code_points(r.data + at + 8, bytes, kind, length, 501);
		m.length = length;
		names.push_back(std::move(m));
		at += (8 + size_t{bytes} + 7) & ~size_t{7};
	}
	if (names.size() != r.names)
		return false;
	Event *ev = pending_event(r.hdr.event_id);
	if (!ev)
		return true;
	// A read that went wrong at its end leaves no name standing.
	if (ev->py_stdlib == 0 || ev->py_stdlib == FH_PY_STDLIB_PART) {
		for (auto &m : names)
			ev->py_stdlib_names.push_back(std::move(m));
		ev->py_stdlib = r.status;
		if (r.status != FH_PY_STDLIB_PART && r.status != FH_PY_STDLIB_FOUND)
			ev->py_stdlib_names.clear();
	}
	ev->record_bytes += len;
	return true;
}

// The arguments of the process.  False: malformed.
bool Assembler::take_cmdline(const void *data, size_t len)
{
	constexpr size_t fixed = offsetof(fh_cmdline_record, data);
	if (len < fixed)
		return false;
	fh_cmdline_record r;
	std::memcpy(&r, data, std::min(len, sizeof(r)));
	if (r.hdr.size > len || r.len > FH_CMDLINE_MAX || fixed + r.len > r.hdr.size)
		return false;
	Event *ev = pending_event(r.hdr.event_id);
	if (!ev)
		return true;
	// NUL-separated; a last argument cut short has no NUL.
	std::string arg;
	for (uint32_t i = 0; i < r.len; i++) {
		if (r.data[i] == 0) {
			ev->identity.cmdline.push_back(std::move(arg));
			arg.clear();
		} else {
			arg += static_cast<char>(r.data[i]);
		}
	}
	if (!arg.empty())
		ev->identity.cmdline.push_back(std::move(arg));
	ev->identity.cmdline_truncated = r.full_len > r.len;
	ev->record_bytes += len;
	return true;
}

// A mapping change of a watched process.  False: malformed.
bool Assembler::take_maps(const void *data, size_t len, Output &out)
{
	fh_maps_record r;
	if (!read_record(data, len, r))
		return false;
	out.maps_changes.push_back(MapsChange{r.tgid, r.reason, r.addr, r.len});
	return true;
}

// What became of a process after a fault it handled.  False: malformed.
bool Assembler::take_verdict(const void *data, size_t len, Output &out)
{
	fh_verdict_record r;
	if (!read_record(data, len, r) || r.verdict < FH_VERDICT_DIED ||
	    r.verdict > FH_VERDICT_SURVIVED)
		return false;
	out.verdicts.push_back(
		{r.hdr.event_id, r.tgid, r.verdict, r.sig, r.si_code, r.status, r.sender_tgid});
	return true;
}

// A process of a watched tree ended.  False: malformed.
bool Assembler::take_exit(const void *data, size_t len, Output &out)
{
	fh_exit_record r;
	if (!read_record(data, len, r))
		return false;
	out.exits.push_back({r.tgid, r.ppid, r.status});
	return true;
}

void Assembler::feed(const void *data, size_t len, Output &out)
{
	fh_record_header hdr;
	if (len < sizeof(hdr)) {
		malformed_++;
		return;
	}
	std::memcpy(&hdr, data, sizeof(hdr));
	bool ok = false;
	switch (hdr.kind) {
	case FH_REC_EVENT:
		ok = take_event(data, len);
		break;
	case FH_REC_THREAD:
		ok = take_thread(data, len);
		break;
	case FH_REC_EVENT_END:
		ok = take_end(data, len, out);
		break;
	case FH_REC_PY_THREAD:
		ok = take_py_thread(data, len);
		break;
	case FH_REC_PY_CODE:
		ok = take_py_code(data, len);
		break;
	case FH_REC_PY_MODULE:
		ok = take_py_module(data, len);
		break;
	case FH_REC_PY_STDLIB:
		ok = take_py_stdlib(data, len);
		break;
	case FH_REC_CMDLINE:
		ok = take_cmdline(data, len);
		break;
	case FH_REC_MAPS:
		ok = take_maps(data, len, out);
		break;
	case FH_REC_VERDICT:
		ok = take_verdict(data, len, out);
		break;
	case FH_REC_EXIT:
		ok = take_exit(data, len, out);
		break;
	}
	if (!ok)
		malformed_++;
}

bool Assembler::finish_live(uint64_t id, const LiveEnd &end, Output &out)
{
	auto it = pending_.find(id);
	if (it == pending_.end())
		return false;
	Event &ev = it->second.ev;
	ev.threads_skipped = end.threads_skipped;
	ev.threads_lost = end.threads_lost;
	ev.ktime_end = end.ktime_end;
	ev.complete = true;
	out.events.push_back(std::move(ev));
	pending_.erase(it);
	return true;
}

std::vector<Event> Assembler::take_incomplete()
{
	std::vector<Event> out;
	for (auto &[id, p] : pending_)
		out.push_back(std::move(p.ev));
	pending_.clear();
	return out;
}

std::vector<Event> Assembler::take_stale(uint64_t before_ns)
{
	std::vector<Event> out;
	for (auto it = pending_.begin(); it != pending_.end();) {
		if (it->second.arrived_ns >= before_ns) {
			++it;
			continue;
		}
		out.push_back(std::move(it->second.ev));
		it = pending_.erase(it);
	}
	return out;
}

} // namespace fh
