#include "symbolize/symbols.h"
#include "symbolize/unwinder.h"
#include "util/strings.h"

#include <cxxabi.h>
#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwfl.h>

#include <cstdlib>
#include <string>
#include <vector>

// One address to frames: its function from the symbol table, and from
// DWARF its source line and the inlined calls it sits in.

namespace fh {

namespace {

// A symbol-table name as a person reads it: demangled, without the
// "@@GLIBC_2.34" version suffix.
std::string demangle(const char *raw)
{
	if (!raw)
		return {};
	std::string stripped(raw);
	if (size_t at = stripped.find('@'); at != std::string::npos && at > 0)
		stripped.resize(at);
	const char *name = stripped.c_str();
	if (name[0] == '_' && name[1] == 'Z') {
		int status = 0;
		char *d = abi::__cxa_demangle(name, nullptr, nullptr, &status);
		if (d && status == 0) {
			std::string out(d);
			std::free(d);
			return out;
		}
		std::free(d);
	}
	return stripped;
}

// "dir/./a/../b" -> "dir/b", lexically.
std::string normalize_path(const std::string &path)
{
	std::vector<std::string> parts;
	size_t i = 0;
	bool absolute = !path.empty() && path[0] == '/';
	while (i <= path.size()) {
		size_t j = path.find('/', i);
		if (j == std::string::npos)
			j = path.size();
		std::string part = path.substr(i, j - i);
		if (part == "..") {
			if (!parts.empty() && parts.back() != "..")
				parts.pop_back();
			else if (!absolute)
				parts.push_back(part);
		} else if (!part.empty() && part != ".") {
			parts.push_back(part);
		}
		i = j + 1;
	}
	std::string out = absolute ? "/" : "";
	for (size_t k = 0; k < parts.size(); k++)
		out += (k ? "/" : "") + parts[k];
	return out;
}

// A source path from a line table, made absolute with the unit's
// compilation directory when that is absolute; as recorded otherwise
// (distributions map the build directory away: "../sysdeps/...").
std::string source_path(const char *src, Dwarf_Die *cudie)
{
	std::string path = src;
	if (path.empty() || path[0] == '/' || !cudie)
		return path;
	Dwarf_Attribute attr;
	const char *dir = dwarf_formstring(dwarf_attr(cudie, DW_AT_comp_dir, &attr));
	if (!dir || dir[0] != '/')
		return path;
	return normalize_path(std::string(dir) + "/" + path);
}

// The name of a subprogram or inlined subroutine DIE, following
// DW_AT_abstract_origin and DW_AT_specification.
std::string die_function_name(Dwarf_Die *die)
{
	Dwarf_Attribute attr;
	for (int name : {DW_AT_linkage_name, DW_AT_MIPS_linkage_name}) {
		if (dwarf_attr_integrate(die, name, &attr))
			if (const char *s = dwarf_formstring(&attr))
				return demangle(s);
	}
	if (dwarf_attr_integrate(die, DW_AT_name, &attr))
		if (const char *s = dwarf_formstring(&attr))
			return s;
	return {};
}

bool is_function_scope(Dwarf_Die *die)
{
	int tag = dwarf_tag(die);
	return tag == DW_TAG_subprogram || tag == DW_TAG_inlined_subroutine ||
	       tag == DW_TAG_entry_point;
}

// The functions whose code holds addr, innermost first, each a concrete
// DIE: the innermost named function scope at addr, then the function
// scopes that hold that DIE, up to the subprogram everything was inlined
// into (as eu-stack -i does).  dwarf_getscopes alone goes on, past the
// first inlined call, in the scopes of that call's abstract origin: the
// calls inlined in between would be lost.  Lexical blocks are left out.
std::vector<Dwarf_Die> call_chain(Dwarf_Die *cudie, Dwarf_Addr addr)
{
	std::vector<Dwarf_Die> out;
	Dwarf_Die *scopes = nullptr;
	int n = dwarf_getscopes(cudie, addr, &scopes);
	for (int i = 0; i < n && out.empty(); i++)
		if (is_function_scope(&scopes[i]) && !die_function_name(&scopes[i]).empty())
			out.push_back(scopes[i]);
	std::free(scopes);
	if (out.empty())
		return out;

	Dwarf_Die innermost = out.front();
	scopes = nullptr;
	n = dwarf_getscopes_die(&innermost, &scopes);
	if (n > 0)
		out.clear(); // scopes[0] is innermost again
	for (int i = 0; i < n; i++) {
		if (!is_function_scope(&scopes[i]))
			continue;
		out.push_back(scopes[i]);
		if (dwarf_tag(&scopes[i]) == DW_TAG_subprogram)
			break;
	}
	std::free(scopes);
	return out;
}

// Where an inlined subroutine was called: its DW_AT_call_file and
// DW_AT_call_line, or an empty file and line 0.
void call_site(Dwarf_Die *inlined, Dwarf_Files *files, Dwarf_Die *cudie, std::string &file,
	       int &line)
{
	Dwarf_Attribute attr;
	Dwarf_Word v;
	file.clear();
	line = 0;
	if (files && dwarf_formudata(dwarf_attr(inlined, DW_AT_call_file, &attr), &v) == 0)
		if (const char *src = dwarf_filesrc(files, v, nullptr, nullptr))
			file = source_path(src, cudie);
	if (dwarf_formudata(dwarf_attr(inlined, DW_AT_call_line, &attr), &v) == 0)
		line = static_cast<int>(v);
}

} // namespace

std::vector<NativeFrame> module_frames(Dwfl_Module *mod, uint64_t lookup, uint64_t delta,
				       NativeFrame base)
{
	GElf_Off sym_off = 0;
	GElf_Sym sym;
	if (const char *name = dwfl_module_addrinfo(mod, lookup, &sym_off, &sym, nullptr, nullptr,
						    nullptr)) {
		base.function = demangle(name);
		base.function_offset = sym_off + delta;
		base.function_offset_known = true;
	}

	// The compilation unit that covers the address.  libdw falls back to a
	// neighbouring unit for code without debug information (crt1.o's
	// _start): such an address has no source position.
	Dwarf_Addr bias = 0;
	Dwarf_Die *cudie = dwfl_module_addrdie(mod, lookup, &bias);
	if (cudie && dwarf_haspc(cudie, lookup - bias) <= 0)
		cudie = nullptr;

	// The source position of the address itself.
	std::string file;
	int line = 0;
	Dwfl_Line *l = cudie ? dwfl_module_getsrc(mod, lookup) : nullptr;
	if (l) {
		int lineno = 0;
		if (const char *src = dwfl_lineinfo(l, nullptr, &lineno, nullptr, nullptr, nullptr)) {
			file = source_path(src, cudie);
			line = lineno;
		}
	}

	// The chain of calls at the address, innermost first: each inlined
	// subroutine is a frame of its own, and its caller's position is where
	// it was inlined (its DW_AT_call_file and DW_AT_call_line).
	std::vector<NativeFrame> out;
	std::vector<Dwarf_Die> chain;
	if (cudie)
		chain = call_chain(cudie, lookup - bias);
	Dwarf_Files *files = nullptr;
	if (cudie && dwarf_getsrcfiles(cudie, &files, nullptr) != 0)
		files = nullptr;
	for (Dwarf_Die &scope : chain) {
		NativeFrame f = base;
		f.file = file;
		f.line = line;
		std::string name = die_function_name(&scope);
		if (dwarf_tag(&scope) == DW_TAG_subprogram) {
			// The outermost function: its DWARF name, as debuggers
			// show it; the symbol table's when DWARF has none.
			if (!name.empty())
				f.function = name;
			out.push_back(std::move(f));
			break;
		}
		f.function = name;
		f.function_offset_known = false;
		f.inlined = true;
		out.push_back(std::move(f));
		// The caller's position: where this subroutine was inlined.
		call_site(&scope, files, cudie, file, line);
	}
	if (out.empty() || out.back().inlined) {
		// No DWARF scope (or no enclosing subprogram): the symbol alone.
		NativeFrame f = base;
		f.file = file;
		f.line = line;
		out.push_back(std::move(f));
	}
	return out;
}

std::vector<NativeFrame> Unwinder::symbolize(uint64_t pc, bool return_address)
{
	uint64_t lookup = return_address && pc > 0 ? pc - 1 : pc;
	NativeFrame base;
	base.pc = pc;

	Dwfl_Module *mod = dwfl_addrmodule(dwfl_.get(), lookup);
	if (!mod)
		return {base};
	Dwarf_Addr start = 0;
	dwfl_module_info(mod, nullptr, &start, nullptr, nullptr, nullptr, nullptr, nullptr);
	base.module = module_path(mod);
	base.module_offset = pc - start;

	// Another process may have had the same file and offset symbolized
	// already (a crash loop, many processes of one program): its frames
	// serve without loading the file's debug information again.
	std::string key;
	const unsigned char *id = nullptr;
	GElf_Addr id_vaddr;
	int id_len = dwfl_module_build_id(mod, &id, &id_vaddr);
	if (id_len > 0) {
		base.build_id = hex_bytes(id, static_cast<size_t>(id_len));
		key = base.build_id + ":" + std::to_string(base.module_offset) + (return_address ? "r" : "");
		if (auto it = shared_frames().find(key); it != shared_frames().end()) {
			std::vector<NativeFrame> out = it->second;
			for (auto &f : out) {
				f.pc = pc;
				f.module = base.module;
			}
			return out;
		}
	}

	std::vector<NativeFrame> out = module_frames(mod, lookup, pc - lookup, std::move(base));
	if (!key.empty()) {
		if (shared_frames().size() >= kMaxShared)
			shared_frames().clear();
		shared_frames().emplace(key, out);
	}
	return out;
}

} // namespace fh
