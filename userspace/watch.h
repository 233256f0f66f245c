#pragma once

#include "options.h"

namespace fh {

// Attach to opts.pid and watch it until it exits or we are interrupted.
// Returns the process exit status (ExitStatus); throws Error on failure.
int watch(const Options &opts);

} // namespace fh
