#include "capture.h"

#include "error.h"
#include "proc.h"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <linux/types.h>
#include <unistd.h>

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
	g_verbose = cfg.verbose;
	libbpf_set_print(libbpf_print);

	skel_ = fh_bpf::open();
	if (!skel_)
		throw sys_error("opening the BPF object", errno);
	skel_->rodata->target_tgid = static_cast<__u32>(cfg.tgid);
	skel_->rodata->stack_size = cfg.stack_size;
	skel_->rodata->max_threads = cfg.max_threads;
	skel_->rodata->sig_mask = cfg.sig_mask;
	skel_->rodata->capture_handled = cfg.capture_handled ? 1 : 0;
	skel_->rodata->user_signal = cfg.user_signal;
	if (cfg.py_runtime && cfg.py_offsets) {
		skel_->rodata->py_runtime = cfg.py_runtime;
		std::memcpy(const_cast<fh_py_offsets *>(&skel_->rodata->py), cfg.py_offsets,
			    sizeof(fh_py_offsets));
	}
	int err = bpf_map__set_max_entries(skel_->maps.records,
					   static_cast<__u32>(ring_size_for(cfg.stack_size,
									    cfg.ring_threads)));
	if (err) {
		fh_bpf::destroy(skel_);
		throw sys_error("sizing the ring buffer", -err);
	}

	g_libbpf_log.clear();
	err = fh_bpf::load(skel_);
	if (err) {
		fh_bpf::destroy(skel_);
		explain_failure("loading the BPF programs failed", -err);
	}
	ring_ = ring_buffer__new(bpf_map__fd(skel_->maps.records), on_record, this, nullptr);
	if (!ring_) {
		int e = errno;
		fh_bpf::destroy(skel_);
		throw sys_error("opening the ring buffer", e);
	}
	// Before attaching: no record can arrive while the ring fills with
	// prefault chunks.
	prefault_ring();
	err = fh_bpf::attach(skel_);
	if (err) {
		ring_buffer__free(ring_);
		fh_bpf::destroy(skel_);
		explain_failure("attaching the BPF programs failed", -err);
	}
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

Capture::~Capture()
{
	ring_buffer__free(ring_);
	fh_bpf::destroy(skel_);
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

void Capture::consume(Assembler &assembler, Assembler::Output &out)
{
	assembler_ = &assembler;
	out_ = &out;
	int n = ring_buffer__consume(ring_);
	assembler_ = nullptr;
	out_ = nullptr;
	if (n < 0)
		throw sys_error("reading the ring buffer", -n);
}

void Capture::rearm_maps_notify() { skel_->bss->maps_pending = 0; }

Counters Capture::counters() const
{
	const auto &c = skel_->bss->counters;
	return Counters{c.events,      c.events_lost,  c.ends_lost, c.threads_lost,
			c.maps_lost,   c.senders_lost, c.py_lost,   unassembled_};
}

} // namespace fh

