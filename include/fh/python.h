/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Where CPython keeps what a traceback needs, for one interpreter build:
 * filled in by userspace (built-in tables for 3.6-3.12, _Py_DebugOffsets for
 * 3.13+) and handed to the BPF programs that walk thread states and frames.
 *
 * Offsets are bytes from the start of the structure named in the field's
 * prefix; FH_PY_NONE marks a field this version does not have.  Only
 * fixed-width types: the layout is pinned by static_asserts in
 * userspace/capture/abi.h.
 */
#ifndef FH_PYTHON_H
#define FH_PYTHON_H

#define FH_PY_NONE (-1)

/* fh_py_offsets.frame_kind */
#define FH_PY_FRAME_OBJECT 0	  /* <= 3.10: PyFrameObject, f_lasti */
#define FH_PY_FRAME_INTERPRETER 1 /* 3.11+: _PyInterpreterFrame, instruction pointer */

/* fh_py_offsets.flags */
#define FH_PY_TAGGED_EXECUTABLE 0x1 /* 3.14+: f_executable is a tagged _PyStackRef */
#define FH_PY_LASTI_UNITS 0x2	    /* 3.10: f_lasti counts 2-byte code units */
#define FH_PY_RUNTIME_IS_INTERP_HEAD 0x4 /* 3.6: the runtime address is &interp_head */

/*
 * A thread's TSS value for a pthread key below FH_GLIBC_TSS_KEYS, with
 * glibc on x86-64: struct pthread's specific_1stblock[key].data, from the
 * thread's pthread_t (its fs_base).  What PyGILState_GetThisThreadState()
 * returns for the key of _PyRuntime's autoTSSkey (Py_tss_t, the key at +4):
 * the thread state faulthandler takes for the current one.  Checked: the
 * thread state read must name that same pthread_t.
 */
#define FH_GLIBC_TSS_DATA 0x318
#define FH_GLIBC_TSS_STRIDE 16
#define FH_GLIBC_TSS_KEYS 32

struct fh_py_offsets {
	__u32 version; /* PY_VERSION_HEX: 0x030b07f0 for 3.11.7; minor only when unknown */
	__u32 flags;
	__s32 frame_kind;
	__s32 owner_skip_min; /* skip frames whose owner >= this (shims); FH_PY_NONE: none */

	/* _PyRuntime */
	__s32 runtime_interpreters_head;
	__s32 runtime_autotss_key; /* Py_tss_t: the pthread key at +4 */
	/* PyInterpreterState */
	__s32 interp_next;
	__s32 interp_threads_head;
	__s32 interp_gc_collecting;
	/* PyThreadState */
	__s32 tstate_next;
	__s32 tstate_frame;	  /* <= 3.10 */
	__s32 tstate_cframe;	  /* 3.10-3.12 */
	__s32 cframe_current_frame; /* 3.11-3.12 */
	__s32 tstate_current_frame; /* 3.13+ */
	__s32 tstate_thread_id;
	__s32 tstate_native_thread_id;
	/* frames */
	__s32 frame_back;	/* f_back (<= 3.10) or previous (3.11+) */
	__s32 frame_code;	/* f_code or f_executable */
	__s32 frame_lasti;	/* <= 3.10 */
	__s32 frame_instr_ptr;	/* prev_instr (3.11, 3.12) or instr_ptr (3.13+) */
	__s32 frame_owner;	/* 3.11+, one byte */
	__s32 frame_is_entry;	/* 3.11: the frame a C call of the eval loop entered (bool);
				 * frame_owner is the byte after it, read with it */
	/* PyCodeObject */
	__s32 code_firstlineno; /* int */
	__s32 code_filename;
	__s32 code_name;
	__s32 code_linetable;	/* co_lnotab (<= 3.9) or co_linetable */
	__s32 code_adaptive;	/* co_code_adaptive (3.11+) */
	/* objects */
	__s32 object_type;	 /* ob_type */
	__s32 type_flags;	 /* tp_flags */
	__s32 str_length;
	__s32 str_state;
	__s32 str_ascii_data;	 /* compact ASCII: sizeof(PyASCIIObject) */
	__s32 str_compact_data;	 /* compact non-ASCII: sizeof(PyCompactUnicodeObject) */
	__s32 str_legacy_data;	 /* non-compact: the data pointer */
	__s32 bytes_size;
	__s32 bytes_data;
	/* 3.10+: the extension modules faulthandler lists after a fatal error */
	__s32 interp_modules; /* sys.modules (interp->modules, ->imports.modules) */
	__s32 interp_sysdict; /* sys.__dict__ */
	__s32 tstate_interp;  /* PyThreadState.interp */
	__u64 module_type;    /* address of PyModule_Type in the target; 0: unknown */
};

/*
 * The programs' tables of interpreters (maps py_builds, py_files, py_procs):
 * every build met so far by index, the files that hold one, the processes
 * where one is placed.
 */
#define FH_PY_MAX_BUILDS 32
#define FH_PY_MAX_FILES 256
#define FH_PY_MAX_PROCS 16384

/* A file that holds an interpreter, known by inode and size. */
struct fh_py_file_key {
	__u64 ino;
	__u64 size;
};

/* Offsets from the file's first PT_LOAD address (its offset 0 mapped). */
struct fh_py_file {
	__u32 build;
	__u32 reserved;
	__u64 runtime_off;
	__u64 module_type_off; /* 0: unknown */
};

/* Where a process's interpreter is (keyed by tgid). */
struct fh_py_proc {
	__u32 build;
	__u32 reserved;
	__u64 runtime;	   /* _PyRuntime (3.6: interp_head); 0: not placed yet */
	__u64 module_type; /* PyModule_Type; 0: unknown */
};

#endif /* FH_PYTHON_H */
