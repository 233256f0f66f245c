#include "host_tracker.h"

#include "elf_file.h"
#include "error.h"

#include <bpf/libbpf.h>
#include <dirent.h>
#include <fcntl.h>
#include <linux/perf_event.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <optional>

namespace fh {

namespace {

constexpr size_t kPage = 4096;
constexpr uint64_t kPageMask = ~uint64_t{kPage - 1};

// The fixed part of PERF_RECORD_MMAP2 after its header (no build id).
struct Mmap2Body {
	uint32_t pid, tid;
	uint64_t addr, len, pgoff;
	uint32_t maj, min;
	uint64_t ino, ino_generation;
	uint32_t prot, flags;
};

// PERF_RECORD_FORK and PERF_RECORD_EXIT.
struct TaskBody {
	uint32_t pid, ppid, tid, ptid;
	uint64_t time;
};

uint64_t page_up(uint64_t v) { return (v + kPage - 1) & kPageMask; }

uint32_t prot_of(const std::string &perms)
{
	uint32_t p = 0;
	if (perms.size() >= 3) {
		p |= perms[0] == 'r' ? PROT_READ : 0;
		p |= perms[1] == 'w' ? PROT_WRITE : 0;
		p |= perms[2] == 'x' ? PROT_EXEC : 0;
	}
	return p;
}

std::string maps_line(uint64_t start, uint64_t end, uint32_t prot, uint64_t pgoff, uint32_t maj,
		      uint32_t min, uint64_t ino, const std::string &path)
{
	char buf[128];
	std::snprintf(buf, sizeof(buf), "%" PRIx64 "-%" PRIx64 " %c%c%cp %08" PRIx64 " %02x:%02x %" PRIu64 " ",
		      start, end, prot & PROT_READ ? 'r' : '-', prot & PROT_WRITE ? 'w' : '-',
		      prot & PROT_EXEC ? 'x' : '-', pgoff, maj, min, ino);
	std::string out = buf;
	// As /proc/PID/maps writes it: a newline in a name would end the line.
	for (char c : path)
		out += c == '\n' ? std::string("\\012") : std::string(1, c);
	return out + "\n";
}

} // namespace

HostTracker::HostTracker(size_t pages_per_cpu) : HostTracker(Offline{})
{
	int ncpus = libbpf_num_possible_cpus();
	if (ncpus <= 0)
		throw Error("cannot count the CPUs", -ncpus);
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
		attr.use_clockid = 1;
		attr.clockid = CLOCK_MONOTONIC; // the BPF programs' bpf_ktime_get_ns()
		attr.mmap = 1;			// executable mappings only
		attr.mmap2 = 1;
		attr.comm = 1;
		attr.comm_exec = 1;
		attr.task = 1; // fork and exit
		attr.watermark = 1;
		attr.wakeup_watermark = 1;
		int fd = static_cast<int>(
			syscall(SYS_perf_event_open, &attr, -1, cpu, -1, PERF_FLAG_FD_CLOEXEC));
		if (fd < 0) {
			if (errno == ENODEV) // an offline CPU runs nothing
				continue;
			int e = errno;
			release();
			throw sys_error("perf_event_open (following every process's mappings)", e);
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

HostTracker::HostTracker(Offline)
{
	struct stat st;
	if (stat("/", &st) == 0) {
		our_root_dev_ = st.st_dev;
		our_root_ino_ = st.st_ino;
	}
	if (stat("/proc/self/ns/mnt", &st) == 0)
		our_mnt_ns_ = st.st_ino;
}

HostTracker::~HostTracker() { release(); }

void HostTracker::release() noexcept
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

std::shared_ptr<HostTracker::Root> HostTracker::open_root(pid_t pid)
{
	std::string path = "/proc/" + std::to_string(pid) + "/root";
	int fd = open(path.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return nullptr;
	UniqueFd owned(fd);
	struct stat st;
	if (fstat(fd, &st) != 0)
		return nullptr;
	// The same directory is another tree in another mount namespace.
	struct stat ns;
	std::string ns_path = "/proc/" + std::to_string(pid) + "/ns/mnt";
	if (stat(ns_path.c_str(), &ns) != 0)
		return nullptr;
	RootKey key{static_cast<uint64_t>(ns.st_ino), static_cast<uint64_t>(st.st_dev),
		    static_cast<uint64_t>(st.st_ino)};
	auto &slot = roots_[key];
	if (!slot) {
		slot = std::make_shared<Root>();
		slot->ours = key[0] == our_mnt_ns_ && key[1] == our_root_dev_ && key[2] == our_root_ino_;
		if (!slot->ours)
			slot->fd = std::move(owned);
	}
	return slot;
}

void HostTracker::seed_from_proc()
{
	DIR *d = opendir("/proc");
	if (!d)
		throw sys_error("reading /proc", errno);
	while (struct dirent *e = readdir(d)) {
		char *end;
		long pid = std::strtol(e->d_name, &end, 10);
		if (*end || pid <= 0)
			continue;
		std::string text;
		try {
			text = read_maps(static_cast<pid_t>(pid));
		} catch (const Error &) {
			continue; // gone, or a kernel thread
		}
		if (text.empty())
			continue;
		Process p;
		p.root = open_root(static_cast<pid_t>(pid));
		p.complete = true;
		for (const auto &m : parse_maps(text)) {
			if (m.path.empty() || m.path[0] != '/')
				continue;
			Mapping mm;
			mm.start = m.start;
			mm.end = m.end;
			mm.pgoff = m.offset;
			mm.prot = prot_of(m.perms);
			mm.maj = m.maj;
			mm.min = m.min;
			mm.ino = m.ino;
			mm.path = m.path;
			if (mm.prot & PROT_EXEC)
				changes_.push_back({static_cast<pid_t>(pid), false, mm});
			p.maps.emplace(mm.start, std::move(mm));
		}
		char buf[4096];
		std::string link = "/proc/" + std::to_string(pid) + "/exe";
		ssize_t n = readlink(link.c_str(), buf, sizeof(buf));
		if (n > 0)
			p.exe.assign(buf, static_cast<size_t>(n));
		procs_[static_cast<pid_t>(pid)] = std::move(p);
	}
	closedir(d);
}

void HostTracker::read_buffer(Buffer &b)
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
		note(rec.data(), rec.size());
		queue_.push_back({time, std::move(rec)});
	}
	__atomic_store_n(&meta->data_tail, tail, __ATOMIC_RELEASE);
}

void HostTracker::drain()
{
	size_t before = queue_.size();
	for (auto &b : buffers_)
		read_buffer(b);
	if (queue_.size() != before)
		std::stable_sort(queue_.begin(), queue_.end(),
				 [](const Queued &a, const Queued &b) { return a.time < b.time; });
}

void HostTracker::advance(uint64_t t_ns)
{
	size_t n = 0;
	while (n < queue_.size() && queue_[n].time <= t_ns) {
		apply(queue_[n].bytes.data(), queue_[n].bytes.size());
		n++;
	}
	queue_.erase(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(n));
}

std::vector<HostTracker::Change> HostTracker::take_changes()
{
	std::vector<Change> out;
	out.swap(changes_);
	return out;
}

// At drain, while the process most likely still lives: take its root
// (a new process, or one that exec'd: it may have entered a container),
// and note what may be an interpreter.
void HostTracker::note(const uint8_t *rec, size_t len)
{
	struct perf_event_header hdr;
	if (len < sizeof(hdr))
		return;
	std::memcpy(&hdr, rec, sizeof(hdr));
	const uint8_t *body = rec + sizeof(hdr);
	size_t body_len = len - sizeof(hdr);
	if (hdr.type == PERF_RECORD_COMM && (hdr.misc & PERF_RECORD_MISC_COMM_EXEC)) {
		uint32_t pid = 0;
		if (body_len < sizeof(pid))
			return;
		std::memcpy(&pid, body, sizeof(pid));
		new_roots_[static_cast<pid_t>(pid)] = open_root(static_cast<pid_t>(pid));
		changes_.push_back({static_cast<pid_t>(pid), true, {}});
	} else if (hdr.type == PERF_RECORD_MMAP2 && !(hdr.misc & PERF_RECORD_MISC_MMAP_BUILD_ID) &&
		   body_len >= sizeof(Mmap2Body) + sizeof(uint64_t)) {
		Mmap2Body m;
		std::memcpy(&m, body, sizeof(m));
		pid_t pid = static_cast<pid_t>(m.pid);
		if (!procs_.count(pid) && !new_roots_.count(pid)) {
			if (new_roots_.size() > 65536)
				new_roots_.clear(); // exits lost: bounded all the same
			new_roots_[pid] = open_root(pid);
		}
		const char *name = reinterpret_cast<const char *>(body + sizeof(m));
		size_t name_max = body_len - sizeof(m) - sizeof(uint64_t);
		Change c;
		c.pid = pid;
		c.m.start = m.addr;
		c.m.end = m.addr + m.len;
		c.m.pgoff = m.pgoff;
		c.m.maj = m.maj;
		c.m.min = m.min;
		c.m.ino = m.ino;
		c.m.prot = m.prot;
		c.m.path.assign(name, strnlen(name, name_max));
		if (!c.m.path.empty() && c.m.path[0] == '/')
			changes_.push_back(std::move(c));
	}
}

void HostTracker::apply(const uint8_t *rec, size_t len)
{
	struct perf_event_header hdr;
	if (len < sizeof(hdr)) {
		malformed_++;
		return;
	}
	std::memcpy(&hdr, rec, sizeof(hdr));
	const uint8_t *body = rec + sizeof(hdr);
	size_t body_len = len - sizeof(hdr);
	auto root_for = [&](pid_t pid) {
		auto it = new_roots_.find(pid);
		if (it == new_roots_.end())
			return open_root(pid);
		auto r = it->second;
		new_roots_.erase(it);
		return r;
	};
	switch (hdr.type) {
	case PERF_RECORD_MMAP2: {
		Mmap2Body m;
		if (body_len < sizeof(m) + sizeof(uint64_t) ||
		    (hdr.misc & PERF_RECORD_MISC_MMAP_BUILD_ID)) {
			malformed_++;
			return;
		}
		std::memcpy(&m, body, sizeof(m));
		if (m.len == 0 || m.addr + m.len < m.addr) {
			malformed_++;
			return;
		}
		const char *name = reinterpret_cast<const char *>(body + sizeof(m));
		size_t name_max = body_len - sizeof(m) - sizeof(uint64_t);
		Mapping map;
		map.start = m.addr;
		map.end = m.addr + m.len;
		map.pgoff = m.pgoff;
		map.maj = m.maj;
		map.min = m.min;
		map.ino = m.ino;
		map.prot = m.prot;
		map.path.assign(name, strnlen(name, name_max));
		pid_t pid = static_cast<pid_t>(m.pid);
		auto [it, fresh] = procs_.try_emplace(pid);
		Process &p = it->second;
		if (fresh || !p.root)
			p.root = root_for(pid);
		if (p.exe.empty() && (m.prot & PROT_EXEC) && !map.path.empty() && map.path[0] == '/')
			p.exe = map.path; // the first code mapped after an exec
		add(p, std::move(map));
		return;
	}
	case PERF_RECORD_COMM: {
		uint32_t pid = 0;
		if (body_len >= sizeof(pid))
			std::memcpy(&pid, body, sizeof(pid));
		if (!(hdr.misc & PERF_RECORD_MISC_COMM_EXEC))
			return;
		Process &p = procs_[static_cast<pid_t>(pid)];
		p.maps.clear(); // a new program
		p.complete = false;
		p.exe.clear();
		p.root = root_for(static_cast<pid_t>(pid));
		return;
	}
	case PERF_RECORD_FORK: {
		TaskBody t;
		if (body_len < sizeof(t)) {
			malformed_++;
			return;
		}
		std::memcpy(&t, body, sizeof(t));
		if (t.pid == t.ppid)
			return; // a thread
		auto parent = procs_.find(static_cast<pid_t>(t.ppid));
		if (parent != procs_.end())
			procs_[static_cast<pid_t>(t.pid)] = parent->second;
		return;
	}
	case PERF_RECORD_EXIT: {
		TaskBody t;
		if (body_len < sizeof(t)) {
			malformed_++;
			return;
		}
		std::memcpy(&t, body, sizeof(t));
		if (t.pid == t.tid) { // the process is gone when its leader is
			procs_.erase(static_cast<pid_t>(t.pid));
			new_roots_.erase(static_cast<pid_t>(t.pid));
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

void HostTracker::add(Process &p, Mapping m)
{
	if (m.path == "//anon" || (!m.path.empty() && m.path[0] != '/'))
		m.path.clear();
	// What the new mapping covers is gone: trim or split the old ones.
	auto it = p.maps.upper_bound(m.start);
	if (it != p.maps.begin())
		--it;
	while (it != p.maps.end() && it->second.start < m.end) {
		Mapping old = it->second;
		if (old.end <= m.start) {
			++it;
			continue;
		}
		it = p.maps.erase(it);
		if (old.start < m.start) {
			Mapping left = old;
			left.end = m.start;
			p.maps.emplace(left.start, left);
		}
		if (old.end > m.end) {
			Mapping right = old;
			right.pgoff += m.end - old.start;
			right.start = m.end;
			p.maps.emplace(right.start, right);
		}
	}
	if (!m.path.empty())
		p.maps.emplace(m.start, std::move(m));
}

std::string HostTracker::root_prefix(pid_t pid) const
{
	auto it = procs_.find(pid);
	if (it == procs_.end() || !it->second.root || it->second.root->ours)
		return ""; // unknown root: the host's is the best guess
	return "/proc/self/fd/" + std::to_string(it->second.root->fd.get());
}

std::string HostTracker::host_path(pid_t pid, const std::string &path) const
{
	return root_prefix(pid) + path;
}

std::string HostTracker::exe(pid_t pid) const
{
	auto it = procs_.find(pid);
	return it == procs_.end() ? std::string() : it->second.exe;
}

const HostTracker::Segments &HostTracker::segments(pid_t pid, const Mapping &m)
{
	std::string key = std::to_string(m.maj) + ":" + std::to_string(m.min) + ":" +
			  std::to_string(m.ino) + ":" + m.path;
	auto it = segments_.find(key);
	if (it != segments_.end())
		return it->second;
	Segments s;
	if (auto elf = ElfFile::open(host_path(pid, m.path))) {
		for (const auto &l : elf->loads()) {
			s.loads.emplace_back(l.vaddr & kPageMask, l.offset & kPageMask);
			s.sizes.emplace_back(page_up(l.vaddr + l.filesz) - (l.vaddr & kPageMask),
					     l.flags);
		}
		s.ok = !s.loads.empty();
	}
	if (segments_.size() > 4096)
		segments_.clear(); // bounded; refilled on demand
	return segments_.emplace(key, std::move(s)).first->second;
}

std::string HostTracker::maps_text(pid_t pid)
{
	auto it = procs_.find(pid);
	if (it == procs_.end())
		return {};
	Process &p = it->second;
	std::map<uint64_t, std::string> lines; // by start address
	std::map<std::string, uint64_t> done;  // file -> its load bias
	for (const auto &[start, m] : p.maps) {
		std::string path = host_path(pid, m.path);
		if (p.complete || !(m.prot & PROT_EXEC)) {
			lines[m.start] = maps_line(m.start, m.end, m.prot, m.pgoff, m.maj, m.min, m.ino, path);
			continue;
		}
		const Segments &s = segments(pid, m);
		// The segment this mapping is of: its bias places every other.
		std::optional<uint64_t> bias;
		for (size_t i = 0; s.ok && i < s.loads.size(); i++) {
			auto [vaddr, off] = s.loads[i];
			if (m.pgoff >= off && m.pgoff < off + s.sizes[i].first) {
				bias = m.start - (vaddr + (m.pgoff - off));
				break;
			}
		}
		std::string file = std::to_string(m.ino) + ":" + m.path;
		if (!bias || done.count(file)) {
			if (!bias)
				lines[m.start] = maps_line(m.start, m.end, m.prot, m.pgoff, m.maj, m.min,
							   m.ino, path);
			continue;
		}
		done[file] = *bias;
		for (size_t i = 0; i < s.loads.size(); i++) {
			auto [vaddr, off] = s.loads[i];
			auto [size, flags] = s.sizes[i];
			uint32_t prot = (flags & 4 ? PROT_READ : 0) | (flags & 2 ? PROT_WRITE : 0) |
					(flags & 1 ? PROT_EXEC : 0);
			uint64_t seg_start = *bias + vaddr;
			if (size == 0 || seg_start + size < seg_start)
				continue;
			lines[seg_start] = maps_line(seg_start, seg_start + size, prot, off, m.maj, m.min,
						     m.ino, path);
		}
	}
	std::string out;
	for (auto &[start, line] : lines)
		out += line;
	return out;
}

} // namespace fh
