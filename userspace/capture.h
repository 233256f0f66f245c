#pragma once

#include "records.h"

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>

struct fh_bpf;
struct ring_buffer;
struct fh_py_offsets;

namespace fh {

struct CaptureConfig {
	pid_t tgid = 0;
	uint64_t stack_size = 0; // bytes per thread, a multiple of the page size
	uint32_t max_threads = 0;
	uint32_t ring_threads = 0; // threads whose records the ring holds at once
	uint64_t sig_mask = 0; // bit (sig - 1): capture sig
	bool capture_handled = false; // also signals the target handles
	int user_signal = 0;	      // dump on it whatever its disposition; 0: none
	uint64_t py_runtime = 0;      // the Python runtime's address; 0: not Python
	const struct fh_py_offsets *py_offsets = nullptr;
	bool verbose = false;  // libbpf's messages on stderr
};

struct Counters {
	uint64_t events = 0;
	uint64_t events_lost = 0;
	uint64_t ends_lost = 0;
	uint64_t threads_lost = 0;
	uint64_t maps_lost = 0;
	uint64_t senders_lost = 0;
	uint64_t py_lost = 0;	  // Python thread or code records without ring room
	uint64_t unassembled = 0; // records that arrived outside consume()
};

// Checks, before loading anything, that this process may load BPF programs
// and that the kernel has what the programs need; throws an Error that says
// what is missing.
void probe_support();

// The kernel half of probe_support(): the tracepoints and kfuncs the
// programs use, looked up in the kernel BTF at btf_path.
void probe_kernel(const std::string &btf_path);

// The loaded and attached BPF programs and their ring buffer.
class Capture {
public:
	explicit Capture(const CaptureConfig &cfg);
	~Capture();
	Capture(const Capture &) = delete;
	Capture &operator=(const Capture &) = delete;

	// File descriptor that becomes readable when records are waiting.
	int fd() const;

	// Hand every waiting record to the assembler.
	void consume(Assembler &assembler, Assembler::Output &out);

	Counters counters() const;

	// Ask for a FH_REC_MAPS record at the next executable mapping: call
	// before reading the maps again.
	void rearm_maps_notify();

private:
	static int on_record(void *ctx, void *data, size_t size);
	void prefault_ring();

	struct fh_bpf *skel_ = nullptr;
	struct ring_buffer *ring_ = nullptr;
	Assembler *assembler_ = nullptr;
	Assembler::Output *out_ = nullptr;
	uint64_t unassembled_ = 0;
};

} // namespace fh
