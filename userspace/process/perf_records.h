#pragma once

#include "process/mappings.h"

#include <linux/perf_event.h>
#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace fh {

// Software dummy perf events, one per CPU, that carry side-band records
// (mappings, exec, fork, exit) and no samples; their ring buffers read as
// records stamped with the time of sample_id_all.
class PerfRecordBuffers {
public:
	// attr's type, config, size and sample_type are set here (a dummy
	// event, time last in every record); with watermark and no
	// wakeup_watermark, a reader is woken when a buffer is half full.  pid
	// is perf_event_open's (-1: every process).  `what` names the events
	// in an error.  Throws Error.
	PerfRecordBuffers(perf_event_attr attr, pid_t pid, size_t pages_per_cpu,
			  const std::string &what);
	~PerfRecordBuffers();
	PerfRecordBuffers(const PerfRecordBuffers &) = delete;
	PerfRecordBuffers &operator=(const PerfRecordBuffers &) = delete;

	const std::vector<int> &fds() const { return fds_; }

	struct Record {
		uint64_t time;
		std::vector<uint8_t> bytes; // header included
	};
	// Every waiting record, in time order across the CPUs.
	std::vector<Record> read();

	uint64_t malformed() const { return malformed_; }

private:
	struct Buffer {
		int fd = -1;
		void *base = nullptr;
		size_t size = 0; // data area, a power of two
	};
	void release() noexcept;
	void read_buffer(Buffer &b, std::vector<Record> &out);

	std::vector<Buffer> buffers_;
	std::vector<int> fds_;
	uint64_t malformed_ = 0;
};

// A file mapping, as PERF_RECORD_MMAP2 or /proc/PID/maps gives it.
struct FileMapping {
	uint64_t start = 0, end = 0, pgoff = 0;
	uint32_t maj = 0, min = 0;
	uint64_t ino = 0;
	uint32_t prot = 0, flags = 0; // PROT_*, MAP_*
	std::string path;
};

// A PERF_RECORD_MMAP2 record (header included, no build id) and the
// process it is of; nullopt when it is malformed.
struct Mmap2 {
	uint32_t pid = 0;
	FileMapping m;
};
std::optional<Mmap2> parse_mmap2(const uint8_t *rec, size_t len);

// PERF_RECORD_COMM with the exec flag: the pid that exec'd; nullopt for
// another record.
std::optional<uint32_t> parse_exec(const uint8_t *rec, size_t len);

// Records the kernel could not write, from a PERF_RECORD_LOST.
uint64_t parse_lost(const uint8_t *rec, size_t len);

// Put m in maps (by start, never overlapping): what it covers of the old
// mappings is trimmed or split away.  A mapping of no file (anonymous
// memory, "//anon") only clears its range; "[vdso]" is kept.
void insert_mapping(std::map<uint64_t, FileMapping> &maps, FileMapping m);

// m as /proc/PID/maps would show it, naming its file `path`.
Mapping as_mapping(const FileMapping &m, std::string path);

// A segment /proc/PID/maps showed, as a PERF_RECORD_MMAP2 would give it
// (of the flags, MAP_SHARED or MAP_PRIVATE).
FileMapping as_file_mapping(const Mapping &m);

} // namespace fh
