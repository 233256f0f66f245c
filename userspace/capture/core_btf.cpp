#include "capture/core_btf.h"

#include "util/diag.h"
#include "util/error.h"

#include <bpf/btf.h>
#include <fcntl.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <vector>

extern char **environ;

namespace fh {

namespace {

constexpr const char *kKernelBtf = "/sys/kernel/btf/vmlinux";
// A BTF of the types a few programs need is a few KB.
constexpr off_t kMaxBtfBytes = 1 << 20;

uint64_t fnv1a(uint64_t h, const void *data, size_t n)
{
	const auto *p = static_cast<const unsigned char *>(data);
	for (size_t i = 0; i < n; i++) {
		h ^= p[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

std::string bpftool_path()
{
	for (const char *p : {"/usr/sbin/bpftool", "/usr/bin/bpftool", "/usr/local/sbin/bpftool"})
		if (access(p, X_OK) == 0)
			return p;
	return {};
}

// Run argv (an absolute path first), its output to /dev/null; its exit
// status, -1 when it could not run.
int run_quietly(const std::vector<std::string> &argv)
{
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
	std::vector<char *> args;
	for (const auto &a : argv)
		args.push_back(const_cast<char *>(a.c_str()));
	args.push_back(nullptr);
	pid_t pid;
	int rc = posix_spawn(&pid, args[0], &fa, nullptr, args.data(), environ);
	posix_spawn_file_actions_destroy(&fa);
	if (rc != 0)
		return -1;
	int st = 0;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

// The process's kept types (CoreBtf::global).
std::unique_ptr<CoreBtf> &global_cache()
{
	static std::unique_ptr<CoreBtf> cache;
	return cache;
}

} // namespace

CoreBtf::CoreBtf(const std::string &cache_dir) : path_(cache_dir + "/btf")
{
	dir_ = open_private_dir(path_, "the BTF cache", &owner_, true);
}

CoreBtf *CoreBtf::global() { return global_cache().get(); }

void CoreBtf::set_global(std::unique_ptr<CoreBtf> cache) { global_cache() = std::move(cache); }

// The kernel (its release, version and BTF size) and the programs.
std::string CoreBtf::name_for(const void *object, size_t size) const
{
	uint64_t h = 0xcbf29ce484222325ull;
	struct utsname u;
	if (uname(&u) == 0) {
		h = fnv1a(h, u.release, std::strlen(u.release) + 1);
		h = fnv1a(h, u.version, std::strlen(u.version) + 1);
	}
	struct stat st;
	uint64_t btf_size = stat(kKernelBtf, &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
	h = fnv1a(h, &btf_size, sizeof(btf_size));
	h = fnv1a(h, object, size);
	char name[32];
	std::snprintf(name, sizeof(name), "%016" PRIx64 ".btf", h);
	return name;
}

std::string CoreBtf::find(const void *object, size_t size, UniqueFd *fd)
{
	std::string name = name_for(object, size);
	UniqueFd f(openat(dir_.get(), name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
	struct stat st;
	if (!f || !is_private_file(f.get(), owner_) || fstat(f.get(), &st) != 0 ||
	    st.st_size > kMaxBtfBytes)
		return {};
	std::string path = "/proc/self/fd/" + std::to_string(f.get());
	// What libbpf will read: a BTF it parses.
	struct btf *btf = btf__parse_raw(path.c_str());
	if (!btf)
		return {};
	btf__free(btf);
	*fd = std::move(f);
	return path;
}

bool CoreBtf::make(const void *object, size_t size, bool verbose)
{
	std::string tool = bpftool_path();
	if (tool.empty()) {
		if (verbose)
			diag("no bpftool: the kernel types the programs need are not kept (each load "
			     "reads them from the kernel's whole BTF)");
		return false;
	}
	std::string name = name_for(object, size);
	std::string temp = ".tmp-" + std::to_string(getpid());
	std::string object_file = temp + ".bpf.o";
	// The programs, as bpftool reads them: from a file of fh-bpf's own.
	int out = openat(dir_.get(), object_file.c_str(),
			 O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	bool ok = out >= 0 && write_all(out, std::string(static_cast<const char *>(object), size));
	if (out >= 0)
		close(out);
	ok = ok && run_quietly({tool, "gen", "min_core_btf", kKernelBtf, path_ + "/" + temp,
				path_ + "/" + object_file}) == 0;
	unlinkat(dir_.get(), object_file.c_str(), 0);
	if (ok) {
		int f = openat(dir_.get(), temp.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		ok = f >= 0 && fchmod(f, 0600) == 0;
		if (f >= 0)
			close(f);
	}
	ok = ok && renameat(dir_.get(), temp.c_str(), dir_.get(), name.c_str()) == 0;
	if (!ok) {
		unlinkat(dir_.get(), temp.c_str(), 0);
		if (verbose)
			diag("bpftool could not cut out the kernel types the programs need: each "
			     "load reads them from the kernel's whole BTF");
	}
	return ok;
}

void CoreBtf::forget(const void *object, size_t size)
{
	unlinkat(dir_.get(), name_for(object, size).c_str(), 0);
}

} // namespace fh
