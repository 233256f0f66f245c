#include "app/watch.h"

#include "app/pipeline.h"
#include "app/target.h"
#include "capture/capture.h"
#include "capture/records.h"
#include "output/outputs.h"
#include "process/mappings.h"
#include "process/proc.h"
#include "python/live_walk.h"
#include "util/clock.h"
#include "util/diag.h"
#include "util/error.h"

#include <linux/types.h>


extern "C" {
#include "fh/records.h"
}

namespace fh {

namespace {

// The one process a dump is of.
class DumpedProcess : public ProcessTable {
public:
	ProcessMeta meta;
	std::string comm;
	Unwinder *unwinder = nullptr;
	const PythonRuntime *python = nullptr;
	uint64_t prepare_ns = 0;

	ProcessView view_of(const Event &) override
	{
		ProcessView v;
		v.meta = meta;
		v.comm = comm;
		v.unwinder = unwinder;
		v.python = python;
		v.prepare_ns = prepare_ns;
		return v;
	}
};

// --dump of a Python process: its threads read from its memory, nothing
// loaded into the kernel.
int dump_python(pid_t tgid, const PythonRuntime &rt, Pipeline &pipeline, DumpedProcess &process)
{
	Event ev = python_live_event(tgid, rt, FH_TRIGGER_DEMAND);
	if (ev.py_threads.empty())
		throw Error("--dump: no Python thread state found in pid " + std::to_string(tgid) +
				    " (is the interpreter initialised, and may fh-bpf read its "
				    "memory?)",
			    ESRCH);
	process.python = &rt;
	pipeline.handle(ev, process);
	return kExitOk;
}

// --dump of a native process: the task iterator and the samplers, nothing
// else, while debug information loads on a second thread.
int dump_native(const Options &opts, pid_t tgid, const MappingSet &maps, Pipeline &pipeline,
		DumpedProcess &process)
{
	probe_support();
	Unwinder unwinder(tgid);
	auto preload = [&] {
		uint64_t t0 = monotonic_ns();
		try {
			unwinder.report_maps(maps);
			unwinder.prewarm();
		} catch (const std::exception &) {
		}
		process.prepare_ns = monotonic_ns() - t0;
	};
	CaptureConfig cfg = base_capture_config(opts);
	cfg.tgid = tgid;
	cfg.ring_threads = std::min<uint32_t>(opts.max_threads, kMinRingThreads);
	cfg.sig_mask = 0;
	cfg.signals = false;
	cfg.live = true;
	uint64_t bpf_ns = 0;
	std::unique_ptr<Capture> capture = load_capture(cfg, preload, &bpf_ns);
	if (!capture->sampling_problem().empty())
		diag(capture->sampling_problem());
	Assembler assembler;
	Assembler::Output out;
	LiveDumpStats st = capture->live_dump(FH_TRIGGER_DEMAND, assembler, out);
	if (!st.event_id)
		throw Error("--dump: pid " + std::to_string(tgid) + " has no thread left to dump",
			    ESRCH);
	process.unwinder = &unwinder;
	for (auto &ev : out.events)
		if (ev.id == st.event_id)
			pipeline.handle(ev, process, {&st, bpf_ns});
	return kExitOk;
}

} // namespace

int dump(const Options &opts)
{
	pid_t tgid = check_target(opts.pid, opts.verbose);
	MappingSet maps = read_maps(tgid);
	PythonDetection py = detect_python(maps);
	IncidentWriter writer(opts, {opts.json, false, opts.verbose});
	StatsChannel stats(opts.stats_fd);
	Pipeline pipeline(opts, writer, stats);
	DumpedProcess process;
	process.meta = read_process_meta(tgid);
	if (auto info = read_process(tgid))
		process.comm = info->comm;
	if (!py.runtime && !py.unsupported.empty())
		diag(py.unsupported + ": native frames only");
	int status = py.runtime ? dump_python(tgid, *py.runtime, pipeline, process)
				: dump_native(opts, tgid, maps, pipeline, process);
	LossList lost;
	writer.add_losses(lost);
	stats.end(pipeline.written(), lost);
	return writer.unwritten() ? kExitFailure : status;
}

} // namespace fh
