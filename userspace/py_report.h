#pragma once

#include "event.h"
#include "py_traceback.h"
#include "python.h"

#include <string>
#include <vector>

namespace fh {

// The Python threads of an event, ready to render: current thread matched
// by TID, each version's frame rules applied (shim frames skipped from 3.12,
// lines from the line tables), every unreadable piece as ???.
std::vector<PyThreadText> python_threads(const Event &ev, const PythonRuntime &rt);

// The whole faulthandler text for a fatal signal in a Python process.
std::string python_fatal_traceback(const Event &ev, const PythonRuntime &rt);

} // namespace fh
