#pragma once

#include "cli/values.h"

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace fh {

// A rate: at most `count` incidents in any `window_ns` (0 count: no limit).
// Flood control for a crash-looping service: incidents are let through per
// process and per command name at most at their rates (token buckets,
// refilled continuously); what is held back is counted per command name,
// with the pids and signals it came from, and summarised once per window.
class FloodControl {
public:
	FloodControl(Rate per_process, Rate per_comm) : process_(per_process), comm_(per_comm) {}

	// Whether an incident of (pid, comm, what) at now_ns is let through;
	// if not, it is counted.
	bool admit(pid_t pid, const std::string &comm, const std::string &what, uint64_t now_ns);

	struct Summary {
		std::string comm;
		uint64_t suppressed = 0;
		uint64_t first_ns = 0, last_ns = 0; // CLOCK_MONOTONIC
		std::vector<pid_t> pids;	   // the first few
		bool more_pids = false;		   // and others
		std::map<std::string, uint64_t> what; // "SIGSEGV" -> count
	};
	// The summaries of what was held back, once `window` has passed since
	// the first held-back incident of each name (all of them with force).
	std::vector<Summary> take_summaries(uint64_t now_ns, bool force);

	uint64_t suppressed_total() const { return total_; }
	size_t buckets() const { return by_process_.size() + by_comm_.size(); }

	// "held back 57 incidents of crash (SIGSEGV 57) in 60 s: pids 12, 13, ..."
	static std::string describe(const Summary &s);

private:
	struct Bucket {
		double tokens = 0;
		uint64_t last_ns = 0;
		bool fresh = true;
	};
	bool take(std::map<std::string, Bucket> &buckets, const std::string &key, const Rate &r,
		  uint64_t now, bool commit);
	static constexpr size_t kPruneMin = 1024;
	struct Pruning {
		size_t at = kPruneMin; // size that prompts a look
		uint64_t last_ns = 0;
	};
	static void prune(std::map<std::string, Bucket> &buckets, const Rate &r, uint64_t now,
			  Pruning &p);

	Rate process_, comm_;
	std::map<std::string, Bucket> by_process_, by_comm_;
	std::map<std::string, Summary> pending_;
	uint64_t total_ = 0;
	Pruning prune_process_, prune_comm_;
};

} // namespace fh
