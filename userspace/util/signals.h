#pragma once

#include <optional>
#include <string>

namespace fh {

// "SIGSEGV"; "SIG42" for a number without a name.
std::string signal_abbrev(int sig);

// faulthandler's description of a fatal signal ("Segmentation fault"), or
// the C library's description for any other signal.
std::string signal_description(int sig);

// Name of a si_code for this signal: "SEGV_MAPERR", "SI_USER", "SI_TKILL"...
std::string si_code_name(int sig, int si_code);

// Parse "SIGSEGV", "SEGV" or "11".
std::optional<int> parse_signal(const std::string &s);

// True when the kernel fills si_addr for this signal.
bool signal_has_fault_address(int sig, int si_code);

} // namespace fh
