#pragma once

#include "event.h"
#include "py_traceback.h"
#include "python.h"

#include <set>
#include <string>
#include <vector>

namespace fh {

// The Python threads of an event, ready to render: current thread matched
// by TID, each version's frame rules applied (shim frames skipped from 3.12,
// lines from the line tables), every unreadable piece as ???.
std::vector<PyThreadText> python_threads(const Event &ev, const PythonRuntime &rt);

// The extension modules 3.10+ lists after a fatal error, in sys.modules
// order and escaped as faulthandler prints them, leaving out the standard
// library's (when its names are known).
std::vector<std::string> extension_modules(const Event &ev, const PythonRuntime &rt,
					   const std::set<std::string> *stdlib);

// 3.10+'s "\nExtension modules: a, b (total: N)\n" after a fatal error's
// threads; empty when there is none.
std::string extension_modules_line(const std::vector<std::string> &names);

// An event's whole faulthandler text: `header`, the threads, and for a
// fatal signal the extension modules (the standard library's left out
// when stdlib is given); with the threads and modules it was made of.
struct PythonText {
	std::string text;
	std::vector<PyThreadText> threads;
	std::vector<std::string> modules;
};
PythonText python_text(const Event &ev, const PythonRuntime &rt,
		       const std::set<std::string> *stdlib, const std::string &header);

} // namespace fh
