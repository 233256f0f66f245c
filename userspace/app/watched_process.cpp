#include "app/watched_process.h"

#include "process/mappings.h"
#include "process/proc.h"
#include "python/py_walk.h"
#include "util/clock.h"
#include "util/diag.h"
#include "util/error.h"

#include <cerrno>
#include <chrono>

#include <linux/types.h>

extern "C" {
#include "fh/records.h"
}

namespace fh {

WatchedProcess::WatchedProcess(const Options &opts, pid_t tgid, bool launched)
	: opts_(opts), tgid_(tgid), launched_(launched), unwinder_(tgid)
{
}

void WatchedProcess::identify()
{
	if (launched_) {
		const std::string &argv0 = opts_.command[0];
		comm_ = argv0.substr(argv0.rfind('/') + 1).substr(0, 15);
		// Until its exec is seen: what it is about to be (the held child
		// has its uid, cgroup and pids already).
		meta_ = read_process_meta(tgid_);
		meta_.exe = find_program(argv0);
		meta_.cmdline = opts_.command;
		// The programs are built for its interpreter now, and told where
		// it is once it is mapped; its mappings are followed from the
		// kernel's records, attached before the programs.
		PythonDetection py = detect_python_command(argv0);
		if (py.runtime) {
			python_ = py.runtime;
			if (opts_.verbose)
				diag("Python 3." + std::to_string(python_->minor) + " in " +
				     python_->module + " (the command's interpreter)");
		} else if (!py.unsupported.empty()) {
			diag(py.unsupported + ": native frames only");
		}
		tracker_ = std::make_unique<MmapTracker>(tgid_);
		return;
	}
	if (auto info = read_process(tgid_))
		comm_ = info->comm;
	meta_ = read_process_meta(tgid_);
	// The maps before attaching: Python is found in them (the programs
	// carry its offsets as constants) and debug information loads from
	// them.  They are read again once attached, where a failure counts.
	try {
		early_maps_ = read_maps(tgid_);
	} catch (const Error &) {
	}
	if (early_maps_.empty())
		return;
	PythonDetection py = detect_python(early_maps_);
	if (py.runtime) {
		python_ = py.runtime;
		ProcessMemory mem(tgid_);
		stdlib_ = stdlib_module_names(mem, *python_);
		if (opts_.verbose)
			diag("Python 3." + std::to_string(python_->minor) + " in " + python_->module);
	} else if (!py.unsupported.empty()) {
		diag(py.unsupported + ": native frames only");
	}
}

uint64_t WatchedProcess::preload_symbols() noexcept
{
	uint64_t t0 = monotonic_ns();
	if (early_maps_.empty())
		return 0;
	try {
		unwinder_.report_maps(early_maps_);
		unwinder_.prewarm();
		maps_ = early_maps_;
	} catch (const std::exception &) {
		return 0; // refresh_maps() says what is wrong, after attaching
	}
	uint64_t ns = monotonic_ns() - t0;
	if (opts_.verbose)
		diag("loaded symbols of " + std::to_string(unwinder_.module_count()) +
		     " modules in " + fmt("%.1f ms", ns / 1e6) + " (while loading BPF)");
	return ns;
}

// Its mappings now.  A launched command's come from the kernel's own
// records of them (complete even when it has just died); if any record was
// lost, /proc/PID/maps is read instead while the process lives.
MappingSet WatchedProcess::current_maps(bool must, bool exited)
{
	if (tracker_) {
		tracker_->drain();
		if (!tracker_->lost() || exited)
			return tracker_->mappings();
	}
	try {
		return read_maps(tgid_);
	} catch (const Error &) {
		if (must)
			throw;
		refresh_failed_++;
		return tracker_ ? tracker_->mappings() : MappingSet();
	}
}

void WatchedProcess::refresh_maps(bool must, bool exited)
{
	if (capture_)
		capture_->rearm_maps_notify();
	MappingSet maps;
	try {
		maps = current_maps(must, exited);
	} catch (const Error &e) {
		if (must)
			throw;
		// Keep the modules already known; counted and said with -v.
		refresh_failed_++;
		if (opts_.verbose)
			diag(std::string("re-reading the mappings: ") + e.what());
		return;
	}
	// A process that has died has no mappings left: keep the last ones.
	if (maps.empty()) {
		if (launched_)
			return; // not exec'd yet
		if (must)
			throw Error("process " + std::to_string(tgid_) + " has no mappings (exiting?)",
				    ESRCH);
		refresh_failed_++;
		return;
	}
	if (maps == maps_)
		return;
	MappingSet old = std::move(maps_);
	maps_ = std::move(maps);
	// Before loading symbols, which takes a while.
	place_python();
	uint64_t t0 = monotonic_ns();
	try {
		unwinder_.report_maps(maps_);
		unwinder_.prewarm();
	} catch (const std::exception &e) {
		if (must)
			throw;
		// Keep the modules already known; counted and reported at the end.
		refresh_failed_++;
		if (opts_.verbose)
			diag(std::string("reading the new mappings: ") + e.what());
		return;
	}
	if (opts_.verbose) {
		std::string added;
		if (!old.empty()) {
			auto by_name = [](const MappingSet &maps) {
				std::vector<std::string> files = maps.files();
				return std::set<std::string>(files.begin(), files.end());
			};
			std::set<std::string> before = by_name(old);
			for (const auto &path : by_name(maps_))
				if (!before.count(path))
					added += " " + path;
		}
		diag("loaded symbols of " + std::to_string(unwinder_.module_count()) +
		     " modules in " + fmt("%.1f ms", (monotonic_ns() - t0) / 1e6) +
		     (added.empty() ? "" : "; new:" + added));
	}
	if (launched_)
		if (auto info = read_process(tgid_))
			comm_ = info->comm; // the command's, once exec'd
}

// The interpreter, once it is mapped (by the maps, or as the kernel placed
// it): the programs walk it from then on.  sys.stdlib_module_names (for the
// extension modules of a fatal error) is taken once the reader has it.
void WatchedProcess::place_python()
{
	if (!python_ || !capture_)
		return;
	if (!python_->placed) {
		if (uint64_t rt = capture_->python_runtime()) {
			// The kernel placed it when the module was mapped.
			place_python_at(*python_, rt, capture_->python_module_type());
		} else if (::fh::place_python(*python_, maps_)) {
			capture_->set_python_runtime(python_->runtime_addr,
						     python_->offsets.module_type);
		}
		if (python_->placed && opts_.verbose)
			diag("Python 3." + std::to_string(python_->minor) + " mapped from " +
			     python_->module);
	}
	if (python_->placed && !stdlib_ && stdlib_reader_)
		stdlib_ = stdlib_reader_->names();
}

void WatchedProcess::start_stdlib_reader()
{
	if (python_ && python_->minor >= 10 && !stdlib_ && capture_)
		stdlib_reader_ = std::make_unique<StdlibReader>(tgid_, *python_, *capture_);
}

// A fatal error's extension modules leave out the standard library's: a
// read under way when the process crashed may still finish.
const std::set<std::string> *WatchedProcess::stdlib(bool fatal)
{
	if (fatal && python_ && !stdlib_ && stdlib_reader_)
		stdlib_ = stdlib_reader_->names(std::chrono::milliseconds(50));
	return stdlib_ ? &*stdlib_ : nullptr;
}

ProcessView WatchedProcess::view_of(const Event &ev)
{
	stdlib(ev.trigger == FH_TRIGGER_FATAL_SIGNAL);
	ProcessView v;
	v.meta = meta_;
	v.comm = comm_;
	v.unwinder = &unwinder_;
	v.python = python_ ? &*python_ : nullptr;
	v.stdlib = stdlib_ ? &*stdlib_ : nullptr;
	return v;
}

std::optional<WatchedProcess::ExecChange> WatchedProcess::after_exec()
{
	ProcessMeta meta = read_process_meta(tgid_);
	std::string exe = meta.exe;
	if (exe.empty()) // gone already: the executable is mapped first
		exe = maps_.first_file();
	if (exe.empty())
		return std::nullopt;
	if (auto info = read_process(tgid_))
		comm_ = info->comm;
	if (!meta.exe.empty())
		meta_ = std::move(meta);
	PythonDetection d = detect_python_command(exe);
	if (!d.unsupported.empty())
		diag("pid " + std::to_string(tgid_) + " exec'd " + exe + ": " + d.unsupported +
		     ": native frames only");
	if (d.runtime && python_ && python_->module == d.runtime->module) {
		// The launched command's own exec, as expected; or the same
		// interpreter started afresh (os.execv(sys.executable), a
		// reloader): the programs fit, but it sits elsewhere now (the
		// kernel forgot the old place at the exec).  Its standard
		// library's names are the build's: they stay.
		python_->placed = false;
		place_python();
		return std::nullopt;
	}
	if (!d.runtime && !python_)
		return std::nullopt;
	if (d.runtime)
		::fh::place_python(*d.runtime, maps_);
	return ExecChange{d.runtime, exe};
}

void WatchedProcess::take_python(std::optional<PythonRuntime> next)
{
	python_ = std::move(next);
	stdlib_.reset();
	if (python_ && python_->minor >= 10 && python_->placed) {
		// Usually it has started by now: read at once, else as it can.
		ProcessMemory mem(tgid_);
		stdlib_ = stdlib_module_names(mem, *python_);
	}
	start_stdlib_reader();
	place_python();
}

} // namespace fh
