#pragma once

#include <linux/types.h>
#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "proc.h"

extern "C" {
#include "fh/python.h"
}

namespace fh {

// A CPython interpreter found in a process.
struct PythonRuntime {
	std::string module;	 // the file that holds the runtime state
	uint64_t load_bias = 0;
	uint64_t runtime_addr = 0; // _PyRuntime (3.6: interp_head)
	int minor = 0;		 // 3.minor
	fh_py_offsets offsets{};
};

// Why a process is not traced as Python: empty when it is, or when it is
// not Python at all (then the runtime is nullopt too).
struct PythonDetection {
	std::optional<PythonRuntime> runtime;
	std::string unsupported; // "Python 3.5 is not supported", "free-threaded ..."
};

// Look for CPython in a process's mappings: the executable or a mapped
// libpython3.X, its version, its runtime address and its offsets.
PythonDetection detect_python(const std::string &maps_text);

// Built-in offsets for 3.6-3.12; nullopt for other versions.
std::optional<fh_py_offsets> builtin_offsets(int minor);

// Offsets from a _Py_DebugOffsets image (3.13+): the cookie, version and
// layout are checked; on failure `error` says why.
std::optional<fh_py_offsets> offsets_from_debug(const uint8_t *data, size_t len,
						std::string &error);

// "3.11" from "/usr/bin/python3.11", "libpython3.7m.so.1.0"; 0 if none.
int python_minor_from_path(const std::string &path);

} // namespace fh
