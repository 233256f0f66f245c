#include "app/flood.h"

#include "util/printable.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

namespace fh {

bool FloodControl::take(std::map<std::string, Bucket> &buckets, const std::string &key,
			const Rate &r, uint64_t now, bool commit)
{
	if (r.count == 0)
		return true;
	Bucket &b = buckets[key];
	if (b.fresh) {
		b.fresh = false;
		b.tokens = r.count;
		b.last_ns = now;
	}
	if (now > b.last_ns) {
		b.tokens = std::min<double>(r.count, b.tokens + static_cast<double>(now - b.last_ns) *
							       r.count / static_cast<double>(r.window_ns));
		b.last_ns = now;
	}
	if (b.tokens < 1)
		return false;
	if (commit)
		b.tokens -= 1;
	return true;
}

bool FloodControl::admit(pid_t pid, const std::string &comm, const std::string &what,
			 uint64_t now)
{
	std::string pkey = std::to_string(pid);
	prune(by_process_, process_, now, prune_process_);
	prune(by_comm_, comm_, now, prune_comm_);
	// Both must have room; only then is a token taken from each.
	if (take(by_process_, pkey, process_, now, false) && take(by_comm_, comm, comm_, now, false)) {
		take(by_process_, pkey, process_, now, true);
		take(by_comm_, comm, comm_, now, true);
		return true;
	}
	Summary &s = pending_[comm];
	if (!s.suppressed) {
		s.comm = comm;
		s.first_ns = now;
	}
	s.suppressed++;
	s.last_ns = now;
	if (std::find(s.pids.begin(), s.pids.end(), pid) == s.pids.end()) {
		if (s.pids.size() < 10)
			s.pids.push_back(pid);
		else
			s.more_pids = true;
	}
	s.what[what]++;
	total_++;
	return false;
}

// A bucket a whole window untouched is full again: the same as none, so it
// goes. Looked at once a window, and when the map has doubled since the
// last look: a host whose processes (and names: any process may rename
// itself) keep changing keeps buckets for about one window's worth of them.
void FloodControl::prune(std::map<std::string, Bucket> &buckets, const Rate &r, uint64_t now,
			 Pruning &p)
{
	if (buckets.size() < p.at && now - p.last_ns < r.window_ns)
		return;
	for (auto it = buckets.begin(); it != buckets.end();) {
		if (now >= it->second.last_ns && now - it->second.last_ns >= r.window_ns)
			it = buckets.erase(it);
		else
			++it;
	}
	p.at = std::max<size_t>(kPruneMin, 2 * buckets.size());
	p.last_ns = now;
}

std::vector<FloodControl::Summary> FloodControl::take_summaries(uint64_t now, bool force)
{
	std::vector<Summary> out;
	uint64_t window = std::max(process_.window_ns, comm_.window_ns);
	for (auto it = pending_.begin(); it != pending_.end();) {
		if (force || now - it->second.first_ns >= window) {
			out.push_back(std::move(it->second));
			it = pending_.erase(it);
		} else {
			++it;
		}
	}
	return out;
}

std::string FloodControl::describe(const Summary &s)
{
	std::string out = "held back " + std::to_string(s.suppressed) +
			  (s.suppressed == 1 ? " incident of " : " incidents of ") + printable(s.comm) +
			  " (";
	bool first = true;
	for (const auto &[what, n] : s.what) {
		out += (first ? "" : ", ") + what + " " + std::to_string(n);
		first = false;
	}
	char buf[64];
	std::snprintf(buf, sizeof(buf), ") over %.1f s", (s.last_ns - s.first_ns) / 1e9);
	out += buf;
	out += ": pids";
	for (size_t i = 0; i < s.pids.size(); i++)
		out += (i ? ", " : " ") + std::to_string(s.pids[i]);
	if (s.more_pids)
		out += ", ...";
	return out;
}

} // namespace fh
