#include "python/python.h"
#include "util/error.h"

#include "process/elf_file.h"

#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
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

fh_py_offsets none()
{
	fh_py_offsets o;
	std::memset(&o, 0xff, sizeof(o)); // every field FH_PY_NONE
	o.version = 0;
	o.flags = 0;
	o.module_type = 0;
	return o;
}

// What every version shares: objects, strings, bytes.
void common(fh_py_offsets &o, int minor)
{
	o.object_type = 8;
	o.type_flags = 168;
	o.str_length = 16;
	o.str_state = 32;
	o.str_ascii_data = minor >= 12 ? 40 : 48;
	o.str_compact_data = minor >= 12 ? 56 : 72;
	o.str_legacy_data = minor >= 12 ? 56 : 72;
	o.bytes_size = 16;
	o.bytes_data = 32;
	o.tstate_next = 8;
}

} // namespace

std::optional<fh_py_offsets> builtin_offsets(int minor)
{
	if (minor < 6 || minor > 12)
		return std::nullopt;
	fh_py_offsets o = none();
	o.version = 0x03000000u | static_cast<uint32_t>(minor) << 16;
	common(o, minor);
	if (minor <= 10) {
		// PyFrameObject chains.
		o.frame_kind = FH_PY_FRAME_OBJECT;
		o.tstate_frame = 24;
		o.frame_back = 24;
		o.frame_code = 32;
		o.interp_next = 0;
		o.interp_threads_head = 8;
		o.tstate_thread_id = minor == 6 ? 152 : 176;
		o.frame_lasti = minor == 6 ? 120 : minor <= 9 ? 104 : 96;
		o.code_firstlineno = minor <= 7 ? 36 : 40;
		o.code_filename = minor <= 7 ? 96 : 104;
		o.code_name = minor <= 7 ? 104 : 112;
		o.code_linetable = minor <= 7 ? 112 : 120;
		if (minor == 10)
			o.flags |= FH_PY_LASTI_UNITS;
	}
	switch (minor) {
	case 6:
		o.flags |= FH_PY_RUNTIME_IS_INTERP_HEAD;
		o.runtime_interpreters_head = 0;
		break;
	case 7:
		o.runtime_interpreters_head = 24;
		o.runtime_autotss_key = 1504;
		break;
	case 8:
		o.runtime_interpreters_head = 32;
		o.runtime_autotss_key = 1392;
		break;
	case 9:
	case 10:
		o.runtime_interpreters_head = 32;
		o.runtime_autotss_key = 584;
		o.interp_gc_collecting = 816;
		if (minor == 10) {
			o.interp_modules = 856;
			o.interp_sysdict = 872;
		}
		break;
	case 11:
	case 12: {
		bool v11 = minor == 11;
		o.frame_kind = FH_PY_FRAME_INTERPRETER;
		o.runtime_interpreters_head = 40;
		o.runtime_autotss_key = v11 ? 592 : 1544;
		o.interp_next = 0;
		o.interp_threads_head = v11 ? 16 : 72;
		o.interp_gc_collecting = v11 ? 848 : 312;
		o.tstate_cframe = 56;
		o.cframe_current_frame = v11 ? 8 : 0;
		o.tstate_thread_id = v11 ? 152 : 136;
		o.tstate_native_thread_id = v11 ? 160 : 144;
		o.frame_back = v11 ? 48 : 8;
		o.frame_code = v11 ? 32 : 0;
		o.frame_instr_ptr = 56;
		o.frame_owner = v11 ? 69 : 70;
		o.owner_skip_min = v11 ? FH_PY_NONE : 3; // FRAME_OWNED_BY_CSTACK
		o.code_firstlineno = v11 ? 72 : 68;
		o.code_filename = 112;
		o.code_name = 120;
		o.code_linetable = 136;
		o.code_adaptive = v11 ? 184 : 192;
		o.interp_modules = v11 ? 888 : 944;
		o.interp_sysdict = v11 ? 904 : 352;
		break;
	}
	default:
		break;
	}
	return o;
}

namespace {

// The _Py_DebugOffsets layouts: field names in order, after cookie, version
// and free_threaded.  3.14's gained fields during its development; the one
// whose fixed points check out is used.
const std::vector<const char *> kLayout313 = {
	"runtime.size", "runtime.finalizing", "runtime.interpreters_head",
	"interp.size", "interp.id", "interp.next", "interp.threads_head", "interp.gc",
	"interp.imports_modules", "interp.sysdict", "interp.builtins", "interp.ceval_gil",
	"interp.gil", "interp.gil_enabled", "interp.gil_locked", "interp.gil_holder",
	"tstate.size", "tstate.prev", "tstate.next", "tstate.interp", "tstate.current_frame",
	"tstate.thread_id", "tstate.native_thread_id", "tstate.datastack_chunk", "tstate.status",
	"frame.size", "frame.previous", "frame.executable", "frame.instr_ptr", "frame.localsplus",
	"frame.owner",
	"code.size", "code.filename", "code.name", "code.qualname", "code.linetable",
	"code.firstlineno", "code.argcount", "code.localsplusnames", "code.localspluskinds",
	"code.co_code_adaptive",
	"object.size", "object.ob_type",
	"type.size", "type.tp_name", "type.tp_repr", "type.tp_flags",
	"tuple.size", "tuple.ob_item", "tuple.ob_size",
	"list.size", "list.ob_item", "list.ob_size",
	"dict.size", "dict.ma_keys", "dict.ma_values",
	"float.size", "float.ob_fval",
	"long.size", "long.lv_tag", "long.ob_digit",
	"bytes.size", "bytes.ob_size", "bytes.ob_sval",
	"unicode.size", "unicode.state", "unicode.length", "unicode.asciiobject_size",
	"gc.size", "gc.collecting",
};

std::vector<const char *> layout_314(bool tlbc)
{
	std::vector<const char *> l = {
		"runtime.size", "runtime.finalizing", "runtime.interpreters_head",
		"interp.size", "interp.id", "interp.next", "interp.threads_head",
		"interp.threads_main", "interp.gc", "interp.imports_modules", "interp.sysdict",
		"interp.builtins", "interp.ceval_gil", "interp.gil", "interp.gil_enabled",
		"interp.gil_locked", "interp.gil_holder"};
	if (tlbc) {
		l.push_back("interp.code_object_generation");
		l.push_back("interp.tlbc_generation");
	}
	for (const char *f : {"tstate.size", "tstate.prev", "tstate.next", "tstate.interp",
			      "tstate.current_frame", "tstate.thread_id", "tstate.native_thread_id",
			      "tstate.datastack_chunk", "tstate.status", "frame.size",
			      "frame.previous", "frame.executable", "frame.instr_ptr",
			      "frame.localsplus", "frame.owner", "frame.stackpointer"})
		l.push_back(f);
	if (tlbc)
		l.push_back("frame.tlbc_index");
	for (const char *f : {"code.size", "code.filename", "code.name", "code.qualname",
			      "code.linetable", "code.firstlineno", "code.argcount",
			      "code.localsplusnames", "code.localspluskinds", "code.co_code_adaptive"})
		l.push_back(f);
	if (tlbc)
		l.push_back("code.co_tlbc");
	for (const char *f :
	     {"object.size", "object.ob_type", "type.size", "type.tp_name", "type.tp_repr",
	      "type.tp_flags", "tuple.size", "tuple.ob_item", "tuple.ob_size", "list.size",
	      "list.ob_item", "list.ob_size", "set.size", "set.used", "set.table", "set.mask",
	      "dict.size", "dict.ma_keys", "dict.ma_values", "float.size", "float.ob_fval",
	      "long.size", "long.lv_tag", "long.ob_digit", "bytes.size", "bytes.ob_size",
	      "bytes.ob_sval", "unicode.size", "unicode.state", "unicode.length",
	      "unicode.asciiobject_size", "gc.size", "gc.collecting", "gen.size", "gen.gi_name",
	      "gen.gi_iframe", "gen.gi_frame_state"})
		l.push_back(f);
	return l;
}

std::optional<std::map<std::string, uint64_t>> read_layout(const uint8_t *data, size_t len,
							   const std::vector<const char *> &layout)
{
	if (len < 24 + 8 * layout.size())
		return std::nullopt;
	std::map<std::string, uint64_t> f;
	for (size_t i = 0; i < layout.size(); i++) {
		uint64_t v;
		std::memcpy(&v, data + 24 + 8 * i, sizeof(v));
		f[layout[i]] = v;
	}
	// Fixed points of the object ABI: a layout read with the wrong field
	// order misses them.
	if (f["object.size"] != 16 || f["object.ob_type"] != 8 || f["unicode.length"] != 16 ||
	    f["unicode.state"] != 32 || f["bytes.ob_size"] != 16 || f["tuple.ob_size"] != 16 ||
	    f["list.ob_size"] != 16 || f["tstate.next"] == 0)
		return std::nullopt;
	return f;
}

} // namespace

fh_py_offsets offsets_from_debug(const uint8_t *data, size_t len)
{
	if (len < 24 || std::memcmp(data, "xdebugpy", 8) != 0)
		throw Error("no _Py_DebugOffsets cookie", EINVAL);
	uint64_t version, free_threaded;
	std::memcpy(&version, data + 8, 8);
	std::memcpy(&free_threaded, data + 16, 8);
	int major = static_cast<int>(version >> 24 & 0xff);
	int minor = static_cast<int>(version >> 16 & 0xff);
	if (major != 3 || minor < 13)
		throw Error("_Py_DebugOffsets with an unexpected version 0x" + [&] {
			char b[20];
			std::snprintf(b, sizeof(b), "%llx", static_cast<unsigned long long>(version));
			return std::string(b);
		}(),
			    EINVAL);
	if (free_threaded)
		throw Error("free-threaded CPython builds are not supported", EINVAL);
	std::optional<std::map<std::string, uint64_t>> f;
	if (minor == 13)
		f = read_layout(data, len, kLayout313);
	else
		for (bool tlbc : {true, false})
			if (!f)
				f = read_layout(data, len, layout_314(tlbc));
	if (!f)
		throw Error("unrecognised _Py_DebugOffsets layout for Python 3." +
				    std::to_string(minor),
			    EINVAL);
	auto &v = *f;
	for (const auto &[name, value] : v)
		if (value > (1u << 24) && name.find(".size") == std::string::npos) 
			throw Error("implausible _Py_DebugOffsets field " + name, EINVAL);
	auto s = [&](const char *name) { return static_cast<__s32>(v.at(name)); };

	fh_py_offsets o = none();
	common(o, minor);
	o.version = static_cast<uint32_t>(version);
	o.frame_kind = FH_PY_FRAME_INTERPRETER;
	if (minor >= 14)
		o.flags |= FH_PY_TAGGED_EXECUTABLE;
	o.owner_skip_min = 3; // 3.13: CSTACK = 3; 3.14: INTERPRETER = 3, CSTACK = 4
	o.runtime_interpreters_head = s("runtime.interpreters_head");
	// Not in the debug offsets; measured for 3.13 (reference table).
	o.runtime_autotss_key = minor == 13 ? 2160 : FH_PY_NONE;
	o.interp_next = s("interp.next");
	o.interp_threads_head = s("interp.threads_head");
	o.interp_gc_collecting = s("interp.gc") + s("gc.collecting");
	o.tstate_next = s("tstate.next");
	o.tstate_current_frame = s("tstate.current_frame");
	o.tstate_thread_id = s("tstate.thread_id");
	o.tstate_native_thread_id = s("tstate.native_thread_id");
	o.frame_back = s("frame.previous");
	o.frame_code = s("frame.executable");
	o.frame_instr_ptr = s("frame.instr_ptr");
	o.frame_owner = s("frame.owner");
	o.code_firstlineno = s("code.firstlineno");
	o.code_filename = s("code.filename");
	o.code_name = s("code.name");
	o.code_linetable = s("code.linetable");
	o.code_adaptive = s("code.co_code_adaptive");
	o.object_type = s("object.ob_type");
	o.type_flags = s("type.tp_flags");
	o.str_length = s("unicode.length");
	o.str_state = s("unicode.state");
	o.str_ascii_data = s("unicode.asciiobject_size");
	o.str_compact_data = o.str_ascii_data + 16; // + utf8_length, utf8
	o.str_legacy_data = o.str_compact_data;
	o.bytes_size = s("bytes.ob_size");
	o.bytes_data = s("bytes.ob_sval");
	o.interp_modules = s("interp.imports_modules");
	o.interp_sysdict = s("interp.sysdict");
	return o;
}

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
