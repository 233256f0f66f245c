#include "incidents/store.h"

#include "output/json.h"
#include "output/log_dir.h"
#include "util/error.h"
#include "util/fd.h"
#include "util/signals.h"

#include <linux/types.h>

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <ctime>

extern "C" {
#include "fh/records.h"
}

namespace fh {

namespace {

constexpr size_t kStampLength = 23; // 20261201T103107.123456Z

bool ends_with(const std::string &s, const std::string &suffix)
{
	return s.size() >= suffix.size() &&
	       s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool all_digits(const std::string &s)
{
	return !s.empty() && s.size() <= 10 && s.find_first_not_of("0123456789") == std::string::npos;
}

// A file's bytes: a regular file only, opened without waiting (a FIFO
// would block), below dir without following a symbolic link when dir is
// given (a log directory's file is what fh-bpf wrote or nothing).
std::string read_file(int dir, const std::string &name, const std::string &shown)
{
	int flags = O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC;
	UniqueFd fd(openat(dir, name.c_str(), dir == AT_FDCWD ? flags : flags | O_NOFOLLOW));
	if (!fd)
		throw sys_error(shown, errno);
	struct stat st;
	if (fstat(fd.get(), &st) != 0)
		throw sys_error(shown, errno);
	if (!S_ISREG(st.st_mode))
		throw Error(shown + ": not a regular file", EINVAL);
	if (static_cast<uint64_t>(st.st_size) > kMaxFileBytes)
		throw Error(shown + ": more than 256 MiB, no incident file", EFBIG);
	std::string out(static_cast<size_t>(st.st_size), '\0');
	size_t got = 0;
	while (got < out.size()) {
		ssize_t n = read(fd.get(), out.data() + got, out.size() - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			throw sys_error(shown, errno);
		if (n == 0)
			break; // shorter now than it was
		got += static_cast<size_t>(n);
	}
	out.resize(got);
	return out;
}

// A text file's newest frame: the line after "Current thread …" (else
// the first frame line), without its indent.
std::string text_top_frame(const std::string &text)
{
	size_t at = text.find("\nCurrent thread ");
	at = at == std::string::npos ? text.find("  File ") : text.find('\n', at + 1);
	if (at == std::string::npos)
		return {};
	size_t start = text.find_first_not_of(" \n", at);
	size_t end = start == std::string::npos ? start : text.find('\n', start);
	if (start == std::string::npos)
		return {};
	return text.substr(start, std::min<size_t>(end == std::string::npos ? text.size() - start : end - start, 1024));
}

std::string stem_of(const std::string &name)
{
	return name.substr(0, name.rfind('.'));
}

// Flood control's summaries: "…-0-suppressed", "…-0-suppressed-1".
bool is_summary(const std::string &stem)
{
	size_t dash = stem.rfind('-');
	std::string last = dash == std::string::npos ? stem : stem.substr(dash + 1);
	if (all_digits(last) && dash != std::string::npos)
		return ends_with(stem.substr(0, dash), "-suppressed");
	return ends_with(stem, "-suppressed");
}

} // namespace

bool incident_from_name(const std::string &name, Incident &inc)
{
	if (!is_incident_file(name))
		return false;
	struct tm tm = {};
	unsigned long us = 0;
	int end = 0;
	if (std::sscanf(name.c_str(), "%4d%2d%2dT%2d%2d%2d.%6luZ-%n", &tm.tm_year, &tm.tm_mon,
			&tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &us, &end) != 7 ||
	    end != static_cast<int>(kStampLength) + 1)
		return false;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	inc.time_ns = static_cast<uint64_t>(timegm(&tm)) * 1000000000ull + us * 1000;
	// COMM-PID-WHAT[-N]: the command name may hold dashes, the rest not.
	std::string rest = stem_of(name).substr(kStampLength + 1);
	std::vector<std::string> parts;
	for (size_t i = 0, j; i <= rest.size(); i = j + 1) {
		j = rest.find('-', i);
		if (j == std::string::npos)
			j = rest.size();
		parts.push_back(rest.substr(i, j - i));
	}
	if (parts.size() > 3 && all_digits(parts.back()))
		parts.pop_back(); // the suffix of a name taken
	if (parts.size() < 3 || !all_digits(parts[parts.size() - 2]))
		return false;
	std::string what = parts.back();
	inc.pid = static_cast<uint32_t>(std::stoul(parts[parts.size() - 2]));
	inc.comm.clear();
	for (size_t i = 0; i + 2 < parts.size(); i++)
		inc.comm += (i ? "-" : "") + parts[i];
	if (what == "timeout") {
		inc.trigger = FH_TRIGGER_TIMEOUT;
	} else if (what == "dump") {
		inc.trigger = FH_TRIGGER_DEMAND;
	} else if (auto sig = parse_signal(what)) {
		inc.trigger = FH_TRIGGER_FATAL_SIGNAL;
		inc.sig = *sig;
	} else {
		return false;
	}
	return true;
}

std::vector<StoredIncident> read_incident_file(const std::string &path,
					       std::vector<std::string> *errors,
					       const std::string &id)
{
	int dir = AT_FDCWD;
	std::string name = path;
	UniqueFd dir_fd;
	if (!id.empty()) {
		// A log directory's file: no symbolic link at its name.
		size_t slash = path.rfind('/');
		dir_fd = UniqueFd(open(slash == std::string::npos ? "." : path.substr(0, slash + 1).c_str(),
				       O_RDONLY | O_DIRECTORY | O_CLOEXEC));
		if (!dir_fd)
			throw sys_error(path, errno);
		dir = dir_fd.get();
		name = slash == std::string::npos ? path : path.substr(slash + 1);
	}
	std::string bytes = read_file(dir, name, path);
	std::vector<StoredIncident> out;
	if (ends_with(path, ".txt")) {
		StoredIncident s;
		s.id = id.empty() ? path : id;
		s.path = path;
		s.json = false;
		std::string base = path.substr(path.rfind('/') + 1);
		if (!incident_from_name(base, s.inc))
			throw Error(path + ": a text file not named as fh-bpf names incident files", EINVAL);
		s.top = text_top_frame(bytes);
		s.text = std::move(bytes);
		out.push_back(std::move(s));
		return out;
	}
	size_t n = 0;
	for (size_t at = 0; at < bytes.size();) {
		size_t nl = bytes.find('\n', at);
		if (nl == std::string::npos)
			nl = bytes.size();
		std::string_view line(bytes.data() + at, nl - at);
		at = nl + 1;
		if (line.find_first_not_of(" \t\r") == std::string_view::npos)
			continue;
		n++;
		StoredIncident s;
		s.path = path;
		s.record = n;
		s.id = path + ":" + std::to_string(n);
		try {
			s.inc = incident_from_json(line);
		} catch (const Error &e) {
			std::string where = n == 1 && at >= bytes.size() ? path : s.id;
			if (errors)
				errors->push_back(where + ": " + e.what());
			continue;
		}
		out.push_back(std::move(s));
	}
	if (!id.empty() && n == 1 && out.size() == 1)
		out[0].id = id;
	if (n == 0 && errors)
		errors->push_back(path + ": empty, no incident record");
	return out;
}

std::vector<StoredIncident> read_log_dir(const std::string &dir, std::vector<std::string> *errors)
{
	DIR *d = opendir(dir.c_str());
	if (!d)
		throw sys_error("the log directory " + dir, errno);
	std::vector<std::string> names;
	while (struct dirent *e = readdir(d)) {
		std::string name = e->d_name;
		if (is_incident_file(name) && !is_summary(stem_of(name)))
			names.push_back(std::move(name));
	}
	closedir(d);
	std::vector<StoredIncident> out;
	for (const auto &name : names) {
		try {
			auto records = read_incident_file(dir + "/" + name, errors, stem_of(name));
			for (auto &r : records)
				out.push_back(std::move(r));
		} catch (const Error &e) {
			if (errors)
				errors->push_back(e.what());
		}
	}
	// Oldest first: the time of the capture, then the names' order (a
	// name taken got "-1", "-2"...).
	std::stable_sort(out.begin(), out.end(), [](const StoredIncident &a, const StoredIncident &b) {
		if (a.inc.time_ns != b.inc.time_ns)
			return a.inc.time_ns < b.inc.time_ns;
		if (a.id.size() != b.id.size())
			return a.id.size() < b.id.size();
		return a.id < b.id;
	});
	return out;
}

StoredIncident find_incident(const std::string &what, size_t record, const std::string &dir)
{
	if (what.empty())
		throw Error("incidents show: which incident? (an id of incidents list, or a file)", 0,
			    kExitUsage);
	std::string path = what;
	struct stat st;
	// FILE:N, unless a file has that very name.
	size_t colon = what.rfind(':');
	if (colon != std::string::npos && all_digits(what.substr(colon + 1)) &&
	    stat(what.c_str(), &st) != 0) {
		path = what.substr(0, colon);
		record = std::stoul(what.substr(colon + 1));
		if (!record)
			throw Error(what + ": records count from 1", 0, kExitUsage);
	}
	std::string id;
	if (path.find('/') == std::string::npos && stat(path.c_str(), &st) != 0) {
		// An id: a file of the log directory.
		for (const char *ext : {".json", ".txt", ""}) {
			std::string name = path + ext;
			if (is_incident_file(name) && stat((dir + "/" + name).c_str(), &st) == 0) {
				id = path;
				path = dir + "/" + name;
				break;
			}
		}
		if (id.empty())
			throw Error(what + ": no such file, nor an incident of " + dir +
					    " (see fh-bpf incidents list)",
				    ENOENT);
	}
	std::vector<std::string> errors;
	auto records = read_incident_file(path, &errors, id);
	if (records.empty())
		throw Error(errors.empty() ? path + ": no incident record" : errors.front(), EINVAL);
	if (record == 0) {
		if (records.size() == 1 && errors.empty())
			return std::move(records.front());
		throw Error(path + " holds " + std::to_string(records.size() + errors.size()) +
				    " records: say which (FILE:N, or --record N)",
			    0, kExitUsage);
	}
	for (auto &r : records)
		if (r.record == record)
			return std::move(r);
	for (const auto &e : errors)
		if (e.rfind(path + ":" + std::to_string(record) + ":", 0) == 0)
			throw Error(e, EINVAL);
	throw Error(path + ": no record " + std::to_string(record), ENOENT);
}

} // namespace fh
