/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * What the kernel will do with a signal, as the programs need to know it:
 * shared by fh.bpf.c and keepalive.bpf.c.
 */
#ifndef FH_SIGNAL_BPF_H
#define FH_SIGNAL_BPF_H

#define SI_USER 0
#define SI_QUEUE -1
#define SI_TKILL -6

/*
 * The process's action for sig: its handler (0: SIG_DFL) and sa_flags.
 * False when it cannot be read.
 */
static __always_inline bool read_sigaction(struct task_struct *task, int sig, __u64 *handler,
					   __u64 *flags)
{
	/* Read, not loaded through the task's BTF type: the verifier looks a
	 * type up by name, among all the kernel's, for each such load of a
	 * pointer it walks. */
	struct sighand_struct *sh = BPF_CORE_READ(task, sighand);
	__u64 action;

	if (!sh || sig < 1 || sig > 64)
		return false;
	action = (__u64)sh + bpf_core_field_offset(struct sighand_struct, action) +
		 (sig - 1) * bpf_core_type_size(struct k_sigaction);
	if (bpf_probe_read_kernel(handler, sizeof(*handler),
				  (void *)(action + bpf_core_field_offset(struct k_sigaction,
									 sa.sa_handler))))
		return false;
	if (flags && bpf_probe_read_kernel(flags, sizeof(*flags),
					   (void *)(action + bpf_core_field_offset(struct k_sigaction,
										  sa.sa_flags))))
		return false;
	return true;
}

/*
 * True when the process takes sig's default action (SIG_DFL): for the
 * signals fh-bpf watches, the one that kills it.
 */
static __always_inline bool takes_default_action(struct task_struct *task, int sig)
{
	__u64 handler = 1;

	return read_sigaction(task, sig, &handler, NULL) && handler == 0;
}

/* A siginfo a process filled in: kill(), tgkill(), sigqueue(). */
static __always_inline bool sent_by_user(struct kernel_siginfo *info)
{
	int code;

	/* SEND_SIG_NOINFO (0) and SEND_SIG_PRIV (1) are not pointers. */
	if ((__u64)info <= 1)
		return (__u64)info == 0;
	code = BPF_CORE_READ(info, si_code);
	return code == SI_USER || code == SI_TKILL || code == SI_QUEUE;
}

#endif /* FH_SIGNAL_BPF_H */
