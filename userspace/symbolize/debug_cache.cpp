#include "symbolize/debug_cache.h"

#include "util/error.h"
#include "util/strings.h"

#include <dirent.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <mutex>
#include <vector>

namespace fh {

namespace {

constexpr const char *kSuffix = ".debug";

// A copy's name: the build id in hex, ".debug".
bool is_copy_name(const std::string &name)
{
	size_t n = std::strlen(kSuffix);
	if (name.size() <= n || name.compare(name.size() - n, n, kSuffix) != 0)
		return false;
	return std::all_of(name.begin(), name.end() - n,
			   [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

struct ElfDeleter {
	void operator()(Elf *e) const { elf_end(e); }
};
using ElfPtr = std::unique_ptr<Elf, ElfDeleter>;

// The build id note of an ELF (raw bytes), "" when none.
std::string build_id_of(Elf *elf)
{
	Elf_Scn *scn = nullptr;
	while ((scn = elf_nextscn(elf, scn))) {
		GElf_Shdr sh;
		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_NOTE)
			continue;
		Elf_Data *d = elf_getdata(scn, nullptr);
		if (!d)
			continue;
		GElf_Nhdr nh;
		size_t off = 0, name_off, desc_off;
		while ((off = gelf_getnote(d, off, &nh, &name_off, &desc_off)) > 0)
			if (nh.n_type == NT_GNU_BUILD_ID && nh.n_namesz == 4 &&
			    std::memcmp(static_cast<char *>(d->d_buf) + name_off, "GNU", 4) == 0)
				return std::string(static_cast<char *>(d->d_buf) + desc_off, nh.n_descsz);
	}
	return {};
}

// Whether an ELF has a compressed section, and the bytes it takes once
// inflated (its sections' sizes).
bool compressed(Elf *elf, uint64_t *inflated)
{
	bool any = false;
	*inflated = 0;
	Elf_Scn *scn = nullptr;
	while ((scn = elf_nextscn(elf, scn))) {
		GElf_Shdr sh;
		if (!gelf_getshdr(scn, &sh))
			return false;
		if (sh.sh_flags & SHF_COMPRESSED) {
			GElf_Chdr ch;
			if (!gelf_getchdr(scn, &ch))
				return false;
			any = true;
			*inflated += ch.ch_size;
		} else if (sh.sh_type != SHT_NOBITS) {
			*inflated += sh.sh_size;
		}
	}
	return any;
}

// The ELF at in_fd, its compressed sections inflated, written to out_fd.
// Sections keep their order, headers and addresses; libelf lays out the
// file.
bool write_inflated(int in_fd, int out_fd)
{
	ElfPtr in(elf_begin(in_fd, ELF_C_READ, nullptr));
	if (!in || elf_kind(in.get()) != ELF_K_ELF)
		return false;
	ElfPtr out(elf_begin(out_fd, ELF_C_WRITE, nullptr));
	GElf_Ehdr eh;
	if (!out || !gelf_getehdr(in.get(), &eh) || !gelf_newehdr(out.get(), gelf_getclass(in.get())))
		return false;
	size_t phnum = 0;
	if (elf_getphdrnum(in.get(), &phnum) != 0)
		return false;
	if (phnum) {
		if (!gelf_newphdr(out.get(), phnum))
			return false;
		for (size_t i = 0; i < phnum; i++) {
			GElf_Phdr ph;
			if (!gelf_getphdr(in.get(), static_cast<int>(i), &ph) ||
			    !gelf_update_phdr(out.get(), static_cast<int>(i), &ph))
				return false;
		}
	}
	Elf_Scn *scn = nullptr;
	while ((scn = elf_nextscn(in.get(), scn))) {
		GElf_Shdr sh;
		if (!gelf_getshdr(scn, &sh))
			return false;
		if ((sh.sh_flags & SHF_COMPRESSED) &&
		    (elf_compress(scn, 0, 0) < 0 || !gelf_getshdr(scn, &sh)))
			return false;
		Elf_Scn *copy = elf_newscn(out.get());
		if (!copy)
			return false;
		if (sh.sh_type != SHT_NOBITS) {
			Elf_Data *d = elf_getdata(scn, nullptr);
			Elf_Data *nd = d ? elf_newdata(copy) : nullptr;
			if (!nd)
				return false;
			nd->d_buf = d->d_buf;
			nd->d_type = d->d_type;
			nd->d_size = d->d_size;
			nd->d_off = 0;
			nd->d_align = d->d_align;
			nd->d_version = d->d_version;
		}
		if (!gelf_update_shdr(copy, &sh))
			return false;
	}
	size_t shstrndx;
	if (elf_getshdrstrndx(in.get(), &shstrndx) != 0)
		return false;
	eh.e_shstrndx = static_cast<GElf_Half>(shstrndx < SHN_LORESERVE ? shstrndx : SHN_XINDEX);
	if (shstrndx >= SHN_LORESERVE) {
		GElf_Shdr zero;
		Elf_Scn *s0 = elf_getscn(out.get(), 0);
		if (!s0 || !gelf_getshdr(s0, &zero))
			return false;
		zero.sh_link = static_cast<GElf_Word>(shstrndx);
		if (!gelf_update_shdr(s0, &zero))
			return false;
	}
	if (!gelf_update_ehdr(out.get(), &eh))
		return false;
	return elf_update(out.get(), ELF_C_WRITE) >= 0;
}

// The process's cache (DebugCache::global).
std::unique_ptr<DebugCache> &global_cache()
{
	static std::unique_ptr<DebugCache> cache;
	return cache;
}

} // namespace

DebugCache::DebugCache(const std::string &dir, uint64_t max_bytes)
	: path_(dir), max_bytes_(max_bytes)
{
	elf_version(EV_CURRENT);
	unsigned owner = 0;
	dir_ = open_private_dir(dir, "the debug cache", &owner, true);
	owner_ = owner;
}

DebugCache *DebugCache::global() { return global_cache().get(); }

void DebugCache::set_global(std::unique_ptr<DebugCache> cache) { global_cache() = std::move(cache); }

// A copy there, checked: fh-bpf's user's regular file, 0600, one name, an
// ELF whose build id its name gives.  -1 (and the file removed, when it is
// not one) otherwise.
int DebugCache::open_copy(const std::string &name)
{
	int fd = openat(dir_.get(), name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return -1;
	bool ok = is_private_file(fd, owner_);
	if (ok) {
		ElfPtr elf(elf_begin(fd, ELF_C_READ_MMAP, nullptr));
		std::string id = elf && elf_kind(elf.get()) == ELF_K_ELF ? build_id_of(elf.get()) : "";
		uint64_t size = 0;
		ok = !id.empty() && name == hex_bytes(id.data(), id.size()) + kSuffix &&
		     !compressed(elf.get(), &size);
	}
	if (!ok) {
		close(fd);
		unlinkat(dir_.get(), name.c_str(), 0);
		return -1;
	}
	// Its use, for the least recently used to go first.
	futimens(fd, nullptr);
	return fd;
}

bool DebugCache::make(int fd, const std::string &name)
{
	char temp[64];
	std::snprintf(temp, sizeof(temp), ".tmp-%d-%llu", static_cast<int>(getpid()),
		      static_cast<unsigned long long>(serial_++));
	int out = openat(dir_.get(), temp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
			 0600);
	if (out < 0)
		return false;
	bool ok = write_inflated(fd, out) && fsync(out) == 0;
	ok = close(out) == 0 && ok;
	// Another fh-bpf may have made it meanwhile: either copy serves.
	ok = ok && renameat(dir_.get(), temp, dir_.get(), name.c_str()) == 0;
	if (!ok)
		unlinkat(dir_.get(), temp, 0);
	return ok;
}

int DebugCache::inflated(int fd, const std::string &build_id)
{
	// Symbols may load on a second thread while the programs load.
	std::lock_guard<std::mutex> lock(mu_);
	if (build_id.empty() || build_id.size() > 64)
		return -1;
	uint64_t size = 0;
	{
		// Read, not mapped: a debug file truncated meanwhile (a package
		// upgrade) is an error, not SIGBUS.
		ElfPtr elf(elf_begin(fd, ELF_C_READ, nullptr));
		if (!elf || elf_kind(elf.get()) != ELF_K_ELF || !compressed(elf.get(), &size) ||
		    size > kMaxFileBytes || build_id_of(elf.get()) != build_id)
			return -1;
	}
	std::string name = hex_bytes(build_id.data(), build_id.size()) + kSuffix;
	int copy = open_copy(name);
	if (copy >= 0) {
		served_++;
		return copy;
	}
	if (!make(fd, name))
		return -1;
	made_++;
	retain(name);
	return open_copy(name);
}

// At most max_bytes of copies: the least recently used go first (the one
// just made stays).
void DebugCache::retain(const std::string &newest)
{
	std::vector<DirFile> copies = owned_files(dir_.get(), owner_, is_copy_name);
	uint64_t total = 0;
	for (const auto &c : copies)
		total += static_cast<uint64_t>(c.st.st_size);
	std::sort(copies.begin(), copies.end(), [](const DirFile &a, const DirFile &b) {
		const struct timespec &x = a.st.st_mtim, &y = b.st.st_mtim;
		return x.tv_sec != y.tv_sec ? x.tv_sec < y.tv_sec : x.tv_nsec < y.tv_nsec;
	});
	for (const auto &c : copies) {
		if (total <= max_bytes_)
			break;
		if (c.name != newest && unlinkat(dir_.get(), c.name.c_str(), 0) == 0)
			total -= static_cast<uint64_t>(c.st.st_size);
	}
}

} // namespace fh
