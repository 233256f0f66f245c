// Writes the fuzzers' seed corpora (tests/fuzz/corpus/<harness>/): small
// well-formed inputs in each harness's input format, built from the
// product's own record layouts and Python offsets so that they follow them.
// `make fuzz-seeds` runs it; the files it writes are committed.
//
//   make-seeds DIR
#include "capture/event.h"
#include "python/python.h"

#include <linux/perf_event.h>
#include <linux/types.h>
#include <sys/stat.h>

#include <cstdio>
#include <cstring>
#include <elf.h>
#include <string>
#include <vector>

extern "C" {
#include "fh/python.h"
#include "fh/records.h"
}

using namespace fh;

namespace {

std::string out_dir;
using Bytes = std::vector<uint8_t>;

template <typename T> void put(Bytes &b, const T &v)
{
	const auto *p = reinterpret_cast<const uint8_t *>(&v);
	b.insert(b.end(), p, p + sizeof(T));
}

template <typename T> void put_at(Bytes &b, size_t off, const T &v)
{
	if (b.size() < off + sizeof(T))
		b.resize(off + sizeof(T));
	std::memcpy(b.data() + off, &v, sizeof(T));
}

void put_str(Bytes &b, const std::string &s) { b.insert(b.end(), s.begin(), s.end()); }

void write(const std::string &harness, const std::string &name, const Bytes &b)
{
	std::string dir = out_dir + "/" + harness;
	mkdir(out_dir.c_str(), 0755);
	mkdir(dir.c_str(), 0755);
	std::string path = dir + "/" + name;
	FILE *f = std::fopen(path.c_str(), "wb");
	if (!f || std::fwrite(b.data(), 1, b.size(), f) != b.size() || std::fclose(f) != 0) {
		std::perror(path.c_str());
		std::exit(1);
	}
}

// --- line tables: int32 firstlineno, int32 offset, the table ----------------
void linetable_seeds()
{
	auto seed = [](const char *name, int first, int offset, Bytes table) {
		Bytes b;
		put<int32_t>(b, first);
		put<int32_t>(b, offset);
		b.insert(b.end(), table.begin(), table.end());
		write("fuzz_linetable", name, b);
	};
	seed("lnotab", 10, 12, {0, 1, 6, 1, 8, 2, 4, 0xff, 250, 0, 10, 1});
	seed("linetable310", 3, 14, {6, 1, 8, 1, 0, 2, 10, 0x80, 4, 0xfe});
	// 3.11+: short forms (codes 0-9), one-line forms (10-12), no columns
	// (13), long (14), none (15).
	seed("location311", 1, 9,
	     {0x80, 0x00, 0xd0, 0x05, 0x06, 0xe8, 0x02, 0xf1, 0x03, 0x04, 0x05, 0x06, 0xf8, 0x89,
	      0x10, 0xa0, 0x01, 0xe8, 0x43, 0x05, 0x98, 0x20});
	seed("varint", 100, 2, {0xf0, 0x7f, 0x7f, 0x41, 0x00, 0x00, 0x00, 0xe8, 0x45});
}

// --- ring records: mode byte, then uint16 length + record ---------------------
void add_record(Bytes &b, const void *rec, size_t len)
{
	put<uint16_t>(b, static_cast<uint16_t>(len));
	const auto *p = static_cast<const uint8_t *>(rec);
	b.insert(b.end(), p, p + len);
}

template <typename T> T header(uint32_t kind, uint64_t id, size_t size = sizeof(T))
{
	T r{};
	r.hdr.kind = kind;
	r.hdr.size = static_cast<uint32_t>(size);
	r.hdr.event_id = id;
	return r;
}

Bytes code_record(uint64_t id, uint64_t code, const std::string &file, const std::string &name,
		  const Bytes &table, int first)
{
	auto r = header<fh_py_code_record>(FH_REC_PY_CODE, id);
	r.code = code;
	r.firstlineno = first;
	r.flags = FH_PY_CODE_FILENAME | FH_PY_CODE_NAME | FH_PY_CODE_LINETABLE;
	r.filename_length = file.size();
	r.filename_kind = 1;
	r.filename_bytes = static_cast<uint32_t>(file.size());
	// The name as 2-byte characters.
	r.name_length = name.size();
	r.name_kind = 2;
	r.name_bytes = static_cast<uint32_t>(2 * name.size());
	r.linetable_size = table.size();
	r.linetable_bytes = static_cast<uint32_t>(table.size());
	uint8_t *p = r.data;
	std::memcpy(p, file.data(), file.size());
	p += file.size();
	for (char c : name) {
		*p++ = static_cast<uint8_t>(c);
		*p++ = 0;
	}
	std::memcpy(p, table.data(), table.size());
	size_t used = offsetof(fh_py_code_record, data) + file.size() + 2 * name.size() + table.size();
	r.hdr.size = static_cast<uint32_t>(used);
	Bytes b(reinterpret_cast<uint8_t *>(&r), reinterpret_cast<uint8_t *>(&r) + used);
	return b;
}

void records_seed(const char *name, uint8_t mode, uint32_t trigger, const Bytes &table)
{
	const uint64_t id = 7;
	Bytes b{mode};
	auto ev = header<fh_event_record>(FH_REC_EVENT, id);
	ev.ktime_ns = 1000000;
	ev.tgid = 4242;
	ev.tid = 4243;
	ev.sig = trigger == FH_TRIGGER_FATAL_SIGNAL ? 11 : 10;
	ev.si_code = trigger == FH_TRIGGER_FATAL_SIGNAL ? 1 : 0;
	ev.fault_addr = 0x10;
	ev.trigger = trigger;
	ev.flags = trigger == FH_TRIGGER_USER_SIGNAL ? FH_EVENT_EXTERNAL : FH_EVENT_DEFAULT_ACTION;
	ev.sender_tgid = 99;
	std::strcpy(ev.sender_comm, "kill");
	std::strcpy(ev.comm, "python3");
	ev.uid = 1000;
	ev.ns_tgid = 1;
	ev.cgroup_id = 1234;
	add_record(b, &ev, sizeof(ev));

	Bytes thread(sizeof(fh_thread_record) + 64);
	auto t = header<fh_thread_record>(FH_REC_THREAD, id, thread.size());
	t.tid = 4243;
	t.ns_tid = 2;
	t.flags = FH_THREAD_HIT;
	t.fs_base = 0x7f0000001000;
	std::strcpy(t.comm, "worker");
	t.regs[FH_REG_RIP] = 0x401000;
	t.regs[FH_REG_RSP] = t.stack_addr = 0x7ffd0000;
	t.stack_len = 64;
	std::memcpy(thread.data(), &t, sizeof(t));
	add_record(b, thread.data(), thread.size());

	auto cmd = header<fh_cmdline_record>(FH_REC_CMDLINE, id);
	const char args[] = "python3\0-X\0faulthandler\0app.py";
	cmd.len = sizeof(args) - 1;
	cmd.full_len = cmd.len + 10;
	std::memcpy(cmd.data, args, cmd.len);
	cmd.hdr.size = static_cast<uint32_t>(offsetof(fh_cmdline_record, data) + cmd.len);
	add_record(b, &cmd, cmd.hdr.size);

	auto py = header<fh_py_thread_record>(FH_REC_PY_THREAD, id);
	py.tstate = 0x5000;
	py.thread_id = 0x7f0000001000;
	py.native_thread_id = 4243;
	py.flags = FH_PY_THREAD_TSS_READ | FH_PY_THREAD_CURRENT;
	py.nframes = 3;
	py.frames[0] = {0xc0de0, 2, 0, {}};
	py.frames[1] = {0xc0de1, 1, 3, {}}; // a shim frame from 3.12
	py.frames[2] = {0xc0de1, 1, 0, {}};
	py.hdr.size = static_cast<uint32_t>(offsetof(fh_py_thread_record, frames) + 3 * sizeof(fh_py_frame));
	add_record(b, &py, py.hdr.size);
	Bytes c1 = code_record(id, 0xc0de0, "/srv/app.py", "crash", table, 10);
	add_record(b, c1.data(), c1.size());
	Bytes c2 = code_record(id, 0xc0de1, "<frozen runpy>", "_run_code", table, 80);
	add_record(b, c2.data(), c2.size());

	auto mod = header<fh_py_module_record>(FH_REC_PY_MODULE, id);
	mod.kind = 1;
	mod.length = 5;
	mod.bytes = 5;
	std::memcpy(mod.data, "numpy", 5);
	mod.hdr.size = static_cast<uint32_t>(offsetof(fh_py_module_record, data) + 5);
	add_record(b, &mod, mod.hdr.size);

	// sys.stdlib_module_names at the signal: a part, then the last names.
	for (uint32_t status : {FH_PY_STDLIB_PART, FH_PY_STDLIB_FOUND}) {
		auto set = header<fh_py_stdlib_record>(FH_REC_PY_STDLIB, id);
		set.status = status;
		for (const char *name : {status == FH_PY_STDLIB_PART ? "sys" : "posix", "_json"}) {
			uint16_t n = static_cast<uint16_t>(std::strlen(name));
			uint32_t length = n;
			set.data[set.bytes] = 1;
			std::memcpy(set.data + set.bytes + 2, &n, 2);
			std::memcpy(set.data + set.bytes + 4, &length, 4);
			std::memcpy(set.data + set.bytes + 8, name, n);
			set.bytes += (8 + n + 7) & ~7u;
			set.names++;
		}
		set.hdr.size = static_cast<uint32_t>(offsetof(fh_py_stdlib_record, data) + set.bytes);
		add_record(b, &set, set.hdr.size);
	}

	auto maps = header<fh_maps_record>(FH_REC_MAPS, 0);
	maps.tgid = 4242;
	maps.reason = FH_MAPS_EXEC_MAPPING;
	maps.addr = 0x7f0000000000;
	maps.len = 0x1000;
	add_record(b, &maps, sizeof(maps));

	if (!(mode & 0x80)) {
		auto end = header<fh_event_end_record>(FH_REC_EVENT_END, id);
		end.ktime_ns = 2000000;
		end.nr_threads = 1;
		end.threads_lost = 1;
		add_record(b, &end, sizeof(end));
	}
	write("fuzz_records", name, b);
}

void records_seeds()
{
	// mode: Python 3.(6 + (mode & 0x7f) % 9); 0x80: completed as a live dump.
	records_seed("fatal39", 3, FH_TRIGGER_FATAL_SIGNAL, {0, 1, 4, 1, 6, 2});
	records_seed("fatal310", 4, FH_TRIGGER_FATAL_SIGNAL, {2, 1, 4, 1, 6, 0x80, 8, 2});
	records_seed("user311", 5, FH_TRIGGER_USER_SIGNAL, {0x80, 0x00, 0xd8, 0x05, 0xe8, 0x02, 0xf8});
	records_seed("live312", 0x80 | 6, FH_TRIGGER_TIMEOUT, {0xe8, 0x04, 0xd8, 0x02, 0x80});
}

// --- the Python walker: mode, uint16 runtime offset, an image at 0x10000 ----
class Image {
public:
	static constexpr uint64_t kBase = 0x10000;
	// An object of `size` bytes; its address.
	uint64_t alloc(size_t size)
	{
		uint64_t at = bytes.size();
		bytes.resize(bytes.size() + ((size + 15) & ~size_t{15}));
		return kBase + at;
	}
	template <typename T> void set(uint64_t addr, int32_t off, T v)
	{
		if (off >= 0)
			put_at(bytes, addr - kBase + static_cast<uint64_t>(off), v);
	}
	uint64_t str(const fh_py_offsets &o, uint64_t type, const std::string &s)
	{
		uint64_t a = alloc(static_cast<size_t>(o.str_ascii_data) + s.size() + 1);
		set<uint64_t>(a, o.object_type, type);
		set<int64_t>(a, o.str_length, static_cast<int64_t>(s.size()));
		set<uint32_t>(a, o.str_state, 1 << 2 | 1 << 5 | 1 << 6); // kind 1, compact, ascii
		std::memcpy(bytes.data() + (a - kBase) + o.str_ascii_data, s.data(), s.size());
		return a;
	}
	Bytes bytes;
};

void py_walk_seed(int minor)
{
	fh_py_offsets o = *builtin_offsets(minor);
	Image im;
	uint64_t runtime = im.alloc(4096), interp = im.alloc(1024), tstate = im.alloc(256);
	uint64_t cframe = im.alloc(64), pthread = im.alloc(0x400);
	uint64_t type = im.alloc(256);
	im.set<uint64_t>(type, o.type_flags, uint64_t{1} << 28);
	if (o.flags & FH_PY_RUNTIME_IS_INTERP_HEAD)
		im.set<uint64_t>(runtime, 0, interp);
	else
		im.set<uint64_t>(runtime, o.runtime_interpreters_head, interp);
	im.set<uint64_t>(interp, o.interp_threads_head, tstate);
	im.set<uint64_t>(tstate, o.tstate_thread_id, pthread);
	im.set<uint32_t>(tstate, o.tstate_native_thread_id, 1);
	im.set<uint64_t>(tstate, o.tstate_interp, interp);
	// The thread's TSS holds its thread state for autoTSSkey (key 0).
	im.set<int32_t>(runtime, o.runtime_autotss_key, 1);
	im.set<uint64_t>(pthread, FH_GLIBC_TSS_DATA, tstate);

	// Two code objects, their names, files and line tables.
	Bytes table = minor <= 9	? Bytes{0, 1, 4, 1, 6, 2}
		      : minor == 10 ? Bytes{2, 1, 4, 1, 6, 2}
				    : Bytes{0x80, 0x00, 0xd8, 0x05, 0xe8, 0x02, 0xf8};
	uint64_t codes[2];
	for (int i = 0; i < 2; i++) {
		uint64_t code = im.alloc(256);
		im.set<int32_t>(code, o.code_firstlineno, 10 + 20 * i);
		im.set<uint64_t>(code, o.code_filename, im.str(o, type, "/srv/app.py"));
		im.set<uint64_t>(code, o.code_name, im.str(o, type, i ? "main" : "crash"));
		uint64_t lt = im.alloc(static_cast<size_t>(o.bytes_data) + table.size());
		im.set<int64_t>(lt, o.bytes_size, static_cast<int64_t>(table.size()));
		std::memcpy(im.bytes.data() + (lt - Image::kBase) + o.bytes_data, table.data(), table.size());
		im.set<uint64_t>(code, o.code_linetable, lt);
		codes[i] = code;
	}
	uint64_t frames[2] = {im.alloc(128), im.alloc(128)};
	for (int i = 0; i < 2; i++) {
		im.set<uint64_t>(frames[i], o.frame_code, codes[i]);
		im.set<int32_t>(frames[i], o.frame_lasti, 4);
		if (o.frame_instr_ptr >= 0)
			im.set<uint64_t>(frames[i], o.frame_instr_ptr, codes[i] + o.code_adaptive + 4);
		im.set<uint8_t>(frames[i], o.frame_owner, 0);
	}
	im.set<uint64_t>(frames[0], o.frame_back, frames[1]);
	if (o.frame_kind == FH_PY_FRAME_OBJECT) {
		im.set<uint64_t>(tstate, o.tstate_frame, frames[0]);
	} else {
		im.set<uint64_t>(tstate, o.tstate_cframe, cframe);
		im.set<uint64_t>(cframe, o.cframe_current_frame, frames[0]);
	}

	// sys.stdlib_module_names (3.10+): a combined dict whose one entry is
	// that name, its value a frozenset of two names.
	if (minor >= 10 && o.interp_sysdict >= 0) {
		uint64_t dict = im.alloc(64), keys = im.alloc(32 + 8 + 24 * 1);
		im.set<uint64_t>(interp, o.interp_sysdict, dict);
		im.set<uint64_t>(dict, 32, keys);
		uint64_t key = im.str(o, type, "stdlib_module_names");
		uint64_t set = im.alloc(64), table = im.alloc(16 * 4);
		uint64_t set_type = im.alloc(264), set_name = im.alloc(16);
		std::memcpy(im.bytes.data() + (set_name - Image::kBase), "frozenset", 10);
		im.set<uint64_t>(set_type, 24, set_name); // tp_name
		im.set<uint64_t>(set, 8, set_type);
		im.set<uint64_t>(set, 32, 3); // mask
		im.set<uint64_t>(set, 40, table);
		im.set<uint64_t>(table, 0, im.str(o, type, "os"));
		im.set<uint64_t>(table, 32, im.str(o, type, "sys"));
		if (minor == 10) {
			im.set<uint64_t>(keys, 8, 1);  // size: one index byte
			im.set<uint64_t>(keys, 32, 1); // entries
			im.set<uint64_t>(keys, 40 + 1 + 8, key);
			im.set<uint64_t>(keys, 40 + 1 + 16, set);
		} else {
			im.set<uint8_t>(keys, 9, 3);  // log2 of the index bytes
			im.set<uint8_t>(keys, 10, 1); // unicode keys: (key, value)
			im.set<uint64_t>(keys, 24, 1);
			im.set<uint64_t>(keys, 32 + 8, key);
			im.set<uint64_t>(keys, 32 + 8 + 8, set);
		}
	}

	// As a fatal signal's walk, and as --dump's (the main thread's view).
	for (uint8_t view : {0, 0x20}) {
		Bytes b{static_cast<uint8_t>(view | (minor - 6))};
		put<uint16_t>(b, static_cast<uint16_t>(runtime - Image::kBase));
		b.insert(b.end(), im.bytes.begin(), im.bytes.end());
		write("fuzz_py_walk", "py3" + std::to_string(minor) + (view ? "-main-view" : ""), b);
	}
}

// A 3.13+ interpreter: offsets from a _Py_DebugOffsets image (here empty of
// fields: the parser's checks), over the 3.12 image's bytes.
void py_walk_debug_seed()
{
	Bytes dbg;
	put_str(dbg, "xdebugpy");
	put<uint64_t>(dbg, 0x030d00f0);
	put<uint64_t>(dbg, 0);
	dbg.resize(dbg.size() + 8 * 64);
	Bytes b{static_cast<uint8_t>(0x80 | 7)};
	put<uint16_t>(b, static_cast<uint16_t>(dbg.size()));
	b.insert(b.end(), dbg.begin(), dbg.end());
	put<uint16_t>(b, 0);
	b.resize(b.size() + 256);
	write("fuzz_py_walk", "debug-offsets", b);
}

// --- ELF: name byte, uint32 offset, a small ELF file --------------------------
// One PT_LOAD of the whole file at 0x400000, a PT_DYNAMIC, sections for the
// symbols (_PyRuntime, _Py_stdlib_module_names and its strings), the dynamic
// section (DT_NEEDED, DT_RUNPATH) and a build id.
Bytes small_elf()
{
	constexpr uint64_t kVaddr = 0x400000;
	Bytes f(sizeof(Elf64_Ehdr) + 2 * sizeof(Elf64_Phdr));
	auto append = [&](const Bytes &b) {
		while (f.size() % 8)
			f.push_back(0);
		size_t at = f.size();
		f.insert(f.end(), b.begin(), b.end());
		return at;
	};
	Bytes shstr{0}, strtab{0}, dynstr{0};
	auto name = [](Bytes &tab, const std::string &s) {
		uint32_t at = static_cast<uint32_t>(tab.size());
		put_str(tab, s);
		tab.push_back(0);
		return at;
	};
	// .data: the stdlib names table, then the strings it points to.
	Bytes data(3 * 8);
	Bytes strings;
	put_str(strings, "os");
	strings.push_back(0);
	put_str(strings, "sys");
	strings.resize(80); // each name is read 64 bytes at a time
	size_t data_at = append(data);
	size_t strings_at = append(strings);
	put_at<uint64_t>(f, data_at, kVaddr + strings_at);
	put_at<uint64_t>(f, data_at + 8, kVaddr + strings_at + 3);
	size_t runtime_at = append(Bytes(64, 0));
	Bytes note;
	put<uint32_t>(note, 4);
	put<uint32_t>(note, 8);
	put<uint32_t>(note, NT_GNU_BUILD_ID);
	put_str(note, "GNU");
	note.push_back(0);
	put<uint64_t>(note, 0x0123456789abcdefull);
	size_t note_at = append(note);

	uint32_t needed = name(dynstr, "libc.so.6"), runpath = name(dynstr, "$ORIGIN/lib");
	size_t dynstr_at = append(dynstr);
	Bytes dyn;
	for (auto [tag, val] : {std::pair<int64_t, uint64_t>{DT_NEEDED, needed},
				{DT_RUNPATH, runpath},
				{DT_STRTAB, kVaddr + dynstr_at},
				{DT_STRSZ, dynstr.size()},
				{DT_NULL, 0}}) {
		put<int64_t>(dyn, tag);
		put<uint64_t>(dyn, val);
	}
	size_t dyn_at = append(dyn);

	Bytes syms(sizeof(Elf64_Sym)); // the null symbol
	auto sym = [&](const std::string &n, uint64_t value, uint64_t size, uint16_t shndx) {
		Elf64_Sym s{};
		s.st_name = name(strtab, n);
		s.st_info = ELF64_ST_INFO(STB_GLOBAL, STT_OBJECT);
		s.st_shndx = shndx;
		s.st_value = value;
		s.st_size = size;
		put(syms, s);
	};
	sym("_Py_stdlib_module_names", kVaddr + data_at, 24, 1);
	sym("_PyRuntime", kVaddr + runtime_at, 64, 2);
	size_t symtab_at = append(syms);
	size_t strtab_at = append(strtab);

	std::vector<Elf64_Shdr> sh(1);
	auto section = [&](const std::string &n, uint32_t type, uint64_t flags, size_t off,
			   size_t size, uint32_t link, uint64_t entsize) {
		Elf64_Shdr s{};
		s.sh_name = name(shstr, n);
		s.sh_type = type;
		s.sh_flags = flags;
		s.sh_addr = flags & SHF_ALLOC ? kVaddr + off : 0;
		s.sh_offset = off;
		s.sh_size = size;
		s.sh_link = link;
		s.sh_addralign = 8;
		s.sh_entsize = entsize;
		sh.push_back(s);
	};
	section(".data", SHT_PROGBITS, SHF_ALLOC | SHF_WRITE, data_at, 24 + strings.size(), 0, 0);
	section(".PyRuntime", SHT_PROGBITS, SHF_ALLOC | SHF_WRITE, runtime_at, 64, 0, 0);
	section(".note.gnu.build-id", SHT_NOTE, SHF_ALLOC, note_at, note.size(), 0, 0);
	section(".dynstr", SHT_STRTAB, SHF_ALLOC, dynstr_at, dynstr.size(), 0, 0);
	section(".dynamic", SHT_DYNAMIC, SHF_ALLOC | SHF_WRITE, dyn_at, dyn.size(), 4, 16);
	section(".symtab", SHT_SYMTAB, 0, symtab_at, syms.size(), 7, sizeof(Elf64_Sym));
	section(".strtab", SHT_STRTAB, 0, strtab_at, strtab.size(), 0, 0);
	uint32_t shstr_name = name(shstr, ".shstrtab");
	size_t shstr_at = append(shstr);
	Elf64_Shdr s{};
	s.sh_name = shstr_name;
	s.sh_type = SHT_STRTAB;
	s.sh_offset = shstr_at;
	s.sh_size = shstr.size();
	sh.push_back(s);
	Bytes shdrs;
	for (const auto &x : sh)
		put(shdrs, x);
	size_t shoff = append(shdrs);

	Elf64_Ehdr eh{};
	std::memcpy(eh.e_ident, ELFMAG, SELFMAG);
	eh.e_ident[EI_CLASS] = ELFCLASS64;
	eh.e_ident[EI_DATA] = ELFDATA2LSB;
	eh.e_ident[EI_VERSION] = EV_CURRENT;
	eh.e_type = ET_DYN;
	eh.e_machine = EM_X86_64;
	eh.e_version = EV_CURRENT;
	eh.e_phoff = sizeof(Elf64_Ehdr);
	eh.e_shoff = shoff;
	eh.e_ehsize = sizeof(Elf64_Ehdr);
	eh.e_phentsize = sizeof(Elf64_Phdr);
	eh.e_phnum = 2;
	eh.e_shentsize = sizeof(Elf64_Shdr);
	eh.e_shnum = static_cast<uint16_t>(sh.size());
	eh.e_shstrndx = static_cast<uint16_t>(sh.size() - 1);
	put_at(f, 0, eh);
	Elf64_Phdr load{};
	load.p_type = PT_LOAD;
	load.p_flags = PF_R | PF_W | PF_X;
	load.p_vaddr = load.p_paddr = kVaddr;
	load.p_filesz = load.p_memsz = f.size();
	load.p_align = 0x1000;
	Elf64_Phdr dynamic{};
	dynamic.p_type = PT_DYNAMIC;
	dynamic.p_flags = PF_R | PF_W;
	dynamic.p_offset = dyn_at;
	dynamic.p_vaddr = dynamic.p_paddr = kVaddr + dyn_at;
	dynamic.p_filesz = dynamic.p_memsz = dyn.size();
	dynamic.p_align = 8;
	put_at(f, sizeof(Elf64_Ehdr), load);
	put_at(f, sizeof(Elf64_Ehdr) + sizeof(Elf64_Phdr), dynamic);
	return f;
}

void elf_seeds()
{
	Bytes elf = small_elf();
	for (uint8_t which : {0, 1}) {
		Bytes b{which};
		put<uint32_t>(b, 0x40);
		b.insert(b.end(), elf.begin(), elf.end());
		write("fuzz_elf", which ? "libpython" : "plain", b);
	}
}

// --- text, options, /proc, the unwinder ----------------------------------------
void text_seeds()
{
	auto seed = [](const char *name, uint16_t max, uint16_t part, uint32_t length,
		       const std::string &s) {
		Bytes b;
		put(b, max);
		put(b, part);
		put(b, length);
		put_str(b, s);
		write("fuzz_text", name, b);
	};
	seed("ascii", 4096, 64, 5, "python3 /srv/app.py --flag\n");
	seed("controls", 16, 16, 3, "a\nb\x1b[2Jc\x7f\xc2\x85\xe2\x80\xae\xf4\x8f\xbf\xbf\\x");
	seed("utf8", 8, 20, 2, "\xc3\xa9t\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80 \xed\xa0\x80 \xc0\xaf");
	std::string lines;
	for (int i = 0; i < 20; i++)
		lines += "  File \"/srv/app.py\", line " + std::to_string(i) + " in f\n\n";
	seed("lines", 200, 100, 1000, lines);
}

void options_seeds()
{
	auto seed = [](const char *name, const std::vector<std::string> &args) {
		Bytes b;
		for (size_t i = 0; i < args.size(); i++) {
			if (i)
				b.push_back(0);
			put_str(b, args[i]);
		}
		write("fuzz_options", name, b);
	};
	seed("pid", {"-p", "1234", "--stack-size", "64K", "--max-threads", "8", "-v"});
	seed("agent", {"-a", "--comm", "python3,bash", "--exclude-comm", "sshd", "--uid", "root",
		       "--cgroup", "/system.slice", "--rate-limit", "5/60", "--process-rate-limit", "2"});
	seed("timeout", {"--pid", "42", "--timeout", "0.5", "--repeat", "--exit", "--signal", "SIGUSR2",
			 "--signals", "SIGTERM,SIGHUP", "--handled"});
	seed("sinks", {"-a", "--log-dir", "/var/log/fh", "--log-keep", "10", "--log-max-size", "1M",
		       "--syslog", "--syslog-max-size", "16K", "--format", "json", "-o", "out.txt"});
	seed("launch", {"--no-signal", "--ready-fd", "3", "--", "python3", "-c", "pass"});
	seed("dump", {"--dump", "-p", "7"});
}

void proc_seeds()
{
	Bytes maps{1};
	put_str(maps, "55d0c0a00000-55d0c0a21000 r--p 00000000 08:01 1835041 /usr/bin/python3.11\n"
		      "55d0c0a21000-55d0c0c00000 r-xp 00021000 08:01 1835041 /usr/bin/python3.11\n"
		      "7f1c2e000000-7f1c2e021000 rw-p 00000000 00:00 0 \n"
		      "7f1c2e400000-7f1c2e5d5000 r-xp 00028000 08:01 1837123 /usr/lib/x86_64-linux-gnu/libc.so.6\n"
		      "7f1c2e600000-7f1c2e601000 r-xp 00000000 00:2a 77 /tmp/a\\012b (deleted)\n"
		      "7ffd3a1e6000-7ffd3a1e8000 r-xp 00000000 00:00 0                          [vdso]\n");
	write("fuzz_proc", "maps", maps);

	// A comm with a space and a parenthesis: the last ')' ends it.
	Bytes stat{2};
	put_str(stat, "1234 (a) b) S 1 1234 1234 0 -1 4194560 100 0 0 0");
	stat.push_back(0);
	put_str(stat, "Name:\ta) b\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t1234\nPid:\t1234\n");
	write("fuzz_proc", "stat", stat);

	Bytes recs{0};
	auto mmap2 = [&](uint64_t addr, uint64_t len, const std::string &path) {
		Bytes r;
		perf_event_header h{};
		h.type = PERF_RECORD_MMAP2;
		size_t name_len = (path.size() + 8) & ~size_t{7};
		h.size = static_cast<uint16_t>(sizeof(h) + 4 * 2 + 8 * 3 + 4 * 2 + 8 * 2 + 4 * 2 + name_len + 8);
		put(r, h);
		put<uint32_t>(r, 4242);
		put<uint32_t>(r, 4242);
		put<uint64_t>(r, addr);
		put<uint64_t>(r, len);
		put<uint64_t>(r, 0x1000);
		put<uint32_t>(r, 8);
		put<uint32_t>(r, 1);
		put<uint64_t>(r, 1835041);
		put<uint64_t>(r, 0);
		put<uint32_t>(r, 5); // PROT_READ | PROT_EXEC
		put<uint32_t>(r, 2); // MAP_PRIVATE
		put_str(r, path);
		r.resize(r.size() + name_len - path.size());
		put<uint64_t>(r, 123456789); // the time
		put<uint16_t>(recs, static_cast<uint16_t>(r.size()));
		recs.insert(recs.end(), r.begin(), r.end());
	};
	mmap2(0x400000, 0x10000, "/usr/bin/python3.11");
	mmap2(0x404000, 0x1000, "//anon");
	mmap2(0x408000, 0x20000, "/usr/lib/libpython3.11.so.1.0");
	Bytes comm;
	perf_event_header h{};
	h.type = PERF_RECORD_COMM;
	h.misc = PERF_RECORD_MISC_COMM_EXEC;
	h.size = sizeof(h) + 8 + 16 + 8;
	put(comm, h);
	put<uint32_t>(comm, 4242);
	put<uint32_t>(comm, 4242);
	put_str(comm, "python3");
	comm.resize(comm.size() + 9 + 8);
	put<uint16_t>(recs, static_cast<uint16_t>(comm.size()));
	recs.insert(recs.end(), comm.begin(), comm.end());
	write("fuzz_proc", "perf", recs);
}

void unwinder_seeds()
{
	// rip in the first executable mapping, rsp and rbp at the stack copy,
	// a stack of return addresses into the mappings and saved frame
	// pointers.
	Bytes b;
	for (int r = 0; r < kNrRegs; r++)
		put<uint64_t>(b, r == 16 ? 0xfe00000000001000ull
			      : r == 7 ? 0xfd00000000000000ull
			      : r == 6 ? 0xfd00000000000010ull
				       : 0);
	put<uint32_t>(b, 0);
	for (int i = 0; i < 32; i++)
		put<uint64_t>(b, i % 2 ? 0xfe00000000000000ull | static_cast<uint64_t>(i) << 48 | 0x2000 * i
				       : 0xfd00000000000000ull | static_cast<uint64_t>(16 * (i + 2)));
	write("fuzz_unwinder", "frames", b);
}

} // namespace

int main(int argc, char **argv)
{
	if (argc != 2) {
		std::fprintf(stderr, "usage: make-seeds DIR\n");
		return 2;
	}
	out_dir = argv[1];
	linetable_seeds();
	records_seeds();
	for (int minor = 6; minor <= 12; minor++)
		py_walk_seed(minor);
	py_walk_debug_seed();
	elf_seeds();
	text_seeds();
	options_seeds();
	proc_seeds();
	unwinder_seeds();
	return 0;
}
