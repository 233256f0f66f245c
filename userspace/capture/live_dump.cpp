#include "capture/capture.h"

#include "process/proc.h"
#include "util/clock.h"
#include "util/error.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/perf_event.h>
#include <linux/types.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

extern "C" {
#include "fh/counters.h"
#include "fh/live.h"
#include "fh/records.h"
}
#include "fh.skel.h"

namespace fh {

namespace {

template <typename T> T load(const T &v) { return __atomic_load_n(&v, __ATOMIC_ACQUIRE); }
template <typename T, typename U> void store(T &v, U x)
{
	__atomic_store_n(&v, static_cast<T>(x), __ATOMIC_RELEASE);
}

} // namespace

// The task iterator bound to one process's threads; null with errno set.
LinkPtr Capture::bind_iterator(pid_t tgid)
{
	union bpf_iter_link_info linfo = {};
	linfo.task.pid = static_cast<__u32>(tgid);
	LIBBPF_OPTS(bpf_iter_attach_opts, opts);
	opts.link_info = &linfo;
	opts.link_info_len = sizeof(linfo);
	return LinkPtr(bpf_program__attach_iter(skel_->progs.live_dump, &opts));
}

// The task iterator, bound to the target, and the samplers.
void Capture::attach_live(const CaptureConfig &cfg)
{
	iter_link_ = bind_iterator(cfg.tgid);
	if (!iter_link_) {
		int e = errno;
		explain_failure("attaching the task iterator failed", e);
	}
	open_samplers();
}

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
		UniqueFd event(static_cast<int>(
			syscall(SYS_perf_event_open, &attr, -1, cpu, -1, PERF_FLAG_FD_CLOEXEC)));
		if (!event) {
			if (errno != ENODEV) // an offline CPU runs nothing
				last_err = errno;
			continue;
		}
		LinkPtr link(bpf_program__attach_perf_event(skel_->progs.live_sample, event.get()));
		if (!link) {
			last_err = errno;
			continue;
		}
		// The link closes the event from now on.  Attaching enabled it:
		// off until wanted.
		int fd = event.release();
		ioctl(fd, PERF_EVENT_IOC_DISABLE, 0);
		sampler_links_.push_back(std::move(link));
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
void Capture::run_iterator(bpf_link *link, Assembler &assembler, Assembler::Output &out)
{
	UniqueFd it(bpf_iter_create(bpf_link__fd(link)));
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
			store(skel_->bss->live_control.no_wait, 1u);
	}
}

LiveDumpStats Capture::live_dump(uint32_t trigger, Assembler &assembler, Assembler::Output &out,
				 pid_t tgid)
{
	if (!iter_link_)
		throw Error("live dumps were not set up for this capture", EINVAL);
	// Another process of a watched tree: the iterator bound to it for
	// this dump.
	LinkPtr other;
	bpf_link *link = iter_link_.get();
	if (tgid && tgid != tgid_) {
		other = bind_iterator(tgid);
		if (!other)
			throw sys_error("pid " + std::to_string(tgid) + ": binding the task iterator",
					errno);
		link = other.get();
	}
	LiveDumpStats st;
	fh_live_control &ctl = skel_->bss->live_control;
	uint64_t t0 = monotonic_ns();
	store(ctl.tgid, static_cast<uint32_t>(tgid ? tgid : tgid_));
	store(ctl.mode, FH_LIVE_FULL);
	store(ctl.trigger, trigger);
	store(ctl.no_wait, 0u);
	store(ctl.failed, 0u);
	store(ctl.event_id, uint64_t{0});
	store(ctl.samples_pending, int64_t{0});
	ctl.tally = {};
	run_iterator(link, assembler, out);
	uint64_t t1 = monotonic_ns();
	st.iterate_ns = t1 - t0;
	st.event_id = load(ctl.event_id);
	if (!st.event_id) {
		consume(assembler, out);
		return st;
	}
	st.samples_wanted = ctl.tally.wanted;

	consume(assembler, out);
	if (load(ctl.samples_pending) > 0) {
		for (int fd : sampler_fds_)
			ioctl(fd, PERF_EVENT_IOC_ENABLE, 0);
		uint64_t deadline = t1 + kSampleWindowNs;
		struct pollfd p = {ring_buffer__epoll_fd(ring_.get()), POLLIN, 0};
		while (load(ctl.samples_pending) > 0 && monotonic_ns() < deadline) {
			poll(&p, 1, 1);
			consume(assembler, out);
			if (load(ctl.samples_pending) <= 0)
				break;
			// Threads that stopped running meanwhile are copied again.
			store(ctl.mode, FH_LIVE_RETAKE);
			run_iterator(link, assembler, out);
		}
		for (int fd : sampler_fds_)
			ioctl(fd, PERF_EVENT_IOC_DISABLE, 0);
		store(ctl.mode, FH_LIVE_FULL);
		// Threads neither sampled nor retaken keep their stale copy.
		int map = bpf_map__fd(skel_->maps.sample_wanted);
		__u32 key, next;
		for (int i = 0; i < 1 << 17 && bpf_map_get_next_key(map, nullptr, &next) == 0; i++) {
			key = next;
			bpf_map_delete_elem(map, &key);
		}
		int64_t left = load(ctl.samples_pending);
		st.samples_missing = left > 0 ? static_cast<uint32_t>(left) : 0;
		store(ctl.samples_pending, int64_t{0});
	}
	consume(assembler, out);
	st.sample_ns = monotonic_ns() - t1;

	Assembler::LiveEnd end;
	end.threads_skipped = ctl.tally.skipped;
	end.threads_lost = ctl.tally.lost;
	end.ktime_end = load(ctl.ktime_end);
	assembler.finish_live(st.event_id, end, out);
	return st;
}

} // namespace fh
