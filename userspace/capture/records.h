#pragma once

#include "capture/event.h"

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <vector>

namespace fh {

// Ring-buffer bytes one capture of max_threads threads needs, a power of
// two: each thread record reserves its stack copy and one page of slack
// (see copy_stack() in bpf/fh.bpf.c).
uint64_t ring_size_for(uint64_t stack_size, uint32_t max_threads);

// The largest ring fh-bpf creates (kernel memory, held while it runs).
inline constexpr uint64_t kMaxRingSize = 256ull << 20;

// A change of the target's executable mappings (FH_REC_MAPS).
struct MapsChange {
	uint32_t tgid = 0;
	uint32_t reason = 0;
	uint64_t addr = 0;
	uint64_t len = 0;
};

// A process of a watched tree ended (FH_REC_EXIT).
struct ProcessExit {
	uint32_t tgid = 0;
	uint32_t ppid = 0;
	uint32_t status = 0; // the wait status it left
};

// Turns ring-buffer records into Events.  Every record is bounds-checked:
// a malformed one is counted and dropped, never trusted.
class Assembler {
public:
	struct Output {
		std::vector<Event> events; // completed events, in arrival order
		std::vector<MapsChange> maps_changes;
		std::vector<Verdict> verdicts; // on faults the targets handled
		std::vector<ProcessExit> exits; // of a watched tree's processes
	};

	// Feed one record (as handed out by the ring buffer).
	void feed(const void *data, size_t len, Output &out);

	// Events whose end record never came (ring full, or target gone).
	std::vector<Event> take_incomplete();
	// Those of them whose event record came before `before_ns` (this
	// process's CLOCK_MONOTONIC, as passed to feed()): a capture's records
	// follow its event record within milliseconds, so an end record not
	// there a while later was lost.
	std::vector<Event> take_stale(uint64_t before_ns);

	// What a live dump's iterator pass counted, in place of an end record.
	// (Threads whose stale copy was never replaced keep FH_THREAD_ON_CPU.)
	struct LiveEnd {
		uint32_t threads_skipped = 0;
		uint32_t threads_lost = 0;
		uint64_t ktime_end = 0;
	};

	// Complete live event `id` (FH_TRIGGER_TIMEOUT or _DEMAND) into
	// out.events; false if it never began.
	bool finish_live(uint64_t id, const LiveEnd &end, Output &out);

	uint64_t malformed() const { return malformed_; }
	uint64_t orphans() const { return orphans_; }

private:
	// The event a record belongs to; nullptr (an orphan, counted) if it
	// never began.
	// One record of each kind: false when it is malformed.
	bool take_event(const void *data, size_t len);
	bool take_thread(const void *data, size_t len);
	bool take_end(const void *data, size_t len, Output &out);
	bool take_py_thread(const void *data, size_t len);
	bool take_py_code(const void *data, size_t len);
	bool take_py_module(const void *data, size_t len);
	bool take_py_stdlib(const void *data, size_t len);
	bool take_cmdline(const void *data, size_t len);
	bool take_maps(const void *data, size_t len, Output &out);
	bool take_verdict(const void *data, size_t len, Output &out);
	bool take_exit(const void *data, size_t len, Output &out);
	Event *pending_event(uint64_t id);

	struct Pending {
		Event ev;
		uint64_t arrived_ns; // when its event record came
	};
	std::map<uint64_t, Pending> pending_;
	uint64_t malformed_ = 0;
	uint64_t orphans_ = 0; // thread/end records of an event never begun
};

} // namespace fh
