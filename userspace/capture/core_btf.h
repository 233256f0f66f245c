#pragma once

// The kernel types the BPF programs' CO-RE relocations need, cut out of the
// kernel's BTF once and kept (`bpftool gen min_core_btf`, a few KB): with
// it libbpf matches the programs' types against a few dozen types instead
// of the kernel's 120,000, which takes 10 ms off every load on this machine
// kind (libbpf still reads the kernel's BTF for the attach points).
//
// Kept in DIR/btf, named by a hash of the kernel (release, version, the
// size of its BTF) and of the programs (the object's bytes): a new kernel
// or a new fh-bpf makes a new one.  A file is used only when it is what
// fh-bpf wrote there (its user's, 0600, one name) in a directory no one
// else can write to; a load that fails with it is retried without it, and
// the file removed.  Without bpftool nothing is kept, and loads take the
// long way.

#include "util/fd.h"

#include <cstddef>
#include <memory>
#include <string>

namespace fh {

class CoreBtf {
public:
	// Opens (creating it 0700) DIR/btf; throws Error when it cannot be
	// used.
	explicit CoreBtf(const std::string &cache_dir);

	// The kept BTF for this kernel and these programs (the object's
	// bytes): a path libbpf can open ("/proc/self/fd/N", the descriptor
	// held in *fd); "" when there is none yet.
	std::string find(const void *object, size_t size, UniqueFd *fd);
	// Makes it, with bpftool; false when it cannot (no bpftool, a
	// failure: said with verbose).
	bool make(const void *object, size_t size, bool verbose);
	// Removes it (a load failed with it).
	void forget(const void *object, size_t size);

	static CoreBtf *global();
	static void set_global(std::unique_ptr<CoreBtf> cache);

private:
	std::string name_for(const void *object, size_t size) const;

	std::string path_;
	UniqueFd dir_;
	unsigned owner_ = 0;
};

} // namespace fh
