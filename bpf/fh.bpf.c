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
#include "fh/counters.h"
#include "fh/live.h"
#include "fh/records.h"
#include "signal.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define PF_EXITING 0x00000004
#define PF_IO_WORKER 0x00000010
#define PF_KTHREAD 0x00200000
#define PROT_EXEC 0x4
#define NR_mmap 9
#define NR_mprotect 10
#define TRACE_SIGNAL_DELIVERED 0
#define TRACE_SIGNAL_LOSE_INFO 4

/* Set by userspace before load. */
const volatile __u32 target_tgid = 0; /* 0: every process in scope (--system-wide) */
const volatile __u32 follow_children = 0; /* target_tgid's descendants too (scope.bpf.h) */
const volatile __u32 agent_tgid = 0;  /* fh-bpf itself: never in scope */
const volatile __u32 scope_flags = 0; /* FH_SCOPE_*: which filters apply */
/*
 * --system-wide: a signal sent from outside is captured when the process
 * dies of it (sched_process_exit, which runs before the mm goes), not at
 * its delivery: the host then pays one program per signal, not two.
 */
const volatile __u32 exit_capture = 0;
const volatile __u64 stack_size = FH_STACK_DEFAULT; /* multiple of FH_PAGE_SIZE */
const volatile __u32 max_threads = 256;
const volatile __u64 sig_mask = 0; /* bit (sig - 1) set: capture sig */
const volatile __u32 capture_handled = 0; /* also signals the target handles */
const volatile __s32 user_signal = 0; /* dump on it; 0: none */
/* --signal said: dump on it also where its default action kills the
 * target (else the target's fate is left alone: it was not asked for) */
const volatile __u32 user_signal_kills = 0;

/* What the programs count and lose (fh/counters.h), read by userspace. */
struct fh_counters counters = {};
__u64 next_event_id = 0; /* userspace may start it higher: ids stay unique across objects */

extern int bpf_iter_task_new(struct bpf_iter_task *it, struct task_struct *task,
			     unsigned int flags) __weak __ksym;
extern struct task_struct *bpf_iter_task_next(struct bpf_iter_task *it) __weak __ksym;
extern void bpf_iter_task_destroy(struct bpf_iter_task *it) __weak __ksym;
extern struct task_struct *bpf_task_acquire(struct task_struct *p) __weak __ksym;
extern void bpf_task_release(struct task_struct *p) __weak __ksym;
extern struct task_struct *bpf_task_from_pid(s32 pid) __weak __ksym;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 * 1024 * 1024); /* resized by userspace */
} records SEC(".maps");

/*
 * What the programs do, by header: control (the hand-over between
 * objects), scope (which processes and signals), python (the CPython walk),
 * sender (who sent a signal), records (the capture's records), mappings
 * (the mapping tracker), first_fault (a fault the target handles: its
 * capture and verdict); live.bpf.h, below, the live dumps.  This file
 * keeps the programs and what decides when they capture.
 */
#include "control.bpf.h"
#include "scope.bpf.h"
#include "python.bpf.h"
#include "sender.bpf.h"
#include "records.bpf.h"
#include "mappings.bpf.h"
#include "first_fault.bpf.h"

/*
 * One capture a death: a process whose fatal signal was captured dies of
 * it, and a second thread faulting meanwhile (it waited for the siglock
 * the first one's capture held) is not another incident.  Keyed by tgid,
 * the process known by its leader's start time (a tgid is reused).
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u64);
} dying SEC(".maps");

static __always_inline bool dying_captured(struct task_struct *self)
{
	__u32 tgid = self->tgid;
	__u64 start = BPF_CORE_READ(self, group_leader, start_time), *seen;

	if (bpf_map_update_elem(&dying, &tgid, &start, BPF_NOEXIST) == 0)
		return false;
	seen = bpf_map_lookup_elem(&dying, &tgid);
	if (seen && *seen == start) {
		__sync_fetch_and_add(&counters.repeats, 1);
		return true;
	}
	bpf_map_update_elem(&dying, &tgid, &start, BPF_ANY); /* a tgid reused */
	return false;
}

static __always_inline int signal_generated(void *ctx, int sig, struct kernel_siginfo *info,
					    struct task_struct *task, int result)
{
	struct task_struct *self = bpf_get_current_task_btf();
	struct sender_key key = { .tgid = task->tgid, .sig = sig };
	struct sender *s;

	/* Ignored, already pending or not queued: nothing new will happen. */
	if (result != TRACE_SIGNAL_DELIVERED && result != TRACE_SIGNAL_LOSE_INFO)
		return 0;

	if (self->tgid != task->tgid || sig == user_signal) {
		/*
		 * Generated outside the target, or the user signal (dumped in
		 * the thread that receives it, as faulthandler.register()
		 * does): capture on delivery, in the target.  current is the
		 * sender when a process sent it; the kernel's own signals
		 * (timers, memory failure, the OOM killer) may come from any
		 * context: their sender is the kernel.
		 */
		struct sender s = {};

		s.sig = sig;
		s.ktime = bpf_ktime_get_ns();
		s.si_code = info_code(info);
		if (sig == user_signal && takes_default_action(task, sig)) {
			s.terminates = 1;
		} else if (sig != user_signal && terminates_plainly(sig) &&
			   (sig == 9 || takes_default_action(task, sig))) {
			/* Keyed by signal 0: SIGKILL's delivery finds it. */
			s.terminates = 1;
			key.sig = 0;
		}
		/* The kernel gives the signal to the task it was sent to
		 * unless that one blocks it or is exiting (then to another
		 * thread: unknown here). */
		if (!(task->blocked.sig[0] & (1ULL << (sig - 1))) && !(task->flags & PF_EXITING))
			s.receiver = task->pid;
		if (self->tgid == task->tgid) {
			s.self = 1;
		} else if (sent_by_user(info)) {
			s.tgid = self->tgid;
			s.tid = self->pid;
			s.uid = bpf_get_current_uid_gid() & 0xffffffff;
			bpf_get_current_comm(s.comm, sizeof(s.comm));
		} else {
			kernel_sender(ctx, &s);
		}
		if (bpf_map_update_elem(&pending_senders, &key, &s, BPF_ANY))
			__sync_fetch_and_add(&counters.senders_lost, 1);
		return 0;
	}

	/*
	 * Raised by the process itself: its own thread is current.  A handler
	 * that caught a signal sent from outside and raises it again (Python's
	 * faulthandler does) still names the original sender.
	 */
	if (!takes_default_action(task, sig)) {
		/* Its handler runs next: the first fault, taken now. */
		bpf_map_delete_elem(&pending_senders, &key);
		handled_fault(self, sig, info_code(info), info_addr(info), NULL);
		return 0;
	}
	if (died_handling_fault(self, sig, info_code(info), 0)) {
		/* Its death: the threads' signals that follow are repeats. */
		bpf_map_delete_elem(&pending_senders, &key);
		dying_captured(self);
		return 0;
	}
	if (dying_captured(self)) {
		bpf_map_delete_elem(&pending_senders, &key);
		return 0;
	}
	{
		struct sender named = {};
		bool have = false;

		s = bpf_map_lookup_elem(&pending_senders, &key);
		/* Without the delivery program, a sender of the last second
		 * stands for one whose signal the handler got.  Only a signal
		 * the process raised (a handler's raise()) is the one sent:
		 * a fault is its own. */
		if (s && sent_by_user(info) &&
		    (s->handled || (exit_capture && bpf_ktime_get_ns() - s->ktime < 1000000000ULL))) {
			named = *s;
			have = true;
		} else if (sent_by_kernel(info)) {
			/* The OOM killer, when the victim's own allocation ran it. */
			kernel_sender(ctx, &named);
			have = true;
		}
		bpf_map_delete_elem(&pending_senders, &key);
		emit_event(tid_sig(task->pid, sig), code_flags(info_code(info), 0), info_addr(info), 0,
			   have ? &named : NULL);
	}
	return 0;
}

/*
 * A signal whose default action kills the process without a core dump is
 * never delivered as itself: the kernel sends SIGKILL to every thread.  The
 * first thread that dequeues it captures them all, as the signal sent.
 */
static __always_inline int terminated(struct task_struct *self, struct sender_key *key,
				      struct kernel_siginfo *info)
{
	struct sender s, *found;

	found = bpf_map_lookup_elem(&pending_senders, key);
	if (!found || !found->terminates)
		return 0;
	/* Only if the process dies of it: the kernel turned that signal into
	 * a group exit (complete_signal()).  Not a signal its threads all
	 * block and read with signalfd or sigwait, whose process then exits
	 * (exit_group), execs or dumps core: SIGKILL's delivery and the exits
	 * that follow are not that signal's. */
	if (!(BPF_CORE_READ(self, signal, flags) & SIGNAL_GROUP_EXIT) ||
	    (BPF_CORE_READ(self, signal, group_exit_code) & 0x7f) != found->sig)
		return 0;
	/* Threads take SIGKILL, or exit, on several CPUs at once: the one
	 * whose delete succeeds captures them all. */
	s = *found;
	if (bpf_map_delete_elem(&pending_senders, key) != 0)
		return 1;
	if (died_handling_fault(self, s.sig, s.si_code, s.self ? 0 : s.tgid))
		return 1;
	/* Stamped when the signal was sent: the process's mappings of then
	 * are the ones to symbolize with (some of its threads may be gone by
	 * now, and their exits recorded). */
	emit_event(tid_sig(s.receiver ? s.receiver : self->pid, s.sig),
		   code_flags(s.si_code, s.sig == user_signal ? FH_EVENT_DEFAULT_ACTION
							: FH_EVENT_TERMINATED),
		   0, exit_capture ? s.ktime : 0, s.self ? NULL : &s);
	return 1;
}

static __always_inline int signal_delivered(int sig, struct kernel_siginfo *info,
					    struct k_sigaction *ka)
{
	struct task_struct *self = bpf_get_current_task_btf();
	struct sender_key key = { .tgid = self->tgid, .sig = sig };
	struct sender_key terminator = { .tgid = self->tgid, .sig = 0 };
	struct sender *s;

	if (sig == 9 /* SIGKILL */) {
		if (user_signal) {
			key.sig = user_signal;
			if (terminated(self, &key, info))
				return 0;
		}
		terminated(self, &terminator, info);
		return 0;
	}

	if (!watched_signal(sig))
		return 0;
	s = bpf_map_lookup_elem(&pending_senders, &key);
	if (!s)
		return 0; /* raised by the process itself: captured already */
	if (sig == user_signal) {
		struct sender named = *s;

		bpf_map_delete_elem(&pending_senders, &key);
		emit_event(tid_sig(self->pid, sig),
			   code_flags(info_code(info),
				      ka->sa.sa_handler == 0 ? FH_EVENT_DEFAULT_ACTION : 0),
			   info_addr(info), 0, named.self ? NULL : &named);
		return 0;
	}
	if (ka->sa.sa_handler != 0 /* SIG_DFL */) {
		/* Its handler runs next: the first fault, taken now, with its
		 * sender.  Kept: a handler that raises it again is that one. */
		struct sender named = *s;

		s->handled = 1;
		handled_fault(self, sig, info_code(info), info_addr(info), &named);
		return 0;
	}

	{
		struct sender named = *s;

		bpf_map_delete_elem(&pending_senders, &key);
		if (died_handling_fault(self, sig, info_code(info), named.tgid)) {
			bpf_map_delete_elem(&pending_senders, &terminator);
			return 0;
		}
		/* Delivered as itself after all: the threads' SIGKILLs that
		 * follow are not another capture. */
		bpf_map_delete_elem(&pending_senders, &terminator);
		emit_event(tid_sig(self->pid, sig), code_flags(info_code(info), 0), info_addr(info),
			   0, &named);
	}
	return 0;
}

/*
 * --system-wide: the first thread of a process to exit captures them all,
 * if the process dies of a signal sent from outside (noted at its
 * generation): one that kills without delivery (SIGKILL for every thread),
 * or a fatal one delivered and taking its default action.  Every thread is
 * still in the thread list, in the kernel, and the mm is still there.
 */
static __always_inline void exited(struct task_struct *p)
{
	struct task_struct *self = bpf_get_current_task_btf();
	struct sender_key key = { .tgid = p->tgid, .sig = 0 };
	struct sender s, *found;
	int code;

	if (!exit_capture)
		return;
	if (terminated(self, &key, NULL))
		return;
	code = BPF_CORE_READ(p, signal, group_exit_code) & 0x7f;
	if (!watched_signal(code))
		return;
	key.sig = code;
	found = bpf_map_lookup_elem(&pending_senders, &key);
	if (!found)
		return; /* raised by the process itself: captured already */
	s = *found;
	if (bpf_map_delete_elem(&pending_senders, &key) != 0)
		return; /* another thread's exit took it */
	if (died_handling_fault(self, code, s.si_code, s.tgid))
		return;
	emit_event(tid_sig(s.receiver ? s.receiver : self->pid, code), code_flags(s.si_code, 0), 0,
		   s.ktime /* as in terminated() */, &s);
}

/* A watch of a tree: the watched process has exited. */
__u32 tree_root_gone = 0;

/*
 * A watch of a tree: a process of it has ended (its last thread exits).
 * It leaves the tree, and userspace hears of it: the watch ends with the
 * last one.  Userspace waits for exits once the root is gone; before,
 * they are read with the next records (a prefork server's workers come and
 * go), unless they fill a quarter of the ring.  A record submitted without a wakeup
 * leaves the reader behind, and the ring's own (adaptive) wakeup then
 * stays silent: every record that must wake userspace forces it (a
 * capture's end, a mapping change, a verdict, these).
 */
static __always_inline void left_tree(struct task_struct *p)
{
	struct fh_exit_record *rec;
	__u32 tgid = p->tgid;
	__u64 wakeup = BPF_RB_FORCE_WAKEUP;

	if (tgid == target_tgid)
		tree_root_gone = 1;
	else if (bpf_map_delete_elem(&tree, &tgid) != 0)
		return;
	if (!tree_root_gone && bpf_ringbuf_query(&records, BPF_RB_AVAIL_DATA) <
				       bpf_ringbuf_query(&records, BPF_RB_RING_SIZE) / 4)
		wakeup = BPF_RB_NO_WAKEUP;
	rec = bpf_ringbuf_reserve(&records, sizeof(*rec), 0);
	if (!rec) {
		__sync_fetch_and_add(&counters.exits_lost, 1);
		return;
	}
	rec->hdr.kind = FH_REC_EXIT;
	rec->hdr.size = sizeof(*rec);
	rec->hdr.event_id = 0;
	rec->tgid = tgid;
	rec->ppid = BPF_CORE_READ(p, real_parent, tgid);
	rec->status = BPF_CORE_READ(p, signal, group_exit_code);
	if (!(BPF_CORE_READ(p, signal, flags) & SIGNAL_GROUP_EXIT))
		rec->status = p->exit_code;
	rec->reserved = 0;
	bpf_ringbuf_submit(rec, wakeup);
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(on_process_exit, struct task_struct *p, bool group_dead)
{
	if (!watched_tgid(p->tgid) || !enter())
		return 0;
	exited(p);
	handled_fault_exit(p, group_dead);
	if (follow_children && group_dead)
		left_tree(p);
	leave();
	return 0;
}

SEC("tp_btf/signal_generate")
int BPF_PROG(on_signal_generate, int sig, struct kernel_siginfo *info,
	     struct task_struct *task, int group, int result)
{
	if (!watched_signal(sig))
		return 0;
	if (!in_scope(task)) {
		if (!target_tgid)
			__sync_fetch_and_add(&counters.out_of_scope, 1);
		return 0;
	}
	if (sig == user_signal && !user_signal_kills && takes_default_action(task, sig))
		return 0;
	if (!enter())
		return 0;
	signal_generated(ctx, sig, info, task, result);
	leave();
	return 0;
}

SEC("tp_btf/signal_deliver")
int BPF_PROG(on_signal_deliver, int sig, struct kernel_siginfo *info, struct k_sigaction *ka)
{
	/* Every signal the host handles passes here: the ones never
	 * captured cost a compare. */
	if ((sig != 9 /* SIGKILL */ && !watched_signal(sig)) ||
	    !watched_tgid(bpf_get_current_pid_tgid() >> 32) || !enter())
		return 0;
	signal_delivered(sig, info, ka);
	leave();
	return 0;
}

SEC("tp_btf/sys_exit")
int BPF_PROG(on_sys_exit, struct pt_regs *regs, long ret)
{
	long nr;

	if (target_tgid == 0 || (bpf_get_current_pid_tgid() >> 32) != target_tgid)
		return 0;
	nr = regs->orig_ax;
	if ((nr != NR_mmap && nr != NR_mprotect) || ret < 0 || !enter())
		return 0;
	syscall_exited(regs, ret);
	leave();
	return 0;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(on_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	__u32 tgid = p->tgid;

	if (!in_scope(p) || !enter())
		return 0;
	/* A new program: where its interpreter sits is not known yet, but
	 * for an interpreter linked into the executable. */
	bpf_map_delete_elem(&py_procs, &tgid);
	py_place(BPF_CORE_READ(p, mm, start_code));
	/* A descendant's too: userspace then reads its mapping records for a
	 * while, to place the interpreter it may map. */
	maps_changed(FH_MAPS_EXEC, 0, 0);
	leave();
	return 0;
}

/*
 * A process forked without exec runs the interpreter of its parent, at the
 * same addresses.  In a watch of a tree, a member's child joins it.
 */
SEC("tp_btf/sched_process_fork")
int BPF_PROG(on_fork, struct task_struct *parent, struct task_struct *child)
{
	__u32 ptgid = parent->tgid, ctgid = child->tgid;
	struct fh_py_proc *proc;

	if (ctgid == ptgid)
		return 0; /* a thread */
	if (follow_children && in_tree(ptgid) &&
	    bpf_map_update_elem(&tree, &ctgid, &ptgid, BPF_ANY) != 0)
		__sync_fetch_and_add(&counters.tree_full, 1);
	proc = bpf_map_lookup_elem(&py_procs, &ptgid);
	if (proc)
		bpf_map_update_elem(&py_procs, &ctgid, proc, BPF_ANY);
	return 0;
}

#include "live.bpf.h"

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
