#include "python/python.h"
#include "util/error.h"

#include "process/elf_file.h"

#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <algorithm>
#include <cstring>
#include <map>
#include <regex>
#include <set>
#include <sstream>

namespace fh {

int python_minor_from_path(const std::string &path)
{
	static const std::regex re(R"(python3\.(\d+))");
	std::string base = path.substr(path.rfind('/') + 1);
	std::smatch m;
	if (!std::regex_search(base, m, re) || m[1].length() > 3)
		return 0; // a file of any name may be met: no such minor
	return static_cast<int>(std::strtol(m[1].str().c_str(), nullptr, 10));
}

namespace {

bool free_threaded_name(const std::string &path)
{
	static const std::regex re(R"(python3\.\d+t)");
	return std::regex_search(path.substr(path.rfind('/') + 1), re);
}

} // namespace

namespace {

// CPython in one file (see detect_python_file).
PythonDetection python_in_file(const std::string &path, const std::string &exe,
			       std::optional<FileIdentity> mapped = std::nullopt)
{
	PythonDetection d;
	auto unsupported = [&d](std::string why) {
		d.unsupported = std::move(why);
		return d;
	};
	auto elf = ElfFile::open(path, mapped);
	if (!elf)
		return d;
	bool is_36 = false;
	auto runtime = elf->symbol("_PyRuntime");
	if (!runtime && python_minor_from_path(path) == 6) {
		runtime = elf->symbol("interp_head");
		is_36 = runtime.has_value();
	}
	if (!runtime)
		return d;

	PythonRuntime rt;
	rt.module = path;
	if (free_threaded_name(path)) {
		return unsupported("free-threaded CPython builds are not supported (" + path + ")");
	}
	uint32_t version_hex = 0;
	if (auto pv = elf->symbol("Py_Version"))
		if (auto bytes = elf->read(pv->value, 4))
			std::memcpy(&version_hex, bytes->data(), 4);
	rt.minor = version_hex ? static_cast<int>(version_hex >> 16 & 0xff)
			       : python_minor_from_path(path);
	if (rt.minor == 0)
		rt.minor = python_minor_from_path(exe);
	if (is_36)
		rt.minor = 6;

	std::optional<fh_py_offsets> offsets;
	if (rt.minor >= 13) {
		auto image = elf->read(runtime->value, 1024);
		if (!image)
			return unsupported("cannot read _Py_DebugOffsets from " + path);
		try {
			offsets = offsets_from_debug(image->data(), image->size());
		} catch (const Error &e) {
			return unsupported(e.what() + std::string(" (") + path + ")");
		}
	} else {
		offsets = builtin_offsets(rt.minor);
		if (!offsets)
			return unsupported("Python 3." + std::to_string(rt.minor) +
					   " is not supported (3.6 and later are)");
		if (version_hex)
			offsets->version = version_hex;
	}
	rt.offsets = *offsets;
	rt.offsets.module_type = 0;
	rt.runtime_vaddr = runtime->value;
	if (auto mt = elf->symbol("PyModule_Type"))
		rt.module_type_vaddr = mt->value;
	d.runtime = rt;
	return d;
}

std::string dir_of(const std::string &path)
{
	size_t at = path.rfind('/');
	return at == std::string::npos ? "." : at == 0 ? "/" : path.substr(0, at);
}

bool is_regular_executable(const std::string &path)
{
	struct stat st;
	return stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && access(path.c_str(), X_OK) == 0;
}

std::string canonical(const std::string &path)
{
	char buf[PATH_MAX];
	return realpath(path.c_str(), buf) ? std::string(buf) : path;
}

// The file the dynamic loader would map for DT_NEEDED `name` of `elf_path`,
// searched in its order: DT_RPATH (when there is no DT_RUNPATH),
// LD_LIBRARY_PATH, DT_RUNPATH, then the system directories (ld.so.cache is
// not read: on Debian the multiarch directories below hold what it lists).
std::string find_library(const ElfFile &elf, const std::string &elf_path, const std::string &name)
{
	if (name.find('/') != std::string::npos)
		return name;
	std::string origin = dir_of(canonical(elf_path));
	auto expand = [&](std::string d) {
		for (const char *o : {"${ORIGIN}", "$ORIGIN"})
			for (size_t at; (at = d.find(o)) != std::string::npos;)
				d.replace(at, std::strlen(o), origin);
		return d;
	};
	std::vector<std::string> dirs;
	auto runpath = elf.runpath();
	if (runpath.empty())
		for (const auto &d : elf.rpath())
			dirs.push_back(expand(d));
	if (const char *ld = getenv("LD_LIBRARY_PATH")) {
		std::string list = ld;
		for (size_t i = 0; i <= list.size();) {
			size_t j = list.find(':', i);
			if (j == std::string::npos)
				j = list.size();
			if (j > i)
				dirs.push_back(list.substr(i, j - i));
			i = j + 1;
		}
	}
	for (const auto &d : runpath)
		dirs.push_back(expand(d));
	for (const char *d : {"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64",
			      "/usr/lib64", "/lib", "/usr/lib", "/usr/local/lib"})
		dirs.emplace_back(d);
	for (const auto &d : dirs) {
		std::string p = d + "/" + name;
		if (access(p.c_str(), R_OK) == 0)
			return p;
	}
	return {};
}

} // namespace

PythonDetection detect_python_file(const std::string &path, const std::string &exe,
				   std::optional<FileIdentity> mapped)
{
	return python_in_file(path, exe, mapped);
}

std::optional<std::set<std::string>> stdlib_names_from_file(const std::string &path,
							    std::optional<FileIdentity> mapped)
{
	auto elf = ElfFile::open(path, mapped);
	if (!elf)
		return std::nullopt;
	// A static array of C strings, NULL-terminated; the linker wrote the
	// strings' link-time addresses into it.
	auto sym = elf->symbol("_Py_stdlib_module_names");
	if (!sym || sym->size < 8 || sym->size > 8 * 4096)
		return std::nullopt;
	auto table = elf->read(sym->value, sym->size);
	if (!table)
		return std::nullopt;
	std::set<std::string> names;
	for (size_t i = 0; i + 8 <= table->size(); i += 8) {
		uint64_t ptr;
		std::memcpy(&ptr, table->data() + i, 8);
		if (!ptr)
			break;
		auto bytes = elf->read(ptr, 64);
		if (!bytes)
			return std::nullopt;
		std::string name(reinterpret_cast<const char *>(bytes->data()),
				 strnlen(reinterpret_cast<const char *>(bytes->data()), bytes->size()));
		if (name.empty() || name.size() == bytes->size())
			return std::nullopt; // not what a name looks like: trust none
		names.insert(name);
	}
	if (names.empty())
		return std::nullopt;
	return names;
}

std::string find_program(const std::string &argv0)
{
	if (argv0.empty())
		return {};
	if (argv0.find('/') != std::string::npos)
		return is_regular_executable(argv0) ? argv0 : std::string();
	const char *env = getenv("PATH");
	std::string path = env ? env : "/usr/local/bin:/usr/bin:/bin";
	for (size_t i = 0; i <= path.size();) {
		size_t j = path.find(':', i);
		if (j == std::string::npos)
			j = path.size();
		std::string dir = j > i ? path.substr(i, j - i) : ".";
		std::string p = dir + "/" + argv0;
		if (is_regular_executable(p))
			return p;
		i = j + 1;
	}
	return {};
}

PythonDetection detect_python_command(const std::string &argv0)
{
	PythonDetection d;
	std::string exe = find_program(argv0);
	if (exe.empty())
		return d;
	// A script: its "#!" interpreter, one level, through env.
	{
		UniqueFd fd(open(exe.c_str(), O_RDONLY | O_CLOEXEC));
		char buf[256] = {};
		ssize_t n = fd ? read(fd.get(), buf, sizeof(buf) - 1) : -1;
		if (n > 2 && buf[0] == '#' && buf[1] == '!') {
			std::string line(buf + 2, static_cast<size_t>(n - 2));
			line = line.substr(0, line.find('\n'));
			std::vector<std::string> words;
			for (size_t i = 0; i < line.size();) {
				size_t j = line.find_first_of(" \t", i);
				if (j == std::string::npos)
					j = line.size();
				if (j > i)
					words.push_back(line.substr(i, j - i));
				i = j + 1;
			}
			if (words.empty())
				return d;
			exe = words[0];
			if (exe.size() >= 4 && exe.compare(exe.size() - 4, 4, "/env") == 0) {
				exe.clear();
				for (size_t w = 1; w < words.size() && exe.empty(); w++)
					if (words[w][0] != '-' && words[w].find('=') == std::string::npos)
						exe = find_program(words[w]);
				if (exe.empty())
					return d;
			}
		}
	}
	exe = canonical(exe);
	d = python_in_file(exe, exe);
	if (d.runtime || !d.unsupported.empty())
		return d;
	auto elf = ElfFile::open(exe);
	if (!elf)
		return d;
	for (const auto &name : elf->needed()) {
		if (name.rfind("libpython3", 0) != 0)
			continue;
		std::string lib = find_library(*elf, exe, name);
		if (lib.empty())
			continue;
		d = python_in_file(canonical(lib), exe);
		if (d.runtime || !d.unsupported.empty())
			return d;
	}
	return d;
}

std::optional<PythonPlacement> python_placement(const PythonRuntime &rt)
{
	auto elf = ElfFile::open(rt.module);
	struct stat st;
	if (!elf || stat(rt.module.c_str(), &st) != 0)
		return std::nullopt;
	auto first = elf->first_load_vaddr();
	if (!first || rt.runtime_vaddr < *first)
		return std::nullopt;
	PythonPlacement p;
	p.ino = st.st_ino;
	p.size = static_cast<uint64_t>(st.st_size);
	p.runtime_off = rt.runtime_vaddr - *first;
	if (rt.module_type_vaddr > *first)
		p.module_type_off = rt.module_type_vaddr - *first;
	return p;
}

void place_python_at(PythonRuntime &rt, uint64_t runtime, uint64_t module_type)
{
	rt.runtime_addr = runtime;
	rt.load_bias = runtime - rt.runtime_vaddr;
	rt.offsets.module_type = module_type;
	rt.placed = true;
}

bool place_python(PythonRuntime &rt, const MappingSet &maps)
{
	auto elf = ElfFile::open(rt.module);
	if (!elf)
		return false;
	// Load bias: where the file's first page is mapped, less its first
	// PT_LOAD address.
	auto first_vaddr = elf->first_load_vaddr();
	for (const auto &m : maps) {
		if (m.path != rt.module || m.offset != 0)
			continue;
		rt.load_bias = m.start - (first_vaddr ? *first_vaddr : 0);
		rt.runtime_addr = rt.load_bias + rt.runtime_vaddr;
		rt.offsets.module_type = rt.module_type_vaddr ? rt.load_bias + rt.module_type_vaddr : 0;
		rt.placed = true;
		return true;
	}
	return false;
}

PythonDetection detect_python(const MappingSet &maps)
{
	PythonDetection d;
	std::vector<std::string> candidates;
	for (const auto &path : maps.files()) {
		// The executable (first file mapped) and anything named like Python.
		if (candidates.empty() || path.find("python") != std::string::npos)
			candidates.push_back(path);
	}
	// The executable, then a libpython, before the rest (an interpreter's
	// extension modules are named like it too, and each one read costs
	// its symbol tables).
	auto libpython = [](const std::string &path) {
		size_t slash = path.rfind('/');
		return path.compare(slash == std::string::npos ? 0 : slash + 1, 9, "libpython") == 0;
	};
	if (!candidates.empty())
		std::stable_partition(candidates.begin() + 1, candidates.end(), libpython);
	for (const auto &path : candidates) {
		PythonDetection found = python_in_file(path, candidates.front());
		auto rt = found.runtime;
		if (!found.unsupported.empty())
			return found;
		if (!rt)
			continue;
		if (!place_python(*rt, maps)) {
			// Not mapped from its start: as linked (no load bias).
			rt->runtime_addr = rt->runtime_vaddr;
			rt->offsets.module_type = rt->module_type_vaddr;
			rt->placed = true;
		}
		d.runtime = rt;
		return d;
	}
	return d;
}

} // namespace fh
