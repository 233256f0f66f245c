/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * What the BPF programs count in their .bss, for userspace to read: the
 * records they had no room for, and what else a watch reports at its end.
 *
 * FH_COUNTERS(X) names each counter once, as X(name, loss, description):
 * the field of struct fh_counters (and of userspace's Counters, which
 * copies and sums them field by field from this list), whether it is a
 * loss (1: listed in the closing "lost: ..." line, after its count, in
 * this order), and what it counts (for a loss, the words of that line).
 * A counter added here is kept, copied, summed and reported without
 * another edit.
 */
#ifndef FH_COUNTERS_H
#define FH_COUNTERS_H

#define FH_COUNTERS(X)								\
	/* FH_REC_EVENT records with no ring room */				\
	X(events_lost, 1, "events (ring buffer full)")				\
	/* FH_REC_EVENT_END records with no ring room */			\
	X(ends_lost, 1, "event end records")					\
	/* FH_REC_THREAD records with no ring room */				\
	X(threads_lost, 1, "thread records")					\
	/* FH_REC_MAPS records with no ring room */				\
	X(maps_lost, 1, "mapping changes")					\
	/* external senders the pending map had no room for */			\
	X(senders_lost, 1, "signal senders")					\
	/* Python thread, code or module records with no ring room */		\
	X(py_lost, 1, "Python thread or code records (ring buffer full)")	\
	/* FH_REC_CMDLINE records with no ring room */				\
	X(cmdlines_lost, 1, "argument records (ring buffer full)")		\
	/* live: records dropped for want of ring room */			\
	X(live_lost, 1, "live thread records (ring buffer full)")		\
	/* live: threads sampled while they ran */				\
	X(samples, 0, "running threads sampled")				\
	/* live: threads copied again once they stopped */			\
	X(retaken, 0, "running threads copied again once they stopped")		\
	/* --system-wide: watched signals of processes out of scope */		\
	X(out_of_scope, 0, "watched signals of processes out of scope")		\
	/* fatal signals of a process already captured dying of one */		\
	X(repeats, 0, "more fatal signals of processes already captured dying") \
	/* FH_REC_VERDICT records with no ring room */				\
	X(verdicts_lost, 1, "verdicts on handled faults (ring buffer full)")	\
	/* faults a target handled, captured provisionally at the fault */	\
	X(handled_faults, 0, "faults the targets handled, captured at the fault") \
	/* handled faults not captured: one open already, or budget spent */	\
	X(handled_skipped, 0, "faults the targets handled, not captured")	\
	/* FH_REC_EXIT records with no ring room */				\
	X(exits_lost, 1, "exits of followed processes (ring buffer full)")	\
	/* descendants a full tree map could not take: not followed */		\
	X(tree_full, 1, "descendants not followed (table full)")

#define FH_COUNTER_FIELD(name, loss, description) __u64 name;

/* Counters kept in the programs' .bss (one global), read by userspace. */
struct fh_counters {
	FH_COUNTERS(FH_COUNTER_FIELD)
};

#undef FH_COUNTER_FIELD

#endif /* FH_COUNTERS_H */
