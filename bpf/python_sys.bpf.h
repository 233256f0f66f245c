/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * What a fatal error's "Extension modules" line needs (3.10+), read at the
 * signal from the main interpreter, as faulthandler reads it: sys.modules,
 * in order, and sys.stdlib_module_names as it is then (a program may have
 * replaced it).  Userspace leaves out the modules the set names.
 *
 * Included by python.bpf.h.  Target memory is untrusted: every read is
 * checked, every walk bounded (FH_PY_MAX_MODULES entries of sys.modules,
 * FH_PY_SYSDICT_ENTRIES of sys.__dict__, FH_PY_STDLIB_SLOTS of the set).
 */

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct fh_py_module_record);
} py_module_scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct fh_py_stdlib_record);
} py_stdlib_scratch SEC(".maps");

/* The frozenset's table, read PY_SLOT_CHUNK slots (key, hash) at a time. */
#define PY_SLOT_CHUNK 256

/* A name's first bytes: a str's head and, for a short ASCII one, all of it. */
#define PY_NAME_READ 112

struct py_slots {
	__u64 slot[2 * PY_SLOT_CHUNK];
	__u8 name[PY_NAME_READ];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct py_slots);
} py_slots_scratch SEC(".maps");

/* PyModuleObject.md_def and PyModuleDef.m_methods, 3.10 to 3.13. */
#define PY_MODULE_MD_DEF 24
#define PY_MODULEDEF_METHODS 64
/* PyTypeObject.tp_name and tp_base; PySetObject.mask and table (3.10+). */
#define PY_TYPE_NAME 24
#define PY_TYPE_BASE 256
#define PY_SET_MASK 32
#define PY_SET_TABLE 40
#define PY_TYPE_DEPTH 4 /* a subclass of frozenset, this many bases deep */

/* The entries of a combined dict (one of a module's): where and how laid out. */
struct py_dict_walk {
	__u64 entries;
	__u64 n;
	__u64 event_id;
	__u64 module_type;
	__u32 build;
	__u32 reserved;
	__u32 entry_size;
	__u32 key_off;
	__u32 value_off;
	__u32 found;
	__u64 value; /* py_sysdict_step: the value of the key sought */
};

static __always_inline bool py_dict_layout(const struct fh_py_offsets *py, __u64 dict,
					   struct py_dict_walk *w)
{
	__u64 keys = dict ? py_ptr(dict + 32) : 0; /* ma_keys */

	if (!keys || py_ptr(dict + 40)) /* ma_values: a split table */
		return false;
	if (((py->version >> 16) & 0xff) == 10) {
		/* dk_size, then dk_indices at 40 sized by dk_size */
		__u64 size = py_ptr(keys + 8), ib;

		ib = size <= 0xff ? 1 : size <= 0xffff ? 2 : size <= 0xffffffffULL ? 4 : 8;
		w->n = py_ptr(keys + 32);
		w->entries = keys + 40 + size * ib;
		w->entry_size = 24; /* hash, key, value */
		w->key_off = 8;
		w->value_off = 16;
	} else {
		__u8 log2_index_bytes = 0, kind = 0;

		bpf_probe_read_user(&log2_index_bytes, 1, (void *)(keys + 9));
		bpf_probe_read_user(&kind, 1, (void *)(keys + 10));
		if (log2_index_bytes > 40)
			return false;
		w->n = py_ptr(keys + 24);
		w->entries = keys + 32 + (1ULL << log2_index_bytes);
		if (kind == 0) { /* DICT_KEYS_GENERAL: hash, key, value */
			w->entry_size = 24;
			w->key_off = 8;
			w->value_off = 16;
		} else {	 /* unicode keys: key, value */
			w->entry_size = 16;
			w->key_off = 0;
			w->value_off = 8;
		}
	}
	return true;
}

/*
 * sys.modules, in order: the entries faulthandler's "Extension modules" line
 * lists (a module whose definition has methods).
 */
__noinline int py_module_visit(struct py_dict_walk *w, __u32 i)
{
	const struct fh_py_offsets *py;
	struct fh_py_module_record *rec;
	__u64 entry, value, def, size;
	__u32 zero = 0;

	if (!w)
		return 1;
	py = py_build(w->build);
	if (i >= w->n || !py)
		return 1;
	entry = w->entries + (__u64)i * w->entry_size;
	value = py_ptr(entry + w->value_off);
	if (!value || py_ptr(value + py->object_type) != w->module_type)
		return 0;
	def = py_ptr(value + PY_MODULE_MD_DEF);
	if (!def || !py_ptr(def + PY_MODULEDEF_METHODS))
		return 0;
	rec = bpf_map_lookup_elem(&py_module_scratch, &zero);
	if (!rec)
		return 1;
	rec->hdr.kind = FH_REC_PY_MODULE;
	rec->hdr.event_id = w->event_id;
	rec->index = w->found++;
	rec->reserved = 0;
	rec->bytes = py_read_str(py, py_ptr(entry + w->key_off), rec->data, &rec->length,
				 &rec->kind);
	size = sizeof(*rec) - sizeof(rec->data) + rec->bytes;
	if (size > sizeof(*rec))
		size = sizeof(*rec);
	rec->hdr.size = size;
	if (bpf_ringbuf_output(&records, rec, size, BPF_RB_NO_WAKEUP))
		__sync_fetch_and_add(&counters.py_lost, 1);
	return 0;
}

static long py_module_step(__u32 i, void *ctx)
{
	return py_module_visit(ctx, i) ? 1 : 0;
}

/* The extension modules found: 0 when there are none (or no sys.modules). */
static __always_inline __u32 capture_py_modules(const struct fh_py_offsets *py, __u32 build,
						__u64 module_type, __u64 interp, __u64 event_id)
{
	struct py_dict_walk w = {};

	if (!py_has(py->interp_modules) || !module_type || ((py->version >> 16) & 0xff) < 10)
		return 0;
	if (!py_dict_layout(py, py_ptr(interp + py->interp_modules), &w))
		return 0;
	if (w.n > FH_PY_MAX_MODULES)
		w.n = FH_PY_MAX_MODULES;
	w.event_id = event_id;
	w.module_type = module_type;
	w.build = build;
	bpf_loop(FH_PY_MAX_MODULES, py_module_step, &w, 0);
	return w.found;
}

static const char py_stdlib_key[] = "stdlib_module_names";
static const char py_frozenset_name[] = "frozenset";

/*
 * A str's head as every CPython 3 lays it out (ob_type at 8, length at 16,
 * the state at 32): one read for what py_read_str reads in three.
 */
struct py_str_head {
	__u64 refcnt;
	__u64 type;
	__u64 length;
	__u64 hash;
	__u32 state;
	__u32 reserved;
};

static __always_inline bool py_str_head_layout(const struct fh_py_offsets *py)
{
	return py->object_type == 8 && py->str_length == 16 && py->str_state == 32;
}

/*
 * Whether type is a str type (tp_flags): *known remembers the last one that
 * was, so a walk of many names reads it once.
 */
static __always_inline bool py_str_type(const struct fh_py_offsets *py, __u64 type, __u64 *known)
{
	__u64 flags = 0;

	if (type && type == *known)
		return true;
	if (!type || bpf_probe_read_user(&flags, sizeof(flags), (void *)(type + py->type_flags)) ||
	    !(flags & PY_TPFLAGS_UNICODE_SUBCLASS))
		return false;
	*known = type;
	return true;
}

/* Where a compact str's characters are, or a legacy one's; 0: unknown. */
static __always_inline __u64 py_str_data(const struct fh_py_offsets *py, __u64 obj, __u32 state)
{
	if (state & (1 << 5)) /* compact */
		return obj + ((state & (1 << 6)) ? py->str_ascii_data : py->str_compact_data);
	return py_ptr(obj + py->str_legacy_data);
}

/*
 * py_read_str for a walk of many names: a short ASCII str (a module name) in
 * one read, through buf (PY_NAME_READ bytes), any other with its head in
 * one read; the str type checked once (*str_type).
 */
static __always_inline __u32 py_read_name(const struct fh_py_offsets *py, __u64 obj, __u8 *dst,
					  __u64 *length, __u32 *kind, __u64 *str_type, __u8 *buf)
{
	struct py_str_head *h = (struct py_str_head *)buf;
	__u64 data, n, at = py->str_ascii_data;
	bool whole = true;
	__u32 k;

	if (!py_str_head_layout(py) || !obj)
		return py_read_str(py, obj, dst, length, kind);
	/* The str may end a mapping: then its head alone. */
	if (bpf_probe_read_user(buf, PY_NAME_READ, (void *)obj)) {
		whole = false;
		if (bpf_probe_read_user(buf, sizeof(*h), (void *)obj))
			return py_read_str(py, obj, dst, length, kind);
	}
	*length = 0;
	*kind = 0;
	k = (h->state >> 2) & 7;
	if ((k != 1 && k != 2 && k != 4) || !py_str_type(py, h->type, str_type))
		return 0;
	if (whole && (h->state & (3 << 5)) == (3 << 5) && at >= sizeof(*h) && at <= 48 &&
	    h->length <= PY_NAME_READ - at) {
		/* Compact ASCII, read already. */
		n = h->length;
		asm volatile("" : "+r"(n));
		if (n > PY_NAME_READ - sizeof(*h))
			return 0;
		if (n && bpf_probe_read_kernel(dst, n, buf + at))
			return 0;
		*kind = 1;
		*length = n;
		return n;
	}
	data = py_str_data(py, obj, h->state);
	n = (h->length < 501 ? h->length : 501) * k;
	if (n > FH_PY_STR_BYTES)
		n = FH_PY_STR_BYTES;
	if (!data || (n && bpf_probe_read_user(dst, n, (void *)data)))
		return 0;
	*kind = k;
	*length = h->length;
	return n;
}

/* Whether obj is the str "stdlib_module_names" (faulthandler compares
 * sys.__dict__'s keys with it). */
static __always_inline bool py_is_stdlib_key(const struct fh_py_offsets *py, __u64 obj,
					     __u64 *str_type)
{
	struct py_str_head h = {};
	char s[sizeof(py_stdlib_key)] = {};
	__u64 data;

	if (!obj)
		return false;
	if (py_str_head_layout(py)) {
		if (bpf_probe_read_user(&h, sizeof(h), (void *)obj))
			return false;
	} else if (bpf_probe_read_user(&h.length, sizeof(h.length), (void *)(obj + py->str_length)) ||
		   bpf_probe_read_user(&h.state, sizeof(h.state), (void *)(obj + py->str_state))) {
		return false;
	} else {
		h.type = py_ptr(obj + py->object_type);
	}
	if (h.length != sizeof(py_stdlib_key) - 1 || ((h.state >> 2) & 7) != 1 ||
	    !py_str_type(py, h.type, str_type))
		return false;
	data = py_str_data(py, obj, h.state);
	if (!data || bpf_probe_read_user(s, sizeof(s) - 1, (void *)data))
		return false;
	for (int i = 0; i < sizeof(py_stdlib_key) - 1; i++)
		if (s[i] != py_stdlib_key[i])
			return false;
	return true;
}

__noinline int py_sysdict_visit(struct py_dict_walk *w, __u32 i)
{
	const struct fh_py_offsets *py;
	__u64 entry;

	if (!w)
		return 1;
	py = py_build(w->build);
	if (i >= w->n || !py)
		return 1;
	entry = w->entries + (__u64)i * w->entry_size;
	if (!py_is_stdlib_key(py, py_ptr(entry + w->key_off), &w->module_type /* a str type */))
		return 0;
	w->value = py_ptr(entry + w->value_off);
	w->found = 1;
	return 1;
}

static long py_sysdict_step(__u32 i, void *ctx)
{
	return py_sysdict_visit(ctx, i) ? 1 : 0;
}

/* Whether obj is a frozenset (or of a subclass of it, a few bases deep):
 * PyFrozenSet_Check(), by the type's name.  1: it is; 0: it is not; -1: a
 * name could not be read (a page not present: a forked child has no page
 * table entries yet for the read-only file pages its parent had read). */
static __always_inline int py_is_frozenset(const struct fh_py_offsets *py, __u64 obj)
{
	__u64 type = obj ? py_ptr(obj + py->object_type) : 0;
	int unknown = 0;

	for (int depth = 0; depth < PY_TYPE_DEPTH && type; depth++) {
		char name[sizeof(py_frozenset_name)] = {};
		__u64 at = py_ptr(type + PY_TYPE_NAME);
		bool same = true;

		if (at && !bpf_probe_read_user(name, sizeof(name), (void *)at)) {
			for (int i = 0; i < sizeof(name); i++)
				if (name[i] != py_frozenset_name[i])
					same = false;
			if (same)
				return 1;
		} else {
			unknown = 1;
		}
		type = py_ptr(type + PY_TYPE_BASE);
	}
	return unknown ? -1 : 0;
}

struct py_stdlib_walk {
	__u64 table;
	__u64 slots;
	__u64 event_id;
	__u64 str_type; /* a type known to be str's */
	__u32 build;
	__u32 failed;
};

/* Send what the scratch record holds, with this status; it starts empty again. */
static __always_inline void py_stdlib_send(struct fh_py_stdlib_record *rec, __u64 event_id,
					   __u32 status)
{
	__u64 size;

	rec->hdr.kind = FH_REC_PY_STDLIB;
	rec->hdr.event_id = event_id;
	rec->status = status;
	rec->reserved = 0;
	size = sizeof(*rec) - sizeof(rec->data) + rec->bytes;
	if (size > sizeof(*rec))
		size = sizeof(*rec);
	rec->hdr.size = size;
	if (bpf_ringbuf_output(&records, rec, size, BPF_RB_NO_WAKEUP))
		__sync_fetch_and_add(&counters.py_lost, 1);
	rec->bytes = 0;
	rec->names = 0;
}

/* One slot of the frozenset's table: a str there is one name more. */
__noinline int py_stdlib_visit(struct py_stdlib_walk *w, __u32 i)
{
	const struct fh_py_offsets *py;
	struct fh_py_stdlib_record *rec;
	struct py_slots *slots;
	__u64 key, length = 0, off, n;
	__u32 zero = 0, kind = 0, got;

	if (!w)
		return 1;
	py = py_build(w->build);
	if (i >= w->slots || !py)
		return 1;
	rec = bpf_map_lookup_elem(&py_stdlib_scratch, &zero);
	slots = bpf_map_lookup_elem(&py_slots_scratch, &zero);
	if (!rec || !slots)
		return 1;
	if ((i & (PY_SLOT_CHUNK - 1)) == 0) {
		n = w->slots - i;
		if (n > PY_SLOT_CHUNK)
			n = PY_SLOT_CHUNK;
		/* The bound where the verifier sees it, not hoisted past. */
		asm volatile("" : "+r"(n));
		if (n > PY_SLOT_CHUNK)
			n = PY_SLOT_CHUNK;
		if (bpf_probe_read_user(slots->slot, n * 16, (void *)(w->table + 16 * (__u64)i))) {
			w->failed = 1;
			return 1;
		}
	}
	key = slots->slot[2 * (i & (PY_SLOT_CHUNK - 1))];
	if (!key)
		return 0;
	/* Names start 8-aligned; the record is sent once past FH_PY_STDLIB_BYTES. */
	off = rec->bytes & (FH_PY_STDLIB_BYTES - 8);
	got = py_read_name(py, key, &rec->data[off + 8], &length, &kind, &w->str_type,
			   slots->name);
	if (!kind)
		return 0; /* not a str (the dummy of a deleted entry): faulthandler skips it too */
	if (got > FH_PY_STR_BYTES)
		got = FH_PY_STR_BYTES;
	rec->data[off] = kind;
	rec->data[off + 1] = 0;
	*(__u16 *)&rec->data[off + 2] = got;
	*(__u32 *)&rec->data[off + 4] = length > 0xffffffffULL ? 0xffffffff : (__u32)length;
	rec->bytes = (off + 8 + got + 7) & ~7ULL;
	rec->names++;
	if (rec->bytes >= FH_PY_STDLIB_BYTES)
		py_stdlib_send(rec, w->event_id, FH_PY_STDLIB_PART);
	return 0;
}

static long py_stdlib_step(__u32 i, void *ctx)
{
	return py_stdlib_visit(ctx, i) ? 1 : 0;
}

/*
 * sys.stdlib_module_names of interp, as faulthandler finds it: the value of
 * the key "stdlib_module_names" in sys.__dict__, if a frozenset (else
 * nothing is left out), and every str in its table.
 */
static __always_inline void capture_py_stdlib(const struct fh_py_offsets *py, __u32 build,
					      __u64 interp, __u64 event_id)
{
	struct py_dict_walk d = {};
	struct py_stdlib_walk w = {};
	struct fh_py_stdlib_record *rec;
	__u32 zero = 0;
	__s64 mask = -1;
	int frozen;

	if (!py_has(py->interp_sysdict))
		return;
	rec = bpf_map_lookup_elem(&py_stdlib_scratch, &zero);
	if (!rec)
		return;
	rec->bytes = 0;
	rec->names = 0;
	if (!py_dict_layout(py, py_ptr(interp + py->interp_sysdict), &d)) {
		py_stdlib_send(rec, event_id, FH_PY_STDLIB_UNREADABLE);
		return;
	}
	if (d.n > FH_PY_SYSDICT_ENTRIES)
		d.n = FH_PY_SYSDICT_ENTRIES;
	d.build = build;
	bpf_loop(FH_PY_SYSDICT_ENTRIES, py_sysdict_step, &d, 0);
	frozen = d.found ? py_is_frozenset(py, d.value) : 0;
	if (frozen <= 0) {
		/* Not known to be one: userspace's names of the build, if any. */
		py_stdlib_send(rec, event_id,
			       frozen < 0 ? FH_PY_STDLIB_UNREADABLE : FH_PY_STDLIB_ABSENT);
		return;
	}
	w.table = py_ptr(d.value + PY_SET_TABLE);
	if (!w.table || bpf_probe_read_user(&mask, sizeof(mask), (void *)(d.value + PY_SET_MASK)) ||
	    mask < 0 || mask >= FH_PY_STDLIB_SLOTS) {
		py_stdlib_send(rec, event_id, FH_PY_STDLIB_UNREADABLE);
		return;
	}
	w.slots = mask + 1;
	w.event_id = event_id;
	w.build = build;
	bpf_loop(FH_PY_STDLIB_SLOTS, py_stdlib_step, &w, 0);
	rec = bpf_map_lookup_elem(&py_stdlib_scratch, &zero);
	if (!rec)
		return;
	if (w.failed)
		rec->bytes = 0;
	py_stdlib_send(rec, event_id, w.failed ? FH_PY_STDLIB_UNREADABLE : FH_PY_STDLIB_FOUND);
}

/*
 * What a fatal error's text adds, of interp (the main interpreter): the
 * extension modules, and if there are any the standard library's names.  A
 * global function: verified once, apart from the thread walk.
 */
__noinline int capture_py_extensions(__u32 build, __u64 interp, __u64 module_type,
				     __u64 event_id)
{
	const struct fh_py_offsets *py = py_build(build);

	if (py && interp && capture_py_modules(py, build, module_type, interp, event_id))
		capture_py_stdlib(py, build, interp, event_id);
	return 0;
}
