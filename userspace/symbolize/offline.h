#pragma once

// Native frames symbolized after the fact: an incident record's frames
// name their module's build id and their offset in it, and that is enough
// to symbolize them once a debug file of that build id turns up (a
// -dbgsym package installed since, a debug directory from the build, a
// debuginfod server).  The debug file alone serves: its symbol table,
// DWARF and program headers (objcopy --only-keep-debug keeps them), never
// the binary, which may be gone or another version by now.

#include "report/model.h"
#include "symbolize/debuginfod.h"
#include "symbolize/unwinder.h"

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace fh {

class OfflineSymbolizer {
public:
	// Debug files are looked for by build id in each of `debug_dirs`
	// (DIR/.build-id/xx/rest.debug), then in /usr/lib/debug, then, when
	// DEBUGINFOD_URLS is set and `debuginfod` is, on its servers.
	OfflineSymbolizer(std::vector<std::string> debug_dirs, bool debuginfod = true);
	~OfflineSymbolizer();

	// The frames of a recorded one (its build id, offset, address): the
	// function holding it and the calls inlined there, innermost first,
	// as the live symbolizer makes them; nullopt when no debug file of its
	// build id is found.  With return_address, the call before is looked
	// up (offset - 1), as for every frame but a thread's newest.
	std::optional<std::vector<NativeFrame>> symbolize(const NativeFrame &recorded,
							  bool return_address);

	// Re-symbolize every native frame of the incident that can be: each
	// run of frames of one address (its inlined calls, then the function)
	// is replaced by what the debug file says.  Python frames stay as
	// captured.  Returns how many addresses were symbolized.
	size_t resymbolize(Incident &inc);

	// The debug file used for a build id (hex), "" when none was found.
	std::string debug_file(const std::string &build_id) const;

	// Why debuginfod could not be asked, "" when it could (or was not).
	const std::string &debuginfod_error() const { return debuginfod_.error(); }

private:
	struct Module;
	Module *module(const std::string &build_id);
	Module *load(const std::string &build_id);

	std::vector<std::string> dirs_;
	bool use_debuginfod_;
	Debuginfod debuginfod_;
	// By build id (hex); null: looked for, none found.
	std::map<std::string, std::unique_ptr<Module>> modules_;
};

// A build id written as hex (an incident record's `build_id`) as its raw
// bytes; "" when it is no even run of 2 to 128 hex digits.
std::string build_id_bytes(const std::string &hex);

} // namespace fh
