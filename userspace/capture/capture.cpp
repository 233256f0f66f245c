#include "capture/capture.h"
#include "util/clock.h"

#include "util/error.h"
#include "process/proc.h"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <linux/perf_event.h>
#include <linux/types.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <sstream>

extern "C" {
#include "fh/python.h"
#include "fh/records.h"
}
#include "fh.skel.h"

namespace fh {

namespace {

bool g_verbose = false;
std::string g_libbpf_log; // the last messages, for error reports

int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	char *buf = nullptr;
	int n = vasprintf(&buf, fmt, ap);
	if (n < 0)
		return n;
	if (g_verbose && level != LIBBPF_DEBUG)
		std::fputs(buf, stderr);
	if (level != LIBBPF_DEBUG) {
		// Keep the tail: a verifier log ends with the reason.
		g_libbpf_log += buf;
		if (g_libbpf_log.size() > 16384)
			g_libbpf_log.erase(0, g_libbpf_log.size() - 16384);
	}
	std::free(buf);
	return n;
}

constexpr const char *kVmlinuxBtf = "/sys/kernel/btf/vmlinux";
constexpr int kCapPerfmon = 38;
constexpr int kCapBpf = 39;
constexpr int kCapSysAdmin = 21;

uint64_t effective_caps()
{
	auto status = read_proc_file("/proc/self/status");
	if (!status)
		return 0;
	std::istringstream lines(*status);
	std::string line;
	while (std::getline(lines, line))
		if (line.rfind("CapEff:", 0) == 0)
			return std::strtoull(line.c_str() + 7, nullptr, 16);
	return 0;
}

} // namespace

void init_libbpf(bool verbose)
{
	g_verbose = verbose;
	libbpf_set_print(libbpf_print);
}

void probe_kernel(const std::string &btf_path)
{
	if (access(btf_path.c_str(), R_OK) != 0)
		throw Error("this kernel exposes no BTF (" + btf_path +
				    " is missing): fh-bpf needs a kernel built with "
				    "CONFIG_DEBUG_INFO_BTF=y",
			    ENOENT, kExitNoSupport);
	struct btf *btf = btf__parse(btf_path.c_str(), nullptr);
	if (!btf)
		throw Error("cannot read the kernel's BTF from " + btf_path + ": " +
				    std::string(std::strerror(errno)),
			    errno, kExitNoSupport);
	struct Need {
		const char *name;
		__u32 kind;
		const char *what;
	};
	const Need needs[] = {
		{"btf_trace_signal_generate", BTF_KIND_TYPEDEF, "the signal_generate tracepoint"},
		{"btf_trace_signal_deliver", BTF_KIND_TYPEDEF, "the signal_deliver tracepoint"},
		{"btf_trace_sys_exit", BTF_KIND_TYPEDEF, "the sys_exit tracepoint"},
		{"btf_trace_sched_process_exec", BTF_KIND_TYPEDEF,
		 "the sched_process_exec tracepoint"},
		{"bpf_iter_task_new", BTF_KIND_FUNC,
		 "the bpf_iter_task kfuncs (Linux 6.7 or later)"},
	};
	std::string missing;
	for (const auto &n : needs)
		if (btf__find_by_name_kind(btf, n.name, n.kind) < 0)
			missing += std::string(missing.empty() ? "" : ", ") + n.what;
	btf__free(btf);
	if (!missing.empty())
		throw Error("this kernel lacks what fh-bpf needs: " + missing, ENOTSUP,
			    kExitNoSupport);
}

void probe_support()
{
	uint64_t caps = effective_caps();
	bool can_bpf = (caps >> kCapSysAdmin & 1) ||
		       ((caps >> kCapBpf & 1) && (caps >> kCapPerfmon & 1));
	if (!can_bpf)
		throw Error("insufficient privileges: loading the BPF programs needs root, or the "
			    "capabilities CAP_BPF and CAP_PERFMON (try: sudo fh-bpf ...)",
			    EPERM, kExitNoSupport);
	// The tracepoints and kfuncs are looked up (probe_kernel) only when
	// loading fails: parsing the kernel's BTF costs ~50 ms, and loading
	// parses it again anyway.
	if (access(kVmlinuxBtf, R_OK) != 0)
		probe_kernel(kVmlinuxBtf);
}

namespace {

// Why loading failed, in the kernel's terms when the probe finds a reason.
[[noreturn]] void explain_failure(const std::string &what, int e)
{
	probe_kernel(kVmlinuxBtf); // throws when something is missing
	if (e == EPERM || e == EACCES)
		throw Error(what + ": " + std::strerror(e) +
				    " (needs root, or CAP_BPF and CAP_PERFMON; a security "
				    "policy may also forbid BPF)\n" + g_libbpf_log,
			    e, kExitNoSupport);
	throw Error(what + ": " + std::strerror(e) + "\n" + g_libbpf_log, e);
}

} // namespace

Capture::Capture(const CaptureConfig &cfg)
{
	init_libbpf(cfg.verbose);

	skel_ = fh_bpf::open();
	if (!skel_)
		throw sys_error("opening the BPF object", errno);
	skel_->rodata->target_tgid = static_cast<__u32>(cfg.tgid);
	skel_->rodata->stack_size = cfg.stack_size;
	skel_->rodata->max_threads = cfg.max_threads;
	skel_->rodata->sig_mask = cfg.sig_mask;
	skel_->rodata->capture_handled = cfg.capture_handled ? 1 : 0;
	skel_->rodata->user_signal = cfg.user_signal;
	skel_->rodata->agent_tgid = static_cast<__u32>(getpid());
	uint32_t scope = 0;
	if (!cfg.tgid) {
		scope |= cfg.scope.comms.empty() ? 0 : FH_SCOPE_COMM;
		scope |= cfg.scope.exclude_comms.empty() ? 0 : FH_SCOPE_EXCLUDE_COMM;
		scope |= cfg.scope.uids.empty() ? 0 : FH_SCOPE_UID;
		scope |= cfg.scope.cgroup_ids.empty() ? 0 : FH_SCOPE_CGROUP;
	}
	skel_->rodata->scope_flags = scope;
	tgid_ = cfg.tgid;
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
		if (err) {
			fh_bpf::destroy(skel_);
			throw sys_error("sharing the BPF maps with the running capture", -err);
		}
	}
	err = bpf_map__set_max_entries(skel_->maps.records,
					   static_cast<__u32>(ring_size_for(cfg.stack_size,
									    cfg.ring_threads)));
	if (!err)
		err = bpf_map__set_max_entries(skel_->maps.sample_wanted,
					       std::max<uint32_t>(cfg.max_threads, 1));
	if (err) {
		fh_bpf::destroy(skel_);
		throw sys_error("sizing the BPF maps", -err);
	}
	// Only what this session uses is loaded: each program costs
	// verification time.  The iterator and the sampler are attached here,
	// bound to the target, not by the skeleton.
	struct bpf_program *signal_progs[] = {
		skel_->progs.on_signal_generate, skel_->progs.on_signal_deliver,
		skel_->progs.on_sys_exit, skel_->progs.on_exec, skel_->progs.prefault_ring};
	for (auto *p : signal_progs)
		bpf_program__set_autoload(p, cfg.signals);
	// System-wide, mappings come from perf records: a sys_exit program
	// would slow every system call of the host.  A fork inherits its
	// parent's interpreter.
	// The same for the delivery of every signal: the processes it is
	// there for are captured when they exit instead.
	if (!cfg.tgid) {
		bpf_program__set_autoload(skel_->progs.on_sys_exit, false);
		bpf_program__set_autoload(skel_->progs.on_signal_deliver, false);
	}
	bpf_program__set_autoload(skel_->progs.on_fork, cfg.signals && !cfg.tgid);
	bpf_program__set_autoload(skel_->progs.on_process_exit, cfg.signals && !cfg.tgid);
	skel_->rodata->exit_capture = cfg.tgid ? 0 : 1;
	skel_->rodata->py_walk = !cfg.tgid || cfg.py_offsets ? 1 : 0;
	bpf_program__set_autoload(skel_->progs.live_dump, cfg.live);
	bpf_program__set_autoload(skel_->progs.live_sample, cfg.live);
	bpf_program__set_autoattach(skel_->progs.live_dump, false);

	g_libbpf_log.clear();
	err = fh_bpf::load(skel_);
	if (err) {
		fh_bpf::destroy(skel_);
		explain_failure("loading the BPF programs failed", -err);
	}
	try {
		fill_tables(cfg);
	} catch (...) {
		fh_bpf::destroy(skel_);
		throw;
	}
	ring_ = ring_buffer__new(bpf_map__fd(skel_->maps.records), on_record, this, nullptr);
	if (!ring_) {
		int e = errno;
		fh_bpf::destroy(skel_);
		throw sys_error("opening the ring buffer", e);
	}
	if (!cfg.predecessor)
		activate(); // the first: active as soon as attached
	if (cfg.live) {
		union bpf_iter_link_info linfo = {};
		linfo.task.pid = static_cast<__u32>(cfg.tgid);
		LIBBPF_OPTS(bpf_iter_attach_opts, opts);
		opts.link_info = &linfo;
		opts.link_info_len = sizeof(linfo);
		iter_link_ = bpf_program__attach_iter(skel_->progs.live_dump, &opts);
		if (!iter_link_) {
			int e = errno;
			release();
			explain_failure("attaching the task iterator failed", e);
		}
		open_samplers();
	}
	if (!cfg.signals)
		return;
	// Before attaching: no record can arrive while the ring fills with
	// prefault chunks.
	prefault_ring();
	err = fh_bpf::attach(skel_);
	if (err) {
		release();
		explain_failure("attaching the BPF programs failed", -err);
	}
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
		ring_buffer__consume(ring_);
		if (skel_->bss->prefaulted == before)
			return;
	}
}

Capture::~Capture() { release(); }

void Capture::release() noexcept
{
	for (auto *l : sampler_links_)
		bpf_link__destroy(l);
	sampler_links_.clear();
	bpf_link__destroy(iter_link_);
	iter_link_ = nullptr;
	ring_buffer__free(ring_);
	ring_ = nullptr;
	fh_bpf::destroy(skel_);
	skel_ = nullptr;
}

int Capture::fd() const { return ring_buffer__epoll_fd(ring_); }

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
	int n = ring_buffer__consume(ring_);
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
	const auto &c = skel_->bss->counters;
	Counters out;
	out.events = c.events;
	out.events_lost = c.events_lost;
	out.ends_lost = c.ends_lost;
	out.threads_lost = c.threads_lost;
	out.maps_lost = c.maps_lost;
	out.senders_lost = c.senders_lost;
	out.py_lost = c.py_lost;
	out.cmdlines_lost = c.cmdlines_lost;
	out.out_of_scope = c.out_of_scope;
	out.repeats = c.repeats;
	out.samples = c.samples;
	out.retaken = c.retaken;
	out.live_lost = c.live_lost;
	out.unassembled = unassembled_;
	return out;
}

Counters &Counters::operator+=(const Counters &o)
{
	events += o.events;
	events_lost += o.events_lost;
	ends_lost += o.ends_lost;
	threads_lost += o.threads_lost;
	maps_lost += o.maps_lost;
	senders_lost += o.senders_lost;
	py_lost += o.py_lost;
	cmdlines_lost += o.cmdlines_lost;
	out_of_scope += o.out_of_scope;
	repeats += o.repeats;
	samples += o.samples;
	retaken += o.retaken;
	live_lost += o.live_lost;
	unassembled += o.unassembled;
	return *this;
}

namespace {

template <typename T> T load(const T &v) { return __atomic_load_n(&v, __ATOMIC_ACQUIRE); }
template <typename T, typename U> void store(T &v, U x)
{
	__atomic_store_n(&v, static_cast<T>(x), __ATOMIC_RELEASE);
}

} // namespace

// One cpu-clock event per CPU, disabled until a live dump wants samples.
void Capture::open_samplers()
{
	int ncpus = libbpf_num_possible_cpus();
	int last_err = 0;
	for (int cpu = 0; cpu < ncpus; cpu++) {
		struct perf_event_attr attr = {};
		attr.size = sizeof(attr);
		attr.type = PERF_TYPE_SOFTWARE;
		attr.config = PERF_COUNT_SW_CPU_CLOCK;
		attr.sample_period = kSamplePeriodNs;
		attr.disabled = 1;
		int fd = static_cast<int>(
			syscall(SYS_perf_event_open, &attr, -1, cpu, -1, PERF_FLAG_FD_CLOEXEC));
		if (fd < 0) {
			if (errno != ENODEV) // an offline CPU runs nothing
				last_err = errno;
			continue;
		}
		struct bpf_link *link = bpf_program__attach_perf_event(skel_->progs.live_sample, fd);
		if (!link) {
			last_err = errno;
			close(fd);
			continue;
		}
		// Attaching enables the event: off until wanted.
		ioctl(fd, PERF_EVENT_IOC_DISABLE, 0);
		sampler_links_.push_back(link);
		sampler_fds_.push_back(fd);
	}
	if (sampler_fds_.empty())
		sampling_problem_ = std::string("cannot sample running threads (perf_event_open "
						"cpu-clock: ") +
				    std::strerror(last_err ? last_err : ENODEV) +
				    "): their frames in live dumps may be stale";
}

// One pass of the iterator over the target's threads.  A full ring makes
// the program ask to be run again for the same thread (read() fails with
// EAGAIN): the records are consumed and the pass goes on.
void Capture::run_iterator(Assembler &assembler, Assembler::Output &out)
{
	UniqueFd it(bpf_iter_create(bpf_link__fd(iter_link_)));
	if (!it)
		throw sys_error("starting the task iterator", errno);
	char buf[64];
	for (int stalls = 0;;) {
		ssize_t n = read(it.get(), buf, sizeof(buf));
		if (n == 0)
			return;
		if (n > 0)
			continue; // the program writes nothing; tolerate it
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN)
			throw sys_error("reading the task iterator", errno);
		int got = consume(assembler, out);
		// Nothing to make room with, time after time: the ring is too
		// small for one record.  Drop (counted) rather than spin.
		if (got > 0)
			stalls = 0;
		else if (++stalls >= 3)
			store(skel_->bss->live_no_wait, 1u);
	}
}

LiveDumpStats Capture::live_dump(uint32_t trigger, Assembler &assembler, Assembler::Output &out)
{
	if (!iter_link_)
		throw Error("live dumps were not set up for this capture", EINVAL);
	LiveDumpStats st;
	auto *bss = skel_->bss;
	uint64_t t0 = monotonic_ns();
	store(bss->live_mode, 0u); // LIVE_FULL
	store(bss->live_trigger, trigger);
	store(bss->live_no_wait, 0u);
	store(bss->live_failed, 0u);
	store(bss->live_event_id, uint64_t{0});
	store(bss->samples_pending, int64_t{0});
	bss->live_tally = {};
	run_iterator(assembler, out);
	uint64_t t1 = monotonic_ns();
	st.iterate_ns = t1 - t0;
	st.event_id = load(bss->live_event_id);
	if (!st.event_id) {
		consume(assembler, out);
		return st;
	}
	st.samples_wanted = bss->live_tally.wanted;

	consume(assembler, out);
	if (load(bss->samples_pending) > 0) {
		for (int fd : sampler_fds_)
			ioctl(fd, PERF_EVENT_IOC_ENABLE, 0);
		uint64_t deadline = t1 + kSampleWindowNs;
		struct pollfd p = {ring_buffer__epoll_fd(ring_), POLLIN, 0};
		while (load(bss->samples_pending) > 0 && monotonic_ns() < deadline) {
			poll(&p, 1, 1);
			consume(assembler, out);
			if (load(bss->samples_pending) <= 0)
				break;
			// Threads that stopped running meanwhile are copied again.
			store(bss->live_mode, 1u); // LIVE_RETAKE
			run_iterator(assembler, out);
		}
		for (int fd : sampler_fds_)
			ioctl(fd, PERF_EVENT_IOC_DISABLE, 0);
		store(bss->live_mode, 0u);
		// Threads neither sampled nor retaken keep their stale copy.
		int map = bpf_map__fd(skel_->maps.sample_wanted);
		__u32 key, next;
		for (int i = 0; i < 1 << 17 && bpf_map_get_next_key(map, nullptr, &next) == 0; i++) {
			key = next;
			bpf_map_delete_elem(map, &key);
		}
		int64_t left = load(bss->samples_pending);
		st.samples_missing = left > 0 ? static_cast<uint32_t>(left) : 0;
		store(bss->samples_pending, int64_t{0});
	}
	consume(assembler, out);
	st.sample_ns = monotonic_ns() - t1;

	Assembler::LiveEnd end;
	end.threads_skipped = bss->live_tally.skipped;
	end.threads_lost = bss->live_tally.lost;
	end.ktime_end = load(bss->live_ktime_end);
	assembler.finish_live(st.event_id, end, out);
	return st;
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
