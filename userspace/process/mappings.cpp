#include "process/mappings.h"

#include "process/proc.h"
#include "util/error.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <set>

namespace fh {

MappingSet::MappingSet(std::vector<Mapping> segments) : segments_(std::move(segments))
{
	std::stable_sort(segments_.begin(), segments_.end(),
			 [](const Mapping &a, const Mapping &b) { return a.start < b.start; });
}

std::vector<std::string> MappingSet::files() const
{
	std::vector<std::string> out;
	std::set<std::string_view> seen;
	for (const auto &m : segments_)
		if (m.maps_file() && seen.insert(m.path).second)
			out.push_back(m.path);
	return out;
}

std::string MappingSet::first_file() const
{
	for (const auto &m : segments_)
		if (m.maps_file())
			return m.path;
	return {};
}

const Mapping *MappingSet::find(uint64_t addr) const
{
	auto it = std::upper_bound(segments_.begin(), segments_.end(), addr,
				   [](uint64_t a, const Mapping &m) { return a < m.start; });
	if (it == segments_.begin())
		return nullptr;
	--it;
	return addr < it->end ? &*it : nullptr;
}

MappingSet read_maps(pid_t pid)
{
	auto text = read_proc_file("/proc/" + std::to_string(pid) + "/maps", 64u << 20);
	if (!text) {
		int e = errno;
		std::string what = "reading /proc/" + std::to_string(pid) + "/maps";
		// The kernel's ptrace access check: another user's process, or
		// one that is not dumpable.
		if (e == EACCES || e == EPERM)
			throw Error(what + ": " + std::strerror(e) +
					    ": a process of another user (or not dumpable) needs "
					    "root, CAP_SYS_PTRACE or CAP_PERFMON",
				    e, kExitNoSupport);
		throw sys_error(what, e);
	}
	return parse_maps(*text);
}

MappingSet parse_maps(std::string_view text)
{
	std::vector<Mapping> out;
	for (size_t from = 0; from < text.size();) {
		size_t nl = text.find('\n', from);
		if (nl == std::string_view::npos)
			nl = text.size();
		// A copy, for sscanf: NUL-terminated (a NUL inside the line
		// ends what sscanf sees of it, not the path).
		std::string line(text.substr(from, nl - from));
		from = nl + 1;
		Mapping m;
		char perms[8] = {};
		unsigned long long start, end, offset, ino = 0;
		unsigned maj = 0, min = 0;
		int path_at = 0;
		if (std::sscanf(line.c_str(), "%llx-%llx %7s %llx %x:%x %llu %n", &start, &end,
				perms, &offset, &maj, &min, &ino, &path_at) < 4)
			continue;
		m.start = start;
		m.end = end;
		m.offset = offset;
		m.maj = maj;
		m.min = min;
		m.ino = ino;
		m.perms = perms;
		size_t path = static_cast<size_t>(path_at);
		if (path_at > 0 && path < line.size())
			m.path = decode_maps_path(std::string_view(line).substr(path));
		out.push_back(std::move(m));
	}
	return MappingSet(std::move(out));
}

std::string decode_maps_path(std::string_view shown)
{
	// The kernel escapes only the newline, a line's end (seq_file_path
	// with "\n"): a backslash of the name is written as it is.
	static constexpr std::string_view kNewline = "\\012";
	std::string out;
	size_t from = 0;
	for (size_t at = shown.find(kNewline); at != std::string_view::npos;
	     at = shown.find(kNewline, from)) {
		out.append(shown, from, at - from);
		out += '\n';
		from = at + kNewline.size();
	}
	out.append(shown.substr(from));
	return out;
}

} // namespace fh
