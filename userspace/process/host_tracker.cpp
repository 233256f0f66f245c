#include "process/host_tracker.h"

#include "process/elf_file.h"
#include "util/error.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <optional>
#include <set>

namespace fh {

namespace {

constexpr uint64_t kPageMask = ~uint64_t{4095};

// PERF_RECORD_FORK and PERF_RECORD_EXIT.
struct TaskBody {
	uint32_t pid, ppid, tid, ptid;
	uint64_t time;
};

uint64_t page_up(uint64_t v) { return (v + 4095) & kPageMask; }

perf_event_attr host_attr()
{
	perf_event_attr a = {};
	a.use_clockid = 1;
	a.clockid = CLOCK_MONOTONIC; // the BPF programs' bpf_ktime_get_ns()
	a.mmap = 1;		     // executable mappings only
	a.mmap2 = 1;
	a.comm = 1;
	a.comm_exec = 1;
	a.task = 1; // fork and exit
	a.watermark = 1;
	a.wakeup_watermark = 1; // every record wakes the reader
	return a;
}

// The threads /proc lists for a process (1 if it cannot be read).
uint32_t proc_threads(pid_t pid)
{
	std::string path = "/proc/" + std::to_string(pid) + "/task";
	DIR *d = opendir(path.c_str());
	if (!d)
		return 1;
	uint32_t n = 0;
	while (struct dirent *e = readdir(d))
		n += e->d_name[0] != '.';
	closedir(d);
	return n ? n : 1;
}

} // namespace

HostTracker::HostTracker(size_t pages_per_cpu, Wakeup wakeup) : HostTracker(Offline{})
{
	perf_event_attr a = host_attr();
	if (wakeup == Wakeup::quarter_full)
		a.wakeup_watermark = static_cast<uint32_t>(pages_per_cpu * 4096 / 4);
	buffers_ = std::make_unique<PerfRecordBuffers>(a, -1, pages_per_cpu,
						       "following every process's mappings");
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

HostTracker::~HostTracker() = default;

const std::vector<int> &HostTracker::fds() const
{
	static const std::vector<int> none;
	return buffers_ ? buffers_->fds() : none;
}

uint64_t HostTracker::malformed() const
{
	return malformed_ + (buffers_ ? buffers_->malformed() : 0);
}

size_t HostTracker::max_roots()
{
	// The descriptors roots may take: half, the other half and a reserve
	// for the rest (programs, maps, perf buffers, the files read, the
	// output).
	constexpr rlim_t kReserve = 64;
	struct rlimit lim;
	if (getrlimit(RLIMIT_NOFILE, &lim) != 0 || lim.rlim_cur == RLIM_INFINITY)
		return 0;
	rlim_t half = lim.rlim_cur / 2;
	return half > kReserve ? static_cast<size_t>(half - kReserve) : 0;
}

std::shared_ptr<HostTracker::Root> HostTracker::open_root(pid_t pid)
{
	// Which root it is (a directory in a mount namespace), without a
	// descriptor yet: a known one is shared, ours needs none.
	std::string dir = "/proc/" + std::to_string(pid);
	struct stat st, ns;
	if (stat((dir + "/root").c_str(), &st) != 0 || stat((dir + "/ns/mnt").c_str(), &ns) != 0)
		return nullptr;
	RootKey key{static_cast<uint64_t>(ns.st_ino), static_cast<uint64_t>(st.st_dev),
		    static_cast<uint64_t>(st.st_ino)};
	auto &slot = roots_[key];
	if (auto held = slot.lock())
		return held;
	auto root = std::make_shared<Root>();
	root->ours = key[0] == our_mnt_ns_ && key[1] == our_root_dev_ && key[2] == our_root_ino_;
	if (!root->ours) {
		// Two descriptors a root: the directory and its namespace.
		bool room = 2 * *held_roots_ < max_roots();
		int fd = room ? open((dir + "/root").c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC) : -1;
		if (fd < 0 && room && errno != EMFILE && errno != ENFILE)
			return nullptr; // gone
		if (fd < 0) {
			// Not held: the process's own /proc/PID/root while it
			// lives, and nothing shared with others.
			roots_refused_++;
			root->pid = pid;
			return root;
		}
		root->fd = UniqueFd(fd);
		root->held = held_roots_;
		++*held_roots_;
		int ns_fd = open((dir + "/ns/mnt").c_str(), O_RDONLY | O_CLOEXEC);
		struct stat ns_st;
		if (ns_fd >= 0 && fstat(ns_fd, &ns_st) == 0 &&
		    static_cast<uint64_t>(ns_st.st_ino) == key[0])
			root->mnt_ns = UniqueFd(ns_fd);
		else if (ns_fd >= 0)
			close(ns_fd); // it entered another one meanwhile
		struct stat fd_st;
		if (fstat(fd, &fd_st) != 0 || static_cast<uint64_t>(fd_st.st_dev) != key[1] ||
		    static_cast<uint64_t>(fd_st.st_ino) != key[2])
			return root; // it changed root meanwhile: its own, shared with none
	}
	slot = root;
	// Roots no process holds any more (containers gone) close: their
	// entries go when the table has doubled since the last look.
	if (roots_.size() >= sweep_roots_at_) {
		for (auto it = roots_.begin(); it != roots_.end();)
			it = it->second.expired() ? roots_.erase(it) : std::next(it);
		sweep_roots_at_ = std::max<size_t>(64, 2 * roots_.size());
	}
	return root;
}

std::string HostTracker::prefix_of(const std::shared_ptr<Root> &root)
{
	if (!root || root->ours)
		return ""; // unknown root: the host's is the best guess
	if (root->pid) {
		// Not held: through the process while it lives, else the host.
		std::string dir = "/proc/" + std::to_string(root->pid) + "/root";
		return access(dir.c_str(), F_OK) == 0 ? dir : "";
	}
	return "/proc/self/fd/" + std::to_string(root->fd.get());
}

void HostTracker::sweep(uint64_t now_ns)
{
	if (lost_ == swept_lost_ && missing_.empty())
		return;
	if (last_sweep_ns_ && now_ns - last_sweep_ns_ < 60000000000ull)
		return;
	last_sweep_ns_ = now_ns;
	swept_lost_ = lost_;
	std::set<pid_t> missing;
	for (auto it = procs_.begin(); it != procs_.end();) {
		std::string dir = "/proc/" + std::to_string(it->first);
		struct stat st;
		if (stat(dir.c_str(), &st) == 0 || errno != ENOENT) {
			++it;
		} else if (missing_.count(it->first)) {
			it = procs_.erase(it); // gone a minute: its exit was lost
		} else {
			missing.insert(it->first); // its capture may still be on its way
			++it;
		}
	}
	missing_ = std::move(missing);
}

void HostTracker::seed_from_proc()
{
	DIR *d = opendir("/proc");
	if (!d)
		throw sys_error("reading /proc", errno);
	while (struct dirent *e = readdir(d)) {
		char *end;
		long pid = std::strtol(e->d_name, &end, 10);
		if (!*end && pid > 0)
			seed(static_cast<pid_t>(pid));
	}
	closedir(d);
}

bool HostTracker::seed(pid_t pid)
{
	if (tree_)
		members_.insert(pid); // its forks are followed even if its maps are not read
	MappingSet maps;
	try {
		maps = read_maps(pid);
	} catch (const Error &) {
		return false; // gone, or a kernel thread
	}
	if (maps.empty())
		return false;
	Process p;
	p.root = open_root(pid);
	p.complete = true;
	p.threads = proc_threads(pid);
	for (const auto &m : maps) {
		if (!m.maps_file())
			continue;
		FileMapping mm = as_file_mapping(m);
		// Placed as one seen mapping it: through its root.
		if (mm.prot & PROT_EXEC)
			changes_.push_back({pid, false, mm, prefix_of(p.root) + mm.path, p.root});
		p.maps.emplace(mm.start, std::move(mm));
	}
	char buf[4096];
	std::string link = "/proc/" + std::to_string(pid) + "/exe";
	ssize_t n = readlink(link.c_str(), buf, sizeof(buf));
	if (n > 0)
		p.exe.assign(buf, static_cast<size_t>(n));
	procs_[pid] = std::move(p);
	return true;
}


void HostTracker::drain()
{
	if (!buffers_)
		return;
	auto recs = buffers_->read();
	for (const auto &r : recs)
		note(r.bytes.data(), r.bytes.size());
	size_t before = queue_.size();
	std::move(recs.begin(), recs.end(), std::back_inserter(queue_));
	// Both runs are in time order: merge them.
	std::inplace_merge(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(before),
			   queue_.end(), [](const PerfRecordBuffers::Record &a,
					    const PerfRecordBuffers::Record &b) { return a.time < b.time; });
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

// At drain, while the process most likely still lives: take its root
// (a new process, or one that exec'd: it may have entered a container),
// and note what may be an interpreter.
void HostTracker::note(const uint8_t *rec, size_t len)
{
	// A watch of a tree: the records of other processes are dropped.
	auto outside = [&](uint32_t pid) {
		return tree_ && !members_.count(static_cast<pid_t>(pid));
	};
	if (auto pid = parse_exec(rec, len)) {
		if (outside(*pid))
			return;
		new_roots_[static_cast<pid_t>(*pid)] = open_root(static_cast<pid_t>(*pid));
		changes_.push_back({static_cast<pid_t>(*pid), true, {}, {}, {}});
	} else if (auto m = parse_mmap2(rec, len)) {
		if (outside(m->pid))
			return;
		pid_t pid = static_cast<pid_t>(m->pid);
		if (!procs_.count(pid) && !new_roots_.count(pid)) {
			if (new_roots_.size() > 65536) {
				lost_roots_ += new_roots_.size();
				new_roots_.clear(); // exits lost: bounded all the same
			}
			new_roots_[pid] = open_root(pid);
		}
		if (!m->m.path.empty() && m->m.path[0] == '/') {
			// The root it has now: one opened at drain (new, or
			// exec'd and not applied yet), else the one it had.
			std::shared_ptr<Root> root;
			if (auto it = new_roots_.find(pid); it != new_roots_.end())
				root = it->second;
			else if (auto p = procs_.find(pid); p != procs_.end())
				root = p->second.root;
			std::string path = prefix_of(root) + m->m.path;
			changes_.push_back({pid, false, std::move(m->m), std::move(path), root});
		}
	} else if (tree_) {
		note_fork(rec, len);
	}
}

// A watch of a tree, at drain: a fork by a member makes its child one.
void HostTracker::note_fork(const uint8_t *rec, size_t len)
{
	struct perf_event_header hdr;
	TaskBody t;
	if (len < sizeof(hdr) + sizeof(t))
		return;
	std::memcpy(&hdr, rec, sizeof(hdr));
	std::memcpy(&t, rec + sizeof(hdr), sizeof(t));
	if (hdr.type == PERF_RECORD_FORK && t.pid != t.ppid &&
	    members_.count(static_cast<pid_t>(t.ppid)))
		members_.insert(static_cast<pid_t>(t.pid));
}

void HostTracker::apply(const uint8_t *rec, size_t len)
{
	struct perf_event_header hdr;
	if (len < sizeof(hdr)) {
		malformed_++;
		return;
	}
	std::memcpy(&hdr, rec, sizeof(hdr));
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
		auto m = parse_mmap2(rec, len);
		if (!m) {
			malformed_++;
			return;
		}
		pid_t pid = static_cast<pid_t>(m->pid);
		if (tree_ && !members_.count(pid))
			return;
		auto [it, fresh] = procs_.try_emplace(pid);
		Process &p = it->second;
		if (fresh || !p.root)
			p.root = root_for(pid);
		if (p.exe.empty() && (m->m.prot & PROT_EXEC) && !m->m.path.empty() &&
		    m->m.path[0] == '/')
			p.exe = m->m.path; // the first code mapped after an exec
		insert_mapping(p.maps, std::move(m->m));
		return;
	}
	case PERF_RECORD_COMM:
		if (auto pid = parse_exec(rec, len)) {
			if (tree_ && !members_.count(static_cast<pid_t>(*pid)))
				return;
			Process &p = procs_[static_cast<pid_t>(*pid)];
			p.maps.clear(); // a new program
			p.complete = false;
			p.threads = 1; // the others ended at the exec
			p.exe.clear();
			// Gone before its root could be taken: the one it had
			// (from its parent) is the best guess.
			if (auto r = root_for(static_cast<pid_t>(*pid)))
				p.root = std::move(r);
		}
		return;
	case PERF_RECORD_FORK:
	case PERF_RECORD_EXIT: {
		TaskBody t;
		if (len < sizeof(hdr) + sizeof(t)) {
			malformed_++;
			return;
		}
		std::memcpy(&t, rec + sizeof(hdr), sizeof(t));
		auto it = procs_.find(static_cast<pid_t>(t.pid));
		if (hdr.type == PERF_RECORD_FORK && t.pid == t.ppid) { // a thread
			if (it != procs_.end())
				it->second.threads++;
		} else if (hdr.type == PERF_RECORD_FORK) {
			if (tree_ && members_.count(static_cast<pid_t>(t.ppid)))
				members_.insert(static_cast<pid_t>(t.pid)); // as at drain
			auto parent = procs_.find(static_cast<pid_t>(t.ppid));
			if (parent != procs_.end()) {
				Process &child = procs_[static_cast<pid_t>(t.pid)] = parent->second;
				child.threads = 1;
			}
		} else if (it == procs_.end()) {
			if (t.pid == t.tid)
				new_roots_.erase(static_cast<pid_t>(t.pid));
		} else if (--it->second.threads == 0) { // its last thread
			procs_.erase(it);
			members_.erase(static_cast<pid_t>(t.pid));
			new_roots_.erase(static_cast<pid_t>(t.pid));
		}
		return;
	}
	case PERF_RECORD_LOST:
		lost_ += parse_lost(rec, len);
		return;
	default:
		return; // nothing else is asked for
	}
}

std::string HostTracker::root_prefix(pid_t pid) const
{
	auto it = procs_.find(pid);
	return it == procs_.end() ? "" : prefix_of(it->second.root);
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


const std::vector<HostTracker::Segment> &HostTracker::segments(pid_t pid, const FileMapping &m)
{
	std::string key = std::to_string(m.maj) + ":" + std::to_string(m.min) + ":" +
			  std::to_string(m.ino) + ":" + m.path;
	auto it = segments_.find(key);
	if (it != segments_.end())
		return it->second;
	std::vector<Segment> s;
	// Only the file mapped: not one put over its path since (a bind
	// mount of a file the process may not read), nor an upgrade.
	FileIdentity id{makedev(m.maj, m.min), m.ino};
	if (auto elf = ElfFile::open(host_path(pid, m.path), id))
		for (const auto &l : elf->loads()) {
			uint64_t vaddr = l.vaddr & kPageMask;
			uint32_t prot = (l.flags & 4 ? PROT_READ : 0) | (l.flags & 2 ? PROT_WRITE : 0) |
					(l.flags & 1 ? PROT_EXEC : 0);
			s.push_back({vaddr, l.offset & kPageMask, page_up(l.vaddr + l.filesz) - vaddr,
				     prot});
		}
	static const std::vector<Segment> none;
	if (s.empty())
		return none; // not readable (yet, or through this root): not remembered
	if (segments_.size() > 4096)
		segments_.clear(); // bounded; refilled on demand
	return segments_.emplace(key, std::move(s)).first->second;
}

MappingSet HostTracker::mappings(pid_t pid)
{
	auto it = procs_.find(pid);
	if (it == procs_.end())
		return {};
	Process &p = it->second;
	std::map<uint64_t, Mapping> out; // by start address
	std::set<std::string> placed;	 // files whose segments are in
	// From /proc, a file has all its mappings; one mapped since (dlopen)
	// has only its code, as the perf record gave it.
	std::set<std::string> whole;
	if (p.complete)
		for (const auto &[start, m] : p.maps)
			if (!(m.prot & PROT_EXEC))
				whole.insert(std::to_string(m.ino) + ":" + m.path);
	for (const auto &[start, m] : p.maps) {
		std::string path = m.path[0] == '/' ? host_path(pid, m.path) : m.path;
		std::string file = std::to_string(m.ino) + ":" + m.path;
		if (!(m.prot & PROT_EXEC) || whole.count(file)) {
			out[m.start] = as_mapping(m, path);
			continue;
		}
		// The segment this mapping is of: its bias places every other.
		const auto &segs = segments(pid, m);
		const Segment *of = nullptr;
		for (const auto &s : segs)
			if (m.pgoff >= s.offset && m.pgoff < s.offset + s.size)
				of = &s;
		if (!of) {
			out[m.start] = as_mapping(m, path);
			continue;
		}
		if (!placed.insert(file).second)
			continue;
		uint64_t bias = m.start - (of->vaddr + (m.pgoff - of->offset));
		for (const auto &s : segs) {
			FileMapping seg = m;
			seg.start = bias + s.vaddr;
			seg.end = seg.start + s.size;
			seg.pgoff = s.offset;
			seg.prot = s.prot;
			if (s.size && seg.end > seg.start)
				out[seg.start] = as_mapping(seg, path);
		}
	}
	std::vector<Mapping> sorted;
	sorted.reserve(out.size());
	for (auto &[start, m] : out)
		sorted.push_back(std::move(m));
	return MappingSet(std::move(sorted));
}

} // namespace fh
