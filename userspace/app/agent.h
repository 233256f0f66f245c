#pragma once

#include "cli/options.h"

namespace fh {

// --system-wide: catch every fatal signal of every process in scope until
// SIGINT or SIGTERM (which drain the incidents already captured); returns
// the exit status.  Throws Error on failure to start.
int run_agent(const Options &opts);

} // namespace fh
