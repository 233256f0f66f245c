// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * fh-bpf kernel side: capture every thread of the target at a fatal signal.
 *
 * A signal the target raises itself (a fault, abort(), raise()) is captured
 * on signal_generate, in the context of the thread that generated it.  A
 * signal sent by another process is noted on signal_generate (the sender is
 * current there) and captured on signal_deliver, in the receiving thread,
 * before the default action kills the process.
 *
 * Every thread of the process shares current's mm, so bpf_probe_read_user()
 * copies their stacks; bpf_task_pt_regs() gives the user registers each
 * thread saved when it last entered the kernel.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "fh/records.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define PF_EXITING 0x00000004
#define PF_IO_WORKER 0x00000010
#define PF_KTHREAD 0x00200000
#define PROT_EXEC 0x4
#define NR_mmap 9
#define NR_mprotect 10
#define TRACE_SIGNAL_DELIVERED 0
#define TRACE_SIGNAL_ALREADY_PENDING 2
#define STACK_MAX_PAGES (FH_STACK_MAX / FH_PAGE_SIZE)

/* Set by userspace before load. */
const volatile __u32 target_tgid = 0;
const volatile __u64 stack_size = FH_STACK_DEFAULT; /* multiple of FH_PAGE_SIZE */
const volatile __u32 max_threads = 256;
const volatile __u64 sig_mask = 0; /* bit (sig - 1) set: capture sig */

struct fh_counters counters = {};
__u64 next_event_id = 0;

extern int bpf_iter_task_new(struct bpf_iter_task *it, struct task_struct *task,
			     unsigned int flags) __weak __ksym;
extern struct task_struct *bpf_iter_task_next(struct bpf_iter_task *it) __weak __ksym;
extern void bpf_iter_task_destroy(struct bpf_iter_task *it) __weak __ksym;
extern struct task_struct *bpf_task_acquire(struct task_struct *p) __weak __ksym;
extern void bpf_task_release(struct task_struct *p) __weak __ksym;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 * 1024 * 1024); /* resized by userspace */
} records SEC(".maps");

struct sender_key {
	__u32 tgid;
	__s32 sig;
};

struct sender {
	__u32 tgid;
	__u32 tid;
	__u32 uid;
	__u32 reserved;
	char comm[FH_COMM_LEN];
};

/* External senders between signal_generate and signal_deliver. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1024);
	__type(key, struct sender_key);
	__type(value, struct sender);
} pending_senders SEC(".maps");

/* Per-capture tallies, kept out of registers so the thread loop converges. */
struct tally {
	__u32 sent;
	__u32 skipped;
	__u32 lost;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct tally);
} tallies SEC(".maps");

static __always_inline bool watched_signal(int sig)
{
	return sig >= 1 && sig <= 64 && (sig_mask & (1ULL << (sig - 1)));
}

static __always_inline bool watched_tgid(__u32 tgid)
{
	return target_tgid == 0 || tgid == target_tgid;
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

/*
 * Copy the user stack from sp upward.  Where the top of the stack is known,
 * one read copies up to it (a read that runs into the unmapped page above a
 * stack faults, and a fault costs more than the copy).  Otherwise, or if
 * that read fails (a page is not resident), copy page by page and keep
 * everything below the first page that fails.
 */
static __always_inline void copy_stack(struct task_struct *task, struct fh_thread_record *rec)
{
	__u64 addr = rec->regs[FH_REG_RSP];
	__u64 top = known_stack_top(task, addr, rec->fs_base);
	__u64 len = top ? top - addr : 0;
	__u64 off = 0;
	long err = -1;

	if (len > stack_size)
		len = stack_size;
	if (len)
		err = bpf_probe_read_user(rec->stack, len, (void *)addr);
	if (err == 0) {
		rec->stack_len = len;
		rec->stack_err = 0;
		if (len >= stack_size)
			rec->flags |= FH_THREAD_STACK_LIMIT;
		return;
	}
	err = 0;

	for (int i = 0; i <= STACK_MAX_PAGES; i++) {
		__u64 chunk = FH_PAGE_SIZE - (addr & (FH_PAGE_SIZE - 1));

		if (off >= stack_size)
			break;
		if (chunk > stack_size - off)
			chunk = stack_size - off;
		/* Bounds the verifier can see: off <= stack_size, chunk <= a page. */
		if (off > stack_size || chunk > FH_PAGE_SIZE)
			break;
		err = bpf_probe_read_user(&rec->stack[off], chunk, (void *)addr);
		if (err)
			break;
		off += chunk;
		addr += chunk;
	}
	rec->stack_len = off;
	rec->stack_err = err;
	if (err)
		rec->flags |= FH_THREAD_STACK_FAULT;
	else if (off >= stack_size)
		rec->flags |= FH_THREAD_STACK_LIMIT;
}

static __always_inline int capture_thread(struct task_struct *task, __u64 event_id,
					   __u32 hit_tid, struct task_struct *self)
{
	struct fh_thread_record *rec;
	__u32 pf = task->flags;

	rec = bpf_ringbuf_reserve(&records, sizeof(*rec) + stack_size + FH_PAGE_SIZE, 0);
	if (!rec)
		return -1;
	rec->hdr.kind = FH_REC_THREAD;
	rec->hdr.event_id = event_id;
	rec->tid = task->pid;
	rec->flags = 0;
	rec->fs_base = task->thread.fsbase;
	bpf_probe_read_kernel_str(rec->comm, sizeof(rec->comm), task->comm);
	rec->stack_addr = 0;
	rec->stack_len = 0;
	rec->stack_err = 0;
	if (rec->tid == hit_tid)
		rec->flags |= FH_THREAD_HIT;
	if (pf & PF_EXITING)
		rec->flags |= FH_THREAD_EXITING;
	if (task != self && task->on_cpu)
		rec->flags |= FH_THREAD_ON_CPU;

	if (pf & (PF_IO_WORKER | PF_KTHREAD)) {
		rec->flags |= FH_THREAD_KERNEL_WORKER;
		__builtin_memset(rec->regs, 0, sizeof(rec->regs));
	} else {
		read_regs(task, rec->regs);
		rec->stack_addr = rec->regs[FH_REG_RSP];
		copy_stack(task, rec);
	}
	rec->hdr.size = sizeof(*rec) + rec->stack_len;
	bpf_ringbuf_submit(rec, BPF_RB_NO_WAKEUP);
	return 0;
}

static __always_inline struct fh_event_record *begin_event(struct task_struct *leader,
							    __u32 hit_tid, int sig,
							    struct kernel_siginfo *info)
{
	struct fh_event_record *ev;

	__sync_fetch_and_add(&counters.events, 1);
	ev = bpf_ringbuf_reserve(&records, sizeof(*ev), 0);
	if (!ev) {
		__sync_fetch_and_add(&counters.events_lost, 1);
		return NULL;
	}
	__builtin_memset(ev, 0, sizeof(*ev));
	ev->hdr.kind = FH_REC_EVENT;
	ev->hdr.size = sizeof(*ev);
	ev->hdr.event_id = __sync_fetch_and_add(&next_event_id, 1) + 1;
	ev->ktime_ns = bpf_ktime_get_ns();
	ev->tgid = leader->tgid;
	ev->tid = hit_tid;
	ev->sig = sig;
	ev->si_code = BPF_CORE_READ(info, si_code);
	ev->fault_addr = (__u64)BPF_CORE_READ(info, _sifields._sigfault._addr);
	ev->trigger = FH_TRIGGER_FATAL_SIGNAL;
	bpf_probe_read_kernel_str(ev->comm, sizeof(ev->comm), leader->comm);
	return ev;
}

/*
 * Capture every thread of current's process.  The event record is reserved
 * by the caller (which fills in the sender) and submitted here first, so the
 * records of one event arrive in order.
 */
static __always_inline void capture_process(struct fh_event_record *ev, __u32 hit_tid)
{
	struct task_struct *self = bpf_get_current_task_btf();
	struct task_struct *leader;
	struct fh_event_end_record *end;
	struct bpf_iter_task it;
	struct task_struct *task;
	__u64 event_id = ev->hdr.event_id;
	__u32 zero = 0;
	struct tally *t;

	bpf_ringbuf_submit(ev, BPF_RB_NO_WAKEUP);

	t = bpf_map_lookup_elem(&tallies, &zero);
	if (!t)
		return;
	t->sent = 0;
	t->skipped = 0;
	t->lost = 0;

	/* The iterator walks the thread list from the task it is given on:
	 * start from the group leader to see every thread. */
	leader = bpf_task_acquire(self->group_leader);
	if (leader) {
		bpf_iter_task_new(&it, leader, BPF_TASK_ITER_PROC_THREADS);
		while ((task = bpf_iter_task_next(&it))) {
			if (t->sent + t->lost >= max_threads) {
				t->skipped++;
				continue;
			}
			if (capture_thread(task, event_id, hit_tid, self) == 0)
				t->sent++;
			else
				t->lost++;
		}
		bpf_iter_task_destroy(&it);
		bpf_task_release(leader);
	}

	if (t->lost)
		__sync_fetch_and_add(&counters.threads_lost, t->lost);
	end = bpf_ringbuf_reserve(&records, sizeof(*end), 0);
	if (!end) {
		__sync_fetch_and_add(&counters.ends_lost, 1);
		return;
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
}

SEC("tp_btf/signal_generate")
int BPF_PROG(on_signal_generate, int sig, struct kernel_siginfo *info,
	     struct task_struct *task, int group, int result)
{
	struct task_struct *self = bpf_get_current_task_btf();
	struct fh_event_record *ev;

	if (!watched_signal(sig) || !watched_tgid(task->tgid))
		return 0;
	if (result != TRACE_SIGNAL_DELIVERED)
		return 0; /* ignored, or already pending: nothing new will happen */

	if (self->tgid != task->tgid) {
		/* Sent from outside: capture on delivery, in the target. */
		struct sender_key key = { .tgid = task->tgid, .sig = sig };
		struct sender s = {};

		s.tgid = self->tgid;
		s.tid = self->pid;
		s.uid = bpf_get_current_uid_gid() & 0xffffffff;
		bpf_get_current_comm(s.comm, sizeof(s.comm));
		if (bpf_map_update_elem(&pending_senders, &key, &s, BPF_ANY))
			__sync_fetch_and_add(&counters.senders_lost, 1);
		return 0;
	}

	ev = begin_event(self->group_leader, task->pid, sig, info);
	if (!ev)
		return 0;
	capture_process(ev, task->pid);
	return 0;
}

SEC("tp_btf/signal_deliver")
int BPF_PROG(on_signal_deliver, int sig, struct kernel_siginfo *info, struct k_sigaction *ka)
{
	struct task_struct *self = bpf_get_current_task_btf();
	struct sender_key key = { .tgid = self->tgid, .sig = sig };
	struct fh_event_record *ev;
	struct sender *s;

	if (!watched_signal(sig) || !watched_tgid(self->tgid))
		return 0;
	s = bpf_map_lookup_elem(&pending_senders, &key);
	if (!s)
		return 0; /* generated by the process itself: captured already */

	ev = begin_event(self->group_leader, self->pid, sig, info);
	if (!ev) {
		bpf_map_delete_elem(&pending_senders, &key);
		return 0;
	}
	ev->flags |= FH_EVENT_EXTERNAL;
	ev->sender_tgid = s->tgid;
	ev->sender_tid = s->tid;
	ev->sender_uid = s->uid;
	__builtin_memcpy(ev->sender_comm, s->comm, sizeof(ev->sender_comm));
	bpf_map_delete_elem(&pending_senders, &key);
	capture_process(ev, self->pid);
	return 0;
}

static __always_inline void maps_changed(__u32 reason, __u64 addr, __u64 len)
{
	struct task_struct *self = bpf_get_current_task_btf();
	struct fh_maps_record *rec;

	rec = bpf_ringbuf_reserve(&records, sizeof(*rec), 0);
	if (!rec) {
		__sync_fetch_and_add(&counters.maps_lost, 1);
		return;
	}
	rec->hdr.kind = FH_REC_MAPS;
	rec->hdr.size = sizeof(*rec);
	rec->hdr.event_id = 0;
	rec->tgid = self->tgid;
	rec->reason = reason;
	rec->addr = addr;
	rec->len = len;
	bpf_ringbuf_submit(rec, 0);
}

/* New executable code (dlopen, JIT): userspace refreshes its maps snapshot. */
SEC("tp_btf/sys_exit")
int BPF_PROG(on_sys_exit, struct pt_regs *regs, long ret)
{
	long nr;

	if (target_tgid == 0 || (bpf_get_current_pid_tgid() >> 32) != target_tgid)
		return 0;
	nr = regs->orig_ax;
	if (nr != NR_mmap && nr != NR_mprotect)
		return 0;
	if (ret < 0 || !(regs->dx & PROT_EXEC))
		return 0;
	maps_changed(FH_MAPS_EXEC_MAPPING, nr == NR_mmap ? (__u64)ret : regs->di, regs->si);
	return 0;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(on_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	if (!watched_tgid(p->tgid) || target_tgid == 0)
		return 0;
	maps_changed(FH_MAPS_EXEC, 0, 0);
	return 0;
}

#define PREFAULT_CHUNK (64 * 1024)
#define PREFAULT_CHUNKS 32

__u64 prefaulted = 0;

/*
 * Run by userspace at start (BPF_PROG_TEST_RUN): write every page of the
 * ring once, so that the first capture does not pay for first touches of
 * ring memory.  Reserves and discards chunks until the ring is full of
 * discarded records; userspace consumes them and runs it again.
 */
SEC("syscall")
int prefault_ring(void *ctx)
{
	for (int i = 0; i < PREFAULT_CHUNKS; i++) {
		__u8 *p = bpf_ringbuf_reserve(&records, PREFAULT_CHUNK, 0);

		if (!p)
			break;
		for (int j = 0; j < PREFAULT_CHUNK / FH_PAGE_SIZE; j++)
			p[j * FH_PAGE_SIZE] = 0;
		bpf_ringbuf_discard(p, BPF_RB_NO_WAKEUP);
		prefaulted += PREFAULT_CHUNK;
	}
	return 0;
}
