// The status a command line is refused with.
#pragma once

#include "util/error.h"
#include "cli/options.h"

#include <string>
#include <vector>

// parse_options(args)'s Error status (kExitUsage for a bad command line);
// -1 when it takes the command line.
inline int usage_status(const std::vector<std::string> &args)
{
	try {
		fh::parse_options(args);
	} catch (const fh::Error &e) {
		return e.status();
	}
	return -1;
}
