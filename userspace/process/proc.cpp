#include "process/proc.h"

#include "util/error.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <dirent.h>

#include <cerrno>
#include <deque>
#include <set>
#include <cstdlib>
#include <cstring>
#include <sstream>

namespace fh {

namespace {
constexpr uint64_t kPfKthread = 0x00200000;
}

bool ProcessInfo::kernel_thread() const { return flags & kPfKthread; }

std::optional<std::string> read_proc_file(const std::string &path, size_t max)
{
	UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
	if (!fd)
		return std::nullopt;
	std::string out;
	char buf[65536];
	for (;;) {
		ssize_t n = read(fd.get(), buf, sizeof(buf));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return std::nullopt;
		}
		if (n == 0)
			break;
		out.append(buf, static_cast<size_t>(n));
		if (out.size() > max)
			return std::nullopt;
	}
	return out;
}

std::optional<ProcessInfo> read_process(pid_t pid)
{
	std::string dir = "/proc/" + std::to_string(pid);
	auto stat = read_proc_file(dir + "/stat", 4096);
	auto status = read_proc_file(dir + "/status", 65536);
	if (!stat || !status)
		return std::nullopt;
	return parse_process(pid, *stat, *status);
}

std::optional<ProcessInfo> parse_process(pid_t pid, const std::string &stat,
					 const std::string &status)
{
	ProcessInfo info;
	info.pid = pid;
	// "pid (comm) state ppid pgrp session tty_nr tpgid flags ..."; comm may
	// hold spaces and parentheses: the last ')' ends it.
	size_t open = stat.find('(');
	size_t close = stat.rfind(')');
	if (open == std::string::npos || close == std::string::npos || close < open)
		return std::nullopt;
	info.comm = stat.substr(open + 1, close - open - 1);
	std::istringstream rest(stat.substr(close + 1));
	std::string field;
	rest >> info.state;
	for (int i = 0; i < 5 && rest >> field; i++) {
	}
	rest >> info.flags;

	std::istringstream lines(status);
	std::string line;
	while (std::getline(lines, line))
		if (line.rfind("Tgid:", 0) == 0)
			info.tgid = static_cast<pid_t>(std::strtol(line.c_str() + 5, nullptr, 10));
	if (info.tgid <= 0)
		return std::nullopt;
	return info;
}

UniqueFd open_pidfd(pid_t pid)
{
	int fd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
	if (fd < 0)
		throw sys_error("pidfd_open(" + std::to_string(pid) + ")", errno);
	return UniqueFd(fd);
}

bool pidfd_exited(int pidfd) { return pidfd_exits_within(pidfd, 0); }

bool pidfd_exits_within(int pidfd, int timeout_ms)
{
	struct pollfd p = {pidfd, POLLIN, 0};
	int n;
	while ((n = poll(&p, 1, timeout_ms)) < 0 && errno == EINTR)
		;
	return n > 0 && (p.revents & (POLLIN | POLLHUP));
}

std::vector<pid_t> threads_of(pid_t pid, size_t max)
{
	std::vector<pid_t> out;
	std::string dir = "/proc/" + std::to_string(pid) + "/task";
	DIR *d = opendir(dir.c_str());
	if (!d)
		return out;
	while (struct dirent *e = readdir(d)) {
		if (out.size() >= max)
			break;
		char *end;
		long tid = std::strtol(e->d_name, &end, 10);
		if (end != e->d_name && !*end && tid > 0 && tid <= INT32_MAX)
			out.push_back(static_cast<pid_t>(tid));
	}
	closedir(d);
	return out;
}

namespace {

// The children of every thread of pid, as /proc lists them now.
std::vector<pid_t> children_of(pid_t pid)
{
	std::vector<pid_t> out;
	for (pid_t tid : threads_of(pid)) {
		auto text = read_proc_file("/proc/" + std::to_string(pid) + "/task/" +
						   std::to_string(tid) + "/children",
					   1 << 20);
		if (!text)
			continue;
		const char *p = text->c_str();
		for (char *end;; p = end) {
			long child = std::strtol(p, &end, 10);
			if (end == p)
				break;
			if (child > 0)
				out.push_back(static_cast<pid_t>(child));
		}
	}
	return out;
}

} // namespace

std::vector<Descendant> descendants_of(pid_t root, size_t max,
				       const std::function<void(const Descendant &)> &visit)
{
	std::vector<Descendant> found;
	std::deque<pid_t> todo{root};
	std::set<pid_t> seen{root};
	while (!todo.empty() && found.size() < max) {
		pid_t parent = todo.front();
		todo.pop_front();
		for (pid_t child : children_of(parent)) {
			if (found.size() >= max || !seen.insert(child).second)
				continue;
			found.push_back({child, parent});
			if (visit)
				visit(found.back());
			todo.push_back(child);
		}
	}
	return found;
}

} // namespace fh
