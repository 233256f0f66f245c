#include "symbolize/offline.h"

#include "process/elf_file.h"
#include "symbolize/symbols.h"

#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwelf.h>
#include <elfutils/libdwfl.h>
#include <unistd.h>

#include <cstring>
#include <utility>

namespace fh {

// One debug file, the only file of its Dwfl: addresses are its link-time
// ones (reported with no bias).
struct OfflineSymbolizer::Module {
	std::unique_ptr<Dwfl, DwflDeleter> dwfl;
	Dwfl_Module *mod = nullptr;
	uint64_t start = 0; // its first PT_LOAD's address, aligned as libdw aligns it
	std::string path;
};

namespace {

// The debug file is reported with its descriptor: nothing else is opened.
int no_elf(Dwfl_Module *, void **, const char *, Dwarf_Addr, char **, Elf **)
{
	return -1;
}

// The debug file is the module's main file, its DWARF in it: libdw asks
// only for a dwz supplementary file (.gnu_debugaltlink), looked for as
// the debug file was (by its build id in the debug directories, then as
// the link names it inside /usr/lib/debug) and kept only with the build id
// the link gives.  Never libdw's own search, which opens the link's name
// as written.
int find_alt_file(Dwfl_Module *mod, void **userdata, const char *, Dwarf_Addr,
		  const char *file_name, const char *, GElf_Word, char **debug_name)
{
	// The module's userdata: the debug directories.
	const auto *dirs = userdata && *userdata
				   ? static_cast<const std::vector<std::string> *>(*userdata)
				   : nullptr;
	Dwarf_Addr bias = 0;
	Dwarf *dw = dwfl_module_getdwarf(mod, &bias);
	const char *alt_name = nullptr;
	const void *alt_id = nullptr;
	ssize_t n = dw ? dwelf_dwarf_gnu_debugaltlink(dw, &alt_name, &alt_id) : -1;
	if (n <= 0 || !dirs)
		return -1;
	DebugFileCheck check;
	check.build_id.assign(static_cast<const char *>(alt_id), static_cast<size_t>(n));
	std::vector<std::string> paths;
	for (const auto &dir : *dirs)
		paths.push_back(build_id_debug_path(check.build_id, dir));
	paths.push_back(build_id_debug_path(check.build_id));
	paths.push_back(altlink_path(file_name ? file_name : "", alt_name));
	std::string found;
	int fd = open_debug_file(paths, check, &found);
	if (fd >= 0 && !(*debug_name = strdup(found.c_str()))) {
		close(fd);
		fd = -1;
	}
	return fd;
}

const Dwfl_Callbacks kOfflineCallbacks = {
	.find_elf = no_elf,
	.find_debuginfo = find_alt_file,
	.section_address = nullptr,
	.debuginfo_path = nullptr,
};

int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

} // namespace

std::string build_id_bytes(const std::string &hex)
{
	if (hex.size() < 4 || hex.size() > 128 || hex.size() % 2)
		return {};
	std::string out;
	for (size_t i = 0; i < hex.size(); i += 2) {
		int hi = hex_digit(hex[i]), lo = hex_digit(hex[i + 1]);
		if (hi < 0 || lo < 0)
			return {};
		out += static_cast<char>(hi << 4 | lo);
	}
	return out;
}

OfflineSymbolizer::OfflineSymbolizer(std::vector<std::string> debug_dirs, bool debuginfod)
	: dirs_(std::move(debug_dirs)), use_debuginfod_(debuginfod)
{
}

OfflineSymbolizer::~OfflineSymbolizer() = default;

OfflineSymbolizer::Module *OfflineSymbolizer::module(const std::string &build_id)
{
	auto it = modules_.find(build_id);
	if (it == modules_.end())
		it = modules_.emplace(build_id, std::unique_ptr<Module>(load(build_id))).first;
	return it->second.get();
}

OfflineSymbolizer::Module *OfflineSymbolizer::load(const std::string &build_id)
{
	DebugFileCheck check;
	check.build_id = build_id_bytes(build_id);
	if (check.build_id.empty())
		return nullptr;
	std::vector<std::string> paths;
	for (const auto &dir : dirs_)
		paths.push_back(build_id_debug_path(check.build_id, dir));
	paths.push_back(build_id_debug_path(check.build_id));
	std::string found;
	int fd = open_debug_file(paths, check, &found);
	if (fd < 0 && use_debuginfod_ && Debuginfod::configured()) {
		std::string path = debuginfod_.find_debuginfo(check.build_id);
		if (!path.empty())
			fd = open_debug_file({path}, check, &found);
	}
	if (fd < 0)
		return nullptr;

	auto m = std::make_unique<Module>();
	m->path = found;
	m->dwfl.reset(dwfl_begin(&kOfflineCallbacks));
	if (!m->dwfl) {
		close(fd);
		return nullptr;
	}
	// At its link-time addresses (base 0 added to its first PT_LOAD's):
	// the module then starts where the record's offsets count from.
	dwfl_report_begin(m->dwfl.get());
	m->mod = dwfl_report_elf(m->dwfl.get(), found.c_str(), found.c_str(), fd, 0, true);
	if (!m->mod) {
		close(fd); // consumed only on success
		return nullptr;
	}
	dwfl_report_end(m->dwfl.get(), nullptr, nullptr);
	void **userdata = nullptr;
	Dwarf_Addr start = 0;
	dwfl_module_info(m->mod, &userdata, &start, nullptr, nullptr, nullptr, nullptr, nullptr);
	if (userdata)
		*userdata = &dirs_;
	m->start = start;
	return m.release();
}

std::optional<std::vector<NativeFrame>> OfflineSymbolizer::symbolize(const NativeFrame &recorded,
								      bool return_address)
{
	Module *m = recorded.build_id.empty() ? nullptr : module(recorded.build_id);
	if (!m)
		return std::nullopt;
	// The record counts offsets from the module's first mapping, which
	// is its first PT_LOAD: the same place in the debug file, whose
	// program headers are the binary's.
	uint64_t addr = m->start + recorded.module_offset;
	uint64_t lookup = return_address && addr > m->start ? addr - 1 : addr;
	if (addr < m->start || dwfl_addrmodule(m->dwfl.get(), lookup) != m->mod)
		return std::nullopt; // not inside the file: the record is not its
	NativeFrame base;
	base.pc = recorded.pc;
	base.module = recorded.module;
	base.module_offset = recorded.module_offset;
	base.build_id = recorded.build_id;
	return module_frames(m->mod, lookup, addr - lookup, std::move(base));
}

size_t OfflineSymbolizer::resymbolize(Incident &inc)
{
	size_t done = 0;
	for (Thread &t : inc.threads) {
		std::vector<StackFrame> out;
		bool newest = true;
		size_t i = 0;
		while (i < t.frames.size()) {
			const auto *f = std::get_if<NativeFrame>(&t.frames[i]);
			if (!f) {
				out.push_back(t.frames[i++]);
				continue;
			}
			// One address: the calls inlined there, then its function.
			size_t end = i + 1;
			while (end < t.frames.size()) {
				const auto *prev = std::get_if<NativeFrame>(&t.frames[end - 1]);
				const auto *next = std::get_if<NativeFrame>(&t.frames[end]);
				if (!prev->inlined || !next || next->pc != f->pc)
					break;
				end++;
			}
			// The newest frame is where the thread was stopped; every
			// other is a return address, its call one byte before.
			auto frames = symbolize(*f, !newest);
			newest = false;
			if (frames) {
				done++;
				out.insert(out.end(), frames->begin(), frames->end());
			} else {
				out.insert(out.end(), t.frames.begin() + static_cast<long>(i),
					   t.frames.begin() + static_cast<long>(end));
			}
			i = end;
		}
		// As the live symbolizer: at most so many frames, the rest said.
		if (out.size() > kMaxFrames) {
			out.resize(kMaxFrames);
			t.truncated = true;
		}
		t.frames = std::move(out);
	}
	return done;
}

std::string OfflineSymbolizer::debug_file(const std::string &build_id) const
{
	auto it = modules_.find(build_id);
	return it != modules_.end() && it->second ? it->second->path : std::string();
}

} // namespace fh
