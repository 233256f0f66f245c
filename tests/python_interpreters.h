// The CPython builds the tests cover: every one this machine kind has.  A
// missing one fails the tests that use it; it is never skipped.
#pragma once

#include <string>
#include <vector>

namespace fhtest {

struct PythonBuild {
	std::string path; // the interpreter
	int minor;	  // 3.minor
	std::string libpython; // the shared library, or "" for a static build
	std::string version;   // "3.11.7"
};

const std::vector<PythonBuild> &python_interpreters();

} // namespace fhtest
