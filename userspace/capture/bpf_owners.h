#pragma once

// Owners of what libbpf hands out, so that a constructor that throws half
// way frees what it had made.  A class holding several declares them in
// the order they are made (the skeleton first, its links last): members are
// destroyed in reverse, links before the ring before the object.

#include <memory>

struct ring_buffer;
struct bpf_link;

namespace fh {

// A bpftool skeleton (struct fh_bpf, struct keepalive_bpf): its C++ helper
// T::destroy closes its maps and programs, detaching what it attached.
template <typename Skel> struct SkeletonDestroy {
	void operator()(Skel *skel) const noexcept { Skel::destroy(skel); }
};
template <typename Skel> using SkeletonPtr = std::unique_ptr<Skel, SkeletonDestroy<Skel>>;

struct RingBufferFree {
	void operator()(ring_buffer *ring) const noexcept;
};
using RingBufferPtr = std::unique_ptr<ring_buffer, RingBufferFree>;

// A link detaches its program when destroyed (a perf event link also closes
// the event's descriptor).
struct LinkDestroy {
	void operator()(bpf_link *link) const noexcept;
};
using LinkPtr = std::unique_ptr<bpf_link, LinkDestroy>;

} // namespace fh
