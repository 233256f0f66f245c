/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The CPython walk: every thread state of the interpreter, its frame chain,
 * and, once per event, what each code object on those chains needs to be
 * rendered after the process is gone (filename, name, first line, line
 * table).  Offsets come from userspace (struct fh_py_offsets), one set per
 * interpreter build.
 *
 * Included by fh.bpf.c.  Target memory is untrusted and changes under us:
 * every read is checked, every loop bounded, and a failed read ends that
 * chain; userspace prints what it got and ??? for the rest.
 */
#include "fh/python.h"

/*
 * Every interpreter build userspace has met, by index (struct
 * fh_py_offsets each), the files that hold one, and the processes where one
 * is placed.  A process is walked once it is in py_procs with a runtime:
 * userspace puts it there when it has read where the interpreter is mapped;
 * the kernel itself when the process execs an interpreter, or maps one from
 * its start (-p mode follows mmap()), whose file is in py_files.  A native
 * process costs one failed lookup.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, FH_PY_MAX_BUILDS);
	__type(key, __u32);
	__type(value, struct fh_py_offsets);
} py_builds SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, FH_PY_MAX_FILES);
	__type(key, struct fh_py_file_key);
	__type(value, struct fh_py_file);
} py_files SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, FH_PY_MAX_PROCS);
	__type(key, __u32);
	__type(value, struct fh_py_proc);
} py_procs SEC(".maps");

/*
 * Whether this object walks interpreters at all: system-wide (any process
 * may be one), or a -p target that is Python.  A constant of the loaded
 * programs: for a native target the walk is dead code, never verified,
 * which is most of the programs' load time.
 */
const volatile __u32 py_walk = 0;

static __always_inline const struct fh_py_offsets *py_build(__u32 build)
{
	return bpf_map_lookup_elem(&py_builds, &build);
}

/*
 * Where the module's file offset 0 sits, from any mapping of it (the file
 * is mapped page for page: offset ~ address), when the mapping is of a
 * file in py_files: then the interpreter of the process is placed.  The
 * file is known by inode and size (not by device: stat()'s is not the
 * kernel's on btrfs).
 */
static long py_place_vma(struct task_struct *task, struct vm_area_struct *vma, void *data)
{
	struct file *file = vma->vm_file;
	struct fh_py_file_key key = {};
	struct fh_py_proc proc = {};
	struct fh_py_file *f;
	struct inode *inode;
	__u32 tgid = task->tgid;
	__u64 base;

	if (!file)
		return 0;
	inode = BPF_CORE_READ(file, f_inode);
	key.ino = BPF_CORE_READ(inode, i_ino);
	key.size = (__u64)BPF_CORE_READ(inode, i_size);
	f = bpf_map_lookup_elem(&py_files, &key);
	if (!f)
		return 0;
	base = vma->vm_start - ((__u64)vma->vm_pgoff << 12);
	proc.build = f->build;
	proc.runtime = base + f->runtime_off;
	proc.module_type = f->module_type_off ? base + f->module_type_off : 0;
	bpf_map_update_elem(&py_procs, &tgid, &proc, BPF_ANY);
	return 0;
}

/*
 * After current maps a file from its start at `addr` (the dynamic loader
 * mapping libpython), or at its exec (the executable, mapped by the kernel,
 * may be the interpreter itself): place its interpreter if that file holds
 * one.
 */
static __always_inline void py_place(__u64 addr)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct fh_py_proc *proc;

	if (!py_walk)
		return;
	proc = bpf_map_lookup_elem(&py_procs, &tgid);
	if (proc && proc->runtime)
		return;
	bpf_find_vma(bpf_get_current_task_btf(), addr, py_place_vma, &addr, 0);
}

/*
 * A chain that comes back to an entry already walked (target memory may
 * hold anything) ends there, flagged (FH_PY_THREAD_*_LOOP, fh/records.h).
 * Brent's cycle finding: the entry kept is compared with each next one and
 * moved on at every power of two, so a loop of L entries after M others is
 * seen within M + 2L steps, at the cost of two words.
 */
struct py_loop {
	__u64 kept;
	__u32 power;
	__u32 steps;
};

static __always_inline bool py_loops(struct py_loop *l, __u64 next)
{
	if (next && next == l->kept)
		return true;
	if (++l->steps >= l->power) {
		l->kept = next;
		l->power = l->power ? l->power * 2 : 1;
		l->steps = 0;
	}
	return false;
}

#define PY_TPFLAGS_UNICODE_SUBCLASS (1UL << 28)
#define PY_SEEN_SLOTS 256
#define PY_SEEN_PROBES 8

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct fh_py_thread_record);
} py_thread_scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct fh_py_code_record);
} py_code_scratch SEC(".maps");


/* Code objects already sent in this event: (code, event id) slots. */
struct py_seen {
	__u64 code[PY_SEEN_SLOTS];
	__u64 event[PY_SEEN_SLOTS];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct py_seen);
} py_seen_map SEC(".maps");

static __always_inline __u64 py_ptr(__u64 addr)
{
	__u64 v = 0;

	if (bpf_probe_read_user(&v, sizeof(v), (void *)addr))
		return 0;
	return v;
}

static __always_inline bool py_has(__s32 off)
{
	return off >= 0;
}

/* True the first time this event meets the code object. */
static __always_inline bool py_first_sight(__u64 code, __u64 event_id)
{
	__u32 zero = 0;
	struct py_seen *seen = bpf_map_lookup_elem(&py_seen_map, &zero);
	__u32 h = (__u32)((code >> 4) * 2654435761u);

	if (!seen)
		return true;
	for (int i = 0; i < PY_SEEN_PROBES; i++) {
		__u32 slot = (h + i) & (PY_SEEN_SLOTS - 1);

		if (seen->event[slot] == event_id && seen->code[slot] == code)
			return false;
		if (seen->event[slot] != event_id) {
			seen->event[slot] = event_id;
			seen->code[slot] = code;
			return true;
		}
	}
	return true; /* table full: send it again, userspace dedups */
}

/*
 * Copy a str's characters (at most 501, FH_PY_STR_BYTES bytes) to dst;
 * returns the bytes copied, 0 if obj is not a readable str.
 */
static __always_inline __u32 py_read_str(const struct fh_py_offsets *py, __u64 obj, __u8 *dst, __u64 *length, __u32 *kind)
{
	__u64 type, flags = 0, len = 0, data, n;
	__u32 state = 0, k;

	*length = 0;
	*kind = 0;
	if (!obj)
		return 0;
	type = py_ptr(obj + py->object_type);
	if (!type || bpf_probe_read_user(&flags, sizeof(flags), (void *)(type + py->type_flags)) ||
	    !(flags & PY_TPFLAGS_UNICODE_SUBCLASS))
		return 0;
	if (bpf_probe_read_user(&state, sizeof(state), (void *)(obj + py->str_state)) ||
	    bpf_probe_read_user(&len, sizeof(len), (void *)(obj + py->str_length)))
		return 0;
	k = (state >> 2) & 7;
	if (k != 1 && k != 2 && k != 4)
		return 0;
	if (state & (1 << 5)) /* compact */
		data = obj + ((state & (1 << 6)) ? py->str_ascii_data : py->str_compact_data);
	else
		data = py_ptr(obj + py->str_legacy_data);
	if (!data)
		return 0;
	n = (len < 501 ? len : 501) * k;
	if (n > FH_PY_STR_BYTES)
		n = FH_PY_STR_BYTES;
	if (n && bpf_probe_read_user(dst, n, (void *)data))
		return 0;
	/* Only a str read whole says what it is: kind 0 is unreadable. */
	*kind = k;
	*length = len;
	return n;
}

static __always_inline void py_send_code(const struct fh_py_offsets *py, __u64 code,
					 __u64 event_id)
{
	__u32 zero = 0;
	struct fh_py_code_record *rec = bpf_map_lookup_elem(&py_code_scratch, &zero);
	__u64 table, size = 0, n;
	__u32 off, got;

	if (!rec)
		return;
	rec->hdr.kind = FH_REC_PY_CODE;
	rec->hdr.event_id = event_id;
	rec->code = code;
	rec->flags = 0;
	rec->firstlineno = 0;
	bpf_probe_read_user(&rec->firstlineno, sizeof(rec->firstlineno),
			    (void *)(code + py->code_firstlineno));

	got = py_read_str(py, py_ptr(code + py->code_filename), rec->data, &rec->filename_length,
			  &rec->filename_kind);
	if (got > FH_PY_STR_BYTES)
		got = FH_PY_STR_BYTES;
	if (rec->filename_kind && (got || !rec->filename_length))
		rec->flags |= FH_PY_CODE_FILENAME;
	rec->filename_bytes = got;
	off = got;

	got = py_read_str(py, py_ptr(code + py->code_name), rec->data + off, &rec->name_length,
			  &rec->name_kind);
	if (got > FH_PY_STR_BYTES)
		got = FH_PY_STR_BYTES;
	if (rec->name_kind && (got || !rec->name_length))
		rec->flags |= FH_PY_CODE_NAME;
	rec->name_bytes = got;
	off += got;

	rec->linetable_bytes = 0;
	rec->linetable_size = 0;
	table = py_ptr(code + py->code_linetable);
	if (table && !bpf_probe_read_user(&size, sizeof(size), (void *)(table + py->bytes_size)) &&
	    (__s64)size >= 0) {
		rec->linetable_size = size;
		n = size < FH_PY_LINETABLE_BYTES ? size : FH_PY_LINETABLE_BYTES;
		if (off > 2 * FH_PY_STR_BYTES)
			off = 2 * FH_PY_STR_BYTES;
		if (n == 0 || !bpf_probe_read_user(rec->data + off, n,
						   (void *)(table + py->bytes_data))) {
			rec->linetable_bytes = n;
			rec->flags |= FH_PY_CODE_LINETABLE;
			off += n;
		}
	}
	rec->hdr.size = sizeof(*rec) - sizeof(rec->data) + off;
	if (off > sizeof(rec->data))
		return;
	if (bpf_ringbuf_output(&records, rec, sizeof(*rec) - sizeof(rec->data) + off,
			       BPF_RB_NO_WAKEUP))
		__sync_fetch_and_add(&counters.py_lost, 1);
}

struct py_frame_walk {
	__u64 frame;
	__u64 event_id;
	struct py_loop loop;
	__u32 n;
	__u32 flags;
	__u32 build;
};

/*
 * One frame of a thread's chain: a global function, verified once, alone.
 * Inlined in the loop's callback, the verifier explored each frame's paths
 * again for every state the two nested loops could be in (274,000
 * instructions, 0.6 s a signal program on kernel 6.18).
 */
__noinline int py_frame_visit(struct py_frame_walk *w, __u32 i)
{
	const struct fh_py_offsets *py;
	struct fh_py_thread_record *rec;
	struct fh_py_frame *f;
	__u32 zero = 0;
	__u64 code, idx;

	if (!w)
		return 1;
	py = py_build(w->build);
	if (!w->frame || !py)
		return 1;
	if (i >= FH_PY_MAX_FRAMES) {
		w->flags |= FH_PY_THREAD_MORE_FRAMES;
		return 1;
	}
	rec = bpf_map_lookup_elem(&py_thread_scratch, &zero);
	if (!rec)
		return 1;
	/* The mask in asm: the compiler would drop it as redundant after the
	 * check above, and the verifier needs it to bound the index. */
	idx = i;
	asm volatile("%0 &= %1" : "+r"(idx) : "i"(FH_PY_MAX_FRAMES - 1));
	f = &rec->frames[idx];
	code = py_ptr(w->frame + py->frame_code);
	if (py->flags & FH_PY_TAGGED_EXECUTABLE)
		code &= ~7ULL;
	f->code = code;
	f->lasti = -1;
	f->owner = 0;
	f->flags = 0;
	if (py->frame_kind == FH_PY_FRAME_OBJECT) {
		__s32 lasti;

		/* A failed read zeroes its buffer: -1 (unknown), not 0. */
		if (!bpf_probe_read_user(&lasti, sizeof(lasti), (void *)(w->frame + py->frame_lasti)))
			f->lasti = lasti;
	} else {
		__u64 instr = py_ptr(w->frame + py->frame_instr_ptr);
		__s64 index = ((__s64)instr - (__s64)(code + py->code_adaptive)) >> 1;

		if (instr && index >= -1 && index < (1 << 24))
			f->lasti = (__s32)index;
		/* 3.11: is_entry and owner side by side, in one read. */
		__u8 b[2] = {};

		if (py_has(py->frame_is_entry)) {
			if (!bpf_probe_read_user(b, 2, (void *)(w->frame + py->frame_is_entry))) {
				f->owner = b[1];
				f->flags = b[0] ? FH_PY_FRAME_ENTRY : 0;
			}
		} else if (!bpf_probe_read_user(b, 1, (void *)(w->frame + py->frame_owner))) {
			f->owner = b[0];
		}
	}
	w->n = i + 1;
	/* Shim frames (owner >= owner_skip_min) carry no code of interest. */
	if (code && !(py_has(py->owner_skip_min) && f->owner >= py->owner_skip_min) &&
	    py_first_sight(code, w->event_id))
		py_send_code(py, code, w->event_id);
	w->frame = py_ptr(w->frame + py->frame_back);
	if (py_loops(&w->loop, w->frame)) {
		w->flags |= FH_PY_THREAD_FRAME_LOOP;
		return 1;
	}
	return 0;
}

static long py_frame_step(__u32 i, void *ctx)
{
	return py_frame_visit(ctx, i) ? 1 : 0;
}

struct py_thread_walk {
	__u64 tstate;
	__u64 event_id;
	__u64 tss; /* the current thread state, from the hit thread's TSS */
	struct py_loop loop;
	__u32 index;
	__u32 gc;
	__u32 build;
	__u32 tss_read; /* tss was read (it may be 0: the thread has none) */
};

/* One thread state and its frames: global, verified once, like a frame. */
__noinline int py_thread_visit(struct py_thread_walk *w)
{
	const struct fh_py_offsets *py;
	struct fh_py_thread_record *rec;
	struct py_frame_walk fw = {};
	__u32 zero = 0;
	__u64 size, next;
	bool loops;

	if (!w)
		return 1;
	py = py_build(w->build);
	if (!w->tstate || !py)
		return 1;
	rec = bpf_map_lookup_elem(&py_thread_scratch, &zero);
	if (!rec)
		return 1;
	rec->hdr.kind = FH_REC_PY_THREAD;
	rec->hdr.event_id = w->event_id;
	rec->tstate = w->tstate;
	rec->thread_id = py_ptr(w->tstate + py->tstate_thread_id);
	rec->native_thread_id = 0;
	if (py_has(py->tstate_native_thread_id))
		bpf_probe_read_user(&rec->native_thread_id, sizeof(rec->native_thread_id),
				    (void *)(w->tstate + py->tstate_native_thread_id));
	rec->index = w->index;
	rec->flags = w->gc ? FH_PY_THREAD_GC : 0;
	if (w->tss_read)
		rec->flags |= FH_PY_THREAD_TSS_READ | (w->tstate == w->tss ? FH_PY_THREAD_CURRENT : 0);

	if (py->frame_kind == FH_PY_FRAME_OBJECT)
		fw.frame = py_ptr(w->tstate + py->tstate_frame);
	else if (py_has(py->tstate_current_frame))
		fw.frame = py_ptr(w->tstate + py->tstate_current_frame);
	else
		fw.frame = py_ptr(py_ptr(w->tstate + py->tstate_cframe) + py->cframe_current_frame);
	fw.event_id = w->event_id;
	fw.build = w->build;
	fw.loop.kept = fw.frame;
	bpf_loop(FH_PY_MAX_FRAMES + 1, py_frame_step, &fw, 0);

	rec = bpf_map_lookup_elem(&py_thread_scratch, &zero);
	if (!rec)
		return 1;
	rec->nframes = fw.n;
	rec->flags |= fw.flags;
	/* The next thread state, before this record goes: the list may loop. */
	next = py_ptr(w->tstate + py->tstate_next);
	loops = py_loops(&w->loop, next);
	if (loops)
		rec->flags |= FH_PY_THREAD_LIST_LOOP;
	size = sizeof(*rec) - sizeof(rec->frames) + (__u64)fw.n * sizeof(rec->frames[0]);
	if (size > sizeof(*rec))
		size = sizeof(*rec);
	rec->hdr.size = size;
	if (bpf_ringbuf_output(&records, rec, size, BPF_RB_NO_WAKEUP))
		__sync_fetch_and_add(&counters.py_lost, 1);

	w->tstate = next;
	w->index++;
	return loops ? 1 : 0;
}

static long py_thread_step(__u32 i, void *ctx)
{
	return py_thread_visit(ctx) ? 1 : 0;
}

#include "python_sys.bpf.h"

/*
 * The thread state faulthandler takes for the current one: what the TSS of
 * the thread hit holds for _PyRuntime's autoTSSkey
 * (PyGILState_GetThisThreadState()), from its pthread_t (glibc's layout,
 * fh/python.h).  Returned with bit 0 set when it could be read (and names
 * that thread), even if it is 0 (a thread without a Python thread state);
 * 0 when not.  A global function: verified once, its answer a plain number
 * to the walk that follows (no more paths to verify there).
 */
__noinline __u64 py_tss_tstate(__u32 build, __u64 runtime, __u64 fs_base)
{
	const struct fh_py_offsets *py = py_build(build);
	__u64 at, tstate = 0;
	__s32 initialized = 0;
	__u32 key = 0;

	if (!py || !fs_base || !py_has(py->runtime_autotss_key) || !py_has(py->tstate_interp) ||
	    (py->flags & FH_PY_RUNTIME_IS_INTERP_HEAD))
		return 0;
	at = runtime + py->runtime_autotss_key;
	if (bpf_probe_read_user(&initialized, sizeof(initialized), (void *)at) || !initialized ||
	    bpf_probe_read_user(&key, sizeof(key), (void *)(at + 4)) || key >= FH_GLIBC_TSS_KEYS)
		return 0;
	at = fs_base + FH_GLIBC_TSS_DATA + FH_GLIBC_TSS_STRIDE * (__u64)key;
	if (bpf_probe_read_user(&tstate, sizeof(tstate), (void *)at) || (tstate & 7))
		return 0;
	if (tstate && py_ptr(tstate + py->tstate_thread_id) != fs_base)
		return 0; /* not this thread's: not glibc's layout */
	return tstate | 1;
}

/*
 * Walk the threads of the interpreter faulthandler dumps (current's mm is
 * the target's): the one of the current thread state, when the thread hit
 * has one (a subinterpreter's, when it runs one), else the main one; and
 * for a fatal signal the extension modules and the standard library's
 * names, of the main interpreter (faulthandler's, enabled there).
 */
__noinline int capture_python(__u64 event_id, __u32 fatal, __u64 hit_fs_base)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	const struct fh_py_offsets *py;
	struct py_thread_walk w = {};
	struct fh_py_proc proc, *p;
	__u64 interp, main, runtime, tss;
	__s32 gc = 0;

	if (!py_walk)
		return 0;
	p = bpf_map_lookup_elem(&py_procs, &tgid);
	if (!p || !p->runtime)
		return 0;
	proc = *p; /* userspace may change it meanwhile */
	py = py_build(proc.build);
	if (!py || !py->version)
		return 0;
	runtime = proc.runtime;
	if (py->flags & FH_PY_RUNTIME_IS_INTERP_HEAD) {
		main = py_ptr(runtime);
	} else {
		/* interpreters.main follows interpreters.head */
		main = py_ptr(runtime + py->runtime_interpreters_head + 8);
		if (!main)
			main = py_ptr(runtime + py->runtime_interpreters_head);
	}
	tss = py_tss_tstate(proc.build, runtime, hit_fs_base);
	w.tss = tss & ~7ULL;
	w.tss_read = tss & 1;
	/* A thread state at 0 reads nothing: the main interpreter. */
	interp = py_ptr(w.tss + py->tstate_interp);
	if (!interp)
		interp = main;
	if (!interp)
		return 0;
	if (py_has(py->interp_gc_collecting))
		bpf_probe_read_user(&gc, sizeof(gc), (void *)(interp + py->interp_gc_collecting));
	w.tstate = py_ptr(interp + py->interp_threads_head);
	w.loop.kept = w.tstate;
	w.event_id = event_id;
	w.gc = gc != 0;
	w.build = proc.build;
	bpf_loop(FH_PY_MAX_THREADS, py_thread_step, &w, 0);
	/* Only a fatal error's text lists the extension modules. */
	if (fatal)
		capture_py_extensions(proc.build, main, proc.module_type, event_id);
	return 0;
}
