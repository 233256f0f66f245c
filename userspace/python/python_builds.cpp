#include "python/python_builds.h"

#include "capture/capture.h"
#include "util/clock.h"
#include "process/process_meta.h"
#include "util/printable.h"
#include "python/py_walk.h"
#include "util/fd.h"

#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

namespace fh {

namespace {

bool python_named(const std::string &path)
{
	std::string base = path.substr(path.rfind('/') + 1);
	return base.find("python") != std::string::npos;
}

} // namespace

HostPythons::HostPythons(Capture &capture, const ScopeFilter &scope, bool verbose,
			 uint32_t first_index)
	: capture_(&capture), scope_(scope), verbose_(verbose), first_index_(first_index)
{
}

const HostPythons::Build *HostPythons::build(uint32_t index) const
{
	return index >= first_index_ && index - first_index_ < builds_.size()
		       ? &builds_[index - first_index_]
		       : nullptr;
}

std::optional<PythonRuntime> HostPythons::placed(const fh_py_proc &proc,
						 const std::set<std::string> **stdlib) const
{
	const Build *b = build(proc.build);
	if (!b || !proc.runtime)
		return std::nullopt;
	PythonRuntime rt = b->rt;
	place_python_at(rt, proc.runtime, proc.module_type);
	if (stdlib)
		*stdlib = b->stdlib ? &*b->stdlib : nullptr;
	return rt;
}

// Files are looked at once each, and only for processes in scope: of a
// process out of it, no file is opened, stat'ed or read.  (One that enters
// the scope later, by setuid or a new name, is walked only if its
// interpreter's file is known by then: the kernel places those.)
void HostPythons::place(const HostTracker::Change &c)
{
	if (c.exec || !python_named(c.m.path) || !(c.m.prot & PROT_EXEC))
		return;
	if (scope_.any() && !scope_.admits(c.pid))
		return;
	FileIdentity mapped{makedev(c.m.maj, c.m.min), c.m.ino};
	auto index = look_at(c, mapped);
	if (!index)
		return;
	Build &b = builds_[*index - first_index_];
	// The file is mapped page for page: its offset 0 sits at start - pgoff.
	uint64_t base = c.m.start - c.m.pgoff;
	fh_py_proc proc{};
	proc.build = *index;
	proc.runtime = base + b.place.runtime_off;
	proc.module_type = b.place.module_type_off ? base + b.place.module_type_off : 0;
	capture_->place_python(c.pid, proc);
	// A new build is said once its first process is placed: from then on
	// that process is captured with its Python frames.
	if (!found_note_.empty()) {
		write_all(STDERR_FILENO, found_note_);
		found_note_.clear();
	}
	if (b.rt.minor >= 10 && !b.stdlib && b.stdlib_items < kStdlibItems) {
		// Readable once the interpreter has started, a few
		// milliseconds from now: looked for every 2 ms for a while.
		b.readers.insert(c.pid);
		eager_until_ = monotonic_ns() + kEagerNs;
	}
}

// The build in the file c maps, looked at the first time the file is met.
std::optional<uint32_t> HostPythons::look_at(const HostTracker::Change &c, FileIdentity mapped)
{
	const std::string &host = c.host_path;
	// Found as it will be opened (inside the process's root, regular
	// files only), and read only if it is the file mapped.
	struct stat st;
	if (!stat_target_file(host, &st))
		return std::nullopt;
	std::string key = std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino) + ":" +
			  std::to_string(st.st_size);
	if (auto it = files_.find(key); it != files_.end())
		return it->second;
	std::optional<uint32_t> index;
	PythonDetection found = detect_python_file(host, host, mapped);
	const std::string &unsupported = found.unsupported;
	auto &rt = found.runtime;
	auto place = rt ? python_placement(*rt) : std::nullopt;
	if (rt && place && first_index_ + builds_.size() < FH_PY_MAX_BUILDS) {
		index = static_cast<uint32_t>(first_index_ + builds_.size());
		capture_->add_python_build(*index, rt->offsets);
		// The kernel places the next processes that exec it.
		capture_->add_python_file({place->ino, place->size},
					 {*index, 0, place->runtime_off, place->module_type_off});
		rt->module = host;
		builds_.push_back({*rt, *place, std::nullopt, {}});
		if (rt->minor >= 10)
			builds_.back().stdlib = stdlib_names_from_file(host, mapped);
		if (verbose_)
			found_note_ = "fh-bpf: Python 3." + std::to_string(rt->minor) + " in " +
				      printable(c.m.path) + "\n";
	} else if (!unsupported.empty() || (rt && !place)) {
		unsupported_++;
		said_.say(c.m.path, (unsupported.empty()
					     ? "cannot place the interpreter of " + printable(c.m.path)
					     : printable(unsupported)) +
					    ": its processes get native frames");
	} else if (rt) {
		unsupported_++;
		said_.say("builds", "more than " + std::to_string(FH_PY_MAX_BUILDS) +
					    " Python builds: the next get native frames");
	}
	// Files that hold no build are forgotten when they grow many: met
	// again, they are looked at again.
	if (files_.size() >= kFilesKept)
		std::erase_if(files_, [](const auto &f) { return !f.second; });
	files_.emplace(key, index);
	return index;
}

// sys.stdlib_module_names exists once an interpreter has started: read
// once per build, from any live process of it, at a cost bounded per
// build (kStdlibItems); past it the build's modules lists keep the
// standard library's names.
void HostPythons::read_stdlib_names()
{
	for (auto &b : builds_) {
		if (b.stdlib || b.readers.empty())
			continue;
		for (auto it = b.readers.begin(); it != b.readers.end() && !b.stdlib;) {
			auto proc = capture_->python_of(*it);
			if (!proc || kill(*it, 0) != 0) {
				it = b.readers.erase(it);
				continue;
			}
			PythonRuntime rt = b.rt;
			place_python_at(rt, proc->runtime, proc->module_type);
			ProcessMemory mem(*it);
			StdlibRead r;
			b.stdlib = stdlib_module_names(mem, rt, &r);
			b.stdlib_items += r.items;
			++it;
			if (!b.stdlib && b.stdlib_items >= kStdlibItems) {
				stdlib_given_up_++;
				said_.say("stdlib",
					  "sys.stdlib_module_names of " + printable(b.rt.module) +
						  " cost more than " + std::to_string(kStdlibItems) +
						  " reads: no longer looked for (its processes' "
						  "extension modules include the standard library's)");
				break;
			}
		}
		if (b.stdlib || b.stdlib_items >= kStdlibItems)
			b.readers.clear();
	}
}

bool HostPythons::reading_soon(uint64_t now_ns) const
{
	if (now_ns >= eager_until_)
		return false;
	for (const auto &b : builds_)
		if (!b.stdlib && !b.readers.empty())
			return true;
	return false;
}

} // namespace fh
