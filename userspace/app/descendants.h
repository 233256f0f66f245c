#pragma once

// The descendants a watch follows (-p and launch mode, unless
// --no-children): every process the watched one forks, and they fork in
// turn, each an incident of its own.  The kernel adds each child to the
// programs' tree at its fork, before its first instruction; its mappings
// come from the kernel's mapping records (a child that crashes a
// millisecond after its exec is known in full); the interpreters it maps
// are placed as it maps them.  The watched process itself stays with
// WatchedProcess.

#include "app/pipeline.h"
#include "capture/capture.h"
#include "capture/records.h"
#include "process/host_tracker.h"
#include "process/process_meta.h"
#include "python/python_builds.h"

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace fh {

class Descendants {
public:
	// The mapping records are on from here: nothing a descendant maps
	// while the programs load is missed.
	// native: Python descendants' native frames too (--native).
	Descendants(pid_t root, bool verbose, bool native);

	// Once the programs are attached: the descendants running now join
	// the tree (the ones they fork from then on join it in the kernel).
	// Returns how many there are.
	size_t seed(Capture &capture);
	// The programs that took over after the root's exec (the tables are
	// shared with the last ones).
	void set_capture(Capture &capture)
	{
		if (pythons_)
			pythons_->set_capture(capture);
	}

	const std::vector<int> &fds() const { return tracker_.fds(); }
	// Read the mapping records (placing the interpreters descendants map),
	// then apply those stamped up to t_ns.
	void drain();
	void advance(uint64_t t_ns) { tracker_.advance(t_ns); }

	// The root's interpreter, which a child forked without exec runs:
	// the programs' build 0.
	struct RootPython {
		const PythonRuntime *rt = nullptr;
		const std::set<std::string> *stdlib = nullptr;
	};
	// The interpreter a descendant runs, where the kernel placed it, and
	// its sys.stdlib_module_names when known; nullopt: native, or not
	// placed yet.
	std::optional<PythonRuntime> python_of(pid_t pid, Capture &capture, RootPython root,
					       const std::set<std::string> **stdlib = nullptr);

	// The view of a descendant's event, as its process was when captured.
	ProcessView view_of(const Event &ev, Capture &capture, RootPython root);

	// A process of the tree ended (the root too): counted for the
	// closing line.
	void ended(const ProcessExit &e);
	// "3 descendants followed: 2 exited with status 0, 1 killed by SIGSEGV"
	// (empty when none was).
	std::string summary() const;

	void add_losses(LossList &lost) const;

	// A descendant has mapped an interpreter fh-bpf can walk.
	bool python_met() const { return pythons_ && pythons_->builds() > 0; }

private:
	pid_t root_;
	bool verbose_;
	bool native_;
	// Read when the ring wakes the watch, before each capture, and for a
	// while after a descendant's exec: a host's records do not wake it.
	HostTracker tracker_{256, HostTracker::Wakeup::quarter_full};
	ScopeFilter no_filter_;
	std::unique_ptr<HostPythons> pythons_;
	// How each descendant ended, by wait status.
	std::map<std::string, uint64_t> ends_;
	uint64_t ended_ = 0;
	uint64_t seeded_ = 0;
};

} // namespace fh
