#pragma once

#include "capture/event.h"
#include "python/python.h"

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace fh {

// Reads another process's memory (or an image of it).  A read that fails
// returns false; nothing read is trusted.
class MemoryReader {
public:
	virtual ~MemoryReader() = default;
	virtual bool read(uint64_t addr, void *dst, size_t len) = 0;
	// What is read from now on is read anew (a reader that keeps what it
	// read forgets it): the memory may have changed.
	virtual void refresh() {}
};

// A live process, through process_vm_readv: no ptrace, no stop.  Small
// reads are served from aligned blocks read whole (a walk reads a field at
// a time: thousands of system calls for a few threads otherwise), kept
// until refresh().
class ProcessMemory : public MemoryReader {
public:
	explicit ProcessMemory(pid_t pid) : pid_(pid) {}
	bool read(uint64_t addr, void *dst, size_t len) override;
	void refresh() override { blocks_.clear(); }

	static constexpr size_t kBlock = 512;

private:
	bool read_direct(uint64_t addr, void *dst, size_t len);
	const uint8_t *block(uint64_t base);

	pid_t pid_;
	// Block address -> its bytes; empty: it could not be read whole.
	std::map<uint64_t, std::vector<uint8_t>> blocks_;
};

// Memory made of byte ranges, for tests.
class ImageMemory : public MemoryReader {
public:
	void add(uint64_t addr, std::vector<uint8_t> bytes) { regions_[addr] = std::move(bytes); }
	bool read(uint64_t addr, void *dst, size_t len) override;

private:
	std::map<uint64_t, std::vector<uint8_t>> regions_;
};

// Which thread a live walk dumps for, as faulthandler.dump_traceback()
// called there: faulthandler dumps the interpreter of that thread's current
// thread state (its TSS), which is the "Current thread".
struct WalkView {
	uint32_t ns_tid = 0; // that thread, in the target's pid namespace; 0: none
	bool main = false;   // it is the main thread (the oldest thread state, for
			     // versions whose thread states hold no TID)
};

// The userspace twin of the kernel's walk (bpf/python.bpf.h): every thread
// state of an interpreter, its frame chain, and each code object's
// filename, name, first line and line table, with the same bounds.  Fills
// ev.py_threads and ev.py_codes.  The interpreter is the main one, or the
// one of the current thread state of view's thread (thread states flagged
// FH_PY_THREAD_TSS_READ, and that one FH_PY_THREAD_CURRENT, once its TSS is
// read).  Used where the process is alive (--dump) and to test walks over
// images of interpreter memory.
void walk_python(MemoryReader &mem, const PythonRuntime &rt, Event &ev,
		 const WalkView &view = {});

// Bounds of a read of sys.stdlib_module_names: sys.__dict__ entries looked
// at (CPython's holds about a hundred), the frozenset's slots (3.13's 300
// names take 1,024), characters of a name.
inline constexpr size_t kSysDictEntries = 512;
inline constexpr uint64_t kStdlibSlots = 8192;
inline constexpr size_t kStdlibNameMax = 64;

// What a read of it cost and found, for a caller that bounds its tries.
struct StdlibRead {
	uint64_t items = 0;  // dict entries and set slots looked at
	bool found = false; // sys.__dict__ had the key
};

// sys.stdlib_module_names (3.10+), as faulthandler prints names (escaped);
// nullopt when it cannot be read (faulthandler then leaves nothing out).
std::optional<std::set<std::string>> stdlib_module_names(MemoryReader &mem,
							 const PythonRuntime &rt,
							 StdlibRead *read = nullptr);

} // namespace fh
