// The symbolizer on the fixture binary the test build makes
// (tests/targets/crash.c, -O2 -fomit-frame-pointer -g), mapped by a child
// of the test: functions, source lines and inlined frames from DWARF; where
// separate debug files are looked for, and how maps paths are read.
#include <catch2/catch.hpp>

#include "process/elf_file.h"
#include "process/mappings.h"
#include "process/perf_records.h"
#include "support.h"
#include "report/text.h"
#include "symbolize/unwinder.h"

#include <dlfcn.h>
#include <elfutils/libdw.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include <climits>

#include <sstream>

using namespace fh;
using namespace fhtest;

namespace {

struct Fixture {
	pid_t pid = -1;
	uint64_t base = 0;
	std::string path;
	MappingSet maps;
	std::map<std::string, uint64_t> symbols;

	Fixture()
	{
		path = build_dir() + "/targets/crash";
		Pipe out;
		SpawnOptions o;
		o.fds = {{1, out.write}};
		pid = spawn({path, "--auto", "--threads", "2", "wait"}, o);
		out.close_write();
		// The target prints its threads, then "ready", once parked.
		for (;;) {
			auto line = read_line(out.read, 30000);
			REQUIRE(line);
			if (*line == "ready")
				break;
		}
		maps = read_maps(pid);
		char real[4096];
		std::string resolved = realpath(path.c_str(), real) ? real : path;
		for (const auto &m : maps)
			if (m.path.find(resolved) != std::string::npos && base == 0)
				base = m.start;
		std::string line;
		std::istringstream nm(run_capture({"/usr/bin/nm", path}));
		while (std::getline(nm, line)) {
			std::istringstream f(line);
			std::string addr, type, name;
			if (f >> addr >> type >> name)
				symbols[name] = std::stoull(addr, nullptr, 16);
		}
	}
	~Fixture()
	{
		kill(pid, SIGKILL);
		waitpid(pid, nullptr, 0);
	}
	uint64_t addr(const std::string &sym) { return base + symbols.at(sym); }
};

} // namespace

TEST_CASE("symbolizer: functions, lines and inlined frames from DWARF", "[symbolizer]")
{
	Fixture fx;
	REQUIRE(fx.base != 0);
	auto mark = markers(source_dir() + "/tests/targets/crash.c");
	Unwinder uw(fx.pid);
	uw.report_maps(fx.maps);
	uw.prewarm();
	REQUIRE(uw.module_count() >= 2);

	SECTION("the faulting store: poke() inlined into crash_leaf()")
	{
		auto frames = uw.symbolize(fx.addr("crash_leaf"), false);
		REQUIRE(frames.size() == 2);
		CHECK(frames[0].function == "poke");
		CHECK(frames[0].inlined);
		CHECK(frames[0].line == mark.at("poke"));
		CHECK(frames[1].function == "crash_leaf");
		CHECK_FALSE(frames[1].inlined);
		CHECK(frames[1].line == mark.at("leaf"));
		CHECK(frames[1].file.find("tests/targets/crash.c") != std::string::npos);
		CHECK(frames[1].file[0] == '/');
	}
	SECTION("a return address is looked up at the call")
	{
		auto at_start = uw.symbolize(fx.addr("crash_mid"), false);
		REQUIRE(!at_start.empty());
		CHECK(at_start.back().function == "crash_mid");
		// Just past the start of crash_leaf, pc - 1 is still in crash_leaf.
		auto ret = uw.symbolize(fx.addr("crash_leaf") + 1, true);
		CHECK(ret.back().function == "crash_leaf");
	}
	SECTION("code without debug information prints as a binary offset")
	{
		auto frames = uw.symbolize(fx.addr("_start"), false);
		REQUIRE(frames.size() == 1);
		CHECK(frames[0].function == "_start");
		CHECK(frames[0].line == 0);
		CHECK(frames[0].file.empty());
		CHECK(frames[0].module.find("targets/crash") != std::string::npos);
		CHECK(render_frame(frames[0]).rfind("  Binary file \"", 0) == 0);
	}
	SECTION("an unmapped address is unknown, not dropped")
	{
		auto frames = uw.symbolize(0x10, false);
		REQUIRE(frames.size() == 1);
		CHECK(frames[0].module.empty());
		CHECK(render_frame(frames[0]) == "  Binary file '<unknown>' [0x10]\n");
	}
	SECTION("main resolves by name")
	{
		auto frames = uw.symbolize(fx.addr("main"), false);
		CHECK(frames.back().function == "main");
	}
}

TEST_CASE("unwinder: garbage registers and stack give unknown frames, never a crash",
	  "[symbolizer]")
{
	Fixture fx;
	Unwinder uw(fx.pid);
	uw.report_maps(fx.maps);

	ThreadCapture t;
	t.tid = static_cast<uint32_t>(fx.pid);
	t.regs.fill(0x4141414141414141ull);
	t.regs[16] = fx.addr("crash_leaf");
	t.regs[7] = 0x7ffc00001000;
	t.stack_addr = 0x7ffc00001000;
	t.stack.assign(4096, 0x41);
	auto res = uw.unwind(t, 100);
	REQUIRE(!res.frames.empty());
	CHECK(res.frames.size() <= 100);
	CHECK(res.frames[0].function == "poke");

	ThreadCapture empty;
	empty.tid = static_cast<uint32_t>(fx.pid);
	auto none = uw.unwind(empty, 100);
	CHECK(none.frames.size() <= 1);
}

TEST_CASE("separate debug files: looked for by build id and a plain debuglink name in "
	  "/usr/lib/debug only, each checked",
	  "[symbolizer][debuglink]")
{
	// Where: a debuglink is a name, not a path; an altlink stays inside.
	CHECK(debuglink_path("/opt/app/lib.so", "lib.so.debug") ==
	      "/usr/lib/debug/opt/app/lib.so.debug");
	for (const char *bad : {"../../../../tmp/x/fifo", "/tmp/x/fifo", "sub/name", ".", "..", ""})
		CHECK(debuglink_path("/opt/app/lib.so", bad).empty());
	CHECK(debuglink_path("/opt/../../tmp/lib.so", "x.debug").empty()); // stays inside
	CHECK(altlink_path("/usr/lib/debug/.build-id/ab/cd.debug", "../../.dwz/x.debug") ==
	      "/usr/lib/debug/.dwz/x.debug");
	CHECK(altlink_path("/x", "/usr/lib/debug/.dwz/x.debug") == "/usr/lib/debug/.dwz/x.debug");
	CHECK(altlink_path("/usr/lib/debug/a.debug", "../../../tmp/fifo").empty());
	CHECK(altlink_path("/x", "/tmp/fifo").empty());
	CHECK(build_id_debug_path(std::string("\xab\xcd\xef", 3)) ==
	      "/usr/lib/debug/.build-id/ab/cdef.debug");
	CHECK(build_id_debug_path("").empty());

	// What: the module's build id, else the debuglink's CRC; a FIFO or a
	// file that is neither is passed over, never waited on.
	std::string dir = temp_path("debug-files");
	REQUIRE(mkdir(dir.c_str(), 0700) == 0);
	std::string fifo = dir + "/fifo", crash = build_dir() + "/targets/crash";
	REQUIRE(mkfifo(fifo.c_str(), 0600) == 0);
	std::string id_hex = run_capture({"/bin/sh", "-c",
					  "readelf -n " + crash + " | sed -n 's/.*Build ID: //p'"});
	id_hex = id_hex.substr(0, id_hex.find('\n'));
	REQUIRE(id_hex.size() >= 4);
	std::string id;
	for (size_t i = 0; i + 1 < id_hex.size(); i += 2)
		id += static_cast<char>(std::stoi(id_hex.substr(i, 2), nullptr, 16));
	std::string bytes = read_file(crash);
	uint32_t crc = static_cast<uint32_t>(
		crc32(0, reinterpret_cast<const Bytef *>(bytes.data()), static_cast<uInt>(bytes.size())));
	std::string found;
	DebugFileCheck by_id{id, std::nullopt};
	int fd = open_debug_file({fifo, "/proc/self/exe", crash}, by_id, &found);
	CHECK(fd >= 0);
	CHECK(found == crash);
	close(fd);
	DebugFileCheck by_crc{"", crc};
	fd = open_debug_file({fifo, "/proc/self/exe", crash}, by_crc, &found);
	CHECK(fd >= 0);
	close(fd);
	DebugFileCheck wrong{"", crc + 1};
	CHECK(open_debug_file({fifo, crash}, wrong, &found) < 0);
	CHECK(open_debug_file({crash}, DebugFileCheck{}, &found) < 0); // nothing to check by
	unlink(fifo.c_str());
	rmdir(dir.c_str());
}

TEST_CASE("libdw honours the mark for a supplementary DWARF file looked for and not found",
	  "[symbolizer][debuglink]")
{
	// The unwinder sets it so that libdw never opens a .gnu_debugaltlink's
	// name itself: dwarf_getalt must then give nothing.
	int fd = open((build_dir() + "/targets/crash").c_str(), O_RDONLY | O_CLOEXEC);
	REQUIRE(fd >= 0);
	Dwarf *dw = dwarf_begin(fd, DWARF_C_READ);
	REQUIRE(dw);
	dwarf_setalt(dw, reinterpret_cast<Dwarf *>(-1));
	CHECK(dwarf_getalt(dw) == nullptr);
	dwarf_end(dw);
	close(fd);
}

TEST_CASE("maps paths: a newline, escaped as the kernel does, is read back", "[symbolizer]")
{
	CHECK(decode_maps_path("/tmp/a\\012b/crash") == "/tmp/a\nb/crash");
	CHECK(decode_maps_path("/tmp/a\\\\b\\01") == "/tmp/a\\\\b\\01");
	MappingSet maps = parse_maps("1000-2000 r-xp 00000000 00:00 0 /tmp/two\\012lines/crash\n");
	REQUIRE(maps.size() == 1);
	CHECK(maps.segments()[0].path == "/tmp/two\nlines/crash");
}

TEST_CASE("a file whose name holds a newline is symbolized", "[symbolizer]")
{
	// libdw reads the mappings a line at a time: the name must reach it
	// escaped, and its file be found under its real name.
	std::string dir = temp_path("two\nlines");
	REQUIRE(mkdir(dir.c_str(), 0700) == 0);
	std::string copy = dir + "/crash";
	run_capture({"/bin/cp", build_dir() + "/targets/crash", copy});
	struct stat st;
	REQUIRE(stat(copy.c_str(), &st) == 0);
	auto elf = ElfFile::open(copy);
	REQUIRE(elf);
	auto main_sym = elf->symbol("main");
	REQUIRE(main_sym);
	const uint64_t base = 0x555500000000;
	std::vector<Mapping> maps;
	for (const auto &l : elf->loads()) {
		FileMapping m;
		m.start = base + (l.vaddr & ~0xfffull);
		m.end = base + ((l.vaddr + l.memsz + 0xfff) & ~0xfffull);
		m.pgoff = l.offset & ~0xfffull;
		m.prot = (l.flags & 4 ? PROT_READ : 0) | (l.flags & 1 ? PROT_EXEC : 0);
		m.maj = major(st.st_dev);
		m.min = minor(st.st_dev);
		m.ino = st.st_ino;
		maps.push_back(as_mapping(m, copy));
	}
	Unwinder uw(getpid());
	uw.report_maps(MappingSet(std::move(maps)));
	auto frames = uw.symbolize(base + main_sym->value + 1, false);
	unlink(copy.c_str());
	rmdir(dir.c_str());
	REQUIRE_FALSE(frames.empty());
	CHECK(frames.back().function == "main");
	// Named as /proc names it: a traceback holds no newline of a name.
	CHECK(frames.back().module == dir.substr(0, dir.find('\n')) + "\\012lines/crash");
}

TEST_CASE("separate debug files: libc's DWARF is found by its build id", "[symbolizer][debuglink]")
{
	// libc6-dbg (a documented dependency) puts it under
	// /usr/lib/debug/.build-id: libc's functions get their source lines.
	void *fn = dlsym(RTLD_DEFAULT, "clock_nanosleep");
	REQUIRE(fn);
	Unwinder uw(getpid());
	uw.report_maps(read_maps(getpid()));
	auto frames = uw.symbolize(reinterpret_cast<uint64_t>(fn), false);
	REQUIRE_FALSE(frames.empty());
	INFO(frames.back().module << " " << frames.back().function);
	CHECK(frames.back().module.find("libc.so") != std::string::npos);
	CHECK(frames.back().function.find("clock_nanosleep") != std::string::npos);
	CHECK_FALSE(frames.back().file.empty());
	CHECK(frames.back().line > 0);
}

TEST_CASE("mapped files: only the file with the mapping's device and inode is opened",
	  "[symbolizer]")
{
	std::string crash = build_dir() + "/targets/crash";
	struct stat st;
	REQUIRE(stat(crash.c_str(), &st) == 0);
	FileIdentity right{static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino)};
	int fd = open_mapped_file(crash, right);
	CHECK(fd >= 0);
	close(fd);
	// Through a live process's root, as when its root is not held.
	char abs[PATH_MAX];
	REQUIRE(realpath(crash.c_str(), abs));
	fd = open_mapped_file("/proc/" + std::to_string(getpid()) + "/root" + abs, right);
	CHECK(fd >= 0);
	close(fd);
	for (FileIdentity wrong : {FileIdentity{right.dev, right.ino + 1},
				   FileIdentity{right.dev + 1, right.ino}}) {
		errno = 0;
		CHECK(open_mapped_file(crash, wrong) == -1);
		CHECK(errno == ESTALE);
	}
	struct stat seen;
	REQUIRE(stat_target_file(crash, &seen));
	CHECK(seen.st_ino == st.st_ino);
	std::string fifo = temp_path("fifo");
	REQUIRE(mkfifo(fifo.c_str(), 0600) == 0);
	CHECK_FALSE(stat_target_file(fifo, &seen)); // not a regular file: not looked at
	unlink(fifo.c_str());
}
