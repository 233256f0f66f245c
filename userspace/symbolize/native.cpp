#include "symbolize/native.h"



#include <linux/types.h>

#include <cinttypes>
#include <cstdio>

extern "C" {
#include "fh/records.h"
}

namespace fh {

std::vector<Thread> native_threads(const Event &ev, Unwinder &unwinder, NativeStats &stats,
				   size_t max_frames)
{
	std::vector<Thread> out;

	std::vector<const ThreadCapture *> order;
	for (const auto &t : ev.threads)
		if (t.hit())
			order.push_back(&t);
	for (auto it = ev.threads.rbegin(); it != ev.threads.rend(); ++it)
		if (!it->hit())
			order.push_back(&*it);

	for (const ThreadCapture *t : order) {
		Thread tt;
		tt.pthread_id = t->pthread_id;
		tt.tid = t->tid;
		tt.ns_tid = t->ns_tid;
		tt.name = t->name;
		tt.current = t->hit();
		stats.stack_bytes += t->stack.size();
		if (t->flags & FH_THREAD_ON_CPU)
			stats.stale_threads++;
		if (!(t->flags & FH_THREAD_KERNEL_WORKER)) {
			auto res = unwinder.unwind(*t, max_frames + 1);
			if (!res.error.empty())
				stats.unwind_errors[t->tid] = res.error;
			if (res.truncated && res.frames.size() <= max_frames) {
				tt.truncated = true;
				stats.truncated_threads++;
			}
			if (res.frames.size() > max_frames) {
				res.frames.resize(max_frames);
				tt.truncated = true;
			}
			tt.frames.assign(std::make_move_iterator(res.frames.begin()),
					 std::make_move_iterator(res.frames.end()));
		}
		out.push_back(std::move(tt));
	}
	return out;
}

namespace {

std::string threads(uint32_t n) { return std::to_string(n) + (n == 1 ? " thread" : " threads"); }

} // namespace

void capture_losses(const Event &ev, const NativeStats &stats, bool native_frames,
		    std::vector<Loss> &out)
{
	if (!ev.complete)
		out.push_back({"capture_incomplete", 1,
			       "the capture is incomplete: its end record was lost (ring buffer "
			       "full); threads may be missing"});
	if (ev.threads_skipped && native_frames)
		out.push_back({"threads_skipped", ev.threads_skipped,
			       threads(ev.threads_skipped) + " beyond --max-threads not captured"});
	if (ev.threads_lost && native_frames)
		out.push_back({"threads_lost", ev.threads_lost,
			       threads(ev.threads_lost) + " lost: no room in the ring buffer"});
	if (stats.stale_threads && ev.live())
		out.push_back({"threads_stale", stats.stale_threads,
			       threads(stats.stale_threads) +
				       " kept running and could not be sampled: their frames may "
				       "be stale"});
	else if (stats.stale_threads)
		out.push_back({"threads_stale", stats.stale_threads,
			       threads(stats.stale_threads) +
				       " running on another CPU at the signal: their frames may be "
				       "stale"});
	if (stats.truncated_threads)
		out.push_back({"stack_truncated", stats.truncated_threads,
			       "stack deeper than the bytes copied in " +
				       threads(stats.truncated_threads) + " (see --stack-size)"});
}

} // namespace fh
