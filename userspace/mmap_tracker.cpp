#include "mmap_tracker.h"

#include "error.h"

#include <bpf/libbpf.h>
#include <linux/perf_event.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>

namespace fh {

namespace {

constexpr size_t kPage = 4096;

// The fixed part of PERF_RECORD_MMAP2 after its header (no build id).
struct Mmap2Body {
	uint32_t pid, tid;
	uint64_t addr, len, pgoff;
	uint32_t maj, min;
	uint64_t ino, ino_generation;
	uint32_t prot, flags;
};

} // namespace

MmapTracker::MmapTracker(pid_t pid, size_t pages_per_cpu) : pid_(static_cast<uint32_t>(pid))
{
	int ncpus = libbpf_num_possible_cpus();
	if (ncpus <= 0)
		throw Error("cannot count the CPUs", -ncpus);
	// A power of two pages of data after the control page.
	size_t pages = 1;
	while (pages < pages_per_cpu)
		pages <<= 1;
	for (int cpu = 0; cpu < ncpus; cpu++) {
		struct perf_event_attr attr = {};
		attr.size = sizeof(attr);
		attr.type = PERF_TYPE_SOFTWARE;
		attr.config = PERF_COUNT_SW_DUMMY;
		attr.sample_type = PERF_SAMPLE_TIME; // orders records across CPUs
		attr.sample_id_all = 1;
		attr.mmap = 1;
		attr.mmap2 = 1;
		attr.mmap_data = 1; // the file's first, non-executable mapping too
		attr.comm = 1;
		attr.comm_exec = 1;
		attr.inherit = 1; // every thread the process starts...
		attr.inherit_thread = 1; // ...but not the processes it forks
		attr.disabled = 1;
		attr.enable_on_exec = 1;
		attr.watermark = 1;
		attr.wakeup_watermark = static_cast<uint32_t>(pages * kPage / 2);
		int fd = static_cast<int>(
			syscall(SYS_perf_event_open, &attr, pid, cpu, -1, PERF_FLAG_FD_CLOEXEC));
		if (fd < 0) {
			if (errno == ENODEV) // an offline CPU runs nothing
				continue;
			int e = errno;
			release();
			throw sys_error("perf_event_open (following the mappings of pid " +
						std::to_string(pid) + ")",
					e);
		}
		size_t len = (pages + 1) * kPage;
		void *base = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (base == MAP_FAILED) {
			int e = errno;
			close(fd);
			release();
			throw sys_error("mapping the perf buffer", e);
		}
		buffers_.push_back({fd, base, pages * kPage});
		fds_.push_back(fd);
	}
}

MmapTracker::~MmapTracker() { release(); }

void MmapTracker::release() noexcept
{
	for (auto &b : buffers_) {
		if (b.base)
			munmap(b.base, b.size + kPage);
		if (b.fd >= 0)
			close(b.fd);
	}
	buffers_.clear();
	fds_.clear();
}

void MmapTracker::read_buffer(Buffer &b, std::vector<Pending> &out)
{
	auto *meta = static_cast<struct perf_event_mmap_page *>(b.base);
	const auto *data = static_cast<const uint8_t *>(b.base) + kPage;
	uint64_t head = __atomic_load_n(&meta->data_head, __ATOMIC_ACQUIRE);
	uint64_t tail = meta->data_tail;
	if (head - tail > b.size) { // cannot happen; never trust it
		malformed_++;
		__atomic_store_n(&meta->data_tail, head, __ATOMIC_RELEASE);
		return;
	}
	while (tail < head) {
		struct perf_event_header hdr;
		if (head - tail < sizeof(hdr))
			break;
		for (size_t i = 0; i < sizeof(hdr); i++)
			reinterpret_cast<uint8_t *>(&hdr)[i] = data[(tail + i) & (b.size - 1)];
		if (hdr.size < sizeof(hdr) || hdr.size > head - tail) {
			malformed_++;
			tail = head;
			break;
		}
		std::vector<uint8_t> rec(hdr.size);
		for (size_t i = 0; i < hdr.size; i++) // it may wrap around the end
			rec[i] = data[(tail + i) & (b.size - 1)];
		tail += hdr.size;
		uint64_t time = 0;
		if (rec.size() >= sizeof(hdr) + sizeof(time))
			std::memcpy(&time, rec.data() + rec.size() - sizeof(time), sizeof(time));
		out.push_back({time, std::move(rec)});
	}
	__atomic_store_n(&meta->data_tail, tail, __ATOMIC_RELEASE);
}

void MmapTracker::drain()
{
	std::vector<Pending> recs;
	for (auto &b : buffers_)
		read_buffer(b, recs);
	// One buffer per CPU: their records interleave in time.
	std::stable_sort(recs.begin(), recs.end(),
			 [](const Pending &a, const Pending &b) { return a.time < b.time; });
	for (const auto &r : recs)
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
	const uint8_t *body = rec + sizeof(hdr);
	size_t body_len = len - sizeof(hdr);
	switch (hdr.type) {
	case PERF_RECORD_MMAP2: {
		Mmap2Body m;
		// The trailer (sample_id: the time) follows the NUL-padded name.
		if (body_len < sizeof(m) + sizeof(uint64_t) ||
		    (hdr.misc & PERF_RECORD_MISC_MMAP_BUILD_ID)) {
			malformed_++;
			return;
		}
		std::memcpy(&m, body, sizeof(m));
		if (m.pid != pid_)
			return; // another process's (belt and braces: threads only inherit)
		const char *name = reinterpret_cast<const char *>(body + sizeof(m));
		size_t name_max = body_len - sizeof(m) - sizeof(uint64_t);
		std::string path(name, strnlen(name, name_max));
		if (m.len == 0 || m.addr + m.len < m.addr) {
			malformed_++;
			return;
		}
		Mapping map;
		map.start = m.addr;
		map.end = m.addr + m.len;
		map.pgoff = m.pgoff;
		map.maj = m.maj;
		map.min = m.min;
		map.ino = m.ino;
		map.prot = m.prot;
		map.flags = m.flags;
		map.path = std::move(path);
		add(std::move(map));
		return;
	}
	case PERF_RECORD_COMM: {
		uint32_t comm_pid = 0;
		if (body_len >= sizeof(comm_pid))
			std::memcpy(&comm_pid, body, sizeof(comm_pid));
		if ((hdr.misc & PERF_RECORD_MISC_COMM_EXEC) && comm_pid == pid_) {
			maps_.clear(); // a new program
		}
		return;
	}
	case PERF_RECORD_LOST: {
		uint64_t id_lost[2];
		if (body_len >= sizeof(id_lost)) {
			std::memcpy(id_lost, body, sizeof(id_lost));
			lost_ += id_lost[1];
		} else {
			lost_++;
		}
		return;
	}
	default:
		return; // nothing else is asked for
	}
}

void MmapTracker::add(Mapping m)
{
	// Anonymous memory says nothing about code.
	if (m.path.empty() || m.path == "//anon" || (m.path[0] != '/' && m.path != "[vdso]"))
		m.path.clear();
	// What the new mapping covers is gone: trim or split the old ones.
	auto it = maps_.upper_bound(m.start);
	if (it != maps_.begin())
		--it;
	while (it != maps_.end() && it->second.start < m.end) {
		Mapping old = it->second;
		if (old.end <= m.start) {
			++it;
			continue;
		}
		it = maps_.erase(it);
		if (old.start < m.start) {
			Mapping left = old;
			left.end = m.start;
			maps_.emplace(left.start, left);
		}
		if (old.end > m.end) {
			Mapping right = old;
			right.pgoff += m.end - old.start;
			right.start = m.end;
			maps_.emplace(right.start, right);
		}
	}
	if (!m.path.empty())
		maps_.emplace(m.start, std::move(m));
}

std::string MmapTracker::maps_text() const
{
	std::string out;
	char buf[128];
	for (const auto &[start, m] : maps_) {
		std::snprintf(buf, sizeof(buf), "%" PRIx64 "-%" PRIx64 " %c%c%c%c %08" PRIx64
						" %02x:%02x %" PRIu64 " ",
			      m.start, m.end, m.prot & PROT_READ ? 'r' : '-',
			      m.prot & PROT_WRITE ? 'w' : '-', m.prot & PROT_EXEC ? 'x' : '-',
			      m.flags & MAP_SHARED ? 's' : 'p', m.pgoff, m.maj, m.min, m.ino);
		out += buf;
		// As /proc/PID/maps writes it: a newline in a name would end the line.
		for (char c : m.path)
			out += c == '\n' ? std::string("\\012") : std::string(1, c);
		out += '\n';
	}
	return out;
}

} // namespace fh
