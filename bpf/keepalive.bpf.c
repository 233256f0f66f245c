// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Keep a target alive through its user signal (--signal) where the kernel
 * allows BPF LSM programs.  A target that neither handles nor ignores the
 * signal would be terminated by it: the task_kill hook refuses that one
 * signal, sent by another process to that one target, while its action is
 * still the default (the sender's kill() fails with EPERM), and asks
 * userspace to dump the target, as faulthandler.register() would have.
 *
 * A separate object: where LSM programs are refused (as on some hosts and
 * VMs), loading it fails and nothing else is affected.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "fh/records.h"
#include "signal.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define EPERM 1

const volatile __u32 target_tgid = 0;
const volatile __s32 user_signal = 0;

__u64 refused = 0;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 * 1024);
} refusals SEC(".maps");

SEC("lsm/task_kill")
int BPF_PROG(refuse_user_signal, struct task_struct *p, struct kernel_siginfo *info, int sig,
	     const struct cred *cred, int ret)
{
	struct task_struct *self = bpf_get_current_task_btf();
	struct fh_keepalive_record *rec;

	if (ret || sig != user_signal || p->tgid != target_tgid || self->tgid == target_tgid)
		return ret;
	/* The kernel's own signals are not ours to refuse. */
	if (!sent_by_user(info) || !takes_default_action(p, sig))
		return 0;
	rec = bpf_ringbuf_reserve(&refusals, sizeof(*rec), 0);
	if (rec) {
		rec->tgid = p->tgid;
		rec->tid = p->pid;
		rec->sig = sig;
		rec->sender_tgid = self->tgid;
		rec->sender_uid = bpf_get_current_uid_gid() & 0xffffffff;
		bpf_get_current_comm(rec->sender_comm, sizeof(rec->sender_comm));
		bpf_ringbuf_submit(rec, 0);
	}
	__sync_fetch_and_add(&refused, 1);
	return -EPERM;
}
