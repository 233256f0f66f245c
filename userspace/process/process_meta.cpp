#include "process/process_meta.h"

#include "process/proc.h"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

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

} // namespace

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
		m.ppid = status_number(*status, "\nPPid:", false);
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

} // namespace fh
