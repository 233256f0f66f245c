/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Live dumps (timeout, on demand): every thread of a running process,
 * without stopping it.
 *
 * Userspace reads a task iterator bound to the target (iter.s/task, one
 * run of live_dump per thread).  A thread that is blocked or preempted has
 * its user registers saved at its last kernel entry: they are copied, with
 * its stack, by bpf_copy_from_user_task.  A thread running on a CPU has
 * stale saved registers; its record is flagged FH_THREAD_ON_CPU and the
 * thread is put in sample_wanted.  Userspace then enables a cpu-clock perf
 * event on every CPU: live_sample, in the sampled thread's own context,
 * copies its current registers and stack.  A wanted thread that stops
 * running before it is sampled is copied again by a RETAKE pass of the
 * iterator.  Whichever takes a wanted thread first removes it from the map;
 * the other gives up.
 *
 * Included by fh.bpf.c.
 */

/*
 * How userspace drives the dump (fh/live.h): set before each pass of the
 * iterator (mode, trigger, no_wait, failed), set by the first run of a
 * FULL pass (event_id), and counted by every run.
 */
struct fh_live_control live_control = {};

/* tid -> event id: threads whose live record is stale. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256); /* set to --max-threads by userspace */
	__type(key, __u32);
	__type(value, __u64);
} sample_wanted SEC(".maps");

static __always_inline __u64 context_switches(struct task_struct *task)
{
	return task->nvcsw + task->nivcsw;
}

static __always_inline int live_begin(struct task_struct *task)
{
	struct fh_event_record *ev;

	ev = new_event(task->group_leader, task->tgid, live_control.trigger);
	if (!ev)
		return -1;
	live_control.event_id = ev->hdr.event_id;
	bpf_ringbuf_submit(ev, BPF_RB_NO_WAKEUP);
	return 0;
}

/*
 * Copy one thread; the copy is consistent when the thread did not run
 * meanwhile (not on a CPU before or after, no context switch in between).
 * Returns the flags of the record submitted, or -1 without ring room.
 */
static __always_inline int live_thread(struct task_struct *task, __u64 event_id)
{
	struct fh_thread_record *rec;
	__u64 switches = context_switches(task);
	int running = task->on_cpu;
	__u32 flags;

	rec = bpf_ringbuf_reserve(&records, thread_record_size(), 0);
	if (!rec)
		return -1;
	fill_thread(rec, task, event_id, 0, true);
	if (running || task->on_cpu || context_switches(task) != switches)
		rec->flags |= FH_THREAD_ON_CPU;
	if (rec->flags & FH_THREAD_KERNEL_WORKER)
		rec->flags &= ~FH_THREAD_ON_CPU; /* no user state to sample */
	flags = rec->flags;
	bpf_ringbuf_submit(rec, BPF_RB_NO_WAKEUP);
	return flags;
}

/* RETAKE: a wanted thread that is off its CPU now is copied again. */
static __always_inline int live_retake(struct task_struct *task)
{
	struct fh_thread_record *rec;
	__u32 tid = task->pid;
	__u64 *want, event_id, switches;

	want = bpf_map_lookup_elem(&sample_wanted, &tid);
	if (!want || task->on_cpu)
		return 0;
	event_id = *want;
	switches = context_switches(task);
	rec = bpf_ringbuf_reserve(&records, thread_record_size(), 0);
	if (!rec)
		return 0; /* the next pass tries again */
	fill_thread(rec, task, event_id, FH_THREAD_RETAKEN, true);
	if (task->on_cpu || context_switches(task) != switches ||
	    bpf_map_delete_elem(&sample_wanted, &tid)) {
		bpf_ringbuf_discard(rec, BPF_RB_NO_WAKEUP);
		return 0;
	}
	__sync_fetch_and_add(&live_control.samples_pending, -1);
	__sync_fetch_and_add(&counters.retaken, 1);
	bpf_ringbuf_submit(rec, BPF_RB_FORCE_WAKEUP);
	return 0;
}

/*
 * Returning 1 makes the kernel run the program again for the same thread
 * at the next read(): that is how a full ring waits for userspace.
 */
SEC("iter.s/task")
int live_dump(struct bpf_iter__task *ctx)
{
	struct task_struct *task = ctx->task;
	__u64 event_id;
	__u32 tid;
	int flags;

	if (!task || task->tgid != live_control.tgid)
		return 0;
	if (live_control.mode == FH_LIVE_RETAKE)
		return live_retake(task);

	if (live_control.failed)
		return 0;
	if (!live_control.event_id && live_begin(task)) {
		if (!live_control.no_wait)
			return 1;
		__sync_fetch_and_add(&counters.events_lost, 1);
		live_control.failed = 1; /* once: the dump is lost */
		return 0;
	}
	event_id = live_control.event_id;
	if (!event_id)
		return 0;
	if (live_control.tally.sent + live_control.tally.lost >= max_threads) {
		live_control.tally.skipped++;
		return 0;
	}
	flags = live_thread(task, event_id);
	live_control.ktime_end = bpf_ktime_get_ns();
	if (flags < 0) {
		if (!live_control.no_wait)
			return 1;
		live_control.tally.lost++;
		__sync_fetch_and_add(&counters.live_lost, 1);
		return 0;
	}
	live_control.tally.sent++;
	if (flags & FH_THREAD_ON_CPU) {
		tid = task->pid;
		if (bpf_map_update_elem(&sample_wanted, &tid, &event_id, BPF_ANY) == 0) {
			live_control.tally.wanted++;
			__sync_fetch_and_add(&live_control.samples_pending, 1);
		}
	}
	return 0;
}

/*
 * A cpu-clock tick on some CPU, enabled only while samples are wanted.  In
 * a wanted thread of the target, current's saved user registers are its
 * registers at this interrupt (or at its kernel entry when it was in a
 * system call): copy them and its stack.
 */
SEC("perf_event")
int live_sample(struct bpf_perf_event_data *ctx)
{
	struct fh_thread_record *rec;
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)id;
	__u64 *want, event_id;

	if (live_control.samples_pending <= 0 || (id >> 32) != live_control.tgid)
		return 0;
	want = bpf_map_lookup_elem(&sample_wanted, &tid);
	if (!want)
		return 0;
	event_id = *want;
	/* No room: a later tick tries again (a thread never sampled keeps
	 * its stale copy, and is reported). */
	rec = bpf_ringbuf_reserve(&records, thread_record_size(), 0);
	if (!rec)
		return 0;
	if (bpf_map_delete_elem(&sample_wanted, &tid)) {
		bpf_ringbuf_discard(rec, BPF_RB_NO_WAKEUP); /* retaken meanwhile */
		return 0;
	}
	fill_thread(rec, bpf_get_current_task_btf(), event_id, FH_THREAD_SAMPLED, false);
	__sync_fetch_and_add(&live_control.samples_pending, -1);
	__sync_fetch_and_add(&counters.samples, 1);
	/* Forced: the reader may not have caught up with the iterator's. */
	bpf_ringbuf_submit(rec, BPF_RB_FORCE_WAKEUP);
	return 0;
}
