/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The first fault of a process that handles its fatal signals itself.
 *
 * A crash reporter (Python's faulthandler, a service's SIGSEGV handler)
 * logs, may cancel its other threads, then re-raises the signal or aborts:
 * by then the fault's siginfo is gone, and so may be threads.  Such a fault
 * is captured when it happens, before the handler runs, provisionally; how
 * the process then ends gives the verdict (FH_REC_VERDICT, fh/records.h):
 * its death is that capture's incident, not another capture.
 *
 * One open fault a process.  A process that goes on after its handler
 * (siglongjmp, a runtime that faults on purpose) costs at most
 * FIRST_FAULT_BURST captures, then one each FIRST_FAULT_REFILL_NS; the
 * faults not captured are counted.
 *
 * "Still in the handler" is told by the thread's stack pointer: on the
 * signal stack, when the handler runs there (SA_ONSTACK) and the fault did
 * not; else below the fault's, on the same stack.
 *
 * Included by fh.bpf.c, after records.bpf.h.
 */

#define SA_ONSTACK 0x08000000
#define FIRST_FAULT_BURST 4
#define FIRST_FAULT_REFILL_NS (10ULL * 1000000000ULL)
/* Another thread's handled fault this soon after an open one: threads
 * faulting together in one crash, not a new fault. */
#define FIRST_FAULT_SAME_CRASH_NS 1000000000ULL
/* A handler on the thread's own stack runs below the fault's sp, within this. */
#define HANDLER_DEPTH_MAX (1ULL << 20)
/* event_id while a capture is being taken (claimed by compare-and-swap). */
#define FAULT_TAKING (~0ULL)

struct first_fault {
	__u64 start;	/* the leader's start time: this incarnation of the tgid */
	__u64 event_id; /* the open fault's capture; 0: none open */
	__u64 ktime;	/* when it was taken */
	__u64 sp;	/* the faulting thread's stack pointer at the fault */
	__u64 alt_lo;	/* the signal stack its handler runs on; 0: its own stack */
	__u64 alt_hi;
	__u64 refilled; /* when tokens were last topped up */
	__u32 tid;	/* the faulting thread */
	__u32 tokens;	/* provisional captures left */
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct first_fault);
} first_faults SEC(".maps");

/* The process's entry, for this incarnation of its tgid; NULL if none. */
static __always_inline struct first_fault *first_fault_of(struct task_struct *task)
{
	__u32 tgid = task->tgid;
	struct first_fault *ff = bpf_map_lookup_elem(&first_faults, &tgid);

	/* Every thread exit of a watched process asks: most have none. */
	if (!ff)
		return NULL;
	if (ff->start != BPF_CORE_READ(task, group_leader, start_time)) {
		bpf_map_delete_elem(&first_faults, &tgid);
		return NULL;
	}
	return ff;
}

/* The id of the process's open fault, or 0. */
static __always_inline __u64 open_fault(struct first_fault *ff)
{
	__u64 id = ff ? ff->event_id : 0;

	return id == FAULT_TAKING ? 0 : id;
}

/* True when thread `task` is still running the handler of the open fault. */
static __always_inline bool in_handler(struct task_struct *task, struct first_fault *ff)
{
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(task);
	__u64 sp = regs->sp;

	if (ff->alt_hi)
		return sp >= ff->alt_lo && sp < ff->alt_hi;
	return sp < ff->sp && ff->sp - sp <= HANDLER_DEPTH_MAX;
}

/* The faulting thread of the open fault is still in its handler. */
static __always_inline bool fault_thread_in_handler(struct task_struct *self,
						    struct first_fault *ff)
{
	struct task_struct *t;
	bool in;

	if (ff->tid == self->pid)
		return in_handler(self, ff);
	t = bpf_task_from_pid(ff->tid);
	if (!t)
		return false;
	in = t->tgid == self->tgid && in_handler(t, ff);
	bpf_task_release(t);
	return in;
}

static __always_inline void emit_verdict(__u32 tgid, __u64 id, __u32 verdict, int sig, int code,
					 __u32 status, __u32 sender)
{
	struct fh_verdict_record *v;

	/* --handled reported the fault already: its end settles nothing. */
	if (capture_handled)
		return;
	v = bpf_ringbuf_reserve(&records, sizeof(*v), 0);
	if (!v) {
		__sync_fetch_and_add(&counters.verdicts_lost, 1);
		return;
	}
	v->hdr.kind = FH_REC_VERDICT;
	v->hdr.size = sizeof(*v);
	v->hdr.event_id = id;
	v->tgid = tgid;
	v->verdict = verdict;
	v->sig = sig;
	v->si_code = code;
	v->status = status;
	v->sender_tgid = sender;
	bpf_ringbuf_submit(v, BPF_RB_FORCE_WAKEUP); /* the reader may be behind (left_tree) */
}

/* Close the open fault `id` with a verdict; false if another CPU closed it. */
static __always_inline bool close_fault(struct task_struct *task, struct first_fault *ff, __u64 id,
					__u32 verdict, int sig, int code, __u32 status,
					__u32 sender)
{
	if (__sync_val_compare_and_swap(&ff->event_id, id, 0) != id)
		return false;
	emit_verdict(task->tgid, id, verdict, sig, code, status, sender);
	return true;
}

/*
 * The process is dying of `sig`.  If the thread of a fault it handled is
 * still in its handler, that fault's capture is this death's incident:
 * true, the verdict sent, nothing more to capture.  A fault the process
 * went on from is closed as survived (false: capture this death).
 */
static __always_inline bool died_handling_fault(struct task_struct *self, int sig, int code,
						__u32 sender)
{
	struct first_fault *ff = first_fault_of(self);
	__u64 id = open_fault(ff);

	if (!id)
		return false;
	if (!fault_thread_in_handler(self, ff)) {
		close_fault(self, ff, id, FH_VERDICT_SURVIVED, 0, 0, 0, 0);
		return false;
	}
	/* Another thread's death closing it meanwhile gave the verdict. */
	close_fault(self, ff, id, FH_VERDICT_DIED, sig, code, 0, sender);
	return true;
}

/* The entry of a process's first handled fault, made with a full budget. */
static __always_inline struct first_fault *first_fault_entry(struct task_struct *self, __u64 now)
{
	struct first_fault *ff = first_fault_of(self), fresh = {};
	__u32 tgid = self->tgid;

	if (ff)
		return ff;
	fresh.start = BPF_CORE_READ(self, group_leader, start_time);
	fresh.tokens = FIRST_FAULT_BURST;
	fresh.refilled = now;
	bpf_map_update_elem(&first_faults, &tgid, &fresh, BPF_NOEXIST);
	return bpf_map_lookup_elem(&first_faults, &tgid);
}

/* Take one provisional capture from the process's budget. */
static __always_inline bool spend_token(struct first_fault *ff, __u64 now)
{
	if (now - ff->refilled >= FIRST_FAULT_REFILL_NS) {
		__u64 add = (now - ff->refilled) / FIRST_FAULT_REFILL_NS;

		ff->tokens = ff->tokens + add > FIRST_FAULT_BURST ? FIRST_FAULT_BURST
								  : ff->tokens + add;
		ff->refilled = now;
	}
	if (!ff->tokens)
		return false;
	ff->tokens--;
	return true;
}

/* Where the handler of sig will run, noted with the fault's stack pointer. */
static __always_inline void note_handler_stack(struct task_struct *self, int sig,
					       struct first_fault *ff)
{
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(self);
	__u64 handler = 0, flags = 0, lo = self->sas_ss_sp, size = self->sas_ss_size;

	ff->sp = regs->sp;
	ff->alt_lo = 0;
	ff->alt_hi = 0;
	if (!read_sigaction(self, sig, &handler, &flags) || !(flags & SA_ONSTACK) || !size)
		return;
	if (ff->sp >= lo && ff->sp < lo + size)
		return; /* faulted on the signal stack: the handler nests there */
	ff->alt_lo = lo;
	ff->alt_hi = lo + size;
}

/*
 * A fatal signal the target handles, raised in it (a fault, abort()) or
 * delivered to its handler, in the thread that will run the handler:
 * capture the process as it is now, before the handler runs.  Provisional,
 * unless --handled asked for every handled fault as an incident.
 */
static __always_inline void handled_fault(struct task_struct *self, int sig, __u32 code,
					  __u64 addr, struct sender *s)
{
	__u64 now = bpf_ktime_get_ns(), id, old;
	struct first_fault *ff = first_fault_entry(self, now);

	if (!ff)
		return;
	old = ff->event_id;
	if (old) {
		/* The handler at work (re-raising, chaining, faulting again) or
		 * another thread of the same crash: the first fault stands.
		 * (--handled reports every other thread's.) */
		if (old == FAULT_TAKING ||
		    (ff->tid == self->pid ? in_handler(self, ff)
					  : !capture_handled &&
						    now - ff->ktime < FIRST_FAULT_SAME_CRASH_NS)) {
			__sync_fetch_and_add(&counters.handled_skipped, 1);
			return;
		}
		/* The process went on from the open fault. */
		if (!close_fault(self, ff, old, FH_VERDICT_SURVIVED, 0, 0, 0, 0))
			return;
	}
	if (__sync_val_compare_and_swap(&ff->event_id, 0, FAULT_TAKING) != 0) {
		__sync_fetch_and_add(&counters.handled_skipped, 1);
		return;
	}
	if (!capture_handled && !spend_token(ff, now)) {
		ff->event_id = 0;
		__sync_fetch_and_add(&counters.handled_skipped, 1);
		return;
	}
	ff->tid = self->pid;
	ff->ktime = now;
	note_handler_stack(self, sig, ff);
	id = emit_event(tid_sig(self->pid, sig),
			code_flags(code, capture_handled ? FH_EVENT_HANDLED : FH_EVENT_PROVISIONAL),
			addr, 0, s);
	ff->event_id = id;
	if (id && !capture_handled)
		__sync_fetch_and_add(&counters.handled_faults, 1);
}

/*
 * A thread of a process with an open fault exits.  The faulting thread in
 * a group exit while it runs its handler: the process ended from the
 * handler (died of a signal, or exited).  Exiting otherwise, or the last
 * thread gone with the fault still open: the process went on from it.
 */
static __always_inline void handled_fault_exit(struct task_struct *p, bool group_dead)
{
	struct first_fault *ff = first_fault_of(p);
	__u64 id = open_fault(ff);
	int code;

	if (!id || (p->pid != ff->tid && !group_dead))
		return;
	code = BPF_CORE_READ(p, signal, group_exit_code);
	if (p->pid == ff->tid && in_handler(p, ff) &&
	    (group_dead || (BPF_CORE_READ(p, signal, flags) & SIGNAL_GROUP_EXIT))) {
		if (code & 0x7f)
			close_fault(p, ff, id, FH_VERDICT_DIED, code & 0x7f, 0, 0, 0);
		else
			close_fault(p, ff, id, FH_VERDICT_EXITED, 0, 0, (code >> 8) & 0xff, 0);
		return;
	}
	close_fault(p, ff, id, FH_VERDICT_SURVIVED, 0, 0, 0, 0);
}
