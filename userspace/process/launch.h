#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace fh {

// A command started under watch (fh-bpf [options] -- CMD [ARGS...]): forked
// at once, held before its exec until release(), so that everything that
// watches it is armed before CMD's first instruction.  It inherits fh-bpf's
// standard input, output and error, its environment and working directory;
// its signal mask is cleared.
class Launch {
public:
	// Forks; the child keeps none of fh-bpf's other descriptors open
	// (close_fd too, when >= 0: the --ready-fd).
	Launch(const std::vector<std::string> &argv, int close_fd);
	~Launch(); // a child never released is killed and reaped
	Launch(const Launch &) = delete;
	Launch &operator=(const Launch &) = delete;

	pid_t pid() const { return pid_; }

	// Let the child exec CMD.  Returns 0 once it has, or the errno of the
	// exec that failed (the child then exits 127, or 126).
	int release();

	// Reap the child (it has exited); its wait status.
	int reap();

private:
	pid_t pid_ = -1;
	int go_fd_ = -1;    // a byte: exec
	int error_fd_ = -1; // the exec's errno, or EOF once it succeeded
	bool released_ = false;
	bool reaped_ = false;
};

// A wait status as a shell reports it: the exit code, or 128 + the signal.
int shell_status(int wait_status);

} // namespace fh
