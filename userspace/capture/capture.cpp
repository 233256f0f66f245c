#include "capture/capture.h"

#include "capture/abi.h"
#include "capture/core_btf.h"
#include "util/clock.h"
#include "util/error.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/types.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>

extern "C" {
#include "fh/counters.h"
#include "fh/live.h"
#include "fh/python.h"
#include "fh/records.h"
}
#include "fh.skel.h"

namespace fh {

namespace {

// What the programs are told before load: the target, the scope, what to
// capture and how much.
void set_constants(fh_bpf *skel, const CaptureConfig &cfg)
{
	skel->rodata->target_tgid = static_cast<__u32>(cfg.tgid);
	skel->rodata->stack_size = cfg.stack_size;
	skel->rodata->max_threads = cfg.max_threads;
	skel->rodata->sig_mask = cfg.sig_mask;
	skel->rodata->capture_handled = cfg.capture_handled ? 1 : 0;
	skel->rodata->user_signal = cfg.user_signal;
	skel->rodata->user_signal_kills = cfg.user_signal_kills ? 1 : 0;
	skel->rodata->agent_tgid = static_cast<__u32>(getpid());
	uint32_t scope = 0;
	if (!cfg.tgid) {
		scope |= cfg.scope.comms.empty() ? 0 : FH_SCOPE_COMM;
		scope |= cfg.scope.exclude_comms.empty() ? 0 : FH_SCOPE_EXCLUDE_COMM;
		scope |= cfg.scope.uids.empty() ? 0 : FH_SCOPE_UID;
		scope |= cfg.scope.cgroup_ids.empty() ? 0 : FH_SCOPE_CGROUP;
	}
	skel->rodata->scope_flags = scope;
	skel->rodata->exit_capture = cfg.tgid ? 0 : 1;
	// A tree's descendants may run Python (children_python): the walk too.
	skel->rodata->follow_children = cfg.tgid && cfg.follow_children ? 1 : 0;
	skel->rodata->py_walk =
		!cfg.tgid || cfg.py_offsets || (cfg.follow_children && cfg.children_python) ? 1 : 0;
}

// Only what this session uses is loaded: each program costs verification
// time.  The iterator and the sampler are attached by attach_live(), bound
// to the target, not by the skeleton.
void choose_programs(fh_bpf *skel, const CaptureConfig &cfg)
{
	struct bpf_program *signal_progs[] = {
		skel->progs.on_signal_generate, skel->progs.on_signal_deliver,
		skel->progs.on_sys_exit, skel->progs.on_exec, skel->progs.prefault_ring};
	for (auto *p : signal_progs)
		bpf_program__set_autoload(p, cfg.signals);
	// System-wide, mappings come from perf records: a sys_exit program
	// would slow every system call of the host.  A fork inherits its
	// parent's interpreter.
	// The same for the delivery of every signal: the processes it is
	// there for are captured when they exit instead.
	if (!cfg.tgid) {
		bpf_program__set_autoload(skel->progs.on_sys_exit, false);
		bpf_program__set_autoload(skel->progs.on_signal_deliver, false);
	}
	bpf_program__set_autoload(skel->progs.on_fork,
				  cfg.signals && (!cfg.tgid || cfg.follow_children));
	// Every mode: the verdict on a fault the target handled.
	bpf_program__set_autoload(skel->progs.on_process_exit, cfg.signals);
	bpf_program__set_autoload(skel->progs.live_dump, cfg.live);
	bpf_program__set_autoload(skel->progs.live_sample, cfg.live);
	bpf_program__set_autoattach(skel->progs.live_dump, false);
}

// With -v, what the verifier says of each program it loads (log level 4:
// its statistics alone, a few lines): the instructions it walked and the
// time it took, the first place to look when loading gets slow.
class VerifierStats {
public:
	explicit VerifierStats(bpf_object *obj, bool on) : obj_(obj)
	{
		if (!on)
			return;
		struct bpf_program *p;
		size_t n = 0;
		bpf_object__for_each_program(p, obj_)
			n += bpf_program__autoload(p);
		logs_.resize(n); // the buffers stay where libbpf is told they are
		n = 0;
		bpf_object__for_each_program(p, obj_) {
			if (!bpf_program__autoload(p))
				continue;
			bpf_program__set_log_level(p, 4);
			bpf_program__set_log_buf(p, logs_[n].data(), logs_[n].size());
			n++;
		}
	}

	void report() const
	{
		size_t i = 0;
		struct bpf_program *p;
		bpf_object__for_each_program(p, obj_) {
			if (!bpf_program__autoload(p) || i >= logs_.size())
				continue;
			const char *log = logs_[i++].data();
			unsigned long usec = 0, insns = 0;
			const char *t = strstr(log, "verification time ");
			const char *n = strstr(log, "processed ");
			if (t)
				usec = strtoul(t + strlen("verification time "), nullptr, 10);
			if (n)
				insns = strtoul(n + strlen("processed "), nullptr, 10);
			fprintf(stderr, "fh-bpf: verified %s: %lu instructions walked in %.1f ms\n",
				bpf_program__name(p), insns, usec / 1000.0);
		}
	}

private:
	bpf_object *obj_;
	std::vector<std::array<char, 1024>> logs_;
};

} // namespace

// The object opened, sized and told what to capture, then loaded: load's
// error (negative), or 0.  core_btf: the kernel types to relocate against
// ("": the kernel's whole BTF).
int Capture::open_and_load(const CaptureConfig &cfg, const std::string &core_btf)
{
	LIBBPF_OPTS(bpf_object_open_opts, opts);
	if (!core_btf.empty())
		opts.btf_custom_path = core_btf.c_str();
	skel_.reset(fh_bpf::open(&opts));
	if (!skel_)
		throw sys_error("opening the BPF object", errno);
	set_constants(skel_.get(), cfg);
	int err = 0;
	if (const Capture *pred = cfg.predecessor) {
		generation_ = pred->generation_ + 1;
		skel_->rodata->generation = generation_;
		// Event ids stay unique across the two objects' records.
		skel_->bss->next_event_id = pred->skel_->bss->next_event_id + (1ull << 32);
		err = bpf_map__reuse_fd(skel_->maps.control, bpf_map__fd(pred->skel_->maps.control));
		if (!err)
			err = bpf_map__reuse_fd(skel_->maps.pending_senders,
						bpf_map__fd(pred->skel_->maps.pending_senders));
		// A tree's members, and the interpreters its descendants run.
		if (cfg.follow_children) {
			struct bpf_map *shared[][2] = {
				{skel_->maps.tree, pred->skel_->maps.tree},
				{skel_->maps.py_builds, pred->skel_->maps.py_builds},
				{skel_->maps.py_files, pred->skel_->maps.py_files},
				{skel_->maps.py_procs, pred->skel_->maps.py_procs}};
			for (auto &m : shared)
				if (!err)
					err = bpf_map__reuse_fd(m[0], bpf_map__fd(m[1]));
		}
		if (err)
			throw sys_error("sharing the BPF maps with the running capture", -err);
	}
	err = bpf_map__set_max_entries(skel_->maps.records,
				       static_cast<__u32>(ring_size_for(cfg.stack_size,
									cfg.ring_threads)));
	if (!err)
		err = bpf_map__set_max_entries(skel_->maps.sample_wanted,
					       std::max<uint32_t>(cfg.max_threads, 1));
	if (!err && !(cfg.tgid && cfg.follow_children))
		err = bpf_map__set_max_entries(skel_->maps.tree, 1); // not used
	// Live dumps alone (--dump): the signal programs' tables are not
	// used; each one made full size costs its time to make.
	if (!cfg.signals && !cfg.predecessor) {
		struct bpf_map *unused[] = {skel_->maps.first_faults, skel_->maps.pending_senders,
					    skel_->maps.dying,	      skel_->maps.py_procs,
					    skel_->maps.py_files,     skel_->maps.py_builds,
					    skel_->maps.scope_comms,  skel_->maps.scope_uids,
					    skel_->maps.scope_cgroups};
		for (auto *m : unused)
			if (!err)
				err = bpf_map__set_max_entries(m, 1);
	}
	if (err)
		throw sys_error("sizing the BPF maps", -err);
	choose_programs(skel_.get(), cfg);

	clear_libbpf_log();
	VerifierStats stats(skel_->obj, cfg.verbose);
	err = fh_bpf::load(skel_.get());
	if (!err)
		stats.report();
	return err;
}

Capture::Capture(const CaptureConfig &cfg)
{
	init_libbpf(cfg.verbose);
	tgid_ = cfg.tgid;
	verbose_ = cfg.verbose;
	// With the kernel types kept from an earlier run when there are some;
	// a load that fails with them is tried again without.
	size_t size = 0;
	const void *object = fh_bpf::elf_bytes(&size);
	UniqueFd btf_fd;
	CoreBtf *kept = CoreBtf::global();
	std::string btf = kept ? kept->find(object, size, &btf_fd) : std::string();
	int err = open_and_load(cfg, btf);
	if (err && !btf.empty()) {
		kept->forget(object, size);
		btf.clear();
		err = open_and_load(cfg, btf);
	}
	if (err)
		explain_failure("loading the BPF programs failed", -err);
	core_btf_wanted_ = kept && btf.empty();
	fill_tables(cfg);
	ring_.reset(ring_buffer__new(bpf_map__fd(skel_->maps.records), on_record, this, nullptr));
	if (!ring_) {
		int e = errno;
		throw sys_error("opening the ring buffer", e);
	}
	if (!cfg.predecessor)
		activate(); // the first: active as soon as attached
	if (cfg.live)
		attach_live(cfg);
	if (!cfg.signals)
		return;
	// Before attaching: no record can arrive while the ring fills with
	// prefault chunks.
	prefault_ring();
	err = fh_bpf::attach(skel_.get());
	if (err)
		explain_failure("attaching the BPF programs failed", -err);
}

Capture::~Capture()
{
	if (core_btf_maker_.joinable())
		core_btf_maker_.join();
}

// On a thread of its own: bpftool takes tens of ms, and the watch's loop
// must go on reading the ring meanwhile (a command that execs at once
// needs its interpreter placed).
void Capture::keep_core_btf()
{
	CoreBtf *kept = CoreBtf::global();
	if (!core_btf_wanted_ || !kept)
		return;
	core_btf_wanted_ = false;
	core_btf_maker_ = std::thread([kept, verbose = verbose_] {
		size_t size = 0;
		const void *object = fh_bpf::elf_bytes(&size);
		kept->make(object, size, verbose);
	});
}

namespace {

void update(int fd, const void *key, const void *value, const char *what)
{
	if (bpf_map_update_elem(fd, key, value, BPF_ANY) != 0)
		throw sys_error(std::string("filling the BPF map of ") + what, errno);
}

} // namespace

void Capture::fill_tables(const CaptureConfig &cfg)
{
	uint8_t include = FH_SCOPE_INCLUDE, exclude = FH_SCOPE_EXCLUDE;
	int comms = bpf_map__fd(skel_->maps.scope_comms);
	auto comm_key = [](const std::string &name) {
		std::array<char, FH_COMM_LEN> key{};
		std::memcpy(key.data(), name.data(), std::min(name.size(), key.size() - 1));
		return key;
	};
	for (const auto &c : cfg.scope.comms)
		update(comms, comm_key(c).data(), &include, "process names");
	for (const auto &c : cfg.scope.exclude_comms)
		update(comms, comm_key(c).data(), &exclude, "process names");
	for (uint32_t uid : cfg.scope.uids)
		update(bpf_map__fd(skel_->maps.scope_uids), &uid, &include, "uids");
	for (uint64_t id : cfg.scope.cgroup_ids)
		update(bpf_map__fd(skel_->maps.scope_cgroups), &id, &include, "cgroups");
	if (cfg.py_offsets) {
		add_python_build(0, *cfg.py_offsets);
		if (cfg.py_place_ino)
			add_python_file({cfg.py_place_ino, cfg.py_place_size},
					{0, 0, cfg.py_place_runtime_off, cfg.py_place_module_type_off});
		if (cfg.py_runtime)
			set_python_runtime(cfg.py_runtime, cfg.py_module_type);
	}
}

void Capture::add_python_build(uint32_t build, const fh_py_offsets &offsets)
{
	if (build >= FH_PY_MAX_BUILDS)
		throw Error("too many Python builds (at most " + std::to_string(FH_PY_MAX_BUILDS) + ")",
			    ENOSPC);
	update(bpf_map__fd(skel_->maps.py_builds), &build, &offsets, "Python builds");
}

void Capture::add_python_file(const fh_py_file_key &key, const fh_py_file &file)
{
	update(bpf_map__fd(skel_->maps.py_files), &key, &file, "Python files");
}

void Capture::place_python(pid_t tgid, const fh_py_proc &proc)
{
	uint32_t key = static_cast<uint32_t>(tgid);
	update(bpf_map__fd(skel_->maps.py_procs), &key, &proc, "Python processes");
}

std::optional<fh_py_proc> Capture::python_of(pid_t tgid) const
{
	uint32_t key = static_cast<uint32_t>(tgid);
	fh_py_proc proc{};
	if (bpf_map_lookup_elem(bpf_map__fd(skel_->maps.py_procs), &key, &proc) != 0)
		return std::nullopt;
	return proc;
}

void Capture::add_to_tree(pid_t tgid, pid_t parent)
{
	uint32_t key = static_cast<uint32_t>(tgid), value = static_cast<uint32_t>(parent);
	update(bpf_map__fd(skel_->maps.tree), &key, &value, "the watched tree");
}

bool Capture::tree_has_members() const
{
	uint32_t key;
	return bpf_map_get_next_key(bpf_map__fd(skel_->maps.tree), nullptr, &key) == 0;
}

std::vector<pid_t> Capture::tree_members() const
{
	std::vector<pid_t> out;
	int fd = bpf_map__fd(skel_->maps.tree);
	uint32_t key, next;
	const uint32_t *prev = nullptr;
	while (out.size() < FH_TREE_MAX && bpf_map_get_next_key(fd, prev, &next) == 0) {
		out.push_back(static_cast<pid_t>(next));
		key = next;
		prev = &key;
	}
	std::sort(out.begin(), out.end());
	return out;
}

void Capture::prefault_ring()
{
	uint64_t size = bpf_map__max_entries(skel_->maps.records);
	int fd = bpf_program__fd(skel_->progs.prefault_ring);
	// Each run fills the ring with discarded records; consuming them makes
	// room for the next.  Bounded: a few runs more than the ring needs.
	for (int run = 0; run < 1024 && skel_->bss->prefaulted < size + (1u << 16); run++) {
		LIBBPF_OPTS(bpf_test_run_opts, opts);
		uint64_t before = skel_->bss->prefaulted;
		if (bpf_prog_test_run_opts(fd, &opts) != 0)
			return; // an optimisation only
		ring_buffer__consume(ring_.get());
		if (skel_->bss->prefaulted == before)
			return;
	}
}

int Capture::fd() const { return ring_buffer__epoll_fd(ring_.get()); }

int Capture::on_record(void *ctx, void *data, size_t size)
{
	auto *self = static_cast<Capture *>(ctx);
	if (self->assembler_ == nullptr) {
		self->unassembled_++; // only consume() hands records out
		return 0;
	}
	self->assembler_->feed(data, size, *self->out_);
	return 0;
}

int Capture::consume(Assembler &assembler, Assembler::Output &out)
{
	assembler_ = &assembler;
	out_ = &out;
	int n = ring_buffer__consume(ring_.get());
	assembler_ = nullptr;
	out_ = nullptr;
	if (n < 0)
		throw sys_error("reading the ring buffer", -n);
	return n;
}

void Capture::rearm_maps_notify() { skel_->bss->maps_pending = 0; }

// The generation whose programs capture (`control`): this one's, or 0, none's.
void Capture::set_control(uint32_t gen, const char *what)
{
	__u32 zero = 0, value = gen;
	if (bpf_map_update_elem(bpf_map__fd(skel_->maps.control), &zero, &value, BPF_ANY) != 0)
		throw sys_error(what, errno);
}

void Capture::activate() { set_control(generation_, "activating the BPF programs"); }

void Capture::deactivate() { set_control(0, "stopping the BPF programs"); }

void Capture::set_python_runtime(uint64_t runtime, uint64_t module_type)
{
	// One update: a walk sees both or neither.
	place_python(tgid_, {0, 0, runtime, module_type});
}

uint64_t Capture::python_runtime() const
{
	auto p = python_of(tgid_);
	return p ? p->runtime : 0;
}

uint64_t Capture::python_module_type() const
{
	auto p = python_of(tgid_);
	return p ? p->module_type : 0;
}

Counters Capture::counters() const
{
	const fh_counters &c = skel_->bss->counters;
	Counters out;
#define FH_COUNTER_COPY(name, loss, description) out.name = c.name;
	FH_COUNTERS(FH_COUNTER_COPY)
#undef FH_COUNTER_COPY
	out.unassembled = unassembled_;
	return out;
}

Counters &Counters::operator+=(const Counters &o)
{
#define FH_COUNTER_ADD(name, loss, description) name += o.name;
	FH_COUNTERS(FH_COUNTER_ADD)
#undef FH_COUNTER_ADD
	unassembled += o.unassembled;
	return *this;
}

bool Capture::wait_idle(uint64_t timeout_ns) const
{
	uint64_t deadline = monotonic_ns() + timeout_ns;
	while (__atomic_load_n(&skel_->bss->inflight, __ATOMIC_SEQ_CST) > 0) {
		if (monotonic_ns() >= deadline)
			return false;
		struct timespec tick = {0, 50000};
		nanosleep(&tick, nullptr);
	}
	return true;
}

} // namespace fh
