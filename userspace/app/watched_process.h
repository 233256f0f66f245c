#pragma once

// The process view of the one process a watch follows (-p, launch mode): its
// identity, mappings, symbols and interpreter, kept current through its
// mapping changes and execs, handed to the pipeline as a ProcessView.

#include "app/pipeline.h"
#include "capture/capture.h"
#include "cli/options.h"
#include "process/mappings.h"
#include "process/mmap_tracker.h"
#include "process/process_meta.h"
#include "python/python.h"
#include "python/stdlib_reader.h"
#include "symbolize/unwinder.h"

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <string>

namespace fh {

class WatchedProcess : public ProcessTable {
public:
	// launched: a command started under watch, held before its exec (its
	// mappings come from a tracker of the kernel's mapping records).
	WatchedProcess(const Options &opts, pid_t tgid, bool launched);

	// Who it is, and whether it is Python: a launched command from its
	// files, a running process from its maps (read before attaching).
	void identify();

	// Debug information for the maps read by identify(), loaded while the
	// programs load; the time it took (0: nothing loaded).
	uint64_t preload_symbols() noexcept;

	// The programs that walk its interpreter (and may place it).
	void set_capture(Capture *capture) { capture_ = capture; }

	// Read its mappings again and load what changed.  must: a failure
	// throws (at attach); else it is counted.  exited: it has exited (a
	// launched command's tracked maps are then complete).
	void refresh_maps(bool must, bool exited = false);

	// Its view for the pipeline; for a fatal signal a read of the standard
	// library's names still under way may finish first.
	ProcessView view_of(const Event &ev) override;

	// It exec'd: identity read again.  The interpreter it runs now when
	// the programs must be rebuilt for it (it is Python and was not, or was
	// and is not, or another one); nullopt when they still fit.
	struct ExecChange {
		std::optional<PythonRuntime> next;
		std::string exe;
	};
	std::optional<ExecChange> after_exec();

	// The programs were rebuilt for `next`: walk it from now on.
	void take_python(std::optional<PythonRuntime> next);

	// The interpreter placed where the maps or the kernel say.
	void place_python();

	const std::optional<PythonRuntime> &python() const { return python_; }
	// sys.stdlib_module_names, as read so far; for a fatal signal a read
	// still under way may finish first.
	const std::set<std::string> *stdlib(bool fatal = false);
	const MappingSet &maps() const { return maps_; }
	MmapTracker *tracker() { return tracker_.get(); }
	uint64_t refresh_failed() const { return refresh_failed_; }
	void stop_stdlib_reader() { stdlib_reader_.reset(); }
	void start_stdlib_reader(); // launch mode, 3.10+: read once it exists

private:
	MappingSet current_maps(bool must, bool exited);

	const Options &opts_;
	pid_t tgid_;
	bool launched_;
	Capture *capture_ = nullptr;
	ProcessMeta meta_;
	std::string comm_;
	Unwinder unwinder_;
	std::unique_ptr<MmapTracker> tracker_;
	MappingSet early_maps_; // before attaching
	MappingSet maps_;
	std::optional<PythonRuntime> python_;
	std::optional<std::set<std::string>> stdlib_; // sys.stdlib_module_names (3.10+)
	std::unique_ptr<StdlibReader> stdlib_reader_;
	uint64_t refresh_failed_ = 0;
};

} // namespace fh
