#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace fh {

// The length of the valid UTF-8 sequence at s[i] (i < s.size()), or 0:
// overlong forms, surrogates and values past Unicode are not UTF-8.
size_t utf8_length(std::string_view s, size_t i);

// A string a target controls (a process or thread name, a path, a command
// line) made safe to put in a line of text read by a person or a terminal:
// printable UTF-8 is kept; control characters (C0, DEL, C1), the
// bidirectional overrides and isolates, and bytes that are not UTF-8 become
// \xhh, byte by byte, as faulthandler writes bytes; a backslash is kept as
// is.  At most max_bytes of the input are looked at, then "..." follows:
// one line a name, whatever its size.
std::string printable(std::string_view s, size_t max_bytes = 4096);

} // namespace fh
