#pragma once

#include "cli/values.h"

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace fh {

// The program a process runs, as flood control tells programs apart: its
// executable ("/usr/bin/crash"), and for an interpreter (Python, Perl,
// Ruby, Node.js, a shell) what it runs, read from its arguments:
// "/usr/bin/python3.11 app/main.py", "/usr/bin/python3.11 -m pkg.mod",
// "/usr/bin/python3.11 -c" (any code given inline), "/usr/bin/bash
// deploy.sh".  An interpreter whose first argument is no interpreter's name
// (it renamed itself: setproctitle) adds that argument instead.  Without an
// executable, the first argument stands for it; without either, "[comm]".
std::string program_identity(const std::string &exe, const std::vector<std::string> &cmdline,
			     const std::string &comm);

// Flood control for a crash-looping service: incidents are let through per
// process and per program (program_identity) at most at their rates (token
// buckets, refilled continuously); what is held back is counted per
// program, with the pids, command lines and signals it came from, and
// summarised once per window.
class FloodControl {
public:
	FloodControl(Rate per_process, Rate per_program)
		: process_(per_process), program_(per_program)
	{
	}

	// Who an incident is of.
	struct Subject {
		pid_t pid = 0;
		std::string program; // program_identity()
		std::string comm;
		std::vector<std::string> cmdline;
	};

	// Whether an incident of `who` (its signal or trigger: `what`) at
	// now_ns is let through; if not, it is counted.
	bool admit(const Subject &who, const std::string &what, uint64_t now_ns);

	static constexpr size_t kPidsNamed = 10, kCmdlinesNamed = 3;
	struct Summary {
		std::string program;
		std::string comm; // of the first held back
		uint64_t suppressed = 0;
		uint64_t first_ns = 0, last_ns = 0; // CLOCK_MONOTONIC
		std::vector<pid_t> pids;	   // the first few
		bool more_pids = false;		   // and others
		std::vector<std::vector<std::string>> cmdlines; // the first few different ones
		bool more_cmdlines = false;
		std::map<std::string, uint64_t> what; // "SIGSEGV" -> count
	};
	// The summaries of what was held back, once `window` has passed since
	// the first held-back incident of each program (all of them with
	// force).
	std::vector<Summary> take_summaries(uint64_t now_ns, bool force);

	uint64_t suppressed_total() const { return total_; }
	size_t buckets() const { return by_process_.size() + by_program_.size(); }

	// "held back 57 incidents of /usr/bin/python3.11 job.py (SIGABRT 57)
	// over 59.2 s: pids 12, 13, ...; command line: python3 job.py --once"
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
	void count(const Subject &who, const std::string &what, uint64_t now);

	Rate process_, program_;
	std::map<std::string, Bucket> by_process_, by_program_;
	std::map<std::string, Summary> pending_;
	uint64_t total_ = 0;
	Pruning prune_process_, prune_program_;
};

// A command line for a person: its arguments joined by spaces, one that
// is empty or holds a space or a quote in single quotes, made printable.
std::string command_line_text(const std::vector<std::string> &cmdline);

} // namespace fh
