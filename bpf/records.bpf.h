/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The record writers of a capture: the event record, the target's
 * arguments, one record per thread (saved user registers, stack bytes),
 * the Python walk's records and the end record, in that order on one CPU.
 *
 * Included by fh.bpf.c, after python.bpf.h and sender.bpf.h.
 */

#define STACK_MAX_PAGES (FH_STACK_MAX / FH_PAGE_SIZE)
/*
 * Unreadable pages passed over at the stack pointer: a thread that overflows
 * its stack faults with sp in the guard page below it (or, the main thread,
 * below its stack mapping), one or a few pages under the newest frames.
 */
#define STACK_SKIP_PAGES 16

/* Per-capture tallies, kept out of registers so the thread loop converges. */
struct tally {
	__u32 sent;
	__u32 skipped;
	__u32 lost;
	__u32 reserved;
	__u64 hit_fs_base; /* the pthread_t of the thread hit: its Python TSS */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct tally);
} tallies SEC(".maps");

/*
 * The number of a struct pid (its address) in its innermost namespace: a
 * global function, verified once rather than in each thread's capture.
 */
__noinline __u32 pid_nr_innermost(__u64 addr)
{
	struct pid *pid = (struct pid *)addr;
	unsigned int level = BPF_CORE_READ(pid, level);
	struct upid up = {};

	if (!pid || level > 64 || bpf_probe_read_kernel(&up, sizeof(up), &pid->numbers[level]))
		return 0;
	return up.nr;
}

static __always_inline void read_regs(struct task_struct *task, __u64 *out)
{
	/* A trusted pointer: plain (fault-checked) loads, no helper calls. */
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(task);

	out[0] = regs->ax;
	out[1] = regs->dx;
	out[2] = regs->cx;
	out[3] = regs->bx;
	out[4] = regs->si;
	out[5] = regs->di;
	out[6] = regs->bp;
	out[7] = regs->sp;
	out[8] = regs->r8;
	out[9] = regs->r9;
	out[10] = regs->r10;
	out[11] = regs->r11;
	out[12] = regs->r12;
	out[13] = regs->r13;
	out[14] = regs->r14;
	out[15] = regs->r15;
	out[16] = regs->ip;
}

/*
 * Where the frames of a thread's stack end, when that is known without a
 * lookup: glibc puts a thread's descriptor (fs_base) at the top of its
 * stack mapping, and the main thread's first frame sits just below
 * mm->start_stack.  Everything from sp up to there is mapped.  0: unknown.
 */
static __always_inline __u64 known_stack_top(struct task_struct *task, __u64 sp, __u64 fs_base)
{
	__u64 start_stack;

	if (fs_base > sp && fs_base - sp <= stack_size)
		return fs_base;
	start_stack = BPF_CORE_READ(task, mm, start_stack);
	if (start_stack > sp && start_stack - sp <= stack_size)
		return start_stack;
	return 0;
}

static __always_inline long read_user(void *dst, __u64 len, __u64 addr, struct task_struct *task,
				      bool remote)
{
	/* remote: another process's memory (sleepable programs only). */
	if (remote)
		return bpf_copy_from_user_task(dst, len, (void *)addr, task, 0);
	return bpf_probe_read_user(dst, len, (void *)addr);
}

/*
 * The first readable address at or above sp: sp, or the start of the first
 * readable page above it, passing over up to STACK_SKIP_PAGES pages that
 * cannot be read (a stack overflow's guard page).  sp when none can be.
 * One byte is read a page.  Current's memory only (a signal's capture).
 * Found before the copy, so that the copy is verified for one start; a
 * global function, verified once, not for each state of the thread loop.
 */
__noinline __u64 first_readable(__u64 sp)
{
	__u64 addr = sp;
	long err = -1;
	__u8 probe;

	for (int i = 0; i <= STACK_SKIP_PAGES; i++) {
		err = bpf_probe_read_user(&probe, 1, (void *)addr);
		if (err == 0)
			break;
		addr = (addr | (FH_PAGE_SIZE - 1)) + 1;
	}
	return err ? sp : addr;
}

/*
 * How many bytes from addr, up to len, can be read: a page at a time, by
 * one byte of each (a page is readable whole or not at all), stopping at
 * the first that cannot.  Global functions, verified once, apart from the
 * copy: a loop of page copies there made the verifier walk each of its
 * steps for every state of the capture (a quarter of a million
 * instructions, half a second a signal program).  One for current's
 * memory, one for a thread a live dump reads (which may sleep).
 */
#define READABLE_SPAN(read_byte)                                                   \
	__u64 at = addr, span = 0;                                                 \
	__u8 probe;                                                                \
                                                                                   \
	for (int i = 0; i <= STACK_MAX_PAGES; i++) {                               \
		if (span >= len || (read_byte))                                    \
			break;                                                     \
		at = (at | (FH_PAGE_SIZE - 1)) + 1;                                \
		span = at - addr;                                                  \
	}                                                                          \
	return span < len ? span : len

__noinline __u64 readable_span(__u64 addr, __u64 len)
{
	READABLE_SPAN(bpf_probe_read_user(&probe, 1, (void *)at));
}

__noinline __u64 readable_span_of(struct task_struct *task
				  __attribute__((btf_decl_tag("arg:trusted"))),
				  __u64 addr, __u64 len)
{
	READABLE_SPAN(bpf_copy_from_user_task(&probe, 1, (void *)at, task, 0));
}

/*
 * Copy the user stack from sp upward: one read up to its top when that is
 * known (a read that runs into the unmapped page above a stack faults, and
 * a fault costs more than the copy), else up to stack_size.  When that read
 * fails (a page not resident, the end of an unknown stack's mapping),
 * everything below the first page that cannot be read is copied
 * (readable_span).  When sp itself cannot be read (a stack overflow's guard
 * page), the copy starts at the first readable page above it
 * (first_readable), and stack_addr says where: the newest frames are there.
 */
static __always_inline void copy_stack(struct task_struct *task, struct fh_thread_record *rec,
				       bool remote)
{
	/* A live dump's threads are blocked or sampled in user space: their
	 * sp is readable, and a read of another process costs more. */
	__u64 addr = remote ? rec->regs[FH_REG_RSP] : first_readable(rec->regs[FH_REG_RSP]);
	__u64 top = known_stack_top(task, addr, rec->fs_base);
	__u64 len = top ? top - addr : stack_size;
	long err;

	rec->stack_addr = addr;
	if (len > stack_size)
		len = stack_size;
	err = len ? read_user(rec->stack, len, addr, task, remote) : 0;
	if (err == 0) {
		rec->stack_len = len;
		rec->stack_err = 0;
		if (len >= stack_size)
			rec->flags |= FH_THREAD_STACK_LIMIT;
		return;
	}
	rec->stack_err = err;
	rec->flags |= FH_THREAD_STACK_FAULT;
	len = remote ? readable_span_of(task, addr, len) : readable_span(addr, len);
	/* The bound where the verifier sees it. */
	asm volatile("" : "+r"(len));
	if (len > stack_size || (len && read_user(rec->stack, len, addr, task, remote)))
		len = 0; /* unmapped meanwhile */
	rec->stack_len = len;
}

/*
 * Fill a reserved thread record: identity, saved user registers, stack.
 * remote: the task is another process's (a live dump from the iterator).
 */
static __always_inline void fill_thread(struct fh_thread_record *rec, struct task_struct *task,
					__u64 event_id, __u32 flags, bool remote)
{
	__u32 pf = task->flags;

	rec->hdr.kind = FH_REC_THREAD;
	rec->hdr.event_id = event_id;
	rec->tid = task->pid;
	rec->ns_tid = pid_nr_innermost((__u64)BPF_CORE_READ(task, thread_pid));
	rec->reserved = 0;
	rec->flags = flags;
	rec->fs_base = task->thread.fsbase;
	bpf_probe_read_kernel_str(rec->comm, sizeof(rec->comm), task->comm);
	rec->stack_addr = 0;
	rec->stack_len = 0;
	rec->stack_err = 0;
	if (pf & PF_EXITING)
		rec->flags |= FH_THREAD_EXITING;
	if (pf & (PF_IO_WORKER | PF_KTHREAD)) {
		rec->flags |= FH_THREAD_KERNEL_WORKER;
		__builtin_memset(rec->regs, 0, sizeof(rec->regs));
	} else {
		read_regs(task, rec->regs);
		rec->stack_addr = rec->regs[FH_REG_RSP];
		copy_stack(task, rec, remote);
	}
	rec->hdr.size = sizeof(*rec) + rec->stack_len;
}

static __always_inline __u64 thread_record_size(void)
{
	return sizeof(struct fh_thread_record) + stack_size + FH_PAGE_SIZE;
}

/*
 * One thread of current's process, in a record of its own: a global
 * function, verified once, not again for each state of the thread loop.
 * task: held by the caller (the kernel reads the tag).
 */
__noinline int capture_thread(struct task_struct *task __attribute__((btf_decl_tag("arg:trusted"))),
			      __u64 event_id, __u32 hit_tid)
{
	struct task_struct *self = bpf_get_current_task_btf();
	struct fh_thread_record *rec;
	__u32 flags = 0;

	rec = bpf_ringbuf_reserve(&records, thread_record_size(), 0);
	if (!rec)
		return -1;
	if (task->pid == hit_tid)
		flags |= FH_THREAD_HIT;
	if (task != self && task->on_cpu)
		flags |= FH_THREAD_ON_CPU;
	fill_thread(rec, task, event_id, flags, false);
	bpf_ringbuf_submit(rec, BPF_RB_NO_WAKEUP);
	return 0;
}

/*
 * Reserve an event record with a fresh id, its signal fields zero.  The
 * leader may be unreadable (a process tearing down): its name is then
 * empty.
 */
static __always_inline struct fh_event_record *new_event(struct task_struct *leader, __u32 tgid,
							  __u32 trigger)
{
	struct fh_event_record *ev = bpf_ringbuf_reserve(&records, sizeof(*ev), 0);

	if (!ev)
		return NULL;
	__builtin_memset(ev, 0, sizeof(*ev));
	ev->hdr.kind = FH_REC_EVENT;
	ev->hdr.size = sizeof(*ev);
	ev->hdr.event_id = __sync_fetch_and_add(&next_event_id, 1) + 1;
	ev->ktime_ns = bpf_ktime_get_ns();
	ev->tgid = tgid;
	ev->trigger = trigger;
	bpf_probe_read_kernel_str(ev->comm, sizeof(ev->comm), leader->comm);
	return ev;
}

/* The number of a task's pid in its own (innermost) pid namespace. */
static __always_inline __u32 ns_pid(struct task_struct *task, __u32 *level_out)
{
	struct pid *pid = BPF_CORE_READ(task, thread_pid);
	unsigned int level = BPF_CORE_READ(pid, level);
	struct upid up = {};

	if (level_out)
		*level_out = level;
	if (level > 64 || bpf_probe_read_kernel(&up, sizeof(up), &pid->numbers[level]))
		return 0;
	return up.nr;
}

/* Who the target is, for a record that outlives it. */
static __always_inline void fill_identity(struct fh_event_record *ev, struct task_struct *leader,
					  __u32 hit_tid)
{
	struct task_struct *self = bpf_get_current_task_btf();

	ev->uid = BPF_CORE_READ(leader, real_cred, uid.val);
	ev->ppid = BPF_CORE_READ(leader, real_parent, tgid);
	ev->ns_tgid = ns_pid(leader, &ev->pid_ns_level);
	/* The thread hit is current, or another of its process's. */
	if (hit_tid == self->pid) {
		ev->ns_tid = ns_pid(self, NULL);
	} else {
		struct task_struct *hit = bpf_task_from_pid(hit_tid);

		ev->ns_tid = hit ? ns_pid(hit, NULL) : 0;
		if (hit)
			bpf_task_release(hit);
	}
	ev->cgroup_id = BPF_CORE_READ(task_cgroup(leader), kn, id);
}

/*
 * The arguments, as /proc/PID/cmdline shows them: current is a thread of
 * the target at every capture of a signal, so its memory is readable.
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct fh_cmdline_record);
} cmdline_scratch SEC(".maps");

static __always_inline void send_cmdline(__u64 event_id)
{
	struct task_struct *self = bpf_get_current_task_btf();
	struct fh_cmdline_record *rec;
	__u64 start, end, len;
	__u32 zero = 0;

	rec = bpf_map_lookup_elem(&cmdline_scratch, &zero);
	if (!rec)
		return;
	start = BPF_CORE_READ(self, mm, arg_start);
	end = BPF_CORE_READ(self, mm, arg_end);
	len = end > start ? end - start : 0;
	rec->hdr.kind = FH_REC_CMDLINE;
	rec->hdr.event_id = event_id;
	rec->full_len = len;
	if (len > FH_CMDLINE_MAX)
		len = FH_CMDLINE_MAX;
	if (len && bpf_probe_read_user(rec->data, len, (void *)start))
		len = 0;
	rec->len = len;
	rec->hdr.size = sizeof(*rec) - sizeof(rec->data) + len;
	if (bpf_ringbuf_output(&records, rec, sizeof(*rec) - sizeof(rec->data) + len,
			       BPF_RB_NO_WAKEUP))
		__sync_fetch_and_add(&counters.cmdlines_lost, 1);
}

/*
 * Capture every thread of current's process, after its event record: one
 * global function, verified once for all its callers.
 */
__noinline int capture_threads(__u64 event_id, __u32 hit_tid, __u32 fatal)
{
	struct task_struct *self = bpf_get_current_task_btf();
	struct task_struct *leader;
	struct fh_event_end_record *end;
	struct bpf_iter_task it;
	struct task_struct *task;
	__u32 zero = 0;
	struct tally *t;

	t = bpf_map_lookup_elem(&tallies, &zero);
	if (!t)
		return 0;
	t->sent = 0;
	t->skipped = 0;
	t->lost = 0;
	t->hit_fs_base = 0;

	/* The iterator walks the thread list from the task it is given on:
	 * start from the group leader to see every thread. */
	leader = bpf_task_acquire(self->group_leader);
	if (leader) {
		bpf_iter_task_new(&it, leader, BPF_TASK_ITER_PROC_THREADS);
		while ((task = bpf_iter_task_next(&it))) {
			if (task->pid == hit_tid)
				t->hit_fs_base = task->thread.fsbase;
			if (t->sent + t->lost >= max_threads) {
				t->skipped++;
				continue;
			}
			/* A reference: what a global function may be given. */
			task = bpf_task_acquire(task);
			if (task && capture_thread(task, event_id, hit_tid) == 0)
				t->sent++;
			else
				t->lost++;
			if (task)
				bpf_task_release(task);
		}
		bpf_iter_task_destroy(&it);
		bpf_task_release(leader);
	}

	if (t->lost)
		__sync_fetch_and_add(&counters.threads_lost, t->lost);
	capture_python(event_id, fatal, t->hit_fs_base);
	end = bpf_ringbuf_reserve(&records, sizeof(*end), 0);
	if (!end) {
		__sync_fetch_and_add(&counters.ends_lost, 1);
		return 0;
	}
	end->hdr.kind = FH_REC_EVENT_END;
	end->hdr.size = sizeof(*end);
	end->hdr.event_id = event_id;
	end->nr_threads = t->sent;
	end->threads_skipped = t->skipped;
	end->threads_lost = t->lost;
	end->reserved = 0;
	end->ktime_ns = bpf_ktime_get_ns();
	bpf_ringbuf_submit(end, BPF_RB_FORCE_WAKEUP);
	return 0;
}

/*
 * The event record is reserved by the caller (which fills in the sender)
 * and submitted here first, so the records of one event arrive in order.
 */
static __always_inline void capture_process(struct fh_event_record *ev, __u32 hit_tid)
{
	__u64 event_id = ev->hdr.event_id;
	__u32 fatal = ev->trigger == FH_TRIGGER_FATAL_SIGNAL;

	bpf_ringbuf_submit(ev, BPF_RB_NO_WAKEUP);
	send_cmdline(event_id);
	capture_threads(event_id, hit_tid, fatal);
}

/*
 * An event of current's process, for a signal: its record (hit_tid, sig,
 * si_code, flags, the fault address, stamped ktime or now, the sender s
 * names, if any), the arguments and every thread.  One global function,
 * verified once for every path of a program that captures a signal,
 * instead of once for each inlined copy: that is most of the programs'
 * load time.
 */
__noinline __u64 emit_event(__u64 tid_sig, __u64 code_flags, __u64 fault_addr, __u64 ktime,
			    struct sender *s)
{
	struct task_struct *leader = bpf_get_current_task_btf()->group_leader;
	__u32 hit_tid = (__u32)tid_sig;
	int sig = (int)(tid_sig >> 32);
	struct fh_event_record *ev;
	__u64 ev_id;

	ev = new_event(leader, leader->tgid,
		       sig == user_signal ? FH_TRIGGER_USER_SIGNAL : FH_TRIGGER_FATAL_SIGNAL);
	if (!ev) {
		__sync_fetch_and_add(&counters.events_lost, 1);
		return 0;
	}
	ev_id = ev->hdr.event_id;
	ev->tid = hit_tid;
	ev->sig = sig;
	fill_identity(ev, leader, hit_tid);
	ev->si_code = (__u32)code_flags;
	ev->flags |= (__u32)(code_flags >> 32);
	ev->fault_addr = fault_addr;
	if (ktime)
		ev->ktime_ns = ktime;
	if (s)
		set_sender(ev, s);
	capture_process(ev, hit_tid);
	return ev_id;
}

static __always_inline __u64 tid_sig(__u32 tid, int sig)
{
	return tid | (__u64)(__u32)sig << 32;
}

static __always_inline __u64 code_flags(__u32 si_code, __u32 flags)
{
	return si_code | (__u64)flags << 32;
}
