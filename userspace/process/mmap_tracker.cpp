#include "process/mmap_tracker.h"

#include <sys/mman.h>

#include <cstring>

namespace fh {

perf_event_attr MmapTracker::attr()
{
	perf_event_attr a = {};
	a.mmap = 1;
	a.mmap2 = 1;
	a.mmap_data = 1; // the file's first, non-executable mapping too
	a.comm = 1;
	a.comm_exec = 1;
	a.inherit = 1;	      // every thread the process starts...
	a.inherit_thread = 1; // ...but not the processes it forks
	a.disabled = 1;
	a.enable_on_exec = 1;
	a.watermark = 1; // woken when a buffer is half full
	return a;
}

MmapTracker::MmapTracker(pid_t pid, size_t pages_per_cpu)
	: pid_(static_cast<uint32_t>(pid)),
	  buffers_(attr(), pid, pages_per_cpu,
		   "following the mappings of pid " + std::to_string(pid))
{
}

void MmapTracker::drain()
{
	for (const auto &r : buffers_.read())
		apply(r.bytes.data(), r.bytes.size());
}

void MmapTracker::apply(const uint8_t *rec, size_t len)
{
	struct perf_event_header hdr;
	if (len < sizeof(hdr)) {
		malformed_++;
		return;
	}
	std::memcpy(&hdr, rec, sizeof(hdr));
	switch (hdr.type) {
	case PERF_RECORD_MMAP2: {
		auto m = parse_mmap2(rec, len);
		if (!m) {
			malformed_++;
			return;
		}
		if (m->pid != pid_)
			return; // another process's (belt and braces: threads only inherit)
		insert_mapping(maps_, std::move(m->m));
		return;
	}
	case PERF_RECORD_COMM:
		if (auto pid = parse_exec(rec, len); pid && *pid == pid_)
			maps_.clear(); // a new program
		return;
	case PERF_RECORD_LOST:
		lost_ += parse_lost(rec, len);
		return;
	default:
		return; // nothing else is asked for
	}
}

MappingSet MmapTracker::mappings() const
{
	std::vector<Mapping> out;
	out.reserve(maps_.size());
	for (const auto &[start, m] : maps_)
		out.push_back(as_mapping(m, m.path));
	return MappingSet(std::move(out));
}

} // namespace fh
