#include "report/incident.h"

#include "report/text.h"
#include "util/clock.h"
#include "util/signals.h"

#include <linux/types.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <cctype>
#include <cinttypes>
#include <cstdio>

extern "C" {
#include "fh/records.h"
}

namespace fh {

namespace {

// The realtime clock at a CLOCK_MONOTONIC instant (a capture's stamp).
uint64_t realtime_at(uint64_t monotonic)
{
	uint64_t now = clock_ns(CLOCK_MONOTONIC);
	uint64_t rt = clock_ns(CLOCK_REALTIME);
	return monotonic && monotonic <= now ? rt - (now - monotonic) : rt;
}

} // namespace

bool Incident::fatal() const { return trigger == FH_TRIGGER_FATAL_SIGNAL; }

bool Incident::live() const
{
	return trigger == FH_TRIGGER_TIMEOUT || trigger == FH_TRIGGER_DEMAND;
}

bool Incident::has_signal() const
{
	return trigger == FH_TRIGGER_FATAL_SIGNAL || trigger == FH_TRIGGER_USER_SIGNAL;
}

Incident make_incident(const Event &ev, const ProcessMeta &meta)
{
	// Read once: they do not change while fh-bpf runs.
	static const std::string host = [] {
		char buf[256] = {};
		return gethostname(buf, sizeof(buf) - 1) == 0 ? std::string(buf) : std::string();
	}();
	static const std::string kernel = [] {
		struct utsname u;
		return uname(&u) == 0 ? std::string(u.release) : std::string();
	}();
	Incident inc;
	inc.time_ns = realtime_at(ev.ktime_start);
	inc.host = host;
	inc.kernel = kernel;
	inc.event_id = ev.id;
	inc.trigger = ev.trigger;
	inc.dump_id = ev.dump_id;
	inc.pid = ev.tgid;
	inc.tid = ev.hit_tid;
	inc.comm = ev.comm;
	for (const auto &t : ev.threads)
		if (t.tid == ev.hit_tid)
			inc.thread_name = t.name;
	inc.sig = ev.sig;
	inc.si_code = ev.si_code;
	inc.fault_addr = ev.fault_addr;
	inc.terminated = ev.terminated;
	inc.sender = ev.sender;
	if (inc.sender)
		inc.sender->kstack.clear(); // named already, if it is the kernel
	if (ev.provisional || ev.handled) {
		TargetHandler h;
		if (const auto &v = ev.verdict; v && v->kind == FH_VERDICT_DIED)
			h = {TargetHandler::End::died, v->sig, v->si_code, v->sender_tgid, 0};
		else if (v && v->kind == FH_VERDICT_EXITED)
			h = {TargetHandler::End::exited, 0, 0, 0, v->status};
		inc.handler = h;
	}
	inc.ns_tid = ev.identity.ns_tid;
	if (ev.identity.known)
		inc.pid_ns_level = ev.identity.pid_ns_level;
	inc.process = meta;
	if (ev.identity.known && ev.identity.ppid)
		inc.process.ppid = ev.identity.ppid; // as the kernel saw it at the capture
	inc.threads_skipped = ev.threads_skipped;
	inc.threads_lost = ev.threads_lost;
	inc.complete = ev.complete;
	return inc;
}

std::string utc_time(uint64_t ns)
{
	time_t sec = static_cast<time_t>(ns / 1000000000);
	struct tm tm;
	gmtime_r(&sec, &tm);
	char buf[64];
	std::snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%06" PRIu64 "Z",
		      tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		      ns % 1000000000 / 1000);
	return buf;
}

std::string trigger_name(uint32_t trigger)
{
	switch (trigger) {
	case FH_TRIGGER_FATAL_SIGNAL:
		return "fatal_signal";
	case FH_TRIGGER_USER_SIGNAL:
		return "user_signal";
	case FH_TRIGGER_TIMEOUT:
		return "timeout";
	case FH_TRIGGER_DEMAND:
		return "demand";
	default:
		return "unknown";
	}
}

std::string file_stem(uint64_t realtime_ns, const std::string &comm, uint32_t pid,
		      const std::string &what)
{
	std::string t = utc_time(realtime_ns); // 2026-12-01T10:31:07.123456Z
	std::string stamp;
	for (char c : t)
		if (c != '-' && c != ':')
			stamp += c;
	std::string name;
	for (char c : comm)
		name += (std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' ||
			 c == '-')
				? c
				: '_';
	if (name.empty())
		name = "unknown";
	return stamp + "-" + name + "-" + std::to_string(pid) + "-" + what;
}

std::string incident_stem(const Incident &inc)
{
	std::string what = inc.has_signal() ? signal_abbrev(inc.sig)
			   : inc.trigger == FH_TRIGGER_TIMEOUT ? "timeout"
							       : "dump";
	return file_stem(inc.time_ns, inc.comm, inc.pid, what);
}

size_t cut_text(std::string &text, size_t max_bytes)
{
	if (text.size() <= max_bytes)
		return 0;
	size_t room = max_bytes > 4 ? max_bytes - 4 : 0;
	// At a line's end, unless that leaves out more than half the room:
	// then inside the line, between two UTF-8 characters.
	size_t end = room ? text.rfind('\n', room - 1) : std::string::npos;
	if (end != std::string::npos && end + 1 >= room / 2) {
		end++;
	} else {
		end = room;
		for (int k = 0; k < 3 && end > 0 &&
				(static_cast<unsigned char>(text[end]) & 0xc0) == 0x80;
		     k++)
			end--;
	}
	size_t cut = text.size() - end;
	text.resize(end);
	text += "...\n";
	return cut;
}

namespace {

// A frame's bytes in JSON, its strings without escapes.
size_t frame_size(const StackFrame &f)
{
	if (const auto *p = std::get_if<PyFrame>(&f))
		return 160 + (p->file ? p->file->size() : 0) +
		       (p->function ? p->function->size() : 0);
	const auto &n = std::get<NativeFrame>(f);
	return 160 + n.file.size() + n.function.size() + n.module.size();
}

} // namespace

uint64_t cut_threads(std::vector<Thread> &threads, size_t max_bytes)
{
	uint64_t cut = 0;
	size_t used = 0, keep = 0;
	for (; keep < threads.size(); keep++) {
		Thread &t = threads[keep];
		size_t head = 64 + t.name.size();
		if (used + head > max_bytes)
			break;
		used += head;
		size_t n = 0;
		while (n < t.frames.size() && used + frame_size(t.frames[n]) <= max_bytes)
			used += frame_size(t.frames[n++]);
		if (n < t.frames.size()) {
			cut += t.frames.size() - n;
			t.frames.resize(n);
			t.truncated = true;
		}
	}
	// The threads with no room for their own line go whole.
	for (size_t i = keep; i < threads.size(); i++)
		cut += threads[i].frames.size();
	if (keep < threads.size())
		threads.resize(keep);
	return cut;
}

bool bound_threads(Incident &inc)
{
	uint64_t n = cut_threads(inc.threads, kIncidentMaxBytes);
	if (!n)
		return false;
	inc.losses.push_back({"frames_cut", n,
			      std::to_string(n) + " frames left out of the record's threads (" +
				      std::to_string(kIncidentMaxBytes) + " bytes of them at most)"});
	return true;
}

bool bound_text(Incident &inc)
{
	size_t more = 0;
	render_text(inc, &more);
	if (!more)
		return false;
	inc.losses.push_back({"text_cut", more,
			      "the traceback was cut at " + std::to_string(inc.text_limit) +
				      " bytes (" + std::to_string(more) + " more)"});
	return true;
}

Incident cut_incident(const Incident &inc, size_t max_bytes)
{
	Incident out = inc;
	out.text_limit = std::min(inc.text_limit, max_bytes / 3);
	size_t text = 0;
	render_text(out, &text);
	uint64_t frames = cut_threads(out.threads, max_bytes / 3);
	size_t modules = 0, used = 0;
	for (size_t i = 0; i < out.extension_modules.size(); i++) {
		used += out.extension_modules[i].size() + 3;
		if (used > max_bytes / 10) {
			modules = out.extension_modules.size() - i;
			out.extension_modules.resize(i);
			break;
		}
	}
	if (text || frames || modules)
		out.losses.push_back({"record_cut", text + frames + modules,
				      "this record was cut to " + std::to_string(max_bytes) +
					      " bytes: " + std::to_string(text) + " bytes of text, " +
					      std::to_string(frames) + " frames and " +
					      std::to_string(modules) + " extension module names left out"});
	return out;
}

} // namespace fh
