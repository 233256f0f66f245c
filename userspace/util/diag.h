#pragma once

// The one writer of fh-bpf's own diagnostic lines on stderr: "fh-bpf: …".
// Their parts may be a target's (names, paths): nothing in them may start a
// line of its own or drive the terminal, so each line is made printable
// (util/printable.h; idempotent, parts escaped already stay as they are).

#include <string>

namespace fh {

// "fh-bpf: " + msg + "\n" on stderr.
void diag(const std::string &msg);

// printf-style number formatting for diagnostics: fmt("%.1f ms", 1.25).
std::string fmt(const char *format, double v);

} // namespace fh
