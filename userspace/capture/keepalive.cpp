#include "capture/keepalive.h"

#include "capture/abi.h"
#include "util/error.h"

#include <bpf/libbpf.h>
#include <linux/types.h>

#include <cerrno>
#include <cstring>

extern "C" {
#include "fh/records.h"
}
#include "keepalive.skel.h"

namespace fh {

KeepAlive::KeepAlive(pid_t tgid, int sig, bool verbose)
{
	(void)verbose;
	skel_.reset(keepalive_bpf::open());
	if (!skel_)
		throw sys_error("opening the keep-alive program", errno);
	skel_->rodata->target_tgid = static_cast<__u32>(tgid);
	skel_->rodata->user_signal = sig;
	// The kernel's reasons: no BPF LSM in this kernel (ENOENT, EINVAL), or
	// a policy refusing LSM programs (EPERM).
	int err = keepalive_bpf::load(skel_.get());
	if (err)
		throw sys_error("loading a BPF LSM program", -err);
	err = keepalive_bpf::attach(skel_.get());
	if (err)
		throw sys_error("attaching a BPF LSM program (is \"bpf\" in the kernel's lsm= list?)",
				-err);
	ring_.reset(ring_buffer__new(bpf_map__fd(skel_->maps.refusals), on_record, this, nullptr));
	if (!ring_) {
		int e = errno;
		throw sys_error("opening the keep-alive ring buffer", e);
	}
}

KeepAlive::~KeepAlive() = default;

int KeepAlive::fd() const { return ring_buffer__epoll_fd(ring_.get()); }

int KeepAlive::on_record(void *ctx, void *data, size_t size)
{
	auto *self = static_cast<KeepAlive *>(ctx);
	fh_keepalive_record r;
	if (size < sizeof(r)) {
		self->malformed_++;
		return 0;
	}
	std::memcpy(&r, data, sizeof(r));
	Refusal out;
	out.tid = r.tid;
	out.sig = r.sig;
	out.sender_tgid = r.sender_tgid;
	out.sender_uid = r.sender_uid;
	out.sender_comm.assign(r.sender_comm, strnlen(r.sender_comm, sizeof(r.sender_comm)));
	self->pending_.push_back(std::move(out));
	return 0;
}

std::vector<Refusal> KeepAlive::take()
{
	ring_buffer__consume(ring_.get());
	std::vector<Refusal> out;
	out.swap(pending_);
	return out;
}

uint64_t KeepAlive::refused() const { return skel_->bss->refused; }

} // namespace fh
