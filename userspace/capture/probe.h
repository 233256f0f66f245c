#pragma once

#include <string>

namespace fh {

// Route libbpf's messages: kept for error reports, and printed with -v.
void init_libbpf(bool verbose);

// Checks, before loading anything, that this process may load BPF programs
// and that the kernel has what the programs need; throws an Error that says
// what is missing.
void probe_support();

// The kernel half of probe_support(): the tracepoints and kfuncs the
// programs use, looked up in the kernel BTF at btf_path.
void probe_kernel(const std::string &btf_path);

// Forget libbpf's messages so far: an error report then quotes only those
// of the step that failed.
void clear_libbpf_log();

// Throws the Error for a failed load or attach (what, errno e): in the
// kernel's terms when probe_kernel() finds something missing, else with
// libbpf's last messages (a verifier log ends with the reason).
[[noreturn]] void explain_failure(const std::string &what, int e);

} // namespace fh
