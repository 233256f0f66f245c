#include "process/kernel_info.h"

#include "util/error.h"

#include "process/proc.h"

#include <dirent.h>
#include <sys/stat.h>

#include <cstdlib>
#include <cstring>
#include <set>
#include <sstream>
#include <vector>

namespace fh {

KernelSymbols::KernelSymbols(const std::string &text)
{
	std::istringstream in(text);
	std::string line;
	while (std::getline(in, line)) {
		// "ffffffff81234560 T name [module]"
		char *end = nullptr;
		uint64_t addr = std::strtoull(line.c_str(), &end, 16);
		if (!end || *end != ' ' || addr == 0 || end[1] == 0 || end[2] != ' ')
			continue;
		char type = end[1];
		if (type != 't' && type != 'T' && type != 'w' && type != 'W')
			continue;
		std::string name = end + 3;
		size_t sp = name.find_first_of(" \t");
		if (sp != std::string::npos)
			name.resize(sp);
		if (!name.empty())
			syms_[addr] = std::move(name);
	}
}

std::string KernelSymbols::name(uint64_t addr) const
{
	auto it = syms_.upper_bound(addr);
	if (it == syms_.begin())
		return {};
	--it;
	// Beyond 1 MiB past the last symbol is not a function of it.
	if (addr - it->first > (1u << 20))
		return {};
	return it->second;
}

KernelSender describe_kernel_sender(const std::vector<std::string> &functions)
{
	// The functions that carry a signal to its target, and the tracing
	// ones around the capture: the sender is the first caller past them.
	static const std::set<std::string> plumbing = {
		"__send_signal_locked", "send_signal_locked",
		"__send_signal", "send_signal", "do_send_sig_info", "send_sig_info", "send_sig",
		"group_send_sig_info", "__group_send_sig_info", "force_sig_info_to_task",
		"force_sig_info", "force_sig", "force_sig_fault", "force_sig_fault_to_task",
		"send_sig_fault", "do_send_specific", "kill_pid_info", "kill_pid_info_type",
		"__kill_pgrp_info", "kill_pgrp", "kill_pid", "send_sigqueue", "complete_signal",
		"do_notify_parent", "__do_notify", "zap_other_threads", "do_group_exit"};
	static const std::vector<std::pair<const char *, const char *>> known = {
		{"oom_kill_process", "the OOM killer"},
		{"__oom_kill_process", "the OOM killer"},
		{"oom_kill_memcg_member", "the OOM killer"},
		{"out_of_memory", "the OOM killer"},
		{"memory_failure", "a memory failure (hardware poison)"},
		{"kill_proc", "a memory failure (hardware poison)"},
		{"it_real_fn", "an interval timer (SIGALRM)"},
		{"posix_timer_fn", "a POSIX timer"},
		{"posixtimer_send_sigqueue", "a POSIX timer"},
		{"check_thread_timers", "a CPU time limit (RLIMIT_CPU or a CPU timer)"},
		{"check_process_timers", "a CPU time limit (RLIMIT_CPU or a CPU timer)"},
		{"run_posix_cpu_timers", "a CPU time limit (RLIMIT_CPU or a CPU timer)"},
		{"__seccomp_filter", "seccomp"},
		{"tty_signal_session_leader", "the terminal hanging up"},
		{"__tty_hangup", "the terminal hanging up"},
		{"isig", "the terminal (a special character)"},
		{"pipe_write", "a write to a pipe with no reader (SIGPIPE)"},
		{"sock_sendmsg", "a write to a socket with no reader (SIGPIPE)"},
		{"exit_notify", "the death of its parent (PR_SET_PDEATHSIG)"},
		{"forget_original_parent", "the death of its parent (PR_SET_PDEATHSIG)"},
		{"send_sigio", "SIGIO for a file descriptor"},
		{"do_coredump", "a core dump"},
		{"zap_pid_ns_processes", "the end of its pid namespace"},
	};
	KernelSender s;
	for (const auto &f : functions) {
		// fh-bpf's own program, and the tracing that ran it
		if (f.empty() || plumbing.count(f) || f.rfind("bpf_prog_", 0) == 0 ||
		    f.rfind("bpf_trace_run", 0) == 0 || f.rfind("__bpf_trace_", 0) == 0 ||
		    f.rfind("__traceiter_", 0) == 0)
			continue;
		if (s.function.empty())
			s.function = f;
		for (const auto &[name, what] : known)
			if (f == name) {
				s.what = what;
				return s;
			}
	}
	return s;
}

CgroupNames::CgroupNames()
{
	auto text = read_proc_file("/proc/self/mountinfo", 1 << 20);
	if (!text)
		return;
	std::istringstream in(*text);
	std::string line;
	while (std::getline(in, line)) {
		// "... mount_point options - fstype source super_options"
		size_t dash = line.find(" - ");
		if (dash == std::string::npos || line.compare(dash + 3, 8, "cgroup2 ") != 0)
			continue;
		std::istringstream f(line.substr(0, dash));
		std::string id, parent, devs, root, point;
		if (f >> id >> parent >> devs >> root >> point) {
			mount_ = point;
			return;
		}
	}
}

void CgroupNames::scan()
{
	scans_++;
	names_.clear();
	if (mount_.empty())
		return;
	// Breadth first, bounded: a host has hundreds, not millions.
	std::vector<std::string> todo = {""};
	for (size_t i = 0; i < todo.size() && names_.size() < 100000; i++) {
		std::string dir = mount_ + todo[i];
		struct stat st;
		if (stat(dir.c_str(), &st) == 0)
			names_[st.st_ino] = todo[i].empty() ? "/" : todo[i];
		DIR *d = opendir(dir.c_str());
		if (!d)
			continue;
		while (struct dirent *e = readdir(d)) {
			if (e->d_type != DT_DIR || !std::strcmp(e->d_name, ".") ||
			    !std::strcmp(e->d_name, ".."))
				continue;
			todo.push_back(todo[i] + "/" + e->d_name);
		}
		closedir(d);
	}
}

std::optional<std::string> CgroupNames::path(uint64_t id)
{
	if (!id)
		return std::nullopt;
	auto it = names_.find(id);
	if (it == names_.end() && scans_ < 1000) {
		scan();
		it = names_.find(id);
	}
	if (it == names_.end())
		return std::nullopt;
	return it->second;
}

uint64_t CgroupNames::id_of(const std::string &path) const
{
	if (mount_.empty())
		throw Error("this system has no cgroup v2 hierarchy mounted", ENOENT);
	std::string dir = path;
	if (path.compare(0, mount_.size(), mount_) != 0 ||
	    (path.size() > mount_.size() && path[mount_.size()] != '/'))
		dir = mount_ + (path.empty() || path[0] != '/' ? "/" : "") + path;
	struct stat st;
	if (stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
		throw Error("no cgroup " + dir + " (cgroup v2, mounted at " + mount_ + ")", ENOENT);
	return st.st_ino;
}

} // namespace fh
