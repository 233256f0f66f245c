#pragma once

#include <stdexcept>
#include <string>

namespace fh {

// Process exit statuses; documented in the README and in --help.
enum ExitStatus : int {
	kExitOk = 0,	   // watch ended; no fatal signal captured
	kExitFailure = 1,  // runtime failure (attach, BPF load, I/O)
	kExitUsage = 2,	   // invalid command line
	kExitCrashed = 3,  // the target died of a fatal signal; tracebacks printed
	kExitNoSupport = 4 // missing privileges or kernel support
};

// The one error type at the libbpf/libdw/syscall boundary: a message, the
// errno that caused it (0 if none) and the exit status it maps to.
class Error : public std::runtime_error {
public:
	explicit Error(const std::string &msg, int err = 0, int status = kExitFailure);

	int err() const { return err_; }
	int status() const { return status_; }

private:
	int err_;
	int status_;
};

// An Error for a failed call that set errno: "what: strerror(errno)".
Error sys_error(const std::string &what, int err);

} // namespace fh
