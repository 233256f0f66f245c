#pragma once

#include "proc.h"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

struct Elf;

namespace fh {

// Open a file a target process named (a mapping's path, as host_path()
// gives it) for reading, as root, without trusting it: only a regular file
// is opened (a FIFO would block, a device's open may act), found without
// its driver being called (O_PATH), and a path under "/proc/self/fd/N/"
// (a container's root) is resolved inside that root, its symbolic links
// and ".." included. -1 with errno on failure (EINVAL: not a regular file).
int open_target_file(const std::string &path);

// Read-only view of an ELF file on disk (libelf; every offset is checked
// against the file): symbols, sections, segments, and bytes at a virtual
// address.  The file is untrusted input: failures are nullopt, not crashes.
class ElfFile {
public:
	// nullopt when the file cannot be opened or is not a 64-bit ELF.
	static std::optional<ElfFile> open(const std::string &path);

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

	bool is_executable_type() const; // ET_EXEC (not position independent)

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
