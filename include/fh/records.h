/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Records that cross the ring buffer from the BPF programs to userspace.
 *
 * One capture ("event") is a sequence of records sharing an event id:
 *
 *	FH_REC_EVENT       once: trigger, signal, fault address, sender
 *	FH_REC_THREAD      once per captured thread: registers + stack bytes
 *	FH_REC_EVENT_END   once: thread counts, loss counters, timing
 *
 * Records of different events may interleave (several CPUs); records of one
 * event arrive in this order because one program run on one CPU reserves
 * them in sequence.  FH_REC_MAPS marks a change of the target's executable
 * mappings (mmap/mprotect with PROT_EXEC, exec).
 *
 * Only fixed-width types and fixed arrays: the layout is pinned from C++ by
 * static_asserts in userspace/records.cpp.
 */
#ifndef FH_RECORDS_H
#define FH_RECORDS_H

#define FH_COMM_LEN 16
#define FH_PAGE_SIZE 4096

/* Per-thread stack copy: --stack-size is rounded up to whole pages. */
#define FH_STACK_MIN FH_PAGE_SIZE
#define FH_STACK_MAX (256 * 1024)
#define FH_STACK_DEFAULT (16 * 1024)

/* Registers in DWARF numbering for x86-64 (0 rax ... 15 r15, 16 rip). */
#define FH_NR_REGS 17
#define FH_REG_RSP 7
#define FH_REG_RIP 16

/* fh_record_header.kind */
#define FH_REC_EVENT 1
#define FH_REC_THREAD 2
#define FH_REC_EVENT_END 3
#define FH_REC_MAPS 4

/* fh_event_record.trigger */
#define FH_TRIGGER_FATAL_SIGNAL 1

/* fh_event_record.flags */
#define FH_EVENT_EXTERNAL 0x1 /* sent by another process: sender_* valid */

/* fh_thread_record.flags */
#define FH_THREAD_HIT 0x1	      /* the thread the signal hit */
#define FH_THREAD_ON_CPU 0x2	      /* running on another CPU: regs may be stale */
#define FH_THREAD_STACK_LIMIT 0x4     /* copy reached the --stack-size limit */
#define FH_THREAD_STACK_FAULT 0x8     /* a read failed before the limit */
#define FH_THREAD_EXITING 0x10	      /* the thread was exiting */
#define FH_THREAD_KERNEL_WORKER 0x20  /* io_uring-style worker: no user state */

/* fh_maps_record.reason */
#define FH_MAPS_EXEC_MAPPING 1
#define FH_MAPS_EXEC 2

struct fh_record_header {
	__u32 kind;
	__u32 size; /* bytes of this record that hold data, header included */
	__u64 event_id;
};

struct fh_event_record {
	struct fh_record_header hdr;
	__u64 ktime_ns; /* capture start, CLOCK_MONOTONIC */
	__u32 tgid;
	__u32 tid; /* the thread the signal hit */
	__s32 sig;
	__s32 si_code;
	__u64 fault_addr;
	__u32 trigger;
	__u32 flags;
	__u32 sender_tgid;
	__u32 sender_tid;
	__u32 sender_uid;
	__u32 reserved;
	char sender_comm[FH_COMM_LEN];
	char comm[FH_COMM_LEN]; /* the target's group leader */
};

struct fh_thread_record {
	struct fh_record_header hdr;
	__u32 tid;
	__u32 flags;
	__u64 fs_base; /* pthread_self() with glibc on x86-64 */
	char comm[FH_COMM_LEN];
	__u64 regs[FH_NR_REGS];
	__u64 stack_addr; /* user address of stack[0]: the stack pointer */
	__u32 stack_len;  /* bytes of stack[] copied */
	__s32 stack_err;  /* errno of the read that stopped the copy, or 0 */
	__u8 stack[];
};

struct fh_event_end_record {
	struct fh_record_header hdr;
	__u64 ktime_ns;	     /* capture end */
	__u32 nr_threads;    /* thread records submitted */
	__u32 threads_skipped; /* threads beyond --max-threads */
	__u32 threads_lost;  /* thread records the ring buffer had no room for */
	__u32 reserved;
};

struct fh_maps_record {
	struct fh_record_header hdr;
	__u32 tgid;
	__u32 reason;
	__u64 addr;
	__u64 len;
};

/* Counters kept in the programs' .bss, read by userspace. */
struct fh_counters {
	__u64 events;	      /* captures started */
	__u64 events_lost;    /* FH_REC_EVENT records with no ring room */
	__u64 ends_lost;      /* FH_REC_EVENT_END records with no ring room */
	__u64 threads_lost;   /* FH_REC_THREAD records with no ring room */
	__u64 maps_lost;      /* FH_REC_MAPS records with no ring room */
	__u64 senders_lost;   /* external senders the pending map had no room for */
};

#endif /* FH_RECORDS_H */
