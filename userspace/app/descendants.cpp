#include "app/descendants.h"

#include "app/target.h"
#include "output/outputs.h"
#include "process/proc.h"
#include "python/python.h"
#include "util/clock.h"
#include "util/diag.h"
#include "util/error.h"
#include "util/printable.h"
#include "util/signals.h"

#include <sys/wait.h>

extern "C" {
#include "fh/python.h"
#include "fh/records.h"
}

namespace fh {

namespace {

// "exited with status 0", "killed by SIGSEGV": how a wait status reads.
std::string how_ended(uint32_t status)
{
	int st = static_cast<int>(status);
	if (WIFSIGNALED(st))
		return "killed by " + signal_abbrev(WTERMSIG(st));
	return "exited with status " + std::to_string(WEXITSTATUS(st));
}

} // namespace

Descendants::Descendants(pid_t root, bool verbose, bool native)
	: root_(root), verbose_(verbose), native_(native)
{
	tracker_.follow_tree();
}

// Each process joins the tree before its children are listed: a child it
// forks after joining is added by the kernel, one forked before is listed.
size_t Descendants::seed(Capture &capture)
{
	pythons_ = std::make_unique<HostPythons>(capture, no_filter_, verbose_, 1);
	tracker_.seed(root_);
	seeded_ = descendants_of(root_, FH_TREE_MAX, [&](const Descendant &d) {
			  capture.add_to_tree(d.pid, d.parent);
			  tracker_.seed(d.pid);
		  }).size();
	drain();
	pythons_->read_stdlib_names(); // they run: readable now
	return seeded_;
}

void Descendants::drain()
{
	tracker_.drain();
	if (!pythons_)
		return; // not seeded: the programs failed to attach
	for (const auto &c : tracker_.take_changes()) {
		if (c.pid == root_)
			continue; // WatchedProcess places the root's interpreter
		try {
			pythons_->place(c);
		} catch (const Error &e) {
			diag("pid " + std::to_string(c.pid) + ": " + printable(e.what()));
		}
	}
	if (pythons_->reading_soon(monotonic_ns()))
		pythons_->read_stdlib_names();
}

std::optional<PythonRuntime> Descendants::python_of(pid_t pid, Capture &capture, RootPython root,
						   const std::set<std::string> **stdlib)
{
	// Its build's sys.stdlib_module_names, from a live process of it,
	// when the file did not say.
	if (!pythons_)
		return std::nullopt;
	pythons_->read_stdlib_names();
	std::optional<fh_py_proc> proc = capture.python_of(pid);
	if (!proc || !proc->runtime)
		return std::nullopt;
	if (proc->build != 0)
		return pythons_->placed(*proc, stdlib);
	if (!root.rt) // the root's build, forked
		return std::nullopt;
	PythonRuntime placed = *root.rt;
	place_python_at(placed, proc->runtime, proc->module_type);
	if (stdlib)
		*stdlib = root.stdlib;
	return placed;
}

ProcessView Descendants::view_of(const Event &ev, Capture &capture, RootPython root)
{
	uint64_t t0 = monotonic_ns();
	pid_t pid = static_cast<pid_t>(ev.tgid);
	ProcessView view;
	if (ev.identity.known) {
		view.meta.exe = tracker_.exe(pid);
		view.meta.cmdline = ev.identity.cmdline;
		view.meta.uid = ev.identity.uid;
		view.meta.ns_pid = ev.identity.ns_tgid;
		view.meta.ppid = ev.identity.ppid;
	} else {
		view.meta = read_process_meta(pid); // a live dump: it runs
		if (auto info = read_process(pid))
			view.comm = info->comm;
	}
	view.meta.descendant = true;
	if (!ev.py_threads.empty()) {
		const std::set<std::string> *stdlib = nullptr;
		if (auto rt = python_of(pid, capture, root, &stdlib)) {
			view.own_python = std::move(rt);
			view.python = &*view.own_python;
			view.stdlib = stdlib;
			if (!native_)
				return view; // faulthandler's text: no native frames
		}
	}
	set_tracked_unwinder(view, tracker_, pid, verbose_);
	view.prepare_ns = monotonic_ns() - t0;
	return view;
}

void Descendants::ended(const ProcessExit &e)
{
	if (static_cast<pid_t>(e.tgid) == root_)
		return;
	ended_++;
	ends_[how_ended(e.status)]++;
}

std::string Descendants::summary() const
{
	if (!seeded_ && !ended_)
		return "";
	std::string out = std::to_string(ended_) + (ended_ == 1 ? " descendant" : " descendants") +
			  " ended";
	const char *sep = ": ";
	for (const auto &[how, n] : ends_) {
		out += sep + std::to_string(n) + " " + how;
		sep = ", ";
	}
	return out;
}

void Descendants::add_losses(LossList &lost) const
{
	lost.add(tracker_.lost(), "descendants' mapping records (perf buffer full)");
	lost.add(tracker_.malformed(), "malformed mapping records");
	lost.add(pythons_ ? pythons_->unsupported() : 0,
		 "interpreters descendants ran that fh-bpf cannot walk (native frames)");
}

} // namespace fh
