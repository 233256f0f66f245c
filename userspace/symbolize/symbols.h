#pragma once

// One address of a module to frames, shared by the live symbolizer
// (Unwinder::symbolize, over a process's modules) and the later one
// (symbolize/offline.h, over a debug file found by build id): the same
// function names, source lines and inlined calls either way.

#include "report/model.h"

#include <cstdint>
#include <vector>

struct Dwfl_Module;

namespace fh {

// The frames at `lookup`, an address in mod's own address space: the
// function holding it (the symbol table's, or DWARF's name of the
// subprogram), preceded by the calls inlined there, innermost first.
// Each frame is `base` (pc, module, offset, build id as recorded) with its
// function, file and line; function_offset is the symbol's offset of
// lookup plus `delta` (1 for a return address looked up at pc - 1).
std::vector<NativeFrame> module_frames(Dwfl_Module *mod, uint64_t lookup, uint64_t delta,
				       NativeFrame base);

} // namespace fh
