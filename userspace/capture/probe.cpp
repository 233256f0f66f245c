#include "capture/probe.h"

#include "process/proc.h"
#include "util/error.h"

#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <linux/types.h>
#include <unistd.h>

#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>

namespace fh {

namespace {

bool g_verbose = false;
std::string g_libbpf_log; // the last messages, for error reports

int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	char *buf = nullptr;
	int n = vasprintf(&buf, fmt, ap);
	if (n < 0)
		return n;
	if (g_verbose && level != LIBBPF_DEBUG)
		std::fputs(buf, stderr);
	if (level != LIBBPF_DEBUG) {
		// Keep the tail: a verifier log ends with the reason.
		g_libbpf_log += buf;
		if (g_libbpf_log.size() > 16384)
			g_libbpf_log.erase(0, g_libbpf_log.size() - 16384);
	}
	std::free(buf);
	return n;
}

constexpr const char *kVmlinuxBtf = "/sys/kernel/btf/vmlinux";
constexpr int kCapPerfmon = 38;
constexpr int kCapBpf = 39;
constexpr int kCapSysAdmin = 21;

uint64_t effective_caps()
{
	auto status = read_proc_file("/proc/self/status");
	if (!status)
		return 0;
	std::istringstream lines(*status);
	std::string line;
	while (std::getline(lines, line))
		if (line.rfind("CapEff:", 0) == 0)
			return std::strtoull(line.c_str() + 7, nullptr, 16);
	return 0;
}

} // namespace

void init_libbpf(bool verbose)
{
	g_verbose = verbose;
	libbpf_set_print(libbpf_print);
}

void probe_kernel(const std::string &btf_path)
{
	if (access(btf_path.c_str(), R_OK) != 0)
		throw Error("this kernel exposes no BTF (" + btf_path +
				    " is missing): fh-bpf needs a kernel built with "
				    "CONFIG_DEBUG_INFO_BTF=y",
			    ENOENT, kExitNoSupport);
	struct btf *btf = btf__parse(btf_path.c_str(), nullptr);
	if (!btf)
		throw Error("cannot read the kernel's BTF from " + btf_path + ": " +
				    std::string(std::strerror(errno)),
			    errno, kExitNoSupport);
	struct Need {
		const char *name;
		__u32 kind;
		const char *what;
	};
	const Need needs[] = {
		{"btf_trace_signal_generate", BTF_KIND_TYPEDEF, "the signal_generate tracepoint"},
		{"btf_trace_signal_deliver", BTF_KIND_TYPEDEF, "the signal_deliver tracepoint"},
		{"btf_trace_sys_exit", BTF_KIND_TYPEDEF, "the sys_exit tracepoint"},
		{"btf_trace_sched_process_exec", BTF_KIND_TYPEDEF,
		 "the sched_process_exec tracepoint"},
		{"bpf_iter_task_new", BTF_KIND_FUNC,
		 "the bpf_iter_task kfuncs (Linux 6.7 or later)"},
	};
	std::string missing;
	for (const auto &n : needs)
		if (btf__find_by_name_kind(btf, n.name, n.kind) < 0)
			missing += std::string(missing.empty() ? "" : ", ") + n.what;
	btf__free(btf);
	if (!missing.empty())
		throw Error("this kernel lacks what fh-bpf needs: " + missing, ENOTSUP,
			    kExitNoSupport);
}

void probe_support()
{
	uint64_t caps = effective_caps();
	bool can_bpf = (caps >> kCapSysAdmin & 1) ||
		       ((caps >> kCapBpf & 1) && (caps >> kCapPerfmon & 1));
	if (!can_bpf)
		throw Error("insufficient privileges: loading the BPF programs needs root, or the "
			    "capabilities CAP_BPF and CAP_PERFMON (try: sudo fh-bpf ...)",
			    EPERM, kExitNoSupport);
	// The tracepoints and kfuncs are looked up (probe_kernel) only when
	// loading fails: parsing the kernel's BTF costs ~50 ms, and loading
	// parses it again anyway.
	if (access(kVmlinuxBtf, R_OK) != 0)
		probe_kernel(kVmlinuxBtf);
}

void clear_libbpf_log() { g_libbpf_log.clear(); }

// Why loading failed, in the kernel's terms when the probe finds a reason.
[[noreturn]] void explain_failure(const std::string &what, int e)
{
	probe_kernel(kVmlinuxBtf); // throws when something is missing
	if (e == EPERM || e == EACCES)
		throw Error(what + ": " + std::strerror(e) +
				    " (needs root, or CAP_BPF and CAP_PERFMON; a security "
				    "policy may also forbid BPF)\n" + g_libbpf_log,
			    e, kExitNoSupport);
	throw Error(what + ": " + std::strerror(e) + "\n" + g_libbpf_log, e);
}

} // namespace fh
