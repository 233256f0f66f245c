#include "records.h"

#include <linux/types.h>

#include <cstddef>
#include <cstring>

extern "C" {
#include "fh/records.h"
}

namespace fh {

// The ABI with the BPF programs, pinned.
static_assert(sizeof(fh_record_header) == 16);
static_assert(sizeof(fh_event_record) == 104);
static_assert(offsetof(fh_event_record, fault_addr) == 40);
static_assert(offsetof(fh_event_record, sender_comm) == 72);
static_assert(sizeof(fh_thread_record) == 200);
static_assert(offsetof(fh_thread_record, regs) == 48);
static_assert(offsetof(fh_thread_record, stack_addr) == 184);
static_assert(offsetof(fh_thread_record, stack) == 200);
static_assert(sizeof(fh_event_end_record) == 40);
static_assert(sizeof(fh_maps_record) == 40);
static_assert(FH_NR_REGS == kNrRegs);

bool ThreadCapture::hit() const { return flags & FH_THREAD_HIT; }

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

void Assembler::feed(const void *data, size_t len, Output &out)
{
	fh_record_header hdr;
	if (len < sizeof(hdr)) {
		malformed_++;
		return;
	}
	std::memcpy(&hdr, data, sizeof(hdr));

	switch (hdr.kind) {
	case FH_REC_EVENT: {
		fh_event_record r;
		if (!read_record(data, len, r)) {
			malformed_++;
			return;
		}
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
		else if (r.flags & FH_EVENT_KERNEL_SENDER)
			ev.sender = Sender{0, 0, 0, "", true};
		pending_[ev.id] = std::move(ev);
		return;
	}
	case FH_REC_THREAD: {
		fh_thread_record r;
		if (!read_record(data, len, r) ||
		    r.stack_len > r.hdr.size - sizeof(fh_thread_record)) {
			malformed_++;
			return;
		}
		auto it = pending_.find(r.hdr.event_id);
		if (it == pending_.end()) {
			orphans_++;
			return;
		}
		ThreadCapture t;
		t.tid = r.tid;
		t.flags = r.flags;
		t.pthread_id = r.fs_base;
		t.name = fixed_string(r.comm, sizeof(r.comm));
		std::memcpy(t.regs.data(), r.regs, sizeof(r.regs));
		t.stack_addr = r.stack_addr;
		t.stack_err = r.stack_err;
		const auto *bytes = static_cast<const uint8_t *>(data) + sizeof(fh_thread_record);
		t.stack.assign(bytes, bytes + r.stack_len);
		it->second.threads.push_back(std::move(t));
		return;
	}
	case FH_REC_EVENT_END: {
		fh_event_end_record r;
		if (!read_record(data, len, r)) {
			malformed_++;
			return;
		}
		auto it = pending_.find(r.hdr.event_id);
		if (it == pending_.end()) {
			orphans_++;
			return;
		}
		Event ev = std::move(it->second);
		pending_.erase(it);
		ev.threads_skipped = r.threads_skipped;
		ev.threads_lost = r.threads_lost;
		ev.ktime_end = r.ktime_ns;
		ev.complete = true;
		out.events.push_back(std::move(ev));
		return;
	}
	case FH_REC_MAPS: {
		fh_maps_record r;
		if (!read_record(data, len, r)) {
			malformed_++;
			return;
		}
		out.maps_changes.push_back(MapsChange{r.tgid, r.reason, r.addr, r.len});
		return;
	}
	default:
		malformed_++;
	}
}

std::vector<Event> Assembler::take_incomplete()
{
	std::vector<Event> out;
	for (auto &[id, ev] : pending_)
		out.push_back(std::move(ev));
	pending_.clear();
	return out;
}

} // namespace fh
