/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The mapping tracker of -p and launch mode: a FH_REC_MAPS record when the
 * target maps executable code or execs, so userspace reads its maps again
 * before any event needs them.
 *
 * Included by fh.bpf.c, after python.bpf.h.
 */

/* Set when a FH_REC_MAPS record is in flight; userspace clears it before it
 * reads the maps again, so a burst of mappings costs one record. */
__u64 maps_pending = 0;

/*
 * A burst of new mappings costs one record (userspace reads all the maps
 * again anyway); an exec always has its own, since userspace looks at the
 * new program then.
 */
static __always_inline void maps_changed(__u32 reason, __u64 addr, __u64 len)
{
	struct task_struct *self = bpf_get_current_task_btf();
	struct fh_maps_record *rec;
	bool coalesce = reason != FH_MAPS_EXEC;

	if (coalesce && __sync_val_compare_and_swap(&maps_pending, 0, 1) != 0)
		return;
	rec = bpf_ringbuf_reserve(&records, sizeof(*rec), 0);
	if (!rec) {
		__sync_fetch_and_add(&counters.maps_lost, 1);
		if (coalesce)
			maps_pending = 0;
		return;
	}
	rec->hdr.kind = FH_REC_MAPS;
	rec->hdr.size = sizeof(*rec);
	rec->hdr.event_id = 0;
	rec->tgid = self->tgid;
	rec->reason = reason;
	rec->addr = addr;
	rec->len = len;
	bpf_ringbuf_submit(rec, BPF_RB_FORCE_WAKEUP); /* the reader may be behind (left_tree) */
}

/*
 * New executable code (dlopen, JIT): userspace refreshes its maps snapshot.
 * A file mapped from its start may be the interpreter to place.
 */
static __always_inline void syscall_exited(struct pt_regs *regs, long ret)
{
	long nr = regs->orig_ax;

	if (nr == NR_mmap && regs->r9 == 0 /* offset */ && (long)regs->r8 >= 0 /* fd */)
		py_place((__u64)ret);
	if (!(regs->dx & PROT_EXEC))
		return;
	maps_changed(FH_MAPS_EXEC_MAPPING, nr == NR_mmap ? (__u64)ret : regs->di, regs->si);
}
