#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace fh {

// A Python traceback in faulthandler's words, per CPython version.

struct PyFrameText {
	std::optional<std::string> filename; // escaped already; nullopt prints ???
	int line = -1;			     // < 0 prints ???
	std::optional<std::string> name;     // escaped already; nullopt prints ???
};

struct PyThreadText {
	uint64_t thread_id = 0; // pthread_t
	uint32_t tid = 0;	// kernel thread id, when known (not printed by faulthandler)
	bool current = false;
	bool garbage_collecting = false; // shown for the current thread, 3.10+
	std::vector<PyFrameText> frames; // most recent first
	bool more_frames = false;	 // frames beyond what was captured or printed
};

// faulthandler's limits.
inline constexpr size_t kPyMaxFrames = 100;
inline constexpr size_t kPyMaxThreads = 100;

// Escape a string's code points as _Py_DumpASCII does: printable ASCII as
// is, \xhh, \uhhhh, \Uhhhhhhhh; at most 500 characters, then "...".
std::string py_escape(const std::vector<uint32_t> &code_points, uint64_t length);

// Decode a PyUnicode's data (kind 1, 2 or 4 bytes a character) as code
// points; at most `max` of them, and no further than `avail` bytes.
std::vector<uint32_t> py_code_points(const uint8_t *data, size_t avail, int kind, uint64_t length,
				     size_t max);

// "Fatal Python error: Segmentation fault\n\n"
std::string py_fatal_header(int sig);

// The thread blocks, as faulthandler's dump_traceback_threads writes them
// for Python 3.minor (version_hex tells 3.13.0 apart).  more_threads: the
// interpreter had more threads than the ones given.
std::string render_python_threads(int minor, uint32_t version_hex,
				  const std::vector<PyThreadText> &threads, bool more_threads);

} // namespace fh
