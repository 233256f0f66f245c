#pragma once

// The mappings of one process, as every stage hands them on: read from
// /proc/PID/maps (parsed once, here), or built from the kernel's mapping
// records (mmap_tracker.h, host_tracker.h); taken by the symbolizer, Python
// detection and placement, and the apps that watch them change.

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace fh {

// One segment of a process's address space, as /proc/PID/maps shows it.
struct Mapping {
	uint64_t start = 0;
	uint64_t end = 0;
	uint64_t offset = 0;
	uint32_t maj = 0, min = 0; // the device
	uint64_t ino = 0;
	std::string perms; // "r-xp"
	// The file's own name, a newline in it included (the kernel writes it
	// "\012"); "[vdso]", "[heap]"... for the kernel's own; empty for
	// anonymous memory.
	std::string path;

	// It maps a file (a path, not "[vdso]" nor anonymous memory).
	bool maps_file() const { return !path.empty() && path[0] == '/'; }
	bool operator==(const Mapping &) const = default;
};

// The segments of one process, sorted by address.  Two sets are equal when
// every segment is: the process's mappings did not change.
class MappingSet {
public:
	MappingSet() = default;
	// Sorted by start address here; segments that start at the same
	// address keep their order.
	explicit MappingSet(std::vector<Mapping> segments);

	const std::vector<Mapping> &segments() const { return segments_; }
	std::vector<Mapping>::const_iterator begin() const { return segments_.begin(); }
	std::vector<Mapping>::const_iterator end() const { return segments_.end(); }
	bool empty() const { return segments_.empty(); }
	size_t size() const { return segments_.size(); }

	// Each file mapped, once, in the order of its first segment's address.
	std::vector<std::string> files() const;
	// The file mapped lowest: the executable (the kernel maps it before
	// the dynamic loader and any library); empty when no file is mapped.
	std::string first_file() const;
	// The segment holding addr; nullptr when none does.  (A process's
	// segments never overlap: with overlapping ones, the last to start at
	// or below addr is the one looked at.)
	const Mapping *find(uint64_t addr) const;

	bool operator==(const MappingSet &) const = default;

private:
	std::vector<Mapping> segments_;
};

// The text of /proc/PID/maps, parsed; throws when it cannot be read.  Empty
// for a process with no address space (a kernel thread, a zombie).
MappingSet read_maps(pid_t pid);

// The one reader of the /proc/PID/maps format.  A line that does not start
// with "start-end perms offset" is left out; its device, inode and path are
// optional.  The path is everything after the inode and the column padding,
// its "\012" made a newline again.
MappingSet parse_maps(std::string_view text);

// A path as a maps line shows it, its "\012" escapes made newlines again.
std::string decode_maps_path(std::string_view shown);

} // namespace fh
