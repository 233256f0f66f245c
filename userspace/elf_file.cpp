#include "elf_file.h"

#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

#include <algorithm>
#include <cstring>

namespace fh {

int open_target_file(const std::string &path)
{
	static const std::string kRoots = "/proc/self/fd/";
	int found = -1;
	if (path.compare(0, kRoots.size(), kRoots) == 0) {
		size_t slash = path.find('/', kRoots.size());
		std::string n = path.substr(kRoots.size(), slash - kRoots.size());
		if (slash == std::string::npos || n.empty() ||
		    n.find_first_not_of("0123456789") != std::string::npos || n.size() > 9) {
			errno = EINVAL;
			return -1;
		}
		struct open_how how = {};
		how.flags = O_PATH | O_CLOEXEC;
		how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
		found = static_cast<int>(syscall(SYS_openat2, std::stoi(n), path.c_str() + slash + 1,
						 &how, sizeof(how)));
	} else {
		found = ::open(path.c_str(), O_PATH | O_CLOEXEC);
	}
	if (found < 0)
		return -1;
	struct stat st;
	if (fstat(found, &st) != 0 || !S_ISREG(st.st_mode)) {
		::close(found);
		errno = EINVAL;
		return -1;
	}
	// The file found, opened for reading through its O_PATH descriptor.
	std::string again = "/proc/self/fd/" + std::to_string(found);
	int fd = ::open(again.c_str(), O_RDONLY | O_CLOEXEC);
	int e = errno;
	::close(found);
	errno = e;
	return fd;
}

std::optional<ElfFile> ElfFile::open(const std::string &path)
{
	static const bool version_ok = elf_version(EV_CURRENT) != EV_NONE;
	if (!version_ok)
		return std::nullopt;
	int fd = open_target_file(path);
	if (fd < 0)
		return std::nullopt;
	ElfFile f;
	f.fd_ = UniqueFd(fd);
	// Read, not mapped: a target's owner may truncate the file while it is
	// read, which would be SIGBUS in a mapping.
	f.elf_ = elf_begin(fd, ELF_C_READ, nullptr);
	if (!f.elf_ || elf_kind(f.elf_) != ELF_K_ELF || gelf_getclass(f.elf_) != ELFCLASS64)
		return std::nullopt;
	return f;
}

ElfFile::ElfFile(ElfFile &&o) noexcept : fd_(std::move(o.fd_)), elf_(o.elf_) { o.elf_ = nullptr; }

ElfFile &ElfFile::operator=(ElfFile &&o) noexcept
{
	if (this != &o) {
		if (elf_)
			elf_end(elf_);
		fd_ = std::move(o.fd_);
		elf_ = o.elf_;
		o.elf_ = nullptr;
	}
	return *this;
}

ElfFile::~ElfFile()
{
	if (elf_)
		elf_end(elf_);
}

std::optional<ElfFile::Symbol> ElfFile::symbol(const std::string &name) const
{
	for (Elf_Scn *scn = elf_nextscn(elf_, nullptr); scn; scn = elf_nextscn(elf_, scn)) {
		GElf_Shdr sh;
		if (!gelf_getshdr(scn, &sh) || (sh.sh_type != SHT_SYMTAB && sh.sh_type != SHT_DYNSYM))
			continue;
		Elf_Data *data = elf_getdata(scn, nullptr);
		if (!data || sh.sh_entsize == 0)
			continue;
		size_t n = sh.sh_size / sh.sh_entsize;
		for (size_t i = 0; i < n; i++) {
			GElf_Sym sym;
			if (!gelf_getsym(data, static_cast<int>(i), &sym))
				break;
			const char *s = elf_strptr(elf_, sh.sh_link, sym.st_name);
			if (s && name == s && sym.st_shndx != SHN_UNDEF)
				return Symbol{sym.st_value, sym.st_size};
		}
	}
	return std::nullopt;
}

std::optional<uint64_t> ElfFile::section_address(const std::string &name) const
{
	size_t shstrndx;
	if (elf_getshdrstrndx(elf_, &shstrndx) != 0)
		return std::nullopt;
	for (Elf_Scn *scn = elf_nextscn(elf_, nullptr); scn; scn = elf_nextscn(elf_, scn)) {
		GElf_Shdr sh;
		if (!gelf_getshdr(scn, &sh))
			continue;
		const char *s = elf_strptr(elf_, shstrndx, sh.sh_name);
		if (s && name == s)
			return sh.sh_addr;
	}
	return std::nullopt;
}

std::optional<uint64_t> ElfFile::first_load_vaddr() const
{
	size_t n;
	if (elf_getphdrnum(elf_, &n) != 0)
		return std::nullopt;
	std::optional<uint64_t> lowest;
	for (size_t i = 0; i < n; i++) {
		GElf_Phdr ph;
		if (gelf_getphdr(elf_, static_cast<int>(i), &ph) && ph.p_type == PT_LOAD &&
		    (!lowest || ph.p_vaddr < *lowest))
			lowest = ph.p_vaddr;
	}
	if (lowest)
		*lowest &= ~uint64_t{0xfff};
	return lowest;
}

std::vector<ElfFile::Segment> ElfFile::loads() const
{
	std::vector<Segment> out;
	size_t n;
	if (elf_getphdrnum(elf_, &n) != 0)
		return out;
	for (size_t i = 0; i < n && out.size() < 64; i++) {
		GElf_Phdr ph;
		if (gelf_getphdr(elf_, static_cast<int>(i), &ph) && ph.p_type == PT_LOAD &&
		    ph.p_memsz >= ph.p_filesz && ph.p_vaddr + ph.p_memsz >= ph.p_vaddr)
			out.push_back({ph.p_vaddr, ph.p_offset, ph.p_filesz, ph.p_memsz, ph.p_flags});
	}
	return out;
}

std::optional<std::vector<uint8_t>> ElfFile::read(uint64_t vaddr, size_t len) const
{
	for (Elf_Scn *scn = elf_nextscn(elf_, nullptr); scn; scn = elf_nextscn(elf_, scn)) {
		GElf_Shdr sh;
		if (!gelf_getshdr(scn, &sh) || sh.sh_type == SHT_NOBITS || !(sh.sh_flags & SHF_ALLOC))
			continue;
		if (vaddr < sh.sh_addr || vaddr - sh.sh_addr >= sh.sh_size ||
		    sh.sh_size - (vaddr - sh.sh_addr) < len)
			continue;
		Elf_Data *data = elf_rawdata(scn, nullptr);
		if (!data || !data->d_buf || data->d_size != sh.sh_size)
			return std::nullopt;
		const auto *p = static_cast<const uint8_t *>(data->d_buf) + (vaddr - sh.sh_addr);
		return std::vector<uint8_t>(p, p + len);
	}
	return std::nullopt;
}

namespace {

// Strings of the dynamic section entries with tag `tag`.
std::vector<std::string> dynamic_strings(Elf *elf, int64_t tag)
{
	std::vector<std::string> out;
	for (Elf_Scn *scn = elf_nextscn(elf, nullptr); scn; scn = elf_nextscn(elf, scn)) {
		GElf_Shdr sh;
		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_DYNAMIC || sh.sh_entsize == 0)
			continue;
		Elf_Data *data = elf_getdata(scn, nullptr);
		if (!data)
			continue;
		size_t n = std::min<size_t>(sh.sh_size / sh.sh_entsize, 1 << 16);
		for (size_t i = 0; i < n; i++) {
			GElf_Dyn dyn;
			if (!gelf_getdyn(data, static_cast<int>(i), &dyn) || dyn.d_tag == DT_NULL)
				break;
			if (dyn.d_tag != tag)
				continue;
			if (const char *str = elf_strptr(elf, sh.sh_link, dyn.d_un.d_val))
				out.emplace_back(str);
		}
	}
	return out;
}

std::vector<std::string> split_colons(const std::vector<std::string> &paths)
{
	std::vector<std::string> out;
	for (const auto &p : paths) {
		size_t i = 0;
		while (i <= p.size()) {
			size_t j = p.find(':', i);
			if (j == std::string::npos)
				j = p.size();
			if (j > i)
				out.push_back(p.substr(i, j - i));
			i = j + 1;
		}
	}
	return out;
}

} // namespace

std::vector<std::string> ElfFile::needed() const { return dynamic_strings(elf_, DT_NEEDED); }

std::vector<std::string> ElfFile::rpath() const
{
	return split_colons(dynamic_strings(elf_, DT_RPATH));
}

std::vector<std::string> ElfFile::runpath() const
{
	return split_colons(dynamic_strings(elf_, DT_RUNPATH));
}

bool ElfFile::is_executable_type() const
{
	GElf_Ehdr eh;
	return gelf_getehdr(elf_, &eh) && eh.e_type == ET_EXEC;
}

} // namespace fh
