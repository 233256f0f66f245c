// Helpers of the process-tree tests (test_tree.cpp, test_tree_live.cpp):
// fifos the targets talk through, a guard that ends a tree left half-way,
// and readers of fh-bpf's output over a tree (its headlines, its JSON
// records, its closing line).
#pragma once

#include "harness.h"
#include "python_interpreters.h"

#include <nlohmann/json.hpp>

#include <sys/types.h>

#include <string>
#include <vector>

namespace fhtest {

// A named pipe the test holds open for reading and writing: the target's
// open never blocks, and no side ever reads an end of file.
class Channel {
public:
	explicit Channel(const std::string &stem);
	~Channel();
	Channel(const Channel &) = delete;
	Channel &operator=(const Channel &) = delete;

	const std::string &path() const { return path_; }
	void send(const std::string &line);
	std::string next_line();

private:
	std::string path_;
	int fd_ = -1;
};

// The process group a target's master starts (its pid): killed with all
// its members when a test fails half-way, and the master reaped when the
// test started it.
class TreeGuard {
public:
	TreeGuard() = default;
	TreeGuard(const TreeGuard &) = delete;
	TreeGuard &operator=(const TreeGuard &) = delete;
	void watch(pid_t master, bool ours)
	{
		master_ = master;
		ours_ = ours;
	}
	void release() { master_ = -1; }
	~TreeGuard();

private:
	pid_t master_ = -1;
	bool ours_ = false;
};

// Files the targets write, removed however the test ends.
struct Removed {
	std::vector<std::string> paths;
	~Removed();
};

// One incident of fh-bpf's output.  A descendant's starts with its headline
// "fh-bpf: pid CHILD (COMM), parent pid PARENT, thread TID (NAME): WHAT";
// the watched process's own starts with its header ("Fatal ...").
struct TreeIncident {
	bool headline = false;
	pid_t pid = 0, ppid = 0, tid = 0;
	std::string comm, thread_name, what;
	std::string text; // the lines after the headline, fh-bpf's notes among them
};
std::vector<TreeIncident> incidents_in(const std::string &output);

// One block of a live dump in fh-bpf's output, headed by its headline
// "fh-bpf: pid P (COMM)[, parent pid PP]: timeout|dump on demand, N
// threads" (ppid 0: none said); text before any headline is a block with
// none.
struct LiveBlock {
	bool headline = false;
	pid_t pid = 0, ppid = 0;
	std::string comm, what; // "timeout" or "dump on demand"
	int threads = 0;
	std::string text; // the lines after the headline, fh-bpf's notes among them
};
std::vector<LiveBlock> live_blocks_in(const std::string &output);

// The parent's pid in a JSON incident record: "ppid" at the top level or in
// "process" (the one place that knows where the field lives); -1 if absent.
long json_ppid(const nlohmann::json &j);


// What the closing line says of the incidents printed (only that: its
// wording about descendants is not pinned here).
std::string events_printed(int n);

std::string comm_of(pid_t pid);

// The CPython builds the tree tests run: the newest pyenv one and Debian's
// (not all nine: each run forks a tree and attaches).
std::vector<PythonBuild> tree_pythons();

std::string target_script(const std::string &name);

} // namespace fhtest
