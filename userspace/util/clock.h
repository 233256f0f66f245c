#pragma once

#include <time.h>

#include <cstdint>

namespace fh {

// A clock's time in nanoseconds.  CLOCK_MONOTONIC is the BPF programs'
// bpf_ktime_get_ns(): captures' stamps compare with it.
inline uint64_t clock_ns(clockid_t clock)
{
	struct timespec ts;
	clock_gettime(clock, &ts);
	return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

inline uint64_t monotonic_ns() { return clock_ns(CLOCK_MONOTONIC); }

} // namespace fh
