#include "capture/bpf_owners.h"

#include <bpf/libbpf.h>

namespace fh {

void RingBufferFree::operator()(ring_buffer *ring) const noexcept { ring_buffer__free(ring); }

void LinkDestroy::operator()(bpf_link *link) const noexcept { bpf_link__destroy(link); }

} // namespace fh
