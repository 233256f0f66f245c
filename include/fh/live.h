/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * How userspace drives a live dump (bpf/live.bpf.h): one global of the
 * programs' .bss, struct fh_live_control, that userspace sets before each
 * pass of the task iterator and reads back after it.
 *
 * Both sides run at once (the iterator in the reading thread, the samplers
 * on any CPU): userspace stores and loads each field with release/acquire
 * atomics, the programs update the shared counts with atomic adds.  Only
 * fixed-width types: the layout is pinned in userspace/capture/abi.h.
 */
#ifndef FH_LIVE_H
#define FH_LIVE_H

/* fh_live_control.mode: what a pass of the iterator does. */
enum fh_live_mode {
	FH_LIVE_FULL = 0,   /* every thread */
	FH_LIVE_RETAKE = 1, /* only wanted threads that stopped running */
};

/* A live dump's tallies, counted by the iterator's runs. */
struct fh_live_tally {
	__u32 sent;    /* thread records submitted */
	__u32 skipped; /* threads beyond --max-threads */
	__u32 lost;    /* thread records the ring buffer had no room for */
	__u32 wanted;  /* records of threads that were running: to be replaced */
};

struct fh_live_control {
	/* Set by userspace before each pass of the iterator. */
	__u32 mode;    /* enum fh_live_mode */
	__u32 trigger; /* fh_event_record.trigger of the dump */
	__u32 no_wait; /* ring full and userspace cannot make room: drop */
	__u32 failed;  /* the event record itself found no room */
	/* Set by the first run of a FULL pass; userspace clears it before. */
	__u64 event_id;
	__u64 ktime_end; /* when the last thread was copied */
	/* Wanted threads not taken yet (by a sample or a retake). */
	__s64 samples_pending;
	/* Cleared by userspace before a dump. */
	struct fh_live_tally tally;
	/* The process dumped (the iterator is bound to it; the samplers
	 * look at its threads only). */
	__u32 tgid;
	__u32 reserved;
};

#endif /* FH_LIVE_H */
