// Where an incident goes, the same in every mode: the headline, the text,
// the losses; and what happens when the output cannot take it.
#include <catch2/catch.hpp>

#include "harness.h"
#include "support.h"

#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>

using namespace fhtest;

namespace {

// A tmpfs of 64 KiB, filled to the last byte: a file can be created in it,
// but no byte written.
struct FullDisk {
	std::string dir = temp_path("full");
	FullDisk()
	{
		REQUIRE(mkdir(dir.c_str(), 0700) == 0);
		REQUIRE(mount("tmpfs", dir.c_str(), "tmpfs", 0, "size=64k,mode=0700") == 0);
		std::ofstream fill(dir + "/fill", std::ios::binary);
		std::string block(4096, 'x');
		for (int i = 0; i < 64 && fill.write(block.data(), block.size()); i++)
			fill.flush();
	}
	~FullDisk()
	{
		umount2(dir.c_str(), MNT_DETACH);
		rmdir(dir.c_str());
	}
};

} // namespace

TEST_CASE("an output that cannot take the incident: said on stderr with the headline, "
	  "counted, exit status 1",
	  "[e2e][outputs]")
{
	FullDisk disk;
	Target target("wait", 3);
	std::string out = disk.dir + "/out.txt", err = temp_path("err.txt");
	SpawnOptions o;
	o.stderr_path = err;
	pid_t fh = spawn({fh_bpf_path(), "-p", std::to_string(target.pid()), "--dump", "-o", out}, o);
	auto st = wait_exit(fh, kGuardMs);
	REQUIRE(st);
	std::string diag = read_file(err);
	unlink(err.c_str());
	INFO("diagnostics:\n" << diag);
	REQUIRE(WIFEXITED(*st));
	CHECK(WEXITSTATUS(*st) == 1);
	std::string pid = std::to_string(target.pid());
	// The incident is named, the failure said, and nothing else is lost.
	CHECK(diag.rfind("fh-bpf: pid " + pid + " (crash): dump on demand, 3 threads\n", 0) == 0);
	CHECK(contains(diag, out));
	CHECK(contains(diag, "No space left on device"));
	CHECK(kill(target.pid(), 0) == 0);
}

TEST_CASE("-p: the output holds faulthandler's text alone; -v adds the headline and details",
	  "[e2e][outputs]")
{
	for (bool verbose : {false, true}) {
		Target target("segv", 2);
		std::vector<std::string> extra;
		if (verbose)
			extra.push_back("-v");
		Watcher watcher(target.pid(), extra);
		target.go();
		target.wait();
		REQUIRE(watcher.wait() == 3);
		std::string pid = std::to_string(target.pid());
		std::string head = "fh-bpf: pid " + pid + " (crash), thread " + pid +
				   " (crash): SIGSEGV (SEGV_MAPERR) at address 0x0\n";
		std::string text = watcher.output();
		INFO(text);
		CHECK(contains(watcher.diagnostics(), head));
		if (verbose) {
			CHECK(text.rfind(head, 0) == 0);
			CHECK(contains(text, "fh-bpf: timing: pid " + pid + ", 2 threads"));
		} else {
			CHECK(text.rfind("Fatal error: Segmentation fault\n\nCurrent thread 0x", 0) == 0);
			CHECK_FALSE(contains(text, "fh-bpf:"));
		}
	}
}

TEST_CASE("every mode names a kernel sender: the OOM killer under launch mode", "[e2e][outputs]")
{
	MemoryCgroup cg("fh-bpf-oom-launch", 32 << 20);
	std::vector<std::string> args = {"--signals", "SIGKILL", "--format", "json", "--"};
	for (const auto &a : cg.memory_hog())
		args.push_back(a);
	Watcher watcher(0, args);
	int status = watcher.wait();
	CHECK(status == 128 + SIGKILL); // the command's status
	std::string json = watcher.output();
	INFO(watcher.diagnostics() << json);
	REQUIRE(json.find('\n') == json.size() - 1); // one incident
	CHECK(python_json(json, "d['signal']['name']") == "'SIGKILL'");
	CHECK(python_json(json, "d['sender']['kernel']") == "True");
	CHECK(python_json(json, "d['sender']['cause']") == "'the OOM killer'");
	CHECK(python_json(json, "'oom_kill_process' in d['sender']['function']") == "True");
	CHECK(contains(watcher.diagnostics(), "oom_kill_process): the OOM killer"));
}
