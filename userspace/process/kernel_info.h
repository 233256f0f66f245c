#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace fh {

// Kernel function names for the addresses of a kernel stack, from a
// /proc/kallsyms text (loaded once, when first needed).
class KernelSymbols {
public:
	// Parses kallsyms text; lines it cannot read are skipped.
	explicit KernelSymbols(const std::string &kallsyms_text);

	// The function containing addr; empty when unknown (or when the
	// addresses are hidden: kptr_restrict shows them as 0).
	std::string name(uint64_t addr) const;
	size_t size() const { return syms_.size(); }

private:
	std::map<uint64_t, std::string> syms_; // start -> name (text symbols)
};

// Who, in the kernel, generated a signal, from the functions of the stack
// where it was generated (innermost first): the first caller past the
// signal-sending functions ("oom_kill_process"), and what it means to a
// reader ("the OOM killer"; empty when nothing more is known).
struct KernelSender {
	std::string function;
	std::string what;
};
KernelSender describe_kernel_sender(const std::vector<std::string> &functions);

// cgroup v2 ids (kernfs node ids, the directories' inode numbers) to their
// paths below the cgroup2 mount ("/system.slice/foo.service").
class CgroupNames {
public:
	// The cgroup2 mount from /proc/self/mountinfo; empty when there is none.
	CgroupNames();
	const std::string &mount() const { return mount_; }

	// The path of id, rescanning the hierarchy (bounded) when it is not
	// known yet; nullopt when it cannot be found.
	std::optional<std::string> path(uint64_t id);

	// The id of a cgroup given as a path: below the mount ("/a/b"), or the
	// directory itself ("/sys/fs/cgroup/unified/a/b"); throws Error saying
	// why there is none.
	uint64_t id_of(const std::string &path) const;

private:
	void scan();
	std::string mount_;
	std::map<uint64_t, std::string> names_;
	uint64_t scans_ = 0;
};

} // namespace fh
