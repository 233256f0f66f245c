#include "report/text.h"

#include "report/incident.h"
#include "util/strings.h"
#include "util/printable.h"
#include "util/signals.h"

#include <linux/types.h>

#include <signal.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <map>
#include <utility>

extern "C" {
#include "fh/records.h"
}

namespace fh {

namespace {

std::string thread_head(const Thread &t)
{
	char head[96];
	std::snprintf(head, sizeof(head), "%s 0x%016" PRIx64 " (most recent call first):\n",
		      t.current ? "Current thread" : "Thread", t.pthread_id);
	return head;
}

// What a thread without frames shows: "<no native frame>", or per Python
// version "<no Python frame>" (3.8, 3.9 without indent) or nothing (≤ 3.7).
std::string no_frame_line(const Incident &inc)
{
	if (!inc.python)
		return "  <no native frame>\n";
	if (inc.python->minor >= 10)
		return "  <no Python frame>\n";
	if (inc.python->minor >= 8)
		return "<no Python frame>\n";
	return {};
}

std::string render_thread(const Incident &inc, const Thread &t)
{
	std::string out = thread_head(t);
	bool py = inc.python.has_value();
	if (py && inc.python->minor >= 10 && t.current && t.garbage_collecting)
		out += "  Garbage-collecting\n";
	if (t.frames.empty() && (py || !t.truncated)) {
		out += no_frame_line(inc);
		if (py)
			return out;
	}
	size_t n = 0;
	for (const auto &f : t.frames) {
		if (n++ == kMaxFrames)
			break;
		out += std::visit([](const auto &x) { return render_frame(x); }, f);
	}
	bool more = t.truncated || t.frames.size() > kMaxFrames;
	// 3.13.0 writes nothing after its 100th frame (measured).
	bool quiet_cut = py && (inc.python->version_hex & 0xffffff00u) == 0x030d0000u;
	if (more && !quiet_cut)
		out += "  ...\n";
	return out;
}

} // namespace

std::string fatal_header(int sig, bool python)
{
	return std::string(python ? "Fatal Python error: " : "Fatal error: ") +
	       signal_description(sig) + "\n\n";
}

std::string fatal_header(int sig, const PythonDialect &python)
{
	// From 3.13 faulthandler spells SIGFPE with a hyphen (measured).
	if (sig == SIGFPE && python.minor >= 13)
		return "Fatal Python error: Floating-point exception\n\n";
	return fatal_header(sig, true);
}

std::string escape_bytes(const std::string &s)
{
	static const char digits[] = "0123456789abcdef";
	std::string out;
	size_t n = s.size() > kMaxStringLength ? kMaxStringLength : s.size();
	out.reserve(n + 8);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = static_cast<unsigned char>(s[i]);
		if (c >= 0x20 && c <= 0x7e) {
			out += static_cast<char>(c);
		} else {
			out += "\\x";
			out += digits[c >> 4];
			out += digits[c & 0xf];
		}
	}
	if (s.size() > kMaxStringLength)
		out += "...";
	return out;
}

std::string render_frame(const NativeFrame &f)
{
	std::string name = f.function.empty() ? "???" : escape_bytes(f.function);
	if (!f.file.empty() && f.line > 0)
		return "  File \"" + escape_bytes(f.file) + "\", line " + std::to_string(f.line) +
		       " in " + name + "\n";
	if (f.module.empty())
		return "  Binary file '<unknown>' [" + hex(f.pc) + "]\n";
	std::string at = f.function.empty() || !f.function_offset_known
				 ? "+" + hex(f.module_offset)
				 : name + "+" + hex(f.function_offset);
	return "  Binary file \"" + escape_bytes(f.module) + "\", at " + at + " [" + hex(f.pc) +
	       "]\n";
}

std::string render_frame(const PyFrame &f)
{
	return "  File " + (f.file ? "\"" + *f.file + "\"" : std::string("???")) + ", line " +
	       (f.line >= 0 ? std::to_string(f.line) : std::string("???")) + " in " +
	       (f.function ? *f.function : std::string("???")) + "\n";
}

std::string extension_modules_line(const std::vector<std::string> &names, uint64_t total)
{
	if (names.empty() && total == 0)
		return {};
	std::string line = "\nExtension modules: ";
	for (size_t i = 0; i < names.size(); i++)
		line += (i ? ", " : "") + names[i];
	if (total > names.size())
		line += names.empty() ? "..." : ", ...";
	return line + " (total: " + std::to_string(std::max<uint64_t>(total, names.size())) +
	       ")\n";
}

bool threads_elided(const Incident &inc)
{
	return inc.python && inc.more_threads &&
	       (inc.threads.size() >= kMaxThreads || inc.threads_cut);
}

std::string render_text(const Incident &inc, size_t *cut)
{
	std::string out = inc.header;
	bool py = inc.python.has_value();
	size_t shown = 0;
	for (const auto &t : inc.threads) {
		if (shown)
			out += "\n";
		// faulthandler lists 100 Python threads, then "...".
		if (py && shown == kMaxThreads) {
			out += "...\n";
			break;
		}
		shown++;
		out += render_thread(inc, t);
	}
	if (inc.threads.size() <= kMaxThreads && threads_elided(inc))
		out += "\n...\n";
	out += extension_modules_line(inc.extension_modules, inc.modules_total);
	size_t n = cut_text(out, inc.text_limit);
	if (cut)
		*cut = n;
	return out;
}

// What the target's own handler did after the capture, for the headline.
std::string handler_words(const Incident &inc)
{
	if (!inc.handler)
		return "";
	const TargetHandler &h = *inc.handler;
	std::string out = ", handled by the process";
	switch (h.end) {
	case TargetHandler::End::died:
		out += ", which then died of " + signal_abbrev(h.sig);
		if (h.sender)
			out += " sent by pid " + std::to_string(h.sender);
		break;
	case TargetHandler::End::exited:
		out += ", which then exited with status " + std::to_string(h.status);
		break;
	case TargetHandler::End::unknown:
		break;
	}
	return out;
}

std::string headline(const Incident &inc)
{
	char buf[512];
	std::string parent;
	if (inc.process.descendant && inc.process.ppid)
		parent = ", parent pid " + std::to_string(*inc.process.ppid);
	if (inc.live()) {
		size_t n = inc.threads.size();
		std::snprintf(buf, sizeof(buf), "fh-bpf: pid %u (%s)%s: %s, %zu thread%s\n", inc.pid,
			      printable(inc.comm).c_str(), parent.c_str(),
			      inc.trigger == FH_TRIGGER_TIMEOUT ? "timeout" : "dump on demand", n,
			      n == 1 ? "" : "s");
		return buf;
	}
	int n = std::snprintf(buf, sizeof(buf), "fh-bpf: pid %u (%s)%s, thread %u (%s): %s (%s)",
			      inc.pid, printable(inc.comm).c_str(), parent.c_str(), inc.tid,
			      printable(inc.thread_name).c_str(), signal_abbrev(inc.sig).c_str(),
			      si_code_name(inc.sig, inc.si_code).c_str());
	std::string out(buf, n > 0 ? std::min<size_t>(n, sizeof(buf) - 1) : 0);
	if (signal_has_fault_address(inc.sig, inc.si_code)) {
		std::snprintf(buf, sizeof(buf), " at address 0x%" PRIx64, inc.fault_addr);
		out += buf;
	}
	if (inc.terminated)
		out += ", which kills without delivery (every thread got SIGKILL)";
	const auto &s = inc.sender;
	if (s && s->kernel) {
		out += ", sent by the kernel";
		if (!s->kernel_function.empty())
			out += " (" + s->kernel_function + ")";
		if (!s->kernel_what.empty())
			out += ": " + s->kernel_what;
		if (s->tgid && s->tgid != inc.pid) {
			std::snprintf(buf, sizeof(buf), ", in the context of pid %u (%s)", s->tgid,
				      printable(s->comm).c_str());
			out += buf;
		}
	} else if (s) {
		std::snprintf(buf, sizeof(buf), ", sent by pid %u (%s), uid %u", s->tgid,
			      printable(s->comm).c_str(), s->uid);
		out += buf;
	}
	return out + handler_words(inc) + "\n";
}

std::string loss_lines(const Incident &inc)
{
	std::string out;
	for (const auto &l : inc.losses)
		out += "fh-bpf: " + l.text + "\n";
	return out;
}

std::string symbol_hint(const Incident &inc)
{
	// A module without debug information is one none of whose frames has
	// a source line (its other frames may still name a function from
	// .dynsym).  Judged on the whole module, as one frame without a line
	// says nothing: crt1.o's _start has none in every program.
	std::vector<std::string> order;
	std::map<std::string, std::pair<std::string, bool>> modules; // build id, has lines
	for (const auto &t : inc.threads)
		for (const auto &frame : t.frames) {
			const auto *f = std::get_if<NativeFrame>(&frame);
			// [vdso] and the like: no file to have symbols for.
			if (!f || f->module.empty() || f->module[0] == '[')
				continue;
			auto [it, added] = modules.try_emplace(f->module, f->build_id, false);
			if (added)
				order.push_back(f->module);
			it->second.second |= !f->file.empty() && f->line > 0;
		}
	const std::string *first = nullptr;
	size_t others = 0;
	for (const auto &name : order) {
		if (modules[name].second)
			continue;
		if (first)
			others++;
		else
			first = &name;
	}
	if (!first)
		return {};
	const std::string &id = modules[*first].first;
	std::string out = "fh-bpf: no symbols for " + printable(*first) + " (" +
			  (id.empty() ? std::string("no build id") : "build id " + printable(id)) + ")";
	if (others)
		out += " and " + std::to_string(others) + " other module" + (others > 1 ? "s" : "");
	return out + ": install its -dbgsym package, or see incidents show --debug-dir\n";
}

} // namespace fh
