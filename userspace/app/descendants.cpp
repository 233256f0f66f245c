#include "app/descendants.h"

#include "output/outputs.h"
#include "process/proc.h"
#include "python/python.h"
#include "util/clock.h"
#include "util/diag.h"
#include "util/error.h"
#include "util/printable.h"
#include "util/signals.h"

#include <dirent.h>
#include <sys/wait.h>

#include <cstdlib>
#include <deque>
#include <set>

extern "C" {
#include "fh/python.h"
#include "fh/records.h"
}

namespace fh {

namespace {

// The children of every thread of pid, as /proc lists them now.
std::vector<pid_t> children_of(pid_t pid)
{
	std::vector<pid_t> out;
	std::string dir = "/proc/" + std::to_string(pid) + "/task";
	DIR *d = opendir(dir.c_str());
	if (!d)
		return out;
	while (struct dirent *e = readdir(d)) {
		if (e->d_name[0] == '.')
			continue;
		auto text = read_proc_file(dir + "/" + e->d_name + "/children", 1 << 20);
		if (!text)
			continue;
		const char *p = text->c_str();
		for (char *end;; p = end) {
			long child = std::strtol(p, &end, 10);
			if (end == p)
				break;
			if (child > 0)
				out.push_back(static_cast<pid_t>(child));
		}
	}
	closedir(d);
	return out;
}

// "exited with status 0", "killed by SIGSEGV": how a wait status reads.
std::string how_ended(uint32_t status)
{
	int st = static_cast<int>(status);
	if (WIFSIGNALED(st))
		return "killed by " + signal_abbrev(WTERMSIG(st));
	return "exited with status " + std::to_string(WEXITSTATUS(st));
}

} // namespace

Descendants::Descendants(pid_t root, bool verbose) : root_(root), verbose_(verbose)
{
	tracker_.follow_tree();
}

// Each process joins the tree before its children are listed: a child it
// forks after joining is added by the kernel, one forked before is listed.
size_t Descendants::seed(Capture &capture)
{
	pythons_ = std::make_unique<HostPythons>(capture, no_filter_, verbose_, 1);
	tracker_.seed(root_);
	std::deque<pid_t> todo{root_};
	std::set<pid_t> seen{root_};
	while (!todo.empty() && seen.size() < FH_TREE_MAX) {
		pid_t parent = todo.front();
		todo.pop_front();
		for (pid_t child : children_of(parent)) {
			if (!seen.insert(child).second)
				continue;
			capture.add_to_tree(child, parent);
			tracker_.seed(child);
			todo.push_back(child);
			seeded_++;
		}
	}
	drain();
	return seeded_;
}

void Descendants::drain()
{
	tracker_.drain();
	for (const auto &c : tracker_.take_changes()) {
		if (c.pid == root_)
			continue; // WatchedProcess places the root's interpreter
		try {
			pythons_->place(c);
		} catch (const Error &e) {
			diag("pid " + std::to_string(c.pid) + ": " + printable(e.what()));
		}
	}
}

ProcessView Descendants::view_of(const Event &ev, Capture &capture, RootPython root)
{
	uint64_t t0 = monotonic_ns();
	pid_t pid = static_cast<pid_t>(ev.tgid);
	ProcessView view;
	view.meta.exe = tracker_.exe(pid);
	view.meta.cmdline = ev.identity.cmdline;
	view.meta.descendant = true;
	if (ev.identity.known) {
		view.meta.uid = ev.identity.uid;
		view.meta.ns_pid = ev.identity.ns_tgid;
		view.meta.ppid = ev.identity.ppid;
	}
	std::optional<fh_py_proc> proc;
	if (!ev.py_threads.empty())
		proc = capture.python_of(pid);
	if (proc) {
		const PythonRuntime *rt = nullptr;
		const std::set<std::string> *stdlib = nullptr;
		if (proc->build == 0) { // the root's, forked
			rt = root.rt;
			stdlib = root.stdlib;
		} else if (const HostPythons::Build *b = pythons_->build(proc->build)) {
			rt = &b->rt;
			stdlib = b->stdlib ? &*b->stdlib : nullptr;
		}
		if (rt) {
			view.own_python = *rt;
			place_python_at(*view.own_python, proc->runtime, proc->module_type);
			view.python = &*view.own_python;
			view.stdlib = stdlib;
			return view;
		}
	}
	view.own_unwinder = std::make_unique<Unwinder>(pid);
	Unwinder &unwinder = *view.own_unwinder;
	unwinder.set_display_prefix(tracker_.root_prefix(pid));
	try {
		unwinder.report_maps(tracker_.mappings(pid));
	} catch (const Error &e) {
		if (verbose_)
			diag("pid " + std::to_string(ev.tgid) + ": " + printable(e.what()));
	}
	view.unwinder = &unwinder;
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
