#pragma once

#include "process/proc.h"

#include <sys/stat.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

struct Elf;

namespace fh {

// Open a file a target process named (a mapping's path, as host_path()
// gives it) for reading, as root, without trusting it: only a regular file
// is opened (a FIFO would block, a device's open may act), found without
// its driver being called (O_PATH), opened without waiting (O_NONBLOCK: a
// file under another's lease fails at once with EWOULDBLOCK instead of
// waiting for the lease break), and a path under "/proc/self/fd/N/" or
// "/proc/PID/root/" (a container's root) is resolved inside that root, its
// symbolic links and ".." included. -1 with errno on failure (EINVAL: not a
// regular file).
int open_target_file(const std::string &path);

// fstat of the file open_target_file would open, found the same way
// (inside a container's root, regular files only) but never opened for
// reading.  false with errno on failure.
bool stat_target_file(const std::string &path, struct stat *st);

// A mapped file's identity as the kernel reports the mapping (a maps line's
// maj:min and inode, a PERF_RECORD_MMAP2's): dev is makedev(maj, min).
struct FileIdentity {
	uint64_t dev = 0, ino = 0;
};

// True when the open file is the one a mapping names: the same device and
// inode (on overlayfs, where older kernels report the file underneath, the
// identity of the file a mapping of it shows).  A file that replaced the
// one mapped (an upgrade) or a bind mount put over its path is not.
bool is_mapped_file(int fd, FileIdentity want);

// open_target_file, refused (-1, errno ESTALE) unless is_mapped_file.
int open_mapped_file(const std::string &path, FileIdentity want);

// Separate debug information is looked for in root's own directory on the
// host only: never beside a module, nor inside a container's root (libdw
// maps the file it is given, and a file its owner could truncate would be
// SIGBUS here).
inline const std::string kDebugRoot = "/usr/lib/debug";

// What a separate debug file must be to stand for a module: the same
// build id (raw bytes) when there is one to compare, else the CRC a
// .gnu_debuglink gives.  Neither: no file is.
struct DebugFileCheck {
	std::string build_id;
	std::optional<uint32_t> crc;
};

// Where a debug file is looked for, each "" when it cannot be:
// ROOT/.build-id/xx/rest.debug for a build id (raw bytes), ROOT the
// host's kDebugRoot unless given (incidents show --debug-dir);
std::string build_id_debug_path(const std::string &build_id, const std::string &root = kDebugRoot);
// kDebugRoot/<the module's directory>/<name> for a .gnu_debuglink name, a
// plain name only (one with a '/', "." or ".." names no file here);
std::string debuglink_path(const std::string &module_path, const char *name);
// a .gnu_debugaltlink name (dwz's shared file), as written or relative to
// the directory of the file naming it, when that lies inside kDebugRoot.
std::string altlink_path(const std::string &from_file, const char *name);

// The first of `paths` that opens as a target file does (open_target_file:
// regular, never waited for) and passes `check`: its descriptor, its path
// in *found.  -1 when none does.
int open_debug_file(const std::vector<std::string> &paths, const DebugFileCheck &check,
		    std::string *found);

// Read-only view of an ELF file on disk (libelf; every offset is checked
// against the file): symbols, sections, segments, and bytes at a virtual
// address.  The file is untrusted input: failures are nullopt, not crashes.
class ElfFile {
public:
	// nullopt when the file cannot be opened or is not a 64-bit ELF; with
	// `want`, also when it is not the file a mapping names.
	static std::optional<ElfFile> open(const std::string &path,
					   std::optional<FileIdentity> want = std::nullopt);

	ElfFile(ElfFile &&o) noexcept;
	ElfFile &operator=(ElfFile &&o) noexcept;
	ElfFile(const ElfFile &) = delete;
	ElfFile &operator=(const ElfFile &) = delete;
	~ElfFile();

	struct Symbol {
		uint64_t value = 0; // link-time virtual address
		uint64_t size = 0;
	};

	// A symbol by name, from .symtab or .dynsym, any binding.
	std::optional<Symbol> symbol(const std::string &name) const;

	// Address of a section by name.
	std::optional<uint64_t> section_address(const std::string &name) const;

	// The lowest PT_LOAD p_vaddr, page-aligned down: the load bias of a
	// mapping is its start minus this.
	std::optional<uint64_t> first_load_vaddr() const;

	// The PT_LOAD segments, in file order.
	struct Segment {
		uint64_t vaddr = 0, offset = 0, filesz = 0, memsz = 0;
		uint32_t flags = 0; // PF_R, PF_W, PF_X
	};
	std::vector<Segment> loads() const;

	// len bytes at link-time address vaddr, from a section with file
	// contents (not .bss).
	std::optional<std::vector<uint8_t>> read(uint64_t vaddr, size_t len) const;


	// The dynamic section's DT_NEEDED names, and its DT_RPATH and
	// DT_RUNPATH directories as written ($ORIGIN unexpanded).
	std::vector<std::string> needed() const;
	std::vector<std::string> rpath() const;
	std::vector<std::string> runpath() const;

private:
	ElfFile() = default;

	UniqueFd fd_;
	Elf *elf_ = nullptr;
};

} // namespace fh
