#pragma once

#include "process/mappings.h"
#include "process/perf_records.h"
#include "process/proc.h"

#include <sys/types.h>

#include <array>
#include <cstdint>
#include <map>
#include <set>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

namespace fh {

// The code mappings of every process on the host, for --system-wide: what
// /proc showed at start, then what the kernel reports as it happens --
// PERF_RECORD_MMAP2 of each executable mapping, exec (COMM with the exec
// flag), fork and exit -- from a dummy software event on each CPU.  The
// kernel writes each record inside mmap() itself, so a process that starts
// and crashes a few milliseconds later is known in full, though it is gone
// before anyone could read its /proc/PID/maps.
//
// Records are kept in time order and applied up to a given time
// (advance()): a capture is symbolized with the mappings its process had
// when it was taken, even when the process exited and its pid was reused
// since.  Only executable mappings are reported (data mappings would cost
// every malloc'ed arena a record); the rest of each ELF file's segments is
// filled in from its program headers.
//
// Paths are the process's own (its mount namespace): each process keeps
// its root directory open (/proc/PID/root, taken while it lives), and its
// files are opened through it.  The roots held are bounded (a share of the
// descriptor limit, the rest of fh-bpf's work left room): past that, a
// process's files are looked for through its /proc/PID/root while it
// lives, else on the host, and roots_refused() counts it.
class HostTracker {
public:
	// When the reader is woken: at every record (a process that maps its
	// interpreter is placed at once), or once a buffer is a quarter full
	// (the owner reads the records at its own times).
	enum class Wakeup { every_record, quarter_full };
	explicit HostTracker(size_t pages_per_cpu = 256, Wakeup wakeup = Wakeup::every_record);
	// No perf events: records come through apply() only (tests).
	struct Offline {};
	explicit HostTracker(Offline);
	~HostTracker();
	HostTracker(const HostTracker &) = delete;
	HostTracker &operator=(const HostTracker &) = delete;

	// Readable when records wait (each record wakes the reader: a
	// process that maps its interpreter is placed at once).
	const std::vector<int> &fds() const;

	// Every process /proc lists now (call once the events are on).
	void seed_from_proc();

	// A watch of a process tree (-p, launch mode): only the processes
	// seeded here are followed, and every process they fork; the records
	// of the rest of the host are read and dropped.  Call before the first
	// drain(), then seed() each member running at attach.
	void follow_tree() { tree_ = true; }
	// One process as /proc shows it now (false: gone, or no mappings).
	bool seed(pid_t pid);

	// Read the waiting records into the queue (not applied yet), opening
	// the root of each process that appears while it still lives.
	void drain();

	// Apply the queued records stamped up to t (CLOCK_MONOTONIC ns).
	void advance(uint64_t t_ns);
	bool queued() const { return !queue_.empty(); }

	// A mapping or an exec, as drained (before advance()): the moment to
	// look for an interpreter.
	struct Change {
		pid_t pid = 0;
		bool exec = false; // the process exec'd (m is empty)
		FileMapping m;	   // its path in the process's mount namespace
		// m's path made openable from here, through the root the
		// process had when the change was drained (held open by `root`).
		std::string host_path;
		std::shared_ptr<const void> root;
	};
	std::vector<Change> take_changes();

	// The process's mappings, its files' paths made openable from here:
	// each ELF file whose code alone perf reported with all its segments,
	// placed from its program headers; empty when it is unknown.
	MappingSet mappings(pid_t pid);

	// A path of the process's made openable from here ("/proc/self/fd/N/..."
	// when its root is not ours); empty when its root is unknown.
	std::string host_path(pid_t pid, const std::string &path) const;

	// What host_path() puts before the process's paths ("" for ours).
	std::string root_prefix(pid_t pid) const;

	// The executable's path, as the process sees it; empty if unknown.
	std::string exe(pid_t pid) const;

	bool known(pid_t pid) const { return procs_.count(pid) != 0; }
	size_t processes() const { return procs_.size(); }

	// After lost records (a lost exit leaves its process behind): forget
	// processes gone for a whole sweep, at most once a minute.
	void sweep(uint64_t now_ns);

	// Processes whose root was not held open (the descriptor limit, or
	// EMFILE): their files looked for through /proc/PID/root while they
	// live, else on the host.
	uint64_t roots_refused() const { return roots_refused_; }
	// At most this many roots are held now: half the soft RLIMIT_NOFILE,
	// less a reserve.
	static size_t max_roots();

	uint64_t lost() const { return lost_; }
	// Roots of new processes let go unapplied (their exits were lost):
	// those processes' files are looked for on the host.
	uint64_t roots_dropped() const { return lost_roots_; }
	uint64_t malformed() const;

	// Apply one record now (the bytes of a perf record, header included,
	// with a u64 time last).  Public for tests.
	void apply(const uint8_t *rec, size_t len);

private:
	struct Root {
		UniqueFd fd;
		// Its mount namespace, held too: when the namespace's last
		// process exits, its mounts go with it (a container's overlay
		// or tmpfs), and the root alone would show what lies under them.
		UniqueFd mnt_ns;
		bool ours = false; // the same directory as fh-bpf's root
		pid_t pid = 0;	   // not held: this live process's /proc/PID/root
		std::shared_ptr<size_t> held; // the count of roots held, this one in it
		Root() = default;
		Root(const Root &) = delete;
		Root &operator=(const Root &) = delete;
		~Root()
		{
			if (held)
				--*held;
		}
	};
	struct Process {
		// By start, never overlapping; paths in its mount namespace.
		std::map<uint64_t, FileMapping> maps;
		bool complete = false;		  // from /proc: every mapping, not just code
		std::shared_ptr<Root> root;
		std::string exe;
		// Its live threads, from fork and exit records (counted in /proc
		// for the processes seeded): it is gone when the last one exits,
		// not when its leader does (pthread_exit from main).
		uint32_t threads = 1;
	};
	// A PT_LOAD segment, page-aligned: where it sits in the file and in
	// memory (before the load bias), what of it the file backs.
	struct Segment {
		uint64_t vaddr, offset, size;
		uint32_t prot;
	};

	void note(const uint8_t *rec, size_t len); // at drain: roots, changes
	void note_fork(const uint8_t *rec, size_t len);
	std::shared_ptr<Root> open_root(pid_t pid);
	static std::string prefix_of(const std::shared_ptr<Root> &root);
	const std::vector<Segment> &segments(pid_t pid, const FileMapping &m);

	std::unique_ptr<PerfRecordBuffers> buffers_; // none when Offline
	std::vector<PerfRecordBuffers::Record> queue_; // sorted by time
	std::unordered_map<pid_t, Process> procs_;
	std::unordered_map<pid_t, std::shared_ptr<Root>> new_roots_; // opened at drain
	using RootKey = std::array<uint64_t, 3>; // mount namespace, dev, ino
	std::map<RootKey, std::weak_ptr<Root>> roots_; // held by the processes
	std::shared_ptr<size_t> held_roots_ = std::make_shared<size_t>(0); // with a descriptor
	size_t sweep_roots_at_ = 64;
	uint64_t swept_lost_ = 0, last_sweep_ns_ = 0;
	std::set<pid_t> missing_; // gone at the last sweep
	std::map<std::string, std::vector<Segment>> segments_; // by "dev:ino:path"
	std::vector<Change> changes_;
	bool tree_ = false;	 // follow_tree(): members_ only
	std::set<pid_t> members_; // seeded, or forked by a member
	uint64_t our_root_dev_ = 0, our_root_ino_ = 0, our_mnt_ns_ = 0;
	uint64_t lost_ = 0;
	uint64_t lost_roots_ = 0;
	uint64_t roots_refused_ = 0;
	uint64_t malformed_ = 0;
};

} // namespace fh
