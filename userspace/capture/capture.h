#pragma once

#include "capture/bpf_owners.h"
#include "capture/probe.h"
#include "capture/records.h"

#include <linux/types.h>
#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

extern "C" {
#include "fh/counters.h"
}

struct fh_bpf;
struct fh_py_offsets;
struct fh_py_file_key;
struct fh_py_file;
struct fh_py_proc;

namespace fh {

// --system-wide's filters: each one given must match (a cgroup's
// descendants match it); an excluded name never does.
struct Scope {
	std::vector<std::string> comms;	 // the group leader's name
	std::vector<std::string> exclude_comms;
	std::vector<uint32_t> uids;	 // real uid
	std::vector<uint64_t> cgroup_ids; // cgroup v2 ids (directory inodes)
};

struct CaptureConfig {
	pid_t tgid = 0; // 0: every process in scope
	// tgid's descendants too: each one running at attach (add_to_tree())
	// and each one forked from then on.
	bool follow_children = false;
	bool children_python = false; // and they may run Python: the CPython walk loaded
	Scope scope;	// tgid 0 only
	uint64_t stack_size = 0; // bytes per thread, a multiple of the page size
	uint32_t max_threads = 0;
	uint32_t ring_threads = 0; // threads whose records the ring holds at once
	uint64_t sig_mask = 0; // bit (sig - 1): capture sig
	bool capture_handled = false; // also signals the target handles
	int user_signal = 0;	      // dump on it; 0: none
	bool user_signal_kills = false; // also when its default action kills the target
	// Python: its offsets make the programs walk the interpreter; where it
	// sits may be set later (set_python_runtime) when it is not mapped yet.
	const struct fh_py_offsets *py_offsets = nullptr; // nullptr: not Python
	uint64_t py_runtime = 0;      // the runtime's address; 0: not known yet
	uint64_t py_module_type = 0;  // PyModule_Type's address; 0: unknown
	// The kernel places the runtime itself when the target maps this file
	// (ino 0: it does not).
	uint64_t py_place_ino = 0;
	uint64_t py_place_size = 0;
	uint64_t py_place_runtime_off = 0;
	uint64_t py_place_module_type_off = 0;
	bool signals = true; // capture signals (and follow mappings); false: live dumps only
	// The capture this one takes over from (same target, after an exec):
	// they share the maps that must outlive either; this one stays idle
	// until activate().
	const class Capture *predecessor = nullptr;
	bool live = false;   // live dumps: the task iterator and the samplers
	bool verbose = false;  // libbpf's messages on stderr
};

// What the programs counted (fh/counters.h, field for field), and the
// records this side could not hand to an Assembler.
struct Counters {
#define FH_COUNTER_MEMBER(name, loss, description) uint64_t name = 0;
	FH_COUNTERS(FH_COUNTER_MEMBER)
#undef FH_COUNTER_MEMBER
	uint64_t unassembled = 0; // records that arrived outside consume()

	Counters &operator+=(const Counters &o);
};

// Calls f(name, count, description) for each loss the programs count, zero
// or not, in the order of fh/counters.h: the description is the loss as
// the closing "lost: ..." line says it, after its count.
template <typename F> void each_capture_loss(const Counters &c, F &&f)
{
#define FH_COUNTER_LOSS(name, loss, description)	\
	if constexpr (loss)				\
		f(#name, c.name, description);
	FH_COUNTERS(FH_COUNTER_LOSS)
#undef FH_COUNTER_LOSS
}

// How one live dump went.
struct LiveDumpStats {
	uint64_t event_id = 0;	   // 0: the process had no thread left
	uint32_t samples_wanted = 0; // threads that were running when copied
	uint32_t samples_missing = 0; // of those, never replaced: stale frames
	uint64_t iterate_ns = 0;   // the iterator pass
	uint64_t sample_ns = 0;	   // waiting for samples and retakes
};

// The loaded and attached BPF programs and their ring buffer.
class Capture {
public:
	explicit Capture(const CaptureConfig &cfg);
	~Capture();
	Capture(const Capture &) = delete;
	Capture &operator=(const Capture &) = delete;

	// File descriptor that becomes readable when records are waiting.
	int fd() const;

	// Hand every waiting record to the assembler; returns how many.
	int consume(Assembler &assembler, Assembler::Output &out);

	Counters counters() const;

	// Ask for a FH_REC_MAPS record at the next executable mapping: call
	// before reading the maps again.
	void rearm_maps_notify();

	// Where the interpreter sits (a Python capture), as userspace placed
	// it: from now on the programs walk it.  (The kernel forgets it at an
	// exec, and places it itself where it was told how.)
	void set_python_runtime(uint64_t runtime, uint64_t module_type);

	// Take over from the predecessor: from this store on, its programs
	// capture nothing and this one's capture everything.
	void activate();

	// Stop: from this store on, no program of this capture starts one
	// (then wait_idle(), and its ring holds all it will ever write).
	void deactivate();

	// After a successor's activate(), or deactivate(): wait (at most timeout_ns) until no
	// program of this capture is still running; false on timeout.  Its
	// ring then holds all it will ever write.
	bool wait_idle(uint64_t timeout_ns) const;

	// Where the programs walk the interpreter (0: not placed yet), as
	// userspace or the kernel placed it.
	uint64_t python_runtime() const;
	uint64_t python_module_type() const;

	// The programs' tables of interpreters (--system-wide fills them as
	// it meets builds and processes; -p through the config).
	void add_python_build(uint32_t build, const fh_py_offsets &offsets);
	void add_python_file(const fh_py_file_key &key, const fh_py_file &file);
	void place_python(pid_t tgid, const fh_py_proc &proc);
	std::optional<fh_py_proc> python_of(pid_t tgid) const;

	// A watch of a tree: a descendant running at attach joins it (the
	// kernel adds those forked from then on); whether any process but
	// the root is left in it.
	void add_to_tree(pid_t tgid, pid_t parent);
	bool tree_has_members() const;
	// Its descendants now, by pid.
	std::vector<pid_t> tree_members() const;

	// Capture every thread of the running target now (cfg.live), without
	// stopping it: the event (trigger FH_TRIGGER_TIMEOUT, _DEMAND, or
	// _USER_SIGNAL for a refused one) is completed into out, with any other
	// records that arrive meanwhile.
	// tgid: another process of the watched tree (0: the target).
	LiveDumpStats live_dump(uint32_t trigger, Assembler &assembler, Assembler::Output &out,
				pid_t tgid = 0);

	// Why running threads cannot be sampled (their frames may then be
	// stale); empty when they can.
	const std::string &sampling_problem() const { return sampling_problem_; }

	// How long a live dump waits for running threads to be sampled.
	static constexpr uint64_t kSampleWindowNs = 20'000'000;
	// The samplers' period.
	static constexpr uint64_t kSamplePeriodNs = 100'000;

	// Keep, for the next runs, the kernel types the programs need, when
	// they were loaded without them (capture/core_btf.h): tens of ms on a
	// thread of its own, once per kernel and fh-bpf, finished before the
	// capture ends; called once armed (or dumped).
	void keep_core_btf();

private:
	int open_and_load(const CaptureConfig &cfg, const std::string &core_btf);
	void set_control(uint32_t gen, const char *what);
	static int on_record(void *ctx, void *data, size_t size);
	void prefault_ring();
	void fill_tables(const CaptureConfig &cfg);
	void attach_live(const CaptureConfig &cfg);
	void open_samplers();
	LinkPtr bind_iterator(pid_t tgid);
	void run_iterator(bpf_link *link, Assembler &assembler, Assembler::Output &out);

	// Made in this order, destroyed in reverse: the links, the ring, then
	// the programs and maps.
	SkeletonPtr<fh_bpf> skel_;
	pid_t tgid_ = 0;
	RingBufferPtr ring_;
	Assembler *assembler_ = nullptr;
	Assembler::Output *out_ = nullptr;
	uint64_t unassembled_ = 0;
	uint32_t generation_ = 1;
	LinkPtr iter_link_;
	std::vector<LinkPtr> sampler_links_;
	std::vector<int> sampler_fds_; // owned by their links
	std::string sampling_problem_;
	bool verbose_ = false;
	bool core_btf_wanted_ = false;
	std::thread core_btf_maker_;
};

} // namespace fh
