#pragma once

#include "capture/bpf_owners.h"

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

struct keepalive_bpf;

namespace fh {

// A user signal sent to the target and refused by the BPF LSM program, so
// that its default action did not terminate the target.
struct Refusal {
	uint32_t tid = 0; // the task it was sent to: the one that would have received it
	int sig = 0;
	uint32_t sender_tgid = 0;
	uint32_t sender_uid = 0;
	std::string sender_comm;
};

// bpf/keepalive.bpf.c loaded and attached: the target's user signal is
// refused while its action is the default one, and each refusal is
// reported.  Throws Error when the kernel does not allow it (no BPF LSM, or
// LSM programs refused by policy): the caller says so and goes on without.
class KeepAlive {
public:
	KeepAlive(pid_t tgid, int sig, bool verbose);
	~KeepAlive();
	KeepAlive(const KeepAlive &) = delete;
	KeepAlive &operator=(const KeepAlive &) = delete;

	int fd() const; // readable when refusals are waiting
	std::vector<Refusal> take();
	uint64_t refused() const;

private:
	static int on_record(void *ctx, void *data, size_t size);

	SkeletonPtr<keepalive_bpf> skel_; // made first, destroyed last
	RingBufferPtr ring_;
	std::vector<Refusal> pending_;
	uint64_t malformed_ = 0;
};

} // namespace fh
