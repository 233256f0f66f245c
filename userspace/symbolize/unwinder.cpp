#include "symbolize/unwinder.h"

#include "process/elf_file.h"
#include "symbolize/debug_cache.h"
#include "process/mappings.h"
#include "util/error.h"

#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwelf.h>
#include <elfutils/libdwfl.h>

#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace fh {

void DwflDeleter::operator()(Dwfl *d) const { dwfl_end(d); }

namespace {

// A module's file, opened as any file a target names (open_target_file):
// never a FIFO or a device, never waited for, a container's paths inside
// its root; read, not mapped (a truncation while it is read is an error,
// not SIGBUS).  Only the file the process mapped: the device and inode its
// mapping gave it (not a file that replaced it since, an upgrade, nor a
// bind mount put over its path), whose symbols would be wrong or not its
// to read.  A newline in a path, "\012" in the module's name, is one again
// when the file is looked for (or, failing that, a name with "\012" in
// it).  A file deleted since it was mapped is read from the live process's
// memory, never from a file of that name.
int find_target_elf(Dwfl_Module *mod, void **userdata, const char *name, Dwarf_Addr base,
		    char **file_name, Elf **elfp)
{
	static const std::string kDeleted = " (deleted)";
	if (!name || name[0] != '/')
		return dwfl_linux_proc_find_elf(mod, userdata, name, base, file_name, elfp);
	std::string path(name);
	if (path.size() > kDeleted.size() &&
	    path.compare(path.size() - kDeleted.size(), kDeleted.size(), kDeleted) == 0) {
		// A name no file has (a /proc/self/fd entry is a number), so
		// that libdw reads the process's memory.
		char gone[] = "/proc/self/fd/-1 (deleted)";
		return dwfl_linux_proc_find_elf(mod, userdata, gone, base, file_name, elfp);
	}
	const auto *file = userdata && *userdata ? static_cast<const ModuleFile *>(*userdata) : nullptr;
	if (!file)
		return -1; // not among the mappings: nothing says what it must be
	std::string decoded = decode_maps_path(path);
	int fd = open_mapped_file(decoded, file->id);
	if (fd < 0 && decoded != path)
		fd = open_mapped_file(path, file->id);
	if (fd < 0)
		return -1;
	*file_name = strdup(name);
	if (!*file_name) {
		close(fd);
		return -1;
	}
	*elfp = elf_begin(fd, ELF_C_READ, nullptr);
	return fd;
}

// The mappings as /proc/PID/maps writes them: the one input
// dwfl_linux_proc_maps_report takes.  libdw makes each run of segments of
// one file (device and inode) a module spanning them, leaves out what names
// no file, and knows a deleted file by its " (deleted)" name.  It reads a
// line at a time: a newline in a name is "\012", as the kernel writes it.
std::string proc_maps_text(const MappingSet &maps)
{
	std::string out;
	char buf[64];
	for (const auto &m : maps) {
		std::snprintf(buf, sizeof(buf), "%" PRIx64 "-%" PRIx64 " ", m.start, m.end);
		out += buf;
		out += m.perms.empty() ? "----" : m.perms;
		std::snprintf(buf, sizeof(buf), " %08" PRIx64 " %02x:%02x %" PRIu64 " ", m.offset,
			      m.maj, m.min, m.ino);
		out += buf;
		for (char c : m.path)
			out += c == '\n' ? std::string_view("\\012") : std::string_view(&c, 1);
		out += '\n';
	}
	return out;
}

// Set as a module's DWARF's supplementary file when none was found: libdw
// then never looks for one itself (it would open the .gnu_debugaltlink's
// name as written, blocking on a FIFO).  libdw's own mark for "looked for,
// none" (dwarf_getalt); never freed, as the file is not libdw's.
Dwarf *const kNoAltFile = reinterpret_cast<Dwarf *>(-1);

// Separate debug information for a module, or its DWARF's supplementary
// (dwz) file: looked for only by build id and by a .gnu_debuglink that is a
// plain name (no '/': "../../../../tmp/x/fifo" names nothing), in the
// host's /usr/lib/debug only, opened as any target file (regular files, no
// wait), and kept only when it is the module's -- the module's build id
// when it has one, else the debuglink's CRC; a supplementary file, the
// build id its .gnu_debugaltlink gives.  Never beside the module, never
// libdw's own search (it joins the names unchecked and opens them
// blocking; with DEBUGINFOD_URLS set it would go to the network).
int find_debug_file(Dwfl_Module *mod, void **userdata, const char *, Dwarf_Addr,
		    const char *file_name, const char *link, GElf_Word crc, char **debug_name)
{
	// libdw asks with the main file's .gnu_debuglink (that very string),
	// or later with the .gnu_debugaltlink of the DWARF it loaded.
	Dwarf_Addr bias = 0;
	Elf *main = dwfl_module_getelf(mod, &bias);
	GElf_Word main_crc = 0;
	bool debuglink = !link || (main && link == dwelf_elf_gnu_debuglink(main, &main_crc));
	DebugFileCheck check;
	std::vector<std::string> paths;
	Dwarf *dw = nullptr;
	if (debuglink) {
		const unsigned char *id = nullptr;
		GElf_Addr id_vaddr = 0;
		int n = dwfl_module_build_id(mod, &id, &id_vaddr);
		if (n > 0)
			check.build_id.assign(reinterpret_cast<const char *>(id), static_cast<size_t>(n));
		else if (link)
			check.crc = crc;
		const auto *file =
			userdata && *userdata ? static_cast<const ModuleFile *>(*userdata) : nullptr;
		paths = {build_id_debug_path(check.build_id),
			 file ? debuglink_path(file->own_path, link) : std::string()};
	} else {
		dw = dwfl_module_getdwarf(mod, &bias);
		const char *alt_name = nullptr;
		const void *alt_id = nullptr;
		ssize_t n = dw ? dwelf_dwarf_gnu_debugaltlink(dw, &alt_name, &alt_id) : -1;
		if (n > 0) {
			check.build_id.assign(static_cast<const char *>(alt_id), static_cast<size_t>(n));
			paths = {build_id_debug_path(check.build_id),
				 altlink_path(file_name ? file_name : "", alt_name)};
		}
	}
	std::string found;
	int fd = open_debug_file(paths, check, &found);
	// Its sections inflated once for all runs, when they are compressed
	// (the name libdw keeps is still the file's own).
	if (DebugCache *cache = fd >= 0 ? DebugCache::global() : nullptr) {
		int copy = cache->inflated(fd, check.build_id);
		if (copy >= 0) {
			close(fd);
			fd = copy;
		}
	}
	if (fd >= 0) {
		*debug_name = strdup(found.c_str());
		if (!*debug_name) {
			close(fd);
			fd = -1;
		}
	}
	if (fd < 0 && dw)
		dwarf_setalt(dw, kNoAltFile);
	return fd;
}

const Dwfl_Callbacks kDwflCallbacks = {
	.find_elf = find_target_elf,
	.find_debuginfo = find_debug_file,
	.section_address = nullptr,
	.debuginfo_path = nullptr,
};

std::string dwfl_error() { return dwfl_errmsg(-1); }

} // namespace

// libdw's view of the captured threads of the event being unwound.
struct Unwinder::Callbacks {
	static pid_t next_thread(Dwfl *, void *arg, void **thread_argp)
	{
		auto *self = static_cast<Unwinder *>(arg);
		// Threads are unwound one at a time through get_thread; the list
		// holds just that one.
		if (*thread_argp != nullptr || self->thread_ == nullptr)
			return 0;
		*thread_argp = self;
		return static_cast<pid_t>(self->thread_->tid);
	}

	static bool get_thread(Dwfl *, pid_t tid, void *arg, void **thread_argp)
	{
		auto *self = static_cast<Unwinder *>(arg);
		if (self->thread_ == nullptr || self->thread_->tid != static_cast<uint32_t>(tid))
			return false;
		*thread_argp = self;
		return true;
	}

	static bool memory_read(Dwfl *, Dwarf_Addr addr, Dwarf_Word *result, void *arg)
	{
		auto *self = static_cast<Unwinder *>(arg);
		const ThreadCapture *t = self->thread_;
		if (t == nullptr)
			return false;
		uint64_t base = t->stack_addr;
		uint64_t len = t->stack.size();
		if (addr >= base && addr - base <= len && len - (addr - base) >= sizeof(*result)) {
			std::memcpy(result, t->stack.data() + (addr - base), sizeof(*result));
			return true;
		}
		// A read just above the copy means the stack went on past it.
		if (addr >= base + len && addr - (base + len) < (64u << 20))
			self->wanted_uncopied_stack_ = true;
		// A read between sp and a copy that starts above it (sp was in
		// a page that could not be read: a stack overflow's guard page):
		// the frames older than this one are there but cannot be had.
		if (addr < base && addr >= t->regs[kRegSp])
			self->wanted_uncopied_stack_ = true;
		return false;
	}

	static bool set_initial_registers(Dwfl_Thread *thread, void *thread_arg)
	{
		auto *self = static_cast<Unwinder *>(thread_arg);
		if (self->regs_ == nullptr)
			return false;
		Dwarf_Word regs[kNrRegs];
		for (int i = 0; i < kNrRegs; i++)
			regs[i] = (*self->regs_)[i];
		return dwfl_thread_state_registers(thread, 0, kNrRegs, regs);
	}

	static constexpr Dwfl_Thread_Callbacks table = {
		.next_thread = next_thread,
		.get_thread = get_thread,
		.memory_read = memory_read,
		.set_initial_registers = set_initial_registers,
		.detach = nullptr,
		.thread_detach = nullptr,
	};
};

Unwinder::Unwinder(pid_t tgid) : tgid_(tgid), dwfl_(dwfl_begin(&kDwflCallbacks))
{
	if (!dwfl_)
		throw Error("libdw: dwfl_begin: " + dwfl_error());
}

Unwinder::~Unwinder() = default;

void Unwinder::report_maps(const MappingSet &maps)
{
	// fmemopen wants a mutable buffer for "r" on some libcs.
	std::string text = proc_maps_text(maps);
	FILE *f = fmemopen(text.data(), text.size(), "r");
	if (!f)
		throw sys_error("fmemopen", errno);
	dwfl_report_begin(dwfl_.get());
	int rc = text.empty() ? 0 : dwfl_linux_proc_maps_report(dwfl_.get(), f);
	std::fclose(f);
	if (dwfl_report_end(dwfl_.get(), nullptr, nullptr) != 0 || rc < 0)
		throw Error("libdw: reporting the target's mappings: " +
			    (rc > 0 ? std::string(std::strerror(rc)) : dwfl_error()));
	// What each module's file must be (find_target_elf checks it), and
	// its path as the process sees it (its debug information's place).
	for (const auto &m : maps) {
		if (!m.maps_file())
			continue;
		std::string own = m.path;
		if (!display_prefix_.empty() && own.compare(0, display_prefix_.size(), display_prefix_) == 0)
			own.erase(0, display_prefix_.size());
		files_[m.path] = {{makedev(m.maj, m.min), m.ino}, own};
	}
	dwfl_getmodules(
		dwfl_.get(),
		[](Dwfl_Module *, void **userdata, const char *name, Dwarf_Addr, void *arg) -> int {
			auto *files = static_cast<std::map<std::string, ModuleFile> *>(arg);
			auto it = name ? files->find(decode_maps_path(name)) : files->end();
			if (it != files->end() && !*userdata)
				*userdata = &it->second;
			return DWARF_CB_OK;
		},
		&files_, 0);
	cache_.clear();
	if (!attached_ && module_count() > 0) {
		if (!dwfl_attach_state(dwfl_.get(), nullptr, tgid_, &Callbacks::table, this))
			throw Error("libdw: dwfl_attach_state: " + dwfl_error());
		attached_ = true;
	}
}

size_t Unwinder::module_count() const
{
	size_t n = 0;
	dwfl_getmodules(
		dwfl_.get(),
		[](Dwfl_Module *, void **, const char *, Dwarf_Addr, void *arg) -> int {
			++*static_cast<size_t *>(arg);
			return DWARF_CB_OK;
		},
		&n, 0);
	return n;
}

void Unwinder::prewarm()
{
	dwfl_getmodules(
		dwfl_.get(),
		[](Dwfl_Module *mod, void **, const char *, Dwarf_Addr, void *) -> int {
			Dwarf_Addr bias;
			dwfl_module_getelf(mod, &bias);
			dwfl_module_getsymtab(mod);
			if (Dwarf *dw = dwfl_module_getdwarf(mod, &bias)) {
				(void)dw;
				dwfl_module_dwarf_cfi(mod, &bias);
			}
			dwfl_module_eh_cfi(mod, &bias);
			return DWARF_CB_OK;
		},
		nullptr, 0);
}

std::string Unwinder::module_path(Dwfl_Module *mod) const
{
	const char *name = dwfl_module_info(mod, nullptr, nullptr, nullptr, nullptr, nullptr,
					    nullptr, nullptr);
	std::string path = name ? name : "";
	// As the process sees it, not as it was opened from here.
	if (!display_prefix_.empty() && path.compare(0, display_prefix_.size(), display_prefix_) == 0)
		path.erase(0, display_prefix_.size());
	return path;
}

std::unordered_map<std::string, std::vector<NativeFrame>> &Unwinder::shared_frames()
{
	static std::unordered_map<std::string, std::vector<NativeFrame>> frames;
	return frames;
}

void Unwinder::walk(const ThreadCapture &thread, const Registers &regs, bool first_is_return,
		    size_t max_frames, Result &res)
{
	struct State {
		Unwinder *self;
		Result *res;
		size_t max_frames;
		bool first_is_return;
		size_t physical = 0;
	} st{this, &res, max_frames, first_is_return};

	thread_ = &thread;
	regs_ = &regs;
	wanted_uncopied_stack_ = false;
	int rc = dwfl_getthread_frames(
		dwfl_.get(), static_cast<pid_t>(thread.tid),
		[](Dwfl_Frame *frame, void *arg) -> int {
			auto *st = static_cast<State *>(arg);
			Dwarf_Addr pc;
			bool activation = false;
			if (!dwfl_frame_pc(frame, &pc, &activation))
				return DWARF_CB_ABORT;
			// pc 0 ends a stack (the outermost frame's return address),
			// except as the very first frame: a call through a null
			// pointer, printed as an unknown frame.
			if (pc == 0 && st->physical > 0)
				return DWARF_CB_ABORT;
			if (st->res->frames.size() >= st->max_frames) {
				st->res->truncated = true;
				return DWARF_CB_ABORT;
			}
			bool return_address =
				!activation || (st->physical == 0 && st->first_is_return);
			st->physical++;
			for (const auto &f : st->self->symbolize_cached(pc, return_address))
				st->res->frames.push_back(f);
			return DWARF_CB_OK;
		},
		&st);
	thread_ = nullptr;
	regs_ = nullptr;
	if (rc != 0 && !res.truncated) {
		int err = dwfl_errno();
		if (err != 0)
			res.error = dwfl_errmsg(err);
	}
	// libdw ends quietly when a read fails; a read of stack that was not
	// copied means the stack went on.
	if (wanted_uncopied_stack_)
		res.truncated = true;
}

const std::vector<NativeFrame> &Unwinder::symbolize_cached(uint64_t pc, bool return_address)
{
	uint64_t key = pc << 1 | (return_address ? 1 : 0);
	auto it = cache_.find(key);
	if (it != cache_.end())
		return it->second;
	if (cache_.size() >= kMaxCached)
		cache_.clear();
	return cache_.emplace(key, symbolize(pc, return_address)).first->second;
}

Unwinder::Result Unwinder::unwind(const ThreadCapture &thread, size_t max_frames)
{
	Result res;
	if (!attached_) {
		res.error = "no modules reported for the target";
		return res;
	}
	walk(thread, thread.regs, false, max_frames, res);

	// A call through a bad pointer (most often null) stops at a pc that
	// is in no module, with the caller's return address on top of the
	// stack: go on from there, as gdb does.
	uint64_t sp = thread.regs[kRegSp];
	if (res.frames.size() == 1 && res.frames[0].module.empty() && sp == thread.stack_addr &&
	    thread.stack.size() >= sizeof(uint64_t)) {
		Registers caller = thread.regs;
		std::memcpy(&caller[kRegIp], thread.stack.data(), sizeof(uint64_t));
		caller[kRegSp] = sp + sizeof(uint64_t);
		if (dwfl_addrmodule(dwfl_.get(), caller[kRegIp] - 1) != nullptr) {
			Result rest;
			walk(thread, caller, true, max_frames - 1, rest);
			for (auto &f : rest.frames)
				res.frames.push_back(std::move(f));
			res.truncated = rest.truncated;
			res.error = rest.error;
		}
	}
	if (res.frames.size() > max_frames) {
		res.frames.resize(max_frames);
		res.truncated = true;
	}
	return res;
}

} // namespace fh
