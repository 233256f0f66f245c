#include "report/incident.h"
#include "util/clock.h"

#include "process/proc.h"
#include "python/py_traceback.h"
#include "python/python.h"
#include "util/signals.h"
#include "report/traceback.h"

#include <linux/types.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>

extern "C" {
#include "fh/records.h"
}

namespace fh {

namespace {

// The number after `field` in a /proc status text (its last one when
// `last`, as NSpid lists one pid per namespace level).
std::optional<uint32_t> status_number(const std::string &status, const char *field, bool last)
{
	size_t at = status.find(field);
	if (at == std::string::npos)
		return std::nullopt;
	size_t end = status.find('\n', at);
	std::string line = status.substr(at + std::strlen(field),
					 end == std::string::npos ? std::string::npos
								   : end - at - std::strlen(field));
	std::optional<uint32_t> out;
	const char *p = line.c_str();
	while (*p) {
		char *next;
		unsigned long v = std::strtoul(p, &next, 10);
		if (next == p)
			break;
		out = static_cast<uint32_t>(v);
		if (!last)
			break;
		p = next;
	}
	return out;
}

// The cgroup v2 path in a /proc/PID/cgroup text (its "0::" line).
std::string cgroup_path(const std::string &text)
{
	size_t at = text.find("0::");
	while (at != std::string::npos && at != 0 && text[at - 1] != '\n')
		at = text.find("0::", at + 1);
	if (at == std::string::npos)
		return {};
	size_t end = text.find('\n', at);
	return text.substr(at + 3, end == std::string::npos ? std::string::npos : end - at - 3);
}

void hex(std::string &out, uint64_t v)
{
	char buf[24];
	std::snprintf(buf, sizeof(buf), "\"0x%" PRIx64 "\"", v);
	out += buf;
}

// The realtime clock at a CLOCK_MONOTONIC instant (a capture's stamp).
uint64_t realtime_at(uint64_t monotonic)
{
	uint64_t now = clock_ns(CLOCK_MONOTONIC);
	uint64_t rt = clock_ns(CLOCK_REALTIME);
	return monotonic && monotonic <= now ? rt - (now - monotonic) : rt;
}

} // namespace

Incident make_incident(const Event &ev, const ProcessMeta &meta, const std::string &text)
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
	inc.event = &ev;
	inc.time_ns = realtime_at(ev.ktime_start);
	inc.host = host;
	inc.kernel = kernel;
	inc.meta = meta;
	inc.text = text;
	return inc;
}

ProcessMeta read_process_meta(pid_t pid)
{
	ProcessMeta m;
	std::string dir = "/proc/" + std::to_string(pid);
	char buf[4096];
	ssize_t n = readlink((dir + "/exe").c_str(), buf, sizeof(buf));
	if (n > 0 && static_cast<size_t>(n) < sizeof(buf))
		m.exe.assign(buf, static_cast<size_t>(n));
	if (auto cmd = read_proc_file(dir + "/cmdline", 1 << 20)) {
		size_t i = 0;
		while (i < cmd->size()) {
			size_t j = cmd->find('\0', i);
			if (j == std::string::npos)
				j = cmd->size();
			m.cmdline.push_back(cmd->substr(i, j - i));
			i = j + 1;
		}
	}
	if (auto status = read_proc_file(dir + "/status", 65536)) {
		m.uid = status_number(*status, "\nUid:", false);
		m.ns_pid = status_number(*status, "\nNSpid:", true);
	}
	if (auto cg = read_proc_file(dir + "/cgroup", 65536))
		m.cgroup = cgroup_path(*cg);
	return m;
}

bool ScopeFilter::admits(pid_t pid) const
{
	std::string dir = "/proc/" + std::to_string(pid);
	if (!comms.empty() || !exclude_comms.empty()) {
		auto comm = read_proc_file(dir + "/comm", 64);
		if (!comm)
			return false;
		if (!comm->empty() && comm->back() == '\n')
			comm->pop_back();
		auto has = [&](const std::vector<std::string> &v) {
			return std::find(v.begin(), v.end(), *comm) != v.end();
		};
		if (has(exclude_comms) || (!comms.empty() && !has(comms)))
			return false;
	}
	if (!uids.empty()) {
		auto status = read_proc_file(dir + "/status", 65536);
		auto uid = status ? status_number(*status, "\nUid:", false) : std::nullopt;
		if (!uid || std::find(uids.begin(), uids.end(), *uid) == uids.end())
			return false;
	}
	if (!cgroups.empty()) {
		auto cg = read_proc_file(dir + "/cgroup", 65536);
		std::string path = cg ? cgroup_path(*cg) : std::string();
		if (path.empty())
			return false;
		// The cgroup or one below it.
		bool in = false;
		for (const auto &c : cgroups)
			in |= c == "/" || path == c ||
			      (path.size() > c.size() && path.compare(0, c.size(), c) == 0 &&
			       path[c.size()] == '/');
		if (!in)
			return false;
	}
	return true;
}

std::string json_string(const std::string &s)
{
	static const char digits[] = "0123456789abcdef";
	std::string out = "\"";
	for (size_t i = 0; i < s.size();) {
		unsigned char c = static_cast<unsigned char>(s[i]);
		if (c == '"' || c == '\\') {
			out += '\\';
			out += static_cast<char>(c);
			i++;
		} else if (c < 0x20 || c == 0x7f) {
			out += "\\u00";
			out += digits[c >> 4];
			out += digits[c & 0xf];
			i++;
		} else if (size_t n = utf8_length(s, i)) {
			out.append(s, i, n);
			i += n;
		} else {
			out += "\\\\x"; // the text \xHH
			out += digits[c >> 4];
			out += digits[c & 0xf];
			i++;
		}
	}
	return out + "\"";
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
	const Event &ev = *inc.event;
	bool signal = ev.trigger == FH_TRIGGER_FATAL_SIGNAL || ev.trigger == FH_TRIGGER_USER_SIGNAL;
	std::string what = signal ? signal_abbrev(ev.sig)
				  : ev.trigger == FH_TRIGGER_TIMEOUT ? "timeout" : "dump";
	return file_stem(inc.time_ns, ev.comm, ev.tgid, what);
}

std::string incident_json(const Incident &inc)
{
	const Event &ev = *inc.event;
	std::string o = "{\"schema\":" + std::to_string(kIncidentSchema);
	auto key = [&](const char *k) {
		o += ",\"";
		o += k;
		o += "\":";
	};
	auto str = [&](const char *k, const std::string &v) {
		key(k);
		o += json_string(v);
	};
	auto num = [&](const char *k, uint64_t v) {
		key(k);
		o += std::to_string(v);
	};
	str("time", utc_time(inc.time_ns));
	str("host", inc.host);
	str("kernel", inc.kernel);
	str("trigger", trigger_name(ev.trigger));
	num("pid", ev.tgid);
	key("ns_pid");
	o += inc.meta.ns_pid ? std::to_string(*inc.meta.ns_pid) : "null";
	key("tid");
	o += ev.hit_tid ? std::to_string(ev.hit_tid) : "null";
	key("ns_tid");
	o += ev.identity.ns_tid ? std::to_string(ev.identity.ns_tid) : "null";
	key("pid_namespace_level");
	o += ev.identity.known ? std::to_string(ev.identity.pid_ns_level) : "null";
	str("comm", ev.comm);
	key("exe");
	o += inc.meta.exe.empty() ? "null" : json_string(inc.meta.exe);
	key("cmdline");
	o += "[";
	for (size_t i = 0; i < inc.meta.cmdline.size(); i++)
		o += (i ? "," : "") + json_string(inc.meta.cmdline[i]);
	o += "]";
	key("uid");
	o += inc.meta.uid ? std::to_string(*inc.meta.uid) : "null";
	key("cgroup");
	o += inc.meta.cgroup.empty() ? "null" : json_string(inc.meta.cgroup);

	key("signal");
	if (ev.trigger == FH_TRIGGER_FATAL_SIGNAL || ev.trigger == FH_TRIGGER_USER_SIGNAL) {
		o += "{\"number\":" + std::to_string(ev.sig) + ",\"name\":" +
		     json_string(signal_abbrev(ev.sig)) +
		     ",\"code\":" + json_string(si_code_name(ev.sig, ev.si_code)) +
		     ",\"delivered\":" + (ev.terminated ? "false" : "true") + ",\"address\":";
		if (signal_has_fault_address(ev.sig, ev.si_code))
			hex(o, ev.fault_addr);
		else
			o += "null";
		o += "}";
	} else {
		o += "null";
	}
	key("sender");
	if (!ev.sender)
		o += "null";
	else if (ev.sender->kernel) {
		const Sender &k = *ev.sender;
		o += "{\"kernel\":true,\"function\":" +
		     (k.kernel_function.empty() ? "null" : json_string(k.kernel_function)) +
		     ",\"cause\":" + (k.kernel_what.empty() ? "null" : json_string(k.kernel_what)) +
		     ",\"context_pid\":" + (k.tgid ? std::to_string(k.tgid) : "null") +
		     ",\"context_comm\":" + (k.tgid ? json_string(k.comm) : "null") + "}";
	}
	else
		o += "{\"kernel\":false,\"pid\":" + std::to_string(ev.sender->tgid) +
		     ",\"comm\":" + json_string(ev.sender->comm) +
		     ",\"uid\":" + std::to_string(ev.sender->uid) + "}";
	key("python");
	o += inc.python.empty() ? "null" : json_string(inc.python);

	key("threads");
	o += "[";
	for (size_t i = 0; i < inc.threads.size(); i++) {
		const IncidentThread &t = inc.threads[i];
		o += i ? ",{" : "{";
		o += "\"pthread\":";
		hex(o, t.pthread_id);
		o += ",\"tid\":" + (t.tid ? std::to_string(t.tid) : std::string("null"));
		o += ",\"name\":" + (t.name.empty() ? std::string("null") : json_string(t.name));
		o += std::string(",\"current\":") + (t.current ? "true" : "false");
		o += std::string(",\"truncated\":") + (t.truncated ? "true" : "false");
		o += ",\"frames\":[";
		for (size_t j = 0; j < t.frames.size(); j++) {
			const IncidentFrame &f = t.frames[j];
			o += j ? ",{" : "{";
			o += std::string("\"kind\":") + (f.python ? "\"python\"" : "\"native\"");
			o += ",\"function\":" + (f.function.empty() ? "null" : json_string(f.function));
			o += ",\"file\":" + (f.file.empty() ? "null" : json_string(f.file));
			o += ",\"line\":" + (f.line >= 0 ? std::to_string(f.line) : std::string("null"));
			if (!f.python) {
				o += ",\"module\":" + (f.module.empty() ? "null" : json_string(f.module));
				o += ",\"offset\":";
				if (f.module.empty())
					o += "null";
				else
					hex(o, f.module_offset);
				o += ",\"address\":";
				hex(o, f.address);
				o += std::string(",\"inlined\":") + (f.inlined ? "true" : "false");
			}
			o += "}";
		}
		o += "]}";
	}
	o += "]";
	key("extension_modules");
	o += "[";
	for (size_t i = 0; i < inc.extension_modules.size(); i++)
		o += (i ? "," : "") + json_string(inc.extension_modules[i]);
	o += "]";
	key("lost");
	o += "{\"threads_skipped\":" + std::to_string(ev.threads_skipped) +
	     ",\"threads_lost\":" + std::to_string(ev.threads_lost) +
	     std::string(",\"complete\":") + (ev.complete ? "true" : "false") + ",\"notes\":[";
	for (size_t i = 0; i < inc.losses.size(); i++)
		o += (i ? "," : "") + json_string(inc.losses[i]);
	o += "]}";
	str("text", inc.text);
	return o + "}";
}

std::vector<IncidentThread> incident_threads(const Traceback &tb)
{
	std::vector<IncidentThread> out;
	for (const auto &t : tb.threads) {
		IncidentThread it;
		it.pthread_id = t.pthread_id;
		it.tid = t.tid;
		it.name = t.name;
		it.current = t.current;
		it.truncated = t.truncated || t.frames.size() > kMaxFrames;
		for (size_t i = 0; i < t.frames.size() && i < kMaxFrames; i++) {
			const Frame &f = t.frames[i];
			IncidentFrame x;
			x.function = f.function;
			x.file = f.line > 0 ? f.file : std::string();
			x.line = f.line > 0 ? f.line : -1;
			x.module = f.module;
			x.module_offset = f.module_offset;
			x.address = f.pc;
			x.inlined = f.inlined;
			it.frames.push_back(std::move(x));
		}
		out.push_back(std::move(it));
	}
	return out;
}

std::vector<IncidentThread> incident_threads(const std::vector<PyThreadText> &threads)
{
	std::vector<IncidentThread> out;
	for (const auto &t : threads) {
		if (out.size() == kPyMaxThreads)
			break;
		IncidentThread it;
		it.pthread_id = t.thread_id;
		it.tid = t.tid;
		it.current = t.current;
		it.truncated = t.more_frames || t.frames.size() > kPyMaxFrames;
		for (size_t i = 0; i < t.frames.size() && i < kPyMaxFrames; i++) {
			const PyFrameText &f = t.frames[i];
			IncidentFrame x;
			x.python = true;
			x.file = f.filename.value_or("");
			x.line = f.line;
			x.function = f.name.value_or("");
			it.frames.push_back(std::move(x));
		}
		out.push_back(std::move(it));
	}
	return out;
}

// Loss lines ("fh-bpf: ...\n" each) as sentences.
std::vector<std::string> loss_sentences(const std::string &losses)
{
	std::vector<std::string> out;
	size_t i = 0;
	while (i < losses.size()) {
		size_t j = losses.find('\n', i);
		if (j == std::string::npos)
			j = losses.size();
		std::string line = losses.substr(i, j - i);
		if (line.rfind("fh-bpf: ", 0) == 0)
			line.erase(0, 8);
		if (!line.empty())
			out.push_back(line);
		i = j + 1;
	}
	return out;
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
size_t frame_size(const IncidentFrame &f)
{
	return 160 + f.file.size() + f.function.size() + f.module.size();
}

} // namespace

uint64_t cut_threads(std::vector<IncidentThread> &threads, size_t max_bytes)
{
	uint64_t cut = 0;
	size_t used = 0, keep = 0;
	for (; keep < threads.size(); keep++) {
		IncidentThread &t = threads[keep];
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
	threads.resize(keep);
	return cut;
}

bool bound_incident(std::string &text, std::vector<IncidentThread> &threads, std::string &notes)
{
	bool cut = false;
	if (size_t n = cut_text(text, kIncidentMaxBytes)) {
		notes += "fh-bpf: the traceback was cut at " + std::to_string(kIncidentMaxBytes) +
			 " bytes (" + std::to_string(n) + " more)\n";
		cut = true;
	}
	if (uint64_t n = cut_threads(threads, kIncidentMaxBytes)) {
		notes += "fh-bpf: " + std::to_string(n) + " frames left out of the record's threads (" +
			 std::to_string(kIncidentMaxBytes) + " bytes of them at most)\n";
		cut = true;
	}
	return cut;
}

Incident cut_incident(const Incident &inc, size_t max_bytes)
{
	Incident out = inc;
	size_t text = cut_text(out.text, max_bytes / 3);
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
		out.losses.push_back("this record was cut to " + std::to_string(max_bytes) +
				     " bytes: " + std::to_string(text) + " bytes of text, " +
				     std::to_string(frames) + " frames and " + std::to_string(modules) +
				     " extension module names left out");
	return out;
}

std::string python_version(const PythonRuntime &rt)
{
	uint32_t v = rt.offsets.version;
	if ((v & 0xffff) == 0) // minor only
		return "3." + std::to_string(rt.minor);
	return std::to_string(v >> 24) + "." + std::to_string(v >> 16 & 0xff) + "." +
	       std::to_string(v >> 8 & 0xff);
}

} // namespace fh
