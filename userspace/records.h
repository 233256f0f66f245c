#pragma once

#include "event.h"

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <vector>

namespace fh {

// A change of the target's executable mappings (FH_REC_MAPS).
struct MapsChange {
	uint32_t tgid = 0;
	uint32_t reason = 0;
	uint64_t addr = 0;
	uint64_t len = 0;
};

// Turns ring-buffer records into Events.  Every record is bounds-checked:
// a malformed one is counted and dropped, never trusted.
class Assembler {
public:
	struct Output {
		std::vector<Event> events; // completed events, in arrival order
		std::vector<MapsChange> maps_changes;
	};

	// Feed one record (as handed out by the ring buffer).
	void feed(const void *data, size_t len, Output &out);

	// Events whose end record never came (ring full, or target gone).
	std::vector<Event> take_incomplete();

	uint64_t malformed() const { return malformed_; }
	uint64_t orphans() const { return orphans_; }

private:
	std::map<uint64_t, Event> pending_;
	uint64_t malformed_ = 0;
	uint64_t orphans_ = 0; // thread/end records of an event never begun
};

} // namespace fh
