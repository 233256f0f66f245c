#pragma once

// The one path from a captured event to its outputs, for every mode and
// every source (the ring's fatal and user signals and timeouts, the live
// Python walk, the live native dump):
//
//   Event ─► process view ─► symbolize (native threads, or Python threads)
//         ─► Incident (report/model.h) ─► IncidentWriter ─► timings
//
// The apps around it (app/watch.cpp, app/dump.cpp, app/agent.cpp) decide
// which processes are watched and when the watch ends; they hand each event
// here with what they know of its process.

#include "capture/capture.h"
#include "capture/event.h"
#include "cli/options.h"
#include "output/stats.h"
#include "output/writer.h"
#include "process/kernel_info.h"
#include "process/process_meta.h"
#include "python/python.h"
#include "symbolize/native.h"

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>

namespace fh {

// What the pipeline needs of the process an event is from.
struct ProcessView {
	ProcessMeta meta;	 // identity for the records
	std::string comm;	 // when the capture has none
	Unwinder *unwinder = nullptr; // its mappings and symbols: native frames
	const PythonRuntime *python = nullptr;	 // its interpreter, placed: Python frames
	const std::set<std::string> *stdlib = nullptr; // sys.stdlib_module_names
	uint64_t prepare_ns = 0; // what making this view took (mappings, symbols)
	// What a view made for one event holds itself (the host agent's).
	std::unique_ptr<Unwinder> own_unwinder;
	std::optional<PythonRuntime> own_python;
};

// The processes an app watches, as the pipeline asks for them: the view of
// each event's process.  The watch of one process is a table of one
// (app/watched_process.h), --dump's the process it dumps, the host
// agent's every process in scope (app/agent.cpp).
class ProcessTable {
public:
	virtual ~ProcessTable() = default;
	virtual ProcessView view_of(const Event &ev) = 0;
};

// How an event was taken, when the app knows more than the event says.
struct CaptureFacts {
	const LiveDumpStats *live = nullptr; // a live native dump
	uint64_t bpf_ns = 0;		     // a one-shot dump: loading the programs
};

class Pipeline {
public:
	Pipeline(const Options &opts, IncidentWriter &writer, StatsChannel &stats)
		: opts_(opts), writer_(writer), stats_(stats)
	{
	}

	// One event, through every stage to every output, its process as
	// `processes` sees it.  False when the main output did not take it
	// (said and counted by the writer).
	// A provisional capture (a fault the target handles, taken before its
	// handler ran) is held until its verdict.
	bool handle(Event &ev, ProcessTable &processes, const CaptureFacts &facts = {});
	// What became of a process after a fault it handled: the held capture
	// is its incident (it died, or exited from the handler) or is dropped
	// (it went on).
	bool settle(const Verdict &v, ProcessTable &processes);
	// The watch ends: captures no verdict settled are dropped; how many
	// were, over the watch.
	uint64_t drop_unsettled();
	// A held capture, for the app to look at before it settles; nullptr
	// when none is held under that id.  discard() drops it, unreported.
	const Event *held(uint64_t event_id) const;
	void discard(uint64_t event_id) { held_.erase(event_id); }
	uint64_t survived() const { return survived_; } // handled faults the process went on from

	uint64_t written() const { return written_; }
	// Incidents written by process (the first kPidsCounted processes).
	const std::map<uint32_t, uint64_t> &written_by_pid() const { return written_by_pid_; }
	static constexpr size_t kPidsCounted = 4096;
	bool fatal_seen() const { return fatal_seen_; }
	uint64_t cut() const { return cut_; }		    // incidents cut to their size
	uint64_t stale_live() const { return stale_live_; } // live: threads never sampled

private:
	// Held captures and verdicts that came before theirs, at most this many.
	static constexpr size_t kMaxHeld = 64;

	bool emit(Event &ev, ProcessTable &processes, const CaptureFacts &facts);
	Incident build(Event &ev, const ProcessView &view, NativeStats &ns);
	void name_kernel_sender(Sender &s);
	void report(const Event &ev, const ProcessView &view, const CaptureFacts &facts,
		    const NativeStats &ns, uint64_t t0, uint64_t t_symbolized, uint64_t t_written);

	const Options &opts_;
	IncidentWriter &writer_;
	StatsChannel &stats_;
	std::optional<KernelSymbols> ksyms_; // read at the first kernel sender
	uint64_t written_ = 0;
	std::map<uint32_t, uint64_t> written_by_pid_;
	bool fatal_seen_ = false;
	uint64_t cut_ = 0;
	uint64_t stale_live_ = 0;
	std::map<uint64_t, Event> held_; // provisional captures, by event id
	std::map<uint64_t, Verdict> early_verdicts_;
	uint64_t survived_ = 0;
	uint64_t unsettled_ = 0;
};

// A dump on demand is taken as if the main thread asked for it: it is the
// "Current thread".
void mark_main_current(Event &ev);

} // namespace fh
