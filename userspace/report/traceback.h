#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace fh {

// One line of a traceback: what the symbolizer knows of one address.
struct Frame {
	uint64_t pc = 0;	    // the address as captured (a return address for callers)
	std::string function;	    // demangled; empty when unknown
	uint64_t function_offset = 0; // pc - symbol start, when function_offset_known
	bool function_offset_known = false;
	std::string file; // source file; empty when unknown
	int line = 0;	  // source line; 0 when unknown
	std::string module; // path of the ELF object; empty when unmapped
	uint64_t module_offset = 0;
	bool inlined = false; // an inlined call inside the next frame
};

struct ThreadTrace {
	uint64_t pthread_id = 0;
	uint32_t tid = 0;
	std::string name;
	bool current = false;
	std::vector<Frame> frames; // most recent call first
	bool truncated = false;	   // more frames existed than were printed
};

struct Traceback {
	std::string header; // printed as is before the threads, e.g. "Fatal error: ...\n\n"
	std::vector<ThreadTrace> threads;
};

// faulthandler's per-thread frame limit.
inline constexpr size_t kMaxFrames = 100;
// faulthandler's string limit.
inline constexpr size_t kMaxStringLength = 500;

// "Fatal error: Segmentation fault\n\n"
std::string fatal_header(int sig);

// A string as faulthandler writes it: printable ASCII as is, any other byte
// as \xhh, at most 500 characters and then "...".
std::string escape_bytes(const std::string &s);

std::string render_frame(const Frame &f);
std::string render(const Traceback &tb);

} // namespace fh
