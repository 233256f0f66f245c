/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Which processes and signals a program looks at: -p's target and, unless
 * --no-children, every process it forks and they fork in turn; or
 * --system-wide's scope.
 *
 * Included by fh.bpf.c.
 */

/*
 * --system-wide's filters: comm (the group leader's) -> FH_SCOPE_INCLUDE or
 * FH_SCOPE_EXCLUDE; real uid; cgroup v2 id (its descendants are in scope
 * too).  Each filter given must match; an excluded comm never does.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, FH_SCOPE_MAX);
	__type(key, char[FH_COMM_LEN]);
	__type(value, __u8);
} scope_comms SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, FH_SCOPE_MAX);
	__type(key, __u32);
	__type(value, __u8);
} scope_uids SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, FH_SCOPE_MAX);
	__type(key, __u64);
	__type(value, __u8);
} scope_cgroups SEC(".maps");

/*
 * A watch of a tree: each descendant of target_tgid -> its parent's tgid.
 * Userspace seeds the ones running at attach (from /proc); on_fork adds
 * each process a member forks, before the child runs its first
 * instruction; on_process_exit takes each out once its last thread ends.
 * A process stays in its tree when its parent dies (a daemon's double
 * fork, an orphaned worker).
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, FH_TREE_MAX);
	__type(key, __u32);
	__type(value, __u32);
} tree SEC(".maps");

static __always_inline bool in_tree(__u32 tgid)
{
	return tgid == target_tgid || (follow_children && bpf_map_lookup_elem(&tree, &tgid));
}

#define CGROUP_MAX_DEPTH 32

static __always_inline struct cgroup *task_cgroup(struct task_struct *task)
{
	return BPF_CORE_READ(task, cgroups, dfl_cgrp);
}

static __always_inline bool cgroup_in_scope(struct task_struct *task)
{
	struct cgroup *cgrp = task_cgroup(task), *anc = NULL;
	int level = BPF_CORE_READ(cgrp, level);

	for (int i = 0; i < CGROUP_MAX_DEPTH; i++) {
		__u64 id;

		if (i > level)
			break;
		if (bpf_probe_read_kernel(&anc, sizeof(anc), &cgrp->ancestors[i]) || !anc)
			break;
		id = BPF_CORE_READ(anc, kn, id);
		if (bpf_map_lookup_elem(&scope_cgroups, &id))
			return true;
	}
	return false;
}

static __always_inline bool in_scope(struct task_struct *task)
{
	__u32 tgid = task->tgid;

	if (target_tgid)
		return in_tree(tgid);
	if (tgid == agent_tgid || (task->flags & PF_KTHREAD))
		return false;
	if (scope_flags & (FH_SCOPE_COMM | FH_SCOPE_EXCLUDE_COMM)) {
		char comm[FH_COMM_LEN] = {};
		__u8 *v;

		bpf_probe_read_kernel_str(comm, sizeof(comm), task->group_leader->comm);
		v = bpf_map_lookup_elem(&scope_comms, comm);
		if (v && *v == FH_SCOPE_EXCLUDE)
			return false;
		if ((scope_flags & FH_SCOPE_COMM) && !(v && *v == FH_SCOPE_INCLUDE))
			return false;
	}
	if (scope_flags & FH_SCOPE_UID) {
		__u32 uid = BPF_CORE_READ(task, real_cred, uid.val);

		if (!bpf_map_lookup_elem(&scope_uids, &uid))
			return false;
	}
	if ((scope_flags & FH_SCOPE_CGROUP) && !cgroup_in_scope(task))
		return false;
	return true;
}

static __always_inline bool watched_signal(int sig)
{
	return sig >= 1 && sig <= 64 && (sig_mask & (1ULL << (sig - 1)));
}

/* Cheap enough for every watched signal delivered on the host (a lookup
 * in a tree): the delivery paths look their signal up in pending_senders,
 * where only processes in scope are. */
static __always_inline bool watched_tgid(__u32 tgid)
{
	return target_tgid == 0 || in_tree(tgid);
}
