#pragma once

// The model as text: faulthandler's format for the traceback (byte for byte
// what the target's own faulthandler writes, for Python), the `fh-bpf: pid …`
// headline that names an incident, and its losses as `fh-bpf: …` lines.

#include "report/model.h"

#include <cstddef>
#include <string>

namespace fh {

// "Fatal error: Segmentation fault\n\n"; for Python "Fatal Python error: …",
// with a dialect in that version's words (3.13: "Floating-point exception").
std::string fatal_header(int sig, bool python = false);
std::string fatal_header(int sig, const PythonDialect &python);

// A string as faulthandler writes it: printable ASCII as is, any other byte
// as \xhh, at most 500 characters and then "...".
std::string escape_bytes(const std::string &s);

// "  File "a.c", line 3 in f\n", or "  Binary file "…", at f+0x10 [0x…]\n".
std::string render_frame(const NativeFrame &f);
std::string render_frame(const PyFrame &f);

// The whole faulthandler text: header, every thread, and for Python 3.10+
// after a fatal error the extension modules.  At most inc.text_limit bytes:
// a longer text is cut at a line's end, "...\n" after, and *cut (if given)
// set to the bytes left out.
std::string render_text(const Incident &inc, size_t *cut = nullptr);

// Whether a Python thread list ends with faulthandler's "..." (more
// threads than shown).
bool threads_elided(const Incident &inc);

// "fh-bpf: pid 123 (crash), thread 125 (worker): SIGSEGV (SEGV_MAPERR) at
// address 0x0"; for a signal from another process ", sent by pid 9 (kill),
// uid 0"; for a dump "fh-bpf: pid 123 (crash): timeout, 4 threads".  One
// line, ending in a newline.
std::string headline(const Incident &inc);

// The incident's losses, one "fh-bpf: …\n" line each; empty when none.
std::string loss_lines(const Incident &inc);

// Once an incident, when a module of its native frames has no debug
// information: how to get it, "fh-bpf: no symbols for /usr/sbin/nginx
// (build id 3f2a…): install its -dbgsym package, or see incidents show
// --debug-dir\n" (the first such module, with how many others there are);
// empty when every module has.  The record's build ids name the debug
// files that symbolize it later (fh-bpf incidents show).
std::string symbol_hint(const Incident &inc);

// 3.10+'s "\nExtension modules: a, b (total: N)\n"; empty when there is
// none.  With total > names.size() (names cut for room) ", ..." follows the
// names and the total counts them all.
std::string extension_modules_line(const std::vector<std::string> &names, uint64_t total = 0);

} // namespace fh
