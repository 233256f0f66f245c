#include "process/perf_records.h"

#include "util/error.h"

#include <bpf/libbpf.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
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

PerfRecordBuffers::PerfRecordBuffers(perf_event_attr attr, pid_t pid, size_t pages_per_cpu,
				     const std::string &what)
{
	int ncpus = libbpf_num_possible_cpus();
	if (ncpus <= 0)
		throw Error("cannot count the CPUs", -ncpus);
	// A power of two pages of data after the control page.
	size_t pages = 1;
	while (pages < pages_per_cpu)
		pages <<= 1;
	attr.size = sizeof(attr);
	attr.type = PERF_TYPE_SOFTWARE;
	attr.config = PERF_COUNT_SW_DUMMY;
	attr.sample_type = PERF_SAMPLE_TIME; // orders records across CPUs
	attr.sample_id_all = 1;
	if (attr.watermark && !attr.wakeup_watermark)
		attr.wakeup_watermark = static_cast<uint32_t>(pages * kPage / 2);
	for (int cpu = 0; cpu < ncpus; cpu++) {
		int fd = static_cast<int>(
			syscall(SYS_perf_event_open, &attr, pid, cpu, -1, PERF_FLAG_FD_CLOEXEC));
		if (fd < 0) {
			if (errno == ENODEV) // an offline CPU runs nothing
				continue;
			int e = errno;
			release();
			throw sys_error("perf_event_open (" + what + ")", e);
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

PerfRecordBuffers::~PerfRecordBuffers() { release(); }

void PerfRecordBuffers::release() noexcept
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

void PerfRecordBuffers::read_buffer(Buffer &b, std::vector<Record> &out)
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

std::vector<PerfRecordBuffers::Record> PerfRecordBuffers::read()
{
	std::vector<Record> out;
	for (auto &b : buffers_)
		read_buffer(b, out);
	// One buffer per CPU: their records interleave in time.
	std::stable_sort(out.begin(), out.end(),
			 [](const Record &a, const Record &b) { return a.time < b.time; });
	return out;
}

std::optional<Mmap2> parse_mmap2(const uint8_t *rec, size_t len)
{
	struct perf_event_header hdr;
	if (len < sizeof(hdr))
		return std::nullopt;
	std::memcpy(&hdr, rec, sizeof(hdr));
	const uint8_t *body = rec + sizeof(hdr);
	size_t body_len = len - sizeof(hdr);
	// The trailer (sample_id: the time) follows the NUL-padded name.
	if (hdr.type != PERF_RECORD_MMAP2 || (hdr.misc & PERF_RECORD_MISC_MMAP_BUILD_ID) ||
	    body_len < sizeof(Mmap2Body) + sizeof(uint64_t))
		return std::nullopt;
	Mmap2Body b;
	std::memcpy(&b, body, sizeof(b));
	if (b.len == 0 || b.addr + b.len < b.addr)
		return std::nullopt;
	const char *name = reinterpret_cast<const char *>(body + sizeof(b));
	size_t name_max = body_len - sizeof(b) - sizeof(uint64_t);
	Mmap2 out;
	out.pid = b.pid;
	out.m.start = b.addr;
	out.m.end = b.addr + b.len;
	out.m.pgoff = b.pgoff;
	out.m.maj = b.maj;
	out.m.min = b.min;
	out.m.ino = b.ino;
	out.m.prot = b.prot;
	out.m.flags = b.flags;
	out.m.path.assign(name, strnlen(name, name_max));
	return out;
}

std::optional<uint32_t> parse_exec(const uint8_t *rec, size_t len)
{
	struct perf_event_header hdr;
	uint32_t pid;
	if (len < sizeof(hdr) + sizeof(pid))
		return std::nullopt;
	std::memcpy(&hdr, rec, sizeof(hdr));
	if (hdr.type != PERF_RECORD_COMM || !(hdr.misc & PERF_RECORD_MISC_COMM_EXEC))
		return std::nullopt;
	std::memcpy(&pid, rec + sizeof(hdr), sizeof(pid));
	return pid;
}

uint64_t parse_lost(const uint8_t *rec, size_t len)
{
	uint64_t id_lost[2];
	if (len < sizeof(perf_event_header) + sizeof(id_lost))
		return 1;
	std::memcpy(id_lost, rec + sizeof(perf_event_header), sizeof(id_lost));
	return id_lost[1];
}

void insert_mapping(std::map<uint64_t, FileMapping> &maps, FileMapping m)
{
	// Anonymous memory says nothing about code.
	if (m.path.empty() || m.path == "//anon" || (m.path[0] != '/' && m.path != "[vdso]"))
		m.path.clear();
	auto it = maps.upper_bound(m.start);
	if (it != maps.begin())
		--it;
	while (it != maps.end() && it->second.start < m.end) {
		FileMapping old = it->second;
		if (old.end <= m.start) {
			++it;
			continue;
		}
		it = maps.erase(it);
		if (old.start < m.start) {
			FileMapping left = old;
			left.end = m.start;
			maps.emplace(left.start, left);
		}
		if (old.end > m.end) {
			FileMapping right = old;
			right.pgoff += m.end - old.start;
			right.start = m.end;
			maps.emplace(right.start, right);
		}
	}
	if (!m.path.empty())
		maps.emplace(m.start, std::move(m));
}

Mapping as_mapping(const FileMapping &m, std::string path)
{
	Mapping out;
	out.start = m.start;
	out.end = m.end;
	out.offset = m.pgoff;
	out.maj = m.maj;
	out.min = m.min;
	out.ino = m.ino;
	out.perms = {m.prot & PROT_READ ? 'r' : '-', m.prot & PROT_WRITE ? 'w' : '-',
		     m.prot & PROT_EXEC ? 'x' : '-', m.flags & MAP_SHARED ? 's' : 'p'};
	out.path = std::move(path);
	return out;
}

FileMapping as_file_mapping(const Mapping &m)
{
	FileMapping out;
	out.start = m.start;
	out.end = m.end;
	out.pgoff = m.offset;
	if (m.perms.size() >= 3) {
		out.prot |= m.perms[0] == 'r' ? PROT_READ : 0;
		out.prot |= m.perms[1] == 'w' ? PROT_WRITE : 0;
		out.prot |= m.perms[2] == 'x' ? PROT_EXEC : 0;
	}
	out.flags = m.perms.size() >= 4 && m.perms[3] == 's' ? MAP_SHARED : MAP_PRIVATE;
	out.maj = m.maj;
	out.min = m.min;
	out.ino = m.ino;
	out.path = m.path;
	return out;
}

} // namespace fh
