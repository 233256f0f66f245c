#include "process/elf_file.h"

#include "process/mappings.h"
#include "util/strings.h"

#include <elfutils/libdwelf.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <linux/magic.h>
#include <linux/openat2.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <zlib.h>

#include <cerrno>
#include <cstdio>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <utility>

namespace fh {

namespace {

// path resolved inside the directory root_fd, as if it were "/": absolute
// symbolic links and ".." stay inside, no magic link leads out. O_PATH.
int open_in_root(int root_fd, const char *path)
{
	struct open_how how = {};
	how.flags = O_PATH | O_CLOEXEC;
	how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
	return static_cast<int>(syscall(SYS_openat2, root_fd, path, &how, sizeof(how)));
}

// The number in path between head and tail ("/proc/self/fd/" N "/") and
// where the rest starts; nullopt when path is not of that form.
std::optional<std::pair<int, size_t>> numbered(const std::string &path, const std::string &head,
					       const std::string &tail)
{
	if (path.compare(0, head.size(), head) != 0)
		return std::nullopt;
	size_t end = path.find_first_not_of("0123456789", head.size());
	if (end == head.size() || end == std::string::npos || end - head.size() > 9 ||
	    path.compare(end, tail.size(), tail) != 0)
		return std::nullopt;
	return std::make_pair(std::stoi(path.substr(head.size(), end - head.size())),
			      end + tail.size());
}

// The O_PATH descriptor of the regular file path names (see
// open_target_file); -1 with errno.
int find_target_file(const std::string &path)
{
	int found = -1;
	// A root held open here, or the live root of a process.
	static const std::string kHeld = "/proc/self/fd/";
	if (path.compare(0, kHeld.size(), kHeld) == 0) {
		auto root = numbered(path, kHeld, "/");
		if (!root) {
			errno = EINVAL;
			return -1;
		}
		found = open_in_root(root->first, path.c_str() + root->second);
	} else if (auto pid = numbered(path, "/proc/", "/root/"); pid && pid->first > 0) {
		std::string dir = "/proc/" + std::to_string(pid->first) + "/root";
		int root_fd = ::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (root_fd < 0)
			return -1;
		found = open_in_root(root_fd, path.c_str() + pid->second);
		int e = errno;
		::close(root_fd);
		errno = e;
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
	return found;
}

// True when /proc/locks shows a lease an open for reading would break on
// the file (a write lease, or one being broken): its holder would get a
// SIGIO it would not have had without fh-bpf, and lose its lease.
bool under_lease(const struct stat &st)
{
	auto locks = read_proc_file("/proc/locks", 4u << 20);
	if (!locks)
		return false;
	// "1: LEASE  ACTIVE    WRITE 2044 08:01:1835041 0 EOF": device
	// numbers in hex, the inode in decimal.
	char id[64];
	std::snprintf(id, sizeof(id), " %02x:%02x:%llu ", major(st.st_dev), minor(st.st_dev),
		      static_cast<unsigned long long>(st.st_ino));
	for (size_t at = locks->find(id); at != std::string::npos; at = locks->find(id, at + 1)) {
		size_t start = locks->rfind('\n', at);
		std::string line = locks->substr(start == std::string::npos ? 0 : start + 1,
						 at - (start == std::string::npos ? 0 : start + 1));
		if (line.find(" LEASE ") != std::string::npos &&
		    (line.find(" WRITE ") != std::string::npos ||
		     line.find("BREAK") != std::string::npos))
			return true;
	}
	return false;
}

// The file found, opened for reading through its O_PATH descriptor (which
// is closed), never waiting: not for a lease's break, nor anything else.
// A file under a lease is not opened at all (EWOULDBLOCK): even a
// non-blocking open starts the lease's break.  Only a file's owner (or a
// holder of CAP_LEASE) may lease it: the files of packages, root's, which
// every symbolization opens, cost no read of /proc/locks.
int open_found(int found)
{
	struct stat st;
	if (fstat(found, &st) == 0 && st.st_uid != 0 && under_lease(st)) {
		::close(found);
		errno = EWOULDBLOCK;
		return -1;
	}
	std::string again = "/proc/self/fd/" + std::to_string(found);
	int fd = ::open(again.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	int e = errno;
	::close(found);
	errno = e;
	return fd;
}

bool same_identity(const struct stat &st, FileIdentity want)
{
	return static_cast<uint64_t>(st.st_dev) == want.dev &&
	       static_cast<uint64_t>(st.st_ino) == want.ino;
}

} // namespace

int open_target_file(const std::string &path)
{
	int found = find_target_file(path);
	return found < 0 ? -1 : open_found(found);
}

bool stat_target_file(const std::string &path, struct stat *st)
{
	int found = find_target_file(path);
	if (found < 0)
		return false;
	bool ok = fstat(found, st) == 0;
	int e = errno;
	::close(found);
	errno = e;
	return ok;
}

bool is_mapped_file(int fd, FileIdentity want)
{
	struct stat st;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
		return false;
	if (same_identity(st, want))
		return true;
	// Before Linux 6.8 a mapping of an overlayfs file is reported with the
	// device and inode of the file underneath: a mapping of it made here,
	// never touched, shows them in our own maps.
	struct statfs fs;
	if (fstatfs(fd, &fs) != 0 || fs.f_type != OVERLAYFS_SUPER_MAGIC)
		return false;
	long page = sysconf(_SC_PAGESIZE);
	void *at = mmap(nullptr, static_cast<size_t>(page), PROT_READ, MAP_PRIVATE, fd, 0);
	if (at == MAP_FAILED)
		return false;
	bool same = false;
	if (auto maps = read_proc_file("/proc/self/maps")) {
		MappingSet mine = parse_maps(*maps);
		const Mapping *m = mine.find(reinterpret_cast<uintptr_t>(at));
		if (m && m->start == reinterpret_cast<uintptr_t>(at))
			same = makedev(m->maj, m->min) == want.dev && m->ino == want.ino;
	}
	munmap(at, static_cast<size_t>(page));
	return same;
}

int open_mapped_file(const std::string &path, FileIdentity want)
{
	int found = find_target_file(path);
	if (found < 0)
		return -1;
	// Another file is not even opened for reading (only an overlayfs one
	// is, to find out which file it stands for).
	struct stat st;
	struct statfs fs;
	bool same = fstat(found, &st) == 0 && same_identity(st, want);
	if (!same && (fstatfs(found, &fs) != 0 || fs.f_type != OVERLAYFS_SUPER_MAGIC)) {
		::close(found);
		errno = ESTALE;
		return -1;
	}
	int fd = open_found(found);
	if (fd >= 0 && !same && !is_mapped_file(fd, want)) {
		::close(fd);
		errno = ESTALE;
		return -1;
	}
	return fd;
}

namespace {

bool elf_ready()
{
	static const bool ok = elf_version(EV_CURRENT) != EV_NONE;
	return ok;
}

// The GNU build id of the ELF file open as fd (read, not mapped); "" if none.
std::string build_id_of(int fd)
{
	if (!elf_ready())
		return {};
	Elf *elf = elf_begin(fd, ELF_C_READ, nullptr);
	if (!elf)
		return {};
	const void *id = nullptr;
	ssize_t n = dwelf_elf_gnu_build_id(elf, &id);
	std::string out = n > 0 && id ? std::string(static_cast<const char *>(id),
						    static_cast<size_t>(n))
				      : std::string();
	elf_end(elf);
	return out;
}

// The CRC-32 of the whole file (the .gnu_debuglink one, zlib's); bounded.
std::optional<uint32_t> crc32_of(int fd)
{
	uLong crc = crc32(0L, Z_NULL, 0);
	std::vector<unsigned char> buf(1 << 16);
	off_t at = 0;
	for (;;) {
		ssize_t n = pread(fd, buf.data(), buf.size(), at);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 || at > (off_t{1} << 34))
			return std::nullopt;
		if (n == 0)
			return static_cast<uint32_t>(crc);
		crc = crc32(crc, buf.data(), static_cast<uInt>(n));
		at += n;
	}
}

// path made lexically normal, if it then lies inside kDebugRoot; "" if not.
std::string inside_debug_root(const std::string &path)
{
	std::string normal = std::filesystem::path(path).lexically_normal().string();
	if (normal.compare(0, kDebugRoot.size() + 1, kDebugRoot + "/") != 0)
		return {};
	return normal;
}

} // namespace

std::string build_id_debug_path(const std::string &build_id, const std::string &root)
{
	if (build_id.size() < 2 || build_id.size() > 64)
		return {};
	std::string h = hex_bytes(build_id.data(), build_id.size());
	return root + "/.build-id/" + h.substr(0, 2) + "/" + h.substr(2) + ".debug";
}

std::string debuglink_path(const std::string &module_path, const char *name)
{
	if (!name || !name[0] || std::strchr(name, '/') || !std::strcmp(name, ".") ||
	    !std::strcmp(name, "..") || module_path.empty() || module_path[0] != '/')
		return {};
	std::string dir = module_path.substr(0, module_path.rfind('/'));
	return inside_debug_root(kDebugRoot + dir + "/" + name);
}

std::string altlink_path(const std::string &from_file, const char *name)
{
	if (!name || !name[0])
		return {};
	if (name[0] == '/')
		return inside_debug_root(name);
	if (from_file.empty() || from_file[0] != '/')
		return {};
	return inside_debug_root(from_file.substr(0, from_file.rfind('/') + 1) + name);
}

int open_debug_file(const std::vector<std::string> &paths, const DebugFileCheck &check,
		    std::string *found)
{
	if (check.build_id.empty() && !check.crc)
		return -1; // nothing would tell a wrong file
	for (const auto &path : paths) {
		if (path.empty())
			continue;
		int fd = open_target_file(path);
		if (fd < 0)
			continue;
		bool right = !check.build_id.empty() ? build_id_of(fd) == check.build_id
						      : crc32_of(fd) == check.crc;
		if (right) {
			*found = path;
			return fd;
		}
		::close(fd);
	}
	return -1;
}

std::optional<ElfFile> ElfFile::open(const std::string &path, std::optional<FileIdentity> want)
{
	if (!elf_ready())
		return std::nullopt;
	int fd = want ? open_mapped_file(path, *want) : open_target_file(path);
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
		if (sh.sh_flags & SHF_COMPRESSED)
			return std::nullopt; // not as mapped
		// Those bytes alone (not the whole section: .rodata may be MBs),
		// where the section says, within the file.
		struct stat st;
		uint64_t at = sh.sh_offset + (vaddr - sh.sh_addr);
		if (at < sh.sh_offset || fstat(fd_.get(), &st) != 0 ||
		    at > static_cast<uint64_t>(st.st_size) ||
		    static_cast<uint64_t>(st.st_size) - at < len)
			return std::nullopt;
		std::vector<uint8_t> out(len);
		size_t done = 0;
		while (done < len) {
			ssize_t n = pread(fd_.get(), out.data() + done, len - done,
					  static_cast<off_t>(at + done));
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				return std::nullopt; // truncated meanwhile
			done += static_cast<size_t>(n);
		}
		return out;
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

// The directories of DT_RPATH or DT_RUNPATH entries: colon lists, in which
// an empty item names no directory.
std::vector<std::string> search_dirs(const std::vector<std::string> &paths)
{
	std::vector<std::string> out;
	for (const auto &p : paths)
		for (auto &dir : split(p, ':'))
			if (!dir.empty())
				out.push_back(std::move(dir));
	return out;
}

} // namespace

std::vector<std::string> ElfFile::needed() const { return dynamic_strings(elf_, DT_NEEDED); }

std::vector<std::string> ElfFile::rpath() const
{
	return search_dirs(dynamic_strings(elf_, DT_RPATH));
}

std::vector<std::string> ElfFile::runpath() const
{
	return search_dirs(dynamic_strings(elf_, DT_RUNPATH));
}

} // namespace fh
