#include "output/json.h"

#include "report/incident.h"
#include "report/text.h"
#include "util/strings.h"
#include "util/printable.h"
#include "util/signals.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>

namespace fh {

using json = nlohmann::ordered_json;

namespace {

// A string, or null when empty (unknown).
json text_or_null(const std::string &s) { return s.empty() ? json(nullptr) : json(json_text(s)); }

template <typename T> json number_or_null(const std::optional<T> &v)
{
	return v ? json(*v) : json(nullptr);
}

json frame_object(const NativeFrame &f)
{
	bool sourced = f.line > 0;
	return {{"kind", "native"},
		{"function", text_or_null(f.function)},
		{"file", sourced ? text_or_null(f.file) : json(nullptr)},
		{"line", sourced ? json(f.line) : json(nullptr)},
		{"module", text_or_null(f.module)},
		{"offset", f.module.empty() ? json(nullptr) : json(hex(f.module_offset))},
		{"build_id", text_or_null(f.build_id)},
		{"address", hex(f.pc)},
		{"inlined", f.inlined},
		{"function_offset", f.function_offset_known ? json(hex(f.function_offset))
							    : json(nullptr)}};
}

json frame_object(const PyFrame &f)
{
	return {{"kind", "python"},
		{"function", f.function ? json(json_text(*f.function)) : json(nullptr)},
		{"file", f.file ? json(json_text(*f.file)) : json(nullptr)},
		{"line", f.line >= 0 ? json(f.line) : json(nullptr)}};
}

json thread_object(const Thread &t)
{
	json frames = json::array();
	for (const auto &f : t.frames)
		frames.push_back(std::visit([](const auto &x) { return frame_object(x); }, f));
	return {{"pthread", hex(t.pthread_id)},
		{"tid", t.tid ? json(t.tid) : json(nullptr)},
		{"ns_tid", t.ns_tid ? json(t.ns_tid) : json(nullptr)},
		{"name", text_or_null(t.name)},
		{"current", t.current},
		{"truncated", t.truncated},
		{"garbage_collecting", t.garbage_collecting},
		{"frames", std::move(frames)}};
}

json signal_object(const Incident &inc)
{
	if (!inc.has_signal())
		return nullptr;
	return {{"number", inc.sig},
		{"name", signal_abbrev(inc.sig)},
		{"code", si_code_name(inc.sig, inc.si_code)},
		{"delivered", !inc.terminated},
		{"address", signal_has_fault_address(inc.sig, inc.si_code) ? json(hex(inc.fault_addr))
									   : json(nullptr)}};
}

json sender_object(const Incident &inc)
{
	if (!inc.sender)
		return nullptr;
	const Sender &s = *inc.sender;
	if (s.kernel)
		return {{"kernel", true},
			{"function", text_or_null(s.kernel_function)},
			{"cause", text_or_null(s.kernel_what)},
			{"context_pid", s.tgid ? json(s.tgid) : json(nullptr)},
			{"context_comm", s.tgid ? json(json_text(s.comm)) : json(nullptr)}};
	return {{"kernel", false}, {"pid", s.tgid}, {"comm", json_text(s.comm)}, {"uid", s.uid}};
}

json handler_object(const Incident &inc)
{
	if (!inc.handler)
		return nullptr;
	const TargetHandler &h = *inc.handler;
	switch (h.end) {
	case TargetHandler::End::died:
		return {{"end", "died"},
			{"signal", signal_abbrev(h.sig)},
			{"code", h.si_code ? json(si_code_name(h.sig, h.si_code)) : json(nullptr)},
			{"sender_pid", h.sender ? json(h.sender) : json(nullptr)}};
	case TargetHandler::End::exited:
		return {{"end", "exited"}, {"status", h.status}};
	case TargetHandler::End::unknown:
		break;
	}
	return {{"end", nullptr}};
}

json losses_object(const Incident &inc)
{
	json losses = json::array();
	for (const auto &l : inc.losses)
		losses.push_back({{"kind", l.kind}, {"count", l.count}, {"text", json_text(l.text)}});
	return {{"threads_skipped", inc.threads_skipped},
		{"threads_lost", inc.threads_lost},
		{"complete", inc.complete},
		{"losses", std::move(losses)}};
}

} // namespace

std::string json_text(const std::string &s)
{
	static const char digits[] = "0123456789abcdef";
	std::string out;
	out.reserve(s.size());
	for (size_t i = 0; i < s.size();) {
		if (size_t n = utf8_length(s, i)) {
			out.append(s, i, n);
			i += n;
			continue;
		}
		unsigned char c = static_cast<unsigned char>(s[i++]);
		out += "\\x";
		out += digits[c >> 4];
		out += digits[c & 0xf];
	}
	return out;
}

std::string dump_line(const json &j)
{
	std::string out = j.dump();
	for (size_t at = out.find('\x7f'); at != std::string::npos; at = out.find('\x7f', at))
		out.replace(at, 1, "\\u007f");
	return out;
}

std::string json_string(const std::string &bytes) { return dump_line(json(json_text(bytes))); }

nlohmann::ordered_json incident_object(const Incident &inc, const std::string *text)
{
	json cmdline = json::array();
	for (const auto &a : inc.process.cmdline)
		cmdline.push_back(json_text(a));
	json threads = json::array();
	for (const auto &t : inc.threads)
		threads.push_back(thread_object(t));
	json modules = json::array();
	for (const auto &m : inc.extension_modules)
		modules.push_back(json_text(m));
	// ordered_json keeps the fields in the README's order.
	return {{"schema", kIncidentSchema},
		{"time", utc_time(inc.time_ns)},
		{"host", json_text(inc.host)},
		{"kernel", json_text(inc.kernel)},
		{"trigger", trigger_name(inc.trigger)},
		{"dump_id", inc.dump_id ? json(inc.dump_id) : json(nullptr)},
		{"pid", inc.pid},
		{"ns_pid", number_or_null(inc.process.ns_pid)},
		{"ppid", number_or_null(inc.process.ppid)},
		{"tid", inc.tid ? json(inc.tid) : json(nullptr)},
		{"ns_tid", inc.ns_tid ? json(inc.ns_tid) : json(nullptr)},
		{"pid_namespace_level", number_or_null(inc.pid_ns_level)},
		{"comm", json_text(inc.comm)},
		{"exe", text_or_null(inc.process.exe)},
		{"cmdline", std::move(cmdline)},
		{"uid", number_or_null(inc.process.uid)},
		{"cgroup", text_or_null(inc.process.cgroup)},
		{"signal", signal_object(inc)},
		{"sender", sender_object(inc)},
		{"handler", handler_object(inc)},
		{"python", inc.python ? json(inc.python->version) : json(nullptr)},
		{"thread_name", text_or_null(inc.thread_name)},
		{"header", json_text(inc.header)},
		{"threads", std::move(threads)},
		{"threads_elided", threads_elided(inc)},
		{"extension_modules", std::move(modules)},
		{"extension_modules_total", std::max<uint64_t>(inc.modules_total,
								inc.extension_modules.size())},
		{"lost", losses_object(inc)},
		{"text", json_text(text ? *text : render_text(inc))}};
}

std::string incident_json(const Incident &inc, const std::string *text)
{
	return dump_line(incident_object(inc, text));
}

} // namespace fh
