#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace fh {

// Python strings as faulthandler writes them.

// Escape a string's code points as _Py_DumpASCII does: printable ASCII as
// is, \xhh, \uhhhh, \Uhhhhhhhh; at most 500 characters, then "...".
std::string py_escape(const std::vector<uint32_t> &code_points, uint64_t length);

// Decode a PyUnicode's data (kind 1, 2 or 4 bytes a character) as code
// points; at most `max` of them, and no further than `avail` bytes.
std::vector<uint32_t> py_code_points(const uint8_t *data, size_t avail, int kind, uint64_t length,
				     size_t max);

} // namespace fh
