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

#include <sys/uio.h>

#include <cstdlib>
#include <functional>
#include <iterator>
#include <sstream>
#include <memory>
#include <vector>


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

Error no_thread_state(pid_t tgid)
{
	return Error("--dump: no Python thread state found in pid " + std::to_string(tgid) +
			     " (is the interpreter initialised, and may fh-bpf read its memory?)",
		     ESRCH);
}

// --dump of a Python process: its threads read from its memory, nothing
// loaded into the kernel.
void dump_python(pid_t tgid, const PythonRuntime &rt, uint64_t dump_id, Pipeline &pipeline,
		 DumpedProcess &process)
{
	Event ev = python_live_event(tgid, rt, FH_TRIGGER_DEMAND);
	if (ev.py_threads.empty())
		throw no_thread_state(tgid);
	ev.dump_id = dump_id;
	process.python = &rt;
	pipeline.handle(ev, process);
}

// While the programs load: the frames of the threads blocked in a system
// call now, from what /proc says of them (the stack pointer and the
// instruction after the call) and their stacks read from the process
// (process_vm_readv: nothing stops).  Only the other registers are
// unknown, so a walk may go astray: it warms the symbol caches, and the
// dump itself unwinds what the kernel captures.
void warm_from_proc(Unwinder &unwinder, pid_t tgid, uint32_t max_threads, uint64_t stack_size)
{
	std::string dir = "/proc/" + std::to_string(tgid) + "/task/";
	for (pid_t tid : threads_of(tgid, max_threads)) {
		auto text = read_proc_file(dir + std::to_string(tid) + "/syscall", 512);
		if (!text)
			continue;
		// "NR ARG1..ARG6 SP PC" (or "running", or "-1 SP PC").
		std::istringstream in(*text);
		std::vector<std::string> words{std::istream_iterator<std::string>(in), {}};
		if (words.size() < 3)
			continue;
		ThreadCapture t;
		t.tid = static_cast<uint32_t>(tid);
		t.regs[Unwinder::kRegSp] = std::strtoull(words[words.size() - 2].c_str(), nullptr, 16);
		t.regs[Unwinder::kRegIp] = std::strtoull(words.back().c_str(), nullptr, 16);
		if (!t.regs[Unwinder::kRegSp] || !t.regs[Unwinder::kRegIp])
			continue;
		t.stack.resize(stack_size);
		struct iovec local = {t.stack.data(), t.stack.size()};
		struct iovec remote = {reinterpret_cast<void *>(t.regs[Unwinder::kRegSp]),
				       t.stack.size()};
		ssize_t n = process_vm_readv(tgid, &local, 1, &remote, 1, 0);
		t.stack.resize(n > 0 ? static_cast<size_t>(n) : 0);
		t.stack_addr = t.regs[Unwinder::kRegSp];
		unwinder.unwind(t, kMaxFrames);
	}
}

// --dump of native processes: the task iterator and the samplers, nothing
// else, loaded for the first one while its debug information loads on a
// second thread; the next ones (descendants) use the same programs.
class NativeDumper {
public:
	explicit NativeDumper(const Options &opts) : opts_(opts) {}

	// --native: Python processes are dumped here too.
	bool python_too() const { return opts_.native; }

	// The dump is written: what the programs' load could keep for the
	// next runs.
	void finish()
	{
		if (capture_)
			capture_->keep_core_btf();
	}

	// python: a Python process dumped with --native, its interpreter's
	// threads read right after the native ones.
	void dump(pid_t tgid, const MappingSet &maps, uint64_t dump_id, Pipeline &pipeline,
		  DumpedProcess &process, const PythonRuntime *python = nullptr)
	{
		Unwinder unwinder(tgid);
		auto preload = [&] {
			uint64_t t0 = monotonic_ns();
			try {
				unwinder.report_maps(maps);
				unwinder.prewarm();
				warm_from_proc(unwinder, tgid, opts_.max_threads, opts_.stack_size);
			} catch (const std::exception &) {
			}
			process.prepare_ns = monotonic_ns() - t0;
		};
		uint64_t bpf_ns = 0;
		if (!capture_)
			load(tgid, preload, &bpf_ns);
		else
			preload();
		Assembler::Output out;
		LiveDumpStats st;
		if (python) {
			Event ev = python_dump_with_native(*capture_, assembler_, out, tgid, *python,
							   FH_TRIGGER_DEMAND, 0, &st);
			if (ev.py_threads.empty())
				throw no_thread_state(tgid);
			ev.dump_id = dump_id;
			process.unwinder = &unwinder;
			process.python = python;
			pipeline.handle(ev, process, {&st, bpf_ns});
			return;
		}
		st = capture_->live_dump(FH_TRIGGER_DEMAND, assembler_, out, tgid);
		if (!st.event_id)
			throw Error("--dump: pid " + std::to_string(tgid) +
					    " has no thread left to dump",
				    ESRCH);
		process.unwinder = &unwinder;
		for (auto &ev : out.events)
			if (ev.id == st.event_id) {
				ev.dump_id = dump_id;
				pipeline.handle(ev, process, {&st, bpf_ns});
			}
	}

private:
	void load(pid_t tgid, const std::function<void()> &preload, uint64_t *bpf_ns)
	{
		probe_support();
		CaptureConfig cfg = base_capture_config(opts_);
		cfg.tgid = tgid;
		cfg.ring_threads = std::min<uint32_t>(opts_.max_threads, kMinRingThreads);
		cfg.sig_mask = 0;
		cfg.signals = false;
		cfg.live = true;
		capture_ = load_capture(cfg, preload, bpf_ns);
		if (!capture_->sampling_problem().empty())
			diag(capture_->sampling_problem());
	}

	const Options &opts_;
	std::unique_ptr<Capture> capture_;
	Assembler assembler_;
};

// One process of the dump: Python frames or native ones.
void dump_process(pid_t tgid, bool descendant, uint64_t dump_id, Pipeline &pipeline,
		  NativeDumper &natives)
{
	MappingSet maps = read_maps(tgid);
	PythonDetection py = detect_python(maps);
	DumpedProcess process;
	process.meta = read_process_meta(tgid);
	process.meta.descendant = descendant;
	if (auto info = read_process(tgid))
		process.comm = info->comm;
	if (!py.runtime && !py.unsupported.empty())
		diag(py.unsupported + ": native frames only");
	if (py.runtime && natives.python_too())
		natives.dump(tgid, maps, dump_id, pipeline, process, &*py.runtime);
	else if (py.runtime)
		dump_python(tgid, *py.runtime, dump_id, pipeline, process);
	else
		natives.dump(tgid, maps, dump_id, pipeline, process);
}

} // namespace

int dump(const Options &opts)
{
	pid_t tgid = check_target(opts.pid, opts.verbose);
	// Its descendants (unless --no-children), each a block of its own
	// headed by its pid and parent, all with the dump's number.
	std::vector<Descendant> family;
	if (opts.children)
		family = descendants_of(tgid, FH_TREE_MAX);
	uint64_t dump_id = family.empty() ? 0 : new_dump_id();
	IncidentWriter writer(opts, {opts.json, false, opts.verbose});
	StatsChannel stats(opts.stats_fd);
	Pipeline pipeline(opts, writer, stats);
	NativeDumper natives(opts);
	dump_process(tgid, false, dump_id, pipeline, natives);
	for (const auto &d : family) {
		try {
			dump_process(d.pid, true, dump_id, pipeline, natives);
		} catch (const Error &e) {
			// One gone since it was listed is no failure of the dump.
			if (e.err() != ESRCH && e.err() != ENOENT)
				diag("pid " + std::to_string(d.pid) + ": " + e.what());
		}
	}
	natives.finish();
	LossList lost;
	writer.add_losses(lost);
	stats.end(pipeline.written(), lost);
	return writer.unwritten() ? kExitFailure : kExitOk;
}

} // namespace fh
