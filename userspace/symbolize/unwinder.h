#pragma once

#include "process/elf_file.h"
#include "process/mappings.h"
#include "capture/event.h"
#include "report/model.h"

#include <sys/types.h>

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

struct Dwfl;
struct Dwfl_Module;

namespace fh {

struct DwflDeleter {
	void operator()(Dwfl *d) const;
};

// A module's file as its mapping named it: what the file opened must be
// (its identity), and its path as the process sees it, before the display
// prefix (where its separate debug information is looked for).
struct ModuleFile {
	FileIdentity id;
	std::string own_path;
};

// Unwinds captured threads with DWARF CFI and symbolizes their frames, using
// elfutils libdw.  One Unwinder serves one process: modules are reported from
// a snapshot of its mappings, and their symbol tables, DWARF and CFI stay
// loaded across events and across snapshot refreshes.
class Unwinder {
public:
	explicit Unwinder(pid_t tgid);
	~Unwinder();
	Unwinder(const Unwinder &) = delete;
	Unwinder &operator=(const Unwinder &) = delete;

	// Report the modules of a snapshot of the process's mappings.  Modules
	// already known at the same addresses keep their loaded debug
	// information.
	void report_maps(const MappingSet &maps);

	// Load every module's ELF, symbol table, DWARF and CFI now, so that an
	// event is symbolized without touching the disk.
	void prewarm();

	struct Result {
		std::vector<NativeFrame> frames; // most recent call first, inlined calls expanded
		bool truncated = false;	   // stopped for want of captured stack bytes
		std::string error;	   // why unwinding stopped early, if it did
	};

	// Unwind one captured thread from its registers and stack bytes.
	Result unwind(const ThreadCapture &thread, size_t max_frames);

	// Frames for one address: the function containing it, preceded by the
	// functions inlined at that address (innermost first).  With
	// return_address set, pc is looked up as pc - 1 (the call instruction).
	std::vector<NativeFrame> symbolize(uint64_t pc, bool return_address);

	// Symbolize through a cache: threads of one process share most of
	// their frames.  Cleared whenever the modules change.
	const std::vector<NativeFrame> &symbolize_cached(uint64_t pc, bool return_address);

	size_t module_count() const;

	// The mappings' paths start with `prefix` (the process's root opened from
	// here, another mount namespace's): frames name them without it.
	void set_display_prefix(const std::string &prefix) { display_prefix_ = prefix; }

	// DWARF register numbers (x86-64) in ThreadCapture::regs.
	static constexpr int kRegSp = 7;
	static constexpr int kRegIp = 16;

private:
	using Registers = std::array<uint64_t, kNrRegs>;
	struct Callbacks;

	// Unwind from regs over thread's stack bytes, appending to res.
	void walk(const ThreadCapture &thread, const Registers &regs, bool first_is_return,
		  size_t max_frames, Result &res);
	std::string module_path(Dwfl_Module *mod) const;

	pid_t tgid_;
	std::string display_prefix_;
	// Each mapped file as its mappings gave it, by path; a module's
	// userdata points to its entry (never erased).
	std::map<std::string, ModuleFile> files_;
	std::unique_ptr<Dwfl, DwflDeleter> dwfl_;
	bool attached_ = false;
	// The thread being unwound and its initial registers, for the callbacks.
	const ThreadCapture *thread_ = nullptr;
	const Registers *regs_ = nullptr;
	// The walk wanted stack bytes the capture does not hold (above the
	// copy, or between sp and a copy that starts above it): older frames
	// exist.
	bool wanted_uncopied_stack_ = false;
	// (pc << 1 | return_address) -> frames; bounded by kMaxCached.
	std::unordered_map<uint64_t, std::vector<NativeFrame>> cache_;
	static constexpr size_t kMaxCached = 1 << 16;
	// Across every Unwinder of this process, by the file's build id and
	// the offset in it: "<build id>:<offset>[r]" -> frames; bounded.
	static std::unordered_map<std::string, std::vector<NativeFrame>> &shared_frames();
	static constexpr size_t kMaxShared = 1 << 18;
};

} // namespace fh
