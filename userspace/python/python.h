#pragma once

#include "process/elf_file.h"

#include <linux/types.h>
#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "process/mappings.h"

extern "C" {
#include "fh/python.h"
}

namespace fh {

// A CPython interpreter found in a process (or in a file, before it runs).
struct PythonRuntime {
	std::string module;	 // the file that holds the runtime state
	uint64_t runtime_vaddr = 0; // _PyRuntime's link-time address (3.6: interp_head)
	uint64_t module_type_vaddr = 0; // PyModule_Type's; 0: unknown
	bool placed = false;	 // the addresses below are known (the module is mapped)
	uint64_t load_bias = 0;
	uint64_t runtime_addr = 0; // _PyRuntime (3.6: interp_head) in the process
	int minor = 0;		 // 3.minor
	fh_py_offsets offsets{};  // offsets.module_type: PyModule_Type in the process
};

// Why a process is not traced as Python: empty when it is, or when it is
// not Python at all (then the runtime is nullopt too).
struct PythonDetection {
	std::optional<PythonRuntime> runtime;
	std::string unsupported; // "Python 3.5 is not supported", "free-threaded ..."
};

// Look for CPython in a process's mappings: the executable or a mapped
// libpython3.X, its version, its runtime address and its offsets.
PythonDetection detect_python(const MappingSet &maps);

// The same for a program that has not run yet: its executable (after a "#!"
// line, its interpreter; "/usr/bin/env NAME" is looked up in PATH) and the
// libpython3.X it needs, found as the dynamic loader would (DT_RUNPATH or
// DT_RPATH, LD_LIBRARY_PATH, the system directories).  The runtime is not
// placed: place_python() does it once the process has mapped the module.
PythonDetection detect_python_command(const std::string &argv0);

// CPython in one ELF file (an executable or a libpython): its version,
// offsets and the runtime's link-time address; no runtime when the file holds
// no interpreter, or one fh-bpf cannot walk (then `unsupported` says why).
// `exe` names the process's executable: its name may give the version of a
// libpython whose name does not.  With `mapped`, only the file a mapping
// names is read (another one put at its path since is not even opened).
PythonDetection detect_python_file(const std::string &path, const std::string &exe,
				   std::optional<FileIdentity> mapped = std::nullopt);

// sys.stdlib_module_names (3.10+) from the interpreter's file itself, where
// its symbol table has them (not a stripped build); nullopt otherwise.
std::optional<std::set<std::string>>
stdlib_names_from_file(const std::string &path, std::optional<FileIdentity> mapped = std::nullopt);

// Where rt's module is mapped among maps: fills load_bias, runtime_addr
// and offsets.module_type; false (and rt unchanged) if it is not mapped.
bool place_python(PythonRuntime &rt, const MappingSet &maps);

// What the kernel needs to place rt's module itself when the process maps
// it: the file's inode and size, and the offsets of the runtime and of
// PyModule_Type from its first PT_LOAD address.  (Not the device: stat()'s
// is not the kernel's on btrfs.  On overlayfs the mapped inode is the
// lower file's: there the kernel does not place it, userspace does.)
struct PythonPlacement {
	uint64_t ino = 0;
	uint64_t size = 0;
	uint64_t runtime_off = 0;
	uint64_t module_type_off = 0; // 0: unknown
};
std::optional<PythonPlacement> python_placement(const PythonRuntime &rt);

// rt placed at `runtime` (as the kernel placed it).
void place_python_at(PythonRuntime &rt, uint64_t runtime, uint64_t module_type);

// The program execvp() would run for argv0 (PATH lookup); empty if none.
std::string find_program(const std::string &argv0);

// Built-in offsets for 3.6-3.12; nullopt for other versions.
std::optional<fh_py_offsets> builtin_offsets(int minor);

// Offsets from a _Py_DebugOffsets image (3.13+): the cookie, version and
// layout are checked; throws Error saying why they do not fit.
fh_py_offsets offsets_from_debug(const uint8_t *data, size_t len);

// "3.11" from "/usr/bin/python3.11", "libpython3.7m.so.1.0"; 0 if none.
int python_minor_from_path(const std::string &path);

} // namespace fh
