#pragma once

// A bounded on-disk cache of separate debug files whose DWARF sections are
// compressed (Debian's libc6-dbg, most -dbgsym packages: SHF_COMPRESSED,
// zlib).  libdw inflates every such section whole when it first reads a
// module's DWARF: for libc, about 40 ms of zlib on this machine kind, more
// than the rest of a dump.  The cache keeps one copy of each such file with
// its sections inflated, named by its build id, so a later run maps it as
// it is.
//
// The files are fh-bpf's own and are never trusted blindly: the directory
// must be fh-bpf's user's and writable by no one else; a copy is used only
// when it is a regular file of that user, mode 0600, with one name, an ELF
// whose build id is its name's.  Anything else is removed and made again.
// Copies are written to a temporary file (O_EXCL, 0600) and renamed into
// place.  The cache holds at most `max_bytes`; the least recently used
// copies go first.

#include "util/fd.h"

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

namespace fh {

class DebugCache {
public:
	// Opens (creating it 0700 when missing, and its parent) the directory;
	// throws Error when it cannot be used (a symbolic link, another user's,
	// writable by others).
	DebugCache(const std::string &dir, uint64_t max_bytes);

	// The copy of the debug file open at fd (build id raw bytes), its
	// sections inflated: a new descriptor, made now if missing.  -1 when
	// the file has no compressed section, or cannot be copied (too big,
	// not an ELF, the disk full): the caller reads fd as it is.
	int inflated(int fd, const std::string &build_id);

	const std::string &path() const { return path_; }
	uint64_t made() const { return made_; }	// copies written
	uint64_t served() const { return served_; } // copies used as they were

	// The process's cache, set up once by main (nullptr: none).
	static DebugCache *global();
	static void set_global(std::unique_ptr<DebugCache> cache);

	// A copy is made of a file of at most this many bytes once inflated.
	static constexpr uint64_t kMaxFileBytes = 1ull << 30;

private:
	int open_copy(const std::string &name);
	bool make(int fd, const std::string &name);
	void retain(const std::string &newest);

	std::string path_;
	UniqueFd dir_;
	uint64_t max_bytes_;
	uid_t owner_ = 0;
	uint64_t made_ = 0;
	uint64_t served_ = 0;
	uint64_t serial_ = 0;
	std::mutex mu_;
};

} // namespace fh
