#pragma once

// The apps' event loop: epoll over tagged descriptors, and the signals that
// end or steer a watch read from a signalfd.

#include "util/fd.h"

#include <signal.h>

#include <cstdint>
#include <initializer_list>
#include <vector>

namespace fh {

class EventLoop {
public:
	EventLoop(); // throws Error

	void add(int fd, uint32_t tag); // throws Error
	void remove(int fd);

	// The tags of the descriptors ready now, waiting for one if none is;
	// an interrupted wait is resumed.
	std::vector<uint32_t> wait();

private:
	UniqueFd ep_;
};

// These signals blocked from now on and read from the descriptor returned
// (Ctrl-C, SIGTERM and the like are handled by the loop, even during setup).
UniqueFd signal_fd(std::initializer_list<int> signals);

// A signalfd_siginfo's signal, sender pid and code; false when none was read.
struct SignalRead {
	int signo = 0;
	int code = 0;
	pid_t sender = 0;
};
bool read_signal(int fd, SignalRead &out);

// A monotonic timer firing after first_us, then every interval_us (0: once).
UniqueFd interval_timer(uint64_t first_us, uint64_t interval_us);
void set_timer(int fd, uint64_t first_us, uint64_t interval_us); // re-armed so

// Expirations since the last read (0: none).
uint64_t read_timer(int fd);

} // namespace fh
