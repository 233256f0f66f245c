#include "py_report.h"

#include "linetable.h"

#include <algorithm>

extern "C" {
#include "fh/records.h"
}

namespace fh {

namespace {

bool is_current(const Event &ev, const PyThreadCapture &t)
{
	if (t.native_thread_id)
		return t.native_thread_id == ev.hit_tid;
	// Before 3.11 a thread state knows its pthread_t only: the native
	// capture maps it (fs_base) to the kernel TID.
	for (const auto &n : ev.threads)
		if (n.pthread_id == t.thread_id)
			return n.tid == ev.hit_tid;
	return false;
}

int line_of(int minor, const PyCodeCapture &c, int32_t lasti)
{
	if (!(c.flags & FH_PY_CODE_LINETABLE))
		return -1;
	const uint8_t *t = c.linetable.data();
	size_t n = c.linetable.size();
	if (minor <= 9)
		return lnotab_line(t, n, c.firstlineno, lasti);
	if (minor == 10)
		return linetable310_line(t, n, c.firstlineno, lasti < 0 ? lasti : lasti * 2);
	return location_table_line(t, n, c.firstlineno, lasti);
}

PyFrameText frame_text(int minor, const Event &ev, const PyFrameCapture &f)
{
	PyFrameText out;
	auto it = ev.py_codes.find(f.code);
	if (f.code == 0 || it == ev.py_codes.end())
		return out;
	const PyCodeCapture &c = it->second;
	if (c.flags & FH_PY_CODE_FILENAME)
		out.filename = py_escape(c.filename, c.filename_length);
	if (c.flags & FH_PY_CODE_NAME)
		out.name = py_escape(c.name, c.name_length);
	out.line = line_of(minor, c, f.lasti);
	return out;
}

} // namespace

std::vector<PyThreadText> python_threads(const Event &ev, const PythonRuntime &rt)
{
	std::vector<PyThreadText> out;
	const fh_py_offsets &o = rt.offsets;
	for (const auto &t : ev.py_threads) {
		PyThreadText tt;
		tt.thread_id = t.thread_id;
		tt.tid = t.native_thread_id;
		if (!tt.tid)
			for (const auto &n : ev.threads) // before 3.11: by pthread_t
				if (n.pthread_id == t.thread_id)
					tt.tid = n.tid;
		tt.current = is_current(ev, t);
		tt.garbage_collecting = t.flags & FH_PY_THREAD_GC;
		tt.more_frames = t.flags & FH_PY_THREAD_MORE_FRAMES;
		for (size_t i = 0; i < t.frames.size(); i++) {
			const PyFrameCapture &f = t.frames[i];
			// From 3.12 a shim frame (owned by the C stack) below the
			// top one is not printed.
			if (i > 0 && o.owner_skip_min != FH_PY_NONE && f.owner >= o.owner_skip_min)
				continue;
			tt.frames.push_back(frame_text(rt.minor, ev, f));
		}
		out.push_back(std::move(tt));
	}
	return out;
}

std::vector<std::string> extension_modules(const Event &ev, const PythonRuntime &rt,
					   const std::set<std::string> *stdlib)
{
	std::vector<std::string> out;
	if (rt.minor < 10)
		return out;
	std::vector<const PyModuleName *> order;
	for (const auto &m : ev.py_modules)
		order.push_back(&m);
	std::sort(order.begin(), order.end(),
		  [](auto *a, auto *b) { return a->index < b->index; });
	for (const PyModuleName *m : order) {
		if (!m->readable)
			continue; // faulthandler skips keys that are not str
		std::string name = py_escape(m->name, m->length);
		if (stdlib && stdlib->count(name))
			continue;
		out.push_back(std::move(name));
	}
	return out;
}

std::string extension_modules_line(const std::vector<std::string> &names)
{
	if (names.empty())
		return {};
	std::string line = "\nExtension modules: ";
	for (size_t i = 0; i < names.size(); i++)
		line += (i ? ", " : "") + names[i];
	return line + " (total: " + std::to_string(names.size()) + ")\n";
}

PythonText python_text(const Event &ev, const PythonRuntime &rt,
		       const std::set<std::string> *stdlib, const std::string &header)
{
	PythonText p;
	p.threads = python_threads(ev, rt);
	if (ev.trigger == FH_TRIGGER_FATAL_SIGNAL)
		p.modules = extension_modules(ev, rt, stdlib);
	p.text = header +
		 render_python_threads(rt.minor, rt.offsets.version, p.threads,
				       ev.py_threads.size() >= FH_PY_MAX_THREADS) +
		 extension_modules_line(p.modules);
	return p;
}

} // namespace fh
