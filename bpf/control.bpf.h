/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The hand-over between two objects of one target (an exec into another
 * interpreter): the generation whose programs capture, and the programs
 * in flight.
 *
 * Included by fh.bpf.c.
 */

/*
 * A process that execs another program may need other programs here (the
 * Python walk of its new interpreter): userspace loads a second object,
 * sharing this map, and hands over by storing the new object's generation.
 * Each object's tracepoints run only while control holds its generation:
 * no event is captured twice, none is missed.
 */
const volatile __u32 generation = 1;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} control SEC(".maps");

/*
 * Programs in flight.  A program counts itself in before it looks at
 * control: once userspace has stored a new generation and then read 0
 * here, no program of this object can write another record, and its ring
 * can be drained for the last time.
 */
__s64 inflight = 0;

static __always_inline bool enter(void)
{
	__u32 zero = 0;
	__u32 *g;

	__sync_fetch_and_add(&inflight, 1);
	g = bpf_map_lookup_elem(&control, &zero);
	if (g && *g == generation)
		return true;
	__sync_fetch_and_add(&inflight, -1);
	return false;
}

static __always_inline void leave(void)
{
	__sync_fetch_and_add(&inflight, -1);
}
