#pragma once

// The ABI between the BPF programs and fh-bpf, pinned: every structure of
// include/fh/ that crosses from one side to the other, by size and by the
// offsets of the fields userspace reads or the programs fill.
//
// Both sides compile the same headers, but with different compilers (clang
// -target bpf, and the C++ compiler here), and the layout is also held
// outside this build: the README documents the records, and the committed
// fuzz seeds (tests/fuzz/corpus, written by make-seeds from these structs)
// hold their bytes.  A field added, moved or resized by mistake (a type
// that is not fixed-width, padding that differs between the compilers)
// breaks silently unless it is caught here: records decoded at the wrong
// offsets (garbage registers, stacks and tracebacks), records dropped as
// malformed by the Assembler's size checks, Python tables refused by the
// kernel (a map value of the wrong size) or walked with the wrong offsets,
// live dumps steered by the wrong control fields, and seeds that no
// longer exercise what they were written for.  Change a layout only on
// purpose: here, in the README and in the seeds (make fuzz-seeds)
// together.

#include "capture/event.h"

#include <linux/types.h>

#include <cstddef>

extern "C" {
#include "fh/counters.h"
#include "fh/live.h"
#include "fh/python.h"
#include "fh/records.h"
}

namespace fh::abi {

// Every record begins with this header (the Assembler dispatches on kind
// and checks size before anything else).
static_assert(sizeof(fh_record_header) == 16);
static_assert(offsetof(fh_record_header, kind) == 0);
static_assert(offsetof(fh_record_header, size) == 4);
static_assert(offsetof(fh_record_header, event_id) == 8);

static_assert(sizeof(fh_event_record) == 232);
static_assert(offsetof(fh_event_record, ktime_ns) == 16);
static_assert(offsetof(fh_event_record, tgid) == 24);
static_assert(offsetof(fh_event_record, sig) == 32);
static_assert(offsetof(fh_event_record, fault_addr) == 40);
static_assert(offsetof(fh_event_record, trigger) == 48);
static_assert(offsetof(fh_event_record, flags) == 52);
static_assert(offsetof(fh_event_record, sender_tgid) == 56);
static_assert(offsetof(fh_event_record, sender_comm) == 72);
static_assert(offsetof(fh_event_record, comm) == 88);
static_assert(offsetof(fh_event_record, uid) == 104);
static_assert(offsetof(fh_event_record, cgroup_id) == 120);
static_assert(offsetof(fh_event_record, sender_kstack_len) == 128);
static_assert(offsetof(fh_event_record, sender_kstack) == 136);

static_assert(sizeof(fh_cmdline_record) == 24 + FH_CMDLINE_MAX);
static_assert(offsetof(fh_cmdline_record, len) == 16);
static_assert(offsetof(fh_cmdline_record, full_len) == 20);
static_assert(offsetof(fh_cmdline_record, data) == 24);

// The stack bytes follow the fixed part: hdr.size is sizeof + stack_len.
static_assert(sizeof(fh_thread_record) == 208);
static_assert(offsetof(fh_thread_record, tid) == 16);
static_assert(offsetof(fh_thread_record, flags) == 20);
static_assert(offsetof(fh_thread_record, fs_base) == 24);
static_assert(offsetof(fh_thread_record, comm) == 32);
static_assert(offsetof(fh_thread_record, regs) == 48);
static_assert(offsetof(fh_thread_record, stack_addr) == 184);
static_assert(offsetof(fh_thread_record, stack_len) == 192);
static_assert(offsetof(fh_thread_record, stack_err) == 196);
static_assert(offsetof(fh_thread_record, ns_tid) == 200);
static_assert(offsetof(fh_thread_record, stack) == 208);
static_assert(FH_NR_REGS == kNrRegs);
static_assert(FH_REG_RSP < FH_NR_REGS && FH_REG_RIP < FH_NR_REGS);

static_assert(sizeof(fh_verdict_record) == 40);
static_assert(offsetof(fh_verdict_record, tgid) == 16);
static_assert(offsetof(fh_verdict_record, verdict) == 20);
static_assert(offsetof(fh_verdict_record, sig) == 24);
static_assert(offsetof(fh_verdict_record, si_code) == 28);
static_assert(offsetof(fh_verdict_record, status) == 32);
static_assert(offsetof(fh_verdict_record, sender_tgid) == 36);
static_assert(sizeof(fh_exit_record) == 32);
static_assert(offsetof(fh_exit_record, tgid) == 16);
static_assert(offsetof(fh_exit_record, ppid) == 20);
static_assert(offsetof(fh_exit_record, status) == 24);
static_assert(sizeof(fh_event_end_record) == 40);
static_assert(offsetof(fh_event_end_record, ktime_ns) == 16);
static_assert(offsetof(fh_event_end_record, nr_threads) == 24);
static_assert(offsetof(fh_event_end_record, threads_skipped) == 28);
static_assert(offsetof(fh_event_end_record, threads_lost) == 32);

static_assert(sizeof(fh_maps_record) == 40);
static_assert(offsetof(fh_maps_record, tgid) == 16);
static_assert(offsetof(fh_maps_record, reason) == 20);
static_assert(offsetof(fh_maps_record, addr) == 24);
static_assert(offsetof(fh_maps_record, len) == 32);

// Python records: a thread state with its frames, a code object, an
// extension module.
static_assert(sizeof(fh_py_frame) == 16);
static_assert(offsetof(fh_py_frame, code) == 0);
static_assert(offsetof(fh_py_frame, lasti) == 8);
static_assert(offsetof(fh_py_frame, owner) == 12);
static_assert(offsetof(fh_py_frame, flags) == 13);
// The programs mask frame indexes with FH_PY_MAX_FRAMES - 1.
static_assert((FH_PY_MAX_FRAMES & (FH_PY_MAX_FRAMES - 1)) == 0);

static_assert(sizeof(fh_py_thread_record) == 48 + 16 * FH_PY_MAX_FRAMES);
static_assert(offsetof(fh_py_thread_record, tstate) == 16);
static_assert(offsetof(fh_py_thread_record, thread_id) == 24);
static_assert(offsetof(fh_py_thread_record, native_thread_id) == 32);
static_assert(offsetof(fh_py_thread_record, index) == 36);
static_assert(offsetof(fh_py_thread_record, nframes) == 40);
static_assert(offsetof(fh_py_thread_record, flags) == 44);
static_assert(offsetof(fh_py_thread_record, frames) == 48);

static_assert(sizeof(fh_py_code_record) == 80 + 2 * FH_PY_STR_BYTES + FH_PY_LINETABLE_BYTES);
static_assert(offsetof(fh_py_code_record, code) == 16);
static_assert(offsetof(fh_py_code_record, firstlineno) == 24);
static_assert(offsetof(fh_py_code_record, flags) == 28);
static_assert(offsetof(fh_py_code_record, filename_length) == 32);
static_assert(offsetof(fh_py_code_record, name_length) == 40);
static_assert(offsetof(fh_py_code_record, linetable_size) == 48);
static_assert(offsetof(fh_py_code_record, filename_kind) == 56);
static_assert(offsetof(fh_py_code_record, name_kind) == 60);
static_assert(offsetof(fh_py_code_record, filename_bytes) == 64);
static_assert(offsetof(fh_py_code_record, name_bytes) == 68);
static_assert(offsetof(fh_py_code_record, linetable_bytes) == 72);
static_assert(offsetof(fh_py_code_record, data) == 80);

static_assert(sizeof(fh_py_module_record) == 40 + FH_PY_STR_BYTES + 4 /* tail padding */);
static_assert(offsetof(fh_py_module_record, index) == 16);
static_assert(offsetof(fh_py_module_record, kind) == 20);
static_assert(offsetof(fh_py_module_record, length) == 24);
static_assert(offsetof(fh_py_module_record, bytes) == 32);
static_assert(offsetof(fh_py_module_record, data) == 40);

// sys.stdlib_module_names: names packed 8-aligned (an 8-byte head each).
static_assert(sizeof(fh_py_stdlib_record) == 32 + FH_PY_STDLIB_BYTES + 2048);
static_assert(offsetof(fh_py_stdlib_record, status) == 16);
static_assert(offsetof(fh_py_stdlib_record, names) == 20);
static_assert(offsetof(fh_py_stdlib_record, bytes) == 24);
static_assert(offsetof(fh_py_stdlib_record, data) == 32);
static_assert((FH_PY_STDLIB_BYTES & (FH_PY_STDLIB_BYTES - 1)) == 0);
static_assert(8 + FH_PY_STR_BYTES <= 2048);

// keepalive.bpf.c's refusals, on their own ring (no record header).
static_assert(sizeof(fh_keepalive_record) == 40);
static_assert(offsetof(fh_keepalive_record, tgid) == 0);
static_assert(offsetof(fh_keepalive_record, tid) == 4);
static_assert(offsetof(fh_keepalive_record, sig) == 8);
static_assert(offsetof(fh_keepalive_record, sender_tgid) == 12);
static_assert(offsetof(fh_keepalive_record, sender_uid) == 16);
static_assert(offsetof(fh_keepalive_record, sender_comm) == 24);

// Map values and keys userspace writes: one interpreter build's offsets
// (py_builds), a file that holds one (py_files), where a process has one
// (py_procs).
static_assert(sizeof(fh_py_offsets) == 168);
static_assert(offsetof(fh_py_offsets, version) == 0);
static_assert(offsetof(fh_py_offsets, frame_kind) == 8);
static_assert(offsetof(fh_py_offsets, runtime_interpreters_head) == 16);
static_assert(offsetof(fh_py_offsets, tstate_next) == 36);
static_assert(offsetof(fh_py_offsets, frame_back) == 64);
static_assert(offsetof(fh_py_offsets, frame_is_entry) == 84);
static_assert(offsetof(fh_py_offsets, code_firstlineno) == 88);
static_assert(offsetof(fh_py_offsets, object_type) == 108);
static_assert(offsetof(fh_py_offsets, bytes_data) == 4 * 35);
static_assert(offsetof(fh_py_offsets, interp_modules) == 144);
static_assert(offsetof(fh_py_offsets, tstate_interp) == 152);
static_assert(offsetof(fh_py_offsets, module_type) == 160);

static_assert(sizeof(fh_py_file_key) == 16);
static_assert(offsetof(fh_py_file_key, ino) == 0);
static_assert(offsetof(fh_py_file_key, size) == 8);

static_assert(sizeof(fh_py_file) == 24);
static_assert(offsetof(fh_py_file, build) == 0);
static_assert(offsetof(fh_py_file, runtime_off) == 8);
static_assert(offsetof(fh_py_file, module_type_off) == 16);

static_assert(sizeof(fh_py_proc) == 24);
static_assert(offsetof(fh_py_proc, build) == 0);
static_assert(offsetof(fh_py_proc, runtime) == 8);
static_assert(offsetof(fh_py_proc, module_type) == 16);

// The programs' .bss, read through the skeleton: the live-dump control
// (userspace stores to it while the programs run: 8-byte fields aligned
// for the atomics of both sides) and the counters, one __u64 each.
static_assert(sizeof(fh_live_tally) == 16);
static_assert(offsetof(fh_live_tally, sent) == 0);
static_assert(offsetof(fh_live_tally, skipped) == 4);
static_assert(offsetof(fh_live_tally, lost) == 8);
static_assert(offsetof(fh_live_tally, wanted) == 12);

static_assert(sizeof(fh_live_control) == 64);
static_assert(offsetof(fh_live_control, tgid) == 56);
static_assert(offsetof(fh_live_control, mode) == 0);
static_assert(offsetof(fh_live_control, trigger) == 4);
static_assert(offsetof(fh_live_control, no_wait) == 8);
static_assert(offsetof(fh_live_control, failed) == 12);
static_assert(offsetof(fh_live_control, event_id) == 16);
static_assert(offsetof(fh_live_control, ktime_end) == 24);
static_assert(offsetof(fh_live_control, samples_pending) == 32);
static_assert(offsetof(fh_live_control, tally) == 40);

#define FH_COUNTER_ONE(name, loss, description) +1
inline constexpr size_t kCounters = 0 FH_COUNTERS(FH_COUNTER_ONE);
#undef FH_COUNTER_ONE
static_assert(sizeof(fh_counters) == 8 * kCounters);

} // namespace fh::abi
