// The symbolizer on the test build's fixture binaries with calls inlined
// three and more levels deep (tests/targets/inline_chain.c, cxx_inline.cpp,
// -O2 -g): at every byte of the functions they are inlined into, the chain
// of frames equals eu-addr2line -i's (elfutils, the convention of eu-stack
// -i: names and lines) and binutils addr2line -i's (an independent DWARF
// reader: files and lines).  And the unwinder on a stack copied from above
// an unreadable stack pointer (a stack overflow's guard page).
#include <catch2/catch.hpp>

#include "process/elf_file.h"
#include "process/mappings.h"
#include "process/perf_records.h"
#include "support.h"
#include "symbolize/unwinder.h"

#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <climits>
#include <map>
#include <regex>
#include <sstream>

using namespace fh;
using namespace fhtest;

namespace {

constexpr uint64_t kBase = 0x555500000000;

// A binary of the test build mapped (on paper) at kBase, as a process would
// map it, and an unwinder over that mapping.
struct MappedBinary {
	std::string path;
	Unwinder uw{getpid()};
	// Symbols by raw name: link-time address and size (nm -S).
	std::map<std::string, std::pair<uint64_t, uint64_t>> symbols;

	explicit MappedBinary(const std::string &name)
	{
		// Absolute, as /proc/PID/maps names files.
		char real[PATH_MAX];
		REQUIRE(realpath((build_dir() + "/targets/" + name).c_str(), real));
		path = real;
		struct stat st;
		REQUIRE(stat(path.c_str(), &st) == 0);
		auto elf = ElfFile::open(path);
		REQUIRE(elf);
		std::vector<Mapping> maps;
		for (const auto &l : elf->loads()) {
			FileMapping m;
			m.start = kBase + (l.vaddr & ~0xfffull);
			m.end = kBase + ((l.vaddr + l.memsz + 0xfff) & ~0xfffull);
			m.pgoff = l.offset & ~0xfffull;
			m.prot = (l.flags & 4 ? PROT_READ : 0) | (l.flags & 1 ? PROT_EXEC : 0);
			m.maj = major(st.st_dev);
			m.min = minor(st.st_dev);
			m.ino = st.st_ino;
			maps.push_back(as_mapping(m, path));
		}
		uw.report_maps(MappingSet(std::move(maps)));
		std::istringstream nm(run_capture({"/usr/bin/nm", "-S", path}));
		std::string line;
		while (std::getline(nm, line)) {
			std::istringstream f(line);
			std::string addr, size, type, sym;
			if (f >> addr >> size >> type >> sym)
				symbols[sym] = {std::stoull(addr, nullptr, 16), std::stoull(size, nullptr, 16)};
		}
	}

	// The symbol whose raw name holds `part`.
	std::pair<uint64_t, uint64_t> symbol_with(const std::string &part) const
	{
		for (const auto &[name, where] : symbols)
			if (name.find(part) != std::string::npos)
				return where;
		FAIL("no symbol with " << part << " in " << path);
		return {};
	}
};

struct Frame {
	std::string function; // empty: not compared
	std::string file;     // base name
	int line = 0;
	bool operator==(const Frame &o) const
	{
		return function == o.function && file == o.file && line == o.line;
	}
};

std::ostream &operator<<(std::ostream &os, const Frame &f)
{
	return os << f.function << " " << f.file << ":" << f.line;
}

std::string base_name(const std::string &path) { return path.substr(path.rfind('/') + 1); }

// `TOOL -a -i -f -C -e BINARY ADDR...`: each address's frames, innermost
// first.  eu-addr2line writes the innermost as "NAME inlined at ... in
// OUTER"; both write a frame's source as FILE:LINE[:COLUMN].
std::map<uint64_t, std::vector<Frame>> addr2line(const std::string &tool, const std::string &binary,
						 const std::vector<uint64_t> &addrs)
{
	std::vector<std::string> argv = {tool, "-a", "-i", "-f", "-C", "-e", binary};
	for (uint64_t a : addrs) {
		std::ostringstream hex;
		hex << "0x" << std::hex << a;
		argv.push_back(hex.str());
	}
	static const std::regex addr_re(R"(^0x([0-9a-f]+)$)");
	static const std::regex src_re(R"(^(.*?):(\d+)(:\d+)?( \(discriminator \d+\))?$)");
	std::map<uint64_t, std::vector<Frame>> out;
	std::istringstream in(run_capture(argv));
	std::string line, name;
	uint64_t cur = 0;
	while (std::getline(in, line)) {
		std::smatch m;
		if (std::regex_match(line, m, addr_re)) {
			cur = std::stoull(m[1], nullptr, 16);
			out[cur];
			continue;
		}
		name = line.substr(0, line.find(" inlined at "));
		REQUIRE(std::getline(in, line));
		Frame f{name, "?", 0};
		if (std::regex_match(line, m, src_re)) {
			f.file = base_name(m[1]);
			f.line = std::stoi(m[2]);
		}
		out[cur].push_back(f);
	}
	return out;
}

// Every byte of each function: ours against both oracles.  Returns the
// deepest chain seen.
size_t check_functions(MappedBinary &bin, const std::vector<std::string> &functions)
{
	std::vector<uint64_t> addrs;
	for (const auto &fn : functions) {
		auto [start, size] = bin.symbol_with(fn);
		REQUIRE(size > 0);
		for (uint64_t a = start; a < start + size; a++)
			addrs.push_back(a);
	}
	auto eu = addr2line("/usr/bin/eu-addr2line", bin.path, addrs);
	auto gnu = addr2line("/usr/bin/addr2line", bin.path, addrs);
	size_t deepest = 0;
	for (uint64_t a : addrs) {
		std::vector<Frame> ours, ours_lines, gnu_lines;
		for (const auto &f : bin.uw.symbolize(kBase + a, false)) {
			ours.push_back({f.function, base_name(f.file), f.line});
			ours_lines.push_back({"", base_name(f.file), f.line});
		}
		for (const auto &f : gnu[a])
			gnu_lines.push_back({"", f.file, f.line});
		INFO("address 0x" << std::hex << a);
		CHECK(ours == eu[a]);
		CHECK(ours_lines == gnu_lines);
		deepest = std::max(deepest, ours.size());
	}
	return deepest;
}

} // namespace

TEST_CASE("inlined calls at every depth, C: the chains of eu-addr2line -i and addr2line -i",
	  "[symbolizer][inlines]")
{
	MappedBinary bin("inline_chain");
	// store_cell <- fill_row <- fill_table <- update; read_one <- next_byte
	// <- drain <- reader_main; sleep_on <- hold <- keep_waiting <- waiter_main.
	CHECK(check_functions(bin, {"update", "reader_main", "waiter_main"}) >= 4);

	// The faulting store (the second of two, to rows[2]): every level
	// named, each at its caller's line.
	auto mark = markers(source_dir() + "/tests/targets/inline_chain.c");
	auto [start, size] = bin.symbol_with("update");
	std::vector<NativeFrame> frames;
	for (uint64_t a = start; a < start + size; a++) {
		auto f = bin.uw.symbolize(kBase + a, false);
		if (f.size() == 4 && f[0].line == mark.at("c_store"))
			frames = f; // the last store wins
	}
	bool seen = !frames.empty();
	if (seen) {
		CHECK(frames[0].function == "store_cell");
		CHECK(frames[1].function == "fill_row");
		CHECK(frames[1].line == mark.at("c_row"));
		CHECK(frames[2].function == "fill_table");
		CHECK(frames[2].line == mark.at("c_table"));
		CHECK(frames[3].function == "update");
		CHECK(frames[3].line == mark.at("c_update"));
		CHECK_FALSE(frames[3].inlined);
		for (int i = 0; i < 3; i++)
			CHECK(frames[i].inlined);
	}
	CHECK(seen);
}

TEST_CASE("inlined calls at every depth, C++: templates, a lambda, std::function, libstdc++'s "
	  "mutex",
	  "[symbolizer][inlines]")
{
	MappedBinary bin("cxx_inline");
	// Table::lookup <- the lambda <- __invoke_impl <- __invoke_r <-
	// _M_invoke; lock_guard <- mutex::lock <- __gthread_mutex_lock in
	// locker_main; Source::next <- Source::drain in reader_main.
	CHECK(check_functions(bin, {"_M_invoke", "locker_main", "reader_main", "run_job"}) >= 5);
}

TEST_CASE("unwinder: a stack copied from above an unreadable stack pointer", "[symbolizer]")
{
	// The overflow target's dive_a at its first instruction: its return
	// address is at sp.
	MappedBinary bin("overflow");
	uint64_t dive_a = kBase + bin.symbol_with("dive_a").first;
	ThreadCapture t;
	t.tid = static_cast<uint32_t>(getpid());
	t.regs[16] = dive_a;
	t.stack.assign(4096, 0);

	SECTION("sp readable: the frame, then the end of the stack (a zero return address)")
	{
		t.regs[7] = t.stack_addr = 0x7ffc00001000;
		auto res = bin.uw.unwind(t, 100);
		REQUIRE(res.frames.size() == 1);
		CHECK(res.frames[0].function == "dive_a");
		CHECK_FALSE(res.truncated);
	}
	SECTION("sp in the page below the copy: the return address is there, older frames are cut")
	{
		t.stack_addr = 0x7ffc00001000;
		t.regs[7] = t.stack_addr - 0x40;
		auto res = bin.uw.unwind(t, 100);
		REQUIRE(res.frames.size() == 1);
		CHECK(res.frames[0].function == "dive_a");
		CHECK(res.truncated);
	}
}
