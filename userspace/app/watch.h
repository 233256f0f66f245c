#pragma once

#include "cli/options.h"

namespace fh {

// Attach to opts.pid and watch it until it exits or we are interrupted.
// Returns the process exit status (ExitStatus); throws Error on failure.
int watch(const Options &opts);

// --dump: print every Python thread of opts.pid now; returns the exit status.
int dump(const Options &opts);

} // namespace fh
