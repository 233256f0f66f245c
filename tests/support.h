// Helpers shared by the test tiers: spawning children with chosen file
// descriptors, reading with a guard timeout (a hang fails the test; it never
// synchronises anything), parsing tracebacks and source markers.
#pragma once

#include <sys/types.h>

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace fhtest {

// Directory of the build outputs (FH_BUILD, default "build") and of the
// sources (FH_SOURCE_DIR, default ".").
std::string build_dir();
std::string source_dir();

// Line numbers of "@name" marker comments in a source file.
std::map<std::string, int> markers(const std::string &path);

struct Pipe {
	int read = -1;
	int write = -1;
	Pipe();
	~Pipe();
	void close_read();
	void close_write();
};

struct SpawnOptions {
	std::vector<std::pair<int, int>> fds; // {child fd, parent fd} to dup2
	std::string stdout_path;	      // empty: inherit
	std::string stderr_path;	      // empty: inherit
	uid_t uid = static_cast<uid_t>(-1);   // drop to this uid when set
};

// fork + exec; the child gets exactly the listed fds besides 0-2.
pid_t spawn(const std::vector<std::string> &argv, const SpawnOptions &opts = {});

// Wait for the child to exit, at most timeout_ms; nullopt on timeout.
std::optional<int> wait_exit(pid_t pid, int timeout_ms);

// Read one line (without '\n'), at most timeout_ms; nullopt on EOF/timeout.
std::optional<std::string> read_line(int fd, int timeout_ms);

std::string read_file(const std::string &path);

// Whether hay holds needle.
inline bool contains(const std::string &hay, const std::string &needle)
{
	return hay.find(needle) != std::string::npos;
}

// The names in a directory but those starting with '.'; and the directory
// removed with the files it holds.
std::vector<std::string> files_in(const std::string &dir);
void remove_dir(const std::string &dir);
std::string temp_path(const std::string &stem);

// Run a command, return its stdout (stderr discarded).
std::string run_capture(const std::vector<std::string> &argv, int *status = nullptr,
			bool with_stderr = false);

// A traceback as printed in faulthandler's format.
struct ParsedFrame {
	bool source = false; // "File ..., line N in f" (else "Binary file ...")
	std::string file;
	int line = 0;
	std::string function;
	std::string raw;
};

struct ParsedThread {
	unsigned long pthread = 0;
	bool current = false;
	std::vector<ParsedFrame> frames;
	std::vector<std::string> other_lines; // "  ...", "  <no native frame>"
};

struct ParsedTraceback {
	std::string header; // first line ("Fatal error: ...")
	std::vector<ParsedThread> threads;
	std::vector<std::string> notes;	   // fh-bpf's own lines ("fh-bpf: ...")
	std::vector<std::string> unparsed; // lines that fit no rule
};

// With header set, the first line is the header ("Fatal error: ...",
// "Timeout (...)!"); a dump without one (faulthandler.register's) starts with
// its first thread.
ParsedTraceback parse_traceback(const std::string &text, bool header = true);

// Consecutive dumps of one file, each starting with a line that begins with
// `prefix` (what comes before the first such line is dropped).
std::vector<std::string> split_dumps(const std::string &text, const std::string &prefix);

// repr() of Python expression `expr` over `d`, the value Python's json
// module reads from `json` (an oracle for fh-bpf's JSON records).
std::string python_json(const std::string &json, const std::string &expr);

// ASCII text as a JSON string literal (for oracles built in the tests).
std::string python_json_literal(const std::string &ascii);

// Lines of `text` that do not start with "fh-bpf: ".
std::string without_notes(const std::string &text);

// (function, line) of the frames whose file ends with `file`, in order.
std::vector<std::pair<std::string, int>> frames_in(const std::vector<ParsedFrame> &frames,
						   const std::string &file);

// True when `needle` appears in `hay` in order (not necessarily adjacent).
bool is_subsequence(const std::vector<std::pair<std::string, int>> &needle,
		    const std::vector<std::pair<std::string, int>> &hay);

} // namespace fhtest
