#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace fh {

inline constexpr int kNrRegs = 17; // DWARF numbering, x86-64: rax..r15, rip

// One thread as the kernel captured it.
struct ThreadCapture {
	uint32_t tid = 0;
	uint32_t flags = 0; // FH_THREAD_*
	uint64_t pthread_id = 0;
	std::string name;
	std::array<uint64_t, kNrRegs> regs{};
	uint64_t stack_addr = 0;
	std::vector<uint8_t> stack;
	int32_t stack_err = 0;

	bool hit() const;
};

struct Sender {
	uint32_t tgid = 0;
	uint32_t tid = 0;
	uint32_t uid = 0;
	std::string comm;
};

// One capture of a whole process, assembled from its ring-buffer records.
struct Event {
	uint64_t id = 0;
	uint32_t trigger = 0; // FH_TRIGGER_*
	uint32_t tgid = 0;
	uint32_t hit_tid = 0;
	int32_t sig = 0;
	int32_t si_code = 0;
	uint64_t fault_addr = 0;
	std::string comm;
	std::optional<Sender> sender;
	std::vector<ThreadCapture> threads; // kernel order: oldest thread first
	uint32_t threads_skipped = 0;	    // beyond --max-threads
	uint32_t threads_lost = 0;	    // no room in the ring buffer
	bool complete = false;		    // the end record arrived
	uint64_t ktime_start = 0;
	uint64_t ktime_end = 0;
};

} // namespace fh
