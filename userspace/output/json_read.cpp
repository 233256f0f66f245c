#include "output/json.h"

#include "report/incident.h"
#include "util/error.h"
#include "util/signals.h"

#include <linux/types.h>

#include <cerrno>
#include <cstdlib>
#include <ctime>

extern "C" {
#include "fh/records.h"
}

namespace fh {

using json = nlohmann::ordered_json;

namespace {

[[noreturn]] void bad(const std::string &why)
{
	throw Error("not an fh-bpf incident record: " + why, EINVAL);
}

std::string text(const json &j, const char *key)
{
	const json &v = j.at(key);
	return v.is_null() ? std::string() : v.get<std::string>();
}

std::optional<std::string> optional_text(const json &j, const char *key)
{
	const json &v = j.at(key);
	return v.is_null() ? std::nullopt : std::optional<std::string>(v.get<std::string>());
}

template <typename T> std::optional<T> optional_number(const json &j, const char *key)
{
	auto it = j.find(key);
	return it == j.end() || it->is_null() ? std::nullopt : std::optional<T>(it->get<T>());
}

uint64_t hex(const json &v)
{
	if (v.is_null())
		return 0;
	std::string s = v.get<std::string>();
	char *end = nullptr;
	errno = 0;
	uint64_t n = std::strtoull(s.c_str(), &end, 16);
	if (s.rfind("0x", 0) != 0 || errno || *end)
		bad("'" + s + "' is no hex number");
	return n;
}

// "2026-12-01T10:31:07.123456Z" as realtime ns.
uint64_t parse_time(const std::string &s)
{
	struct tm tm = {};
	unsigned long us = 0;
	if (std::sscanf(s.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d.%6luZ", &tm.tm_year, &tm.tm_mon,
			&tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &us) != 7)
		bad("time '" + s + "'");
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	return static_cast<uint64_t>(timegm(&tm)) * 1000000000ull + us * 1000;
}

uint32_t parse_trigger(const std::string &name)
{
	for (uint32_t t : {FH_TRIGGER_FATAL_SIGNAL, FH_TRIGGER_USER_SIGNAL, FH_TRIGGER_TIMEOUT,
			   FH_TRIGGER_DEMAND})
		if (trigger_name(t) == name)
			return t;
	bad("trigger '" + name + "'");
}

StackFrame read_frame(const json &f)
{
	if (f.at("kind") == "python")
		return PyFrame{optional_text(f, "file"), optional_number<int>(f, "line").value_or(-1),
			       optional_text(f, "function")};
	NativeFrame n;
	n.function = text(f, "function");
	n.file = text(f, "file");
	n.line = optional_number<int>(f, "line").value_or(0);
	n.module = text(f, "module");
	n.module_offset = hex(f.at("offset"));
	if (auto it = f.find("build_id"); it != f.end() && it->is_string())
		n.build_id = it->get<std::string>();
	n.pc = hex(f.at("address"));
	n.inlined = f.at("inlined").get<bool>();
	if (auto it = f.find("function_offset"); it != f.end() && !it->is_null()) {
		n.function_offset = hex(*it);
		n.function_offset_known = true;
	}
	return n;
}

Thread read_thread(const json &t)
{
	Thread out;
	out.pthread_id = hex(t.at("pthread"));
	out.tid = optional_number<uint32_t>(t, "tid").value_or(0);
	out.ns_tid = optional_number<uint32_t>(t, "ns_tid").value_or(0);
	out.name = text(t, "name");
	out.current = t.at("current").get<bool>();
	out.truncated = t.at("truncated").get<bool>();
	out.garbage_collecting = t.value("garbage_collecting", false);
	for (const auto &f : t.at("frames"))
		out.frames.push_back(read_frame(f));
	return out;
}

// A si_code's number, from its name for this signal (0 when none has it).
int si_code_of(int sig, const std::string &name)
{
	for (int c = -64; c <= 256; c++)
		if (si_code_name(sig, c) == name)
			return c;
	return 0;
}

// The process's own handler, and how it ended the process.
void read_handler(const json &j, Incident &inc)
{
	// Records written before the field existed have none.
	if (!j.contains("handler") || j.at("handler").is_null())
		return;
	const json &h = j.at("handler");
	TargetHandler out;
	const json &end = h.at("end");
	if (end == "died") {
		out.end = TargetHandler::End::died;
		auto sig = parse_signal(h.at("signal").get<std::string>());
		if (!sig)
			bad("unknown handler signal");
		out.sig = *sig;
		if (!h.at("code").is_null())
			out.si_code = si_code_of(out.sig, h.at("code").get<std::string>());
		out.sender = optional_number<uint32_t>(h, "sender_pid").value_or(0);
	} else if (end == "exited") {
		out.end = TargetHandler::End::exited;
		out.status = h.at("status").get<uint32_t>();
	} else if (!end.is_null()) {
		bad("unknown handler end");
	}
	inc.handler = out;
}

void read_signal(const json &j, Incident &inc)
{
	const json &s = j.at("signal");
	if (s.is_null())
		return;
	inc.sig = s.at("number").get<int>();
	inc.si_code = si_code_of(inc.sig, s.at("code").get<std::string>());
	inc.terminated = !s.at("delivered").get<bool>();
	inc.fault_addr = hex(s.at("address"));
	read_handler(j, inc);
	const json &from = j.at("sender");
	if (from.is_null())
		return;
	Sender sender;
	sender.kernel = from.at("kernel").get<bool>();
	if (sender.kernel) {
		sender.kernel_function = text(from, "function");
		sender.kernel_what = text(from, "cause");
		sender.tgid = optional_number<uint32_t>(from, "context_pid").value_or(0);
		sender.comm = text(from, "context_comm");
	} else {
		sender.tgid = from.at("pid").get<uint32_t>();
		sender.comm = text(from, "comm");
		sender.uid = from.at("uid").get<uint32_t>();
	}
	inc.sender = sender;
}

Incident read_incident(const json &j)
{
	if (!j.is_object() || j.value("schema", 0) != kIncidentSchema)
		bad("no schema " + std::to_string(kIncidentSchema) + " object");
	Incident inc;
	inc.time_ns = parse_time(j.at("time").get<std::string>());
	inc.host = text(j, "host");
	inc.kernel = text(j, "kernel");
	inc.trigger = parse_trigger(j.at("trigger").get<std::string>());
	inc.dump_id = optional_number<uint64_t>(j, "dump_id").value_or(0);
	inc.pid = j.at("pid").get<uint32_t>();
	inc.tid = optional_number<uint32_t>(j, "tid").value_or(0);
	inc.ns_tid = optional_number<uint32_t>(j, "ns_tid").value_or(0);
	inc.pid_ns_level = optional_number<uint32_t>(j, "pid_namespace_level");
	inc.comm = text(j, "comm");
	inc.process.ns_pid = optional_number<uint32_t>(j, "ns_pid");
	inc.process.ppid = optional_number<uint32_t>(j, "ppid");
	inc.process.exe = text(j, "exe");
	for (const auto &a : j.at("cmdline"))
		inc.process.cmdline.push_back(a.get<std::string>());
	inc.process.uid = optional_number<uint32_t>(j, "uid");
	inc.process.cgroup = text(j, "cgroup");
	read_signal(j, inc);
	if (auto version = optional_text(j, "python")) {
		// "3.11.7": PY_VERSION_HEX but its release level.
		unsigned major = 0, minor = 0, micro = 0;
		if (std::sscanf(version->c_str(), "%u.%u.%u", &major, &minor, &micro) < 2)
			bad("python '" + *version + "'");
		inc.python = PythonDialect{static_cast<int>(minor),
					   major << 24 | minor << 16 | micro << 8, *version};
	}
	inc.thread_name = text(j, "thread_name");
	inc.header = text(j, "header");
	for (const auto &t : j.at("threads"))
		inc.threads.push_back(read_thread(t));
	inc.more_threads = inc.threads_cut = j.at("threads_elided").get<bool>();
	for (const auto &m : j.at("extension_modules"))
		inc.extension_modules.push_back(m.get<std::string>());
	inc.modules_total = j.at("extension_modules_total").get<uint64_t>();
	const json &lost = j.at("lost");
	inc.threads_skipped = lost.at("threads_skipped").get<uint32_t>();
	inc.threads_lost = lost.at("threads_lost").get<uint32_t>();
	inc.complete = lost.at("complete").get<bool>();
	for (const auto &l : lost.at("losses"))
		inc.losses.push_back({l.at("kind").get<std::string>(), l.at("count").get<uint64_t>(),
				      l.at("text").get<std::string>()});
	return inc;
}

} // namespace

Incident incident_from_json(std::string_view line)
{
	json j = json::parse(line, nullptr, false);
	if (j.is_discarded())
		bad("not JSON");
	try {
		return read_incident(j);
	} catch (const json::exception &e) {
		bad(e.what());
	}
}

} // namespace fh
