// The symbolizer on the fixture binary the test build makes
// (tests/targets/crash.c, -O2 -fomit-frame-pointer -g), mapped by a child
// of the test: functions, source lines and inlined frames from DWARF.
#include <catch2/catch.hpp>

#include "proc.h"
#include "support.h"
#include "unwinder.h"

#include <signal.h>
#include <sys/wait.h>

#include <sstream>

using namespace fh;
using namespace fhtest;

namespace {

struct Fixture {
	pid_t pid = -1;
	uint64_t base = 0;
	std::string path;
	std::string maps;
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
		std::istringstream lines(maps);
		std::string line;
		char real[4096];
		std::string resolved = realpath(path.c_str(), real) ? real : path;
		while (std::getline(lines, line))
			if (line.find(resolved) != std::string::npos && base == 0)
				base = std::stoull(line.substr(0, line.find('-')), nullptr, 16);
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
