#pragma once

#include "process/mappings.h"
#include "process/perf_records.h"

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <string>

namespace fh {

// The file mappings of a process as the kernel reports them while they are
// made: perf PERF_RECORD_MMAP2 records of a dummy software event, one per
// CPU, inherited by every thread (not by child processes), enabled by the
// process's exec.  The kernel writes each record inside mmap() itself, so
// the mappings of a process that crashes a millisecond after it starts,
// and is gone by the time anyone could read /proc/PID/maps, are known in
// full.
//
// perf reports no munmap: a mapping stays until another one covers its
// range.  An exec (PERF_RECORD_COMM with the exec flag) starts afresh.
class MmapTracker {
public:
	// Opens the events on `pid` before it execs; throws Error.
	explicit MmapTracker(pid_t pid, size_t pages_per_cpu = 64);

	// Readable when a buffer is half full: poll it so none overflows.
	const std::vector<int> &fds() const { return buffers_.fds(); }

	// Read and apply every record waiting.
	void drain();

	// The mappings recorded so far.
	MappingSet mappings() const;

	// Records the kernel could not write (buffer full): the mappings may
	// then be incomplete.
	uint64_t lost() const { return lost_; }
	uint64_t malformed() const { return malformed_ + buffers_.malformed(); }

	// Apply one record (the bytes of a perf record, header included, with a
	// u64 time last).  Public for tests.
	void apply(const uint8_t *rec, size_t len);

private:
	static perf_event_attr attr();

	uint32_t pid_;
	PerfRecordBuffers buffers_;
	std::map<uint64_t, FileMapping> maps_; // by start address, never overlapping
	uint64_t lost_ = 0;
	uint64_t malformed_ = 0;
};

} // namespace fh
