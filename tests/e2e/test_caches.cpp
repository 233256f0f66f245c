// --cache-dir: what fh-bpf keeps for its next runs (the kernel types its
// programs need, debug files inflated) changes no frame.  A one-shot
// --dump of the same parked target, run after run: without the caches,
// making them, using them, and using them once they were tampered with,
// prints the same threads, and gdb (attached after, it stops the target)
// sees the same frames in crash.c.  libc's frames (libc6-dbg, whose DWARF
// is compressed) keep their files and lines.
#include <catch2/catch.hpp>

#include "harness.h"

#include <bpf/btf.h>

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>

using namespace fhtest;

namespace {

// One --dump: its text (fh-bpf's own lines left out).
std::string dump_with(pid_t pid, const std::string &cache)
{
	std::string out = temp_path("dump.txt");
	FhRun r = run_fh({"-p", std::to_string(pid), "--dump", "-o", out, "--cache-dir", cache});
	std::string text = read_file(out);
	unlink(out.c_str());
	INFO("diagnostics:\n" << r.err);
	CHECK(r.status == 0);
	return without_notes(text);
}

} // namespace

TEST_CASE("--cache-dir: kept kernel types and inflated debug files change no frame, tampered "
	  "ones are not used",
	  "[e2e][live][cache]")
{
	Target target("wait", 4);
	std::string cache = temp_path("cache");
	std::string plain = dump_with(target.pid(), "none");
	REQUIRE(contains(plain, "read.c\", line ")); // libc's frames have their lines

	std::string making = dump_with(target.pid(), cache);
	CHECK(making == plain);
	// Both kept, fh-bpf's alone.
	std::vector<std::string> btf = files_in(cache + "/btf");
	std::vector<std::string> debug = files_in(cache + "/debug");
	REQUIRE(btf.size() == 1);
	REQUIRE(debug.size() >= 1); // libc's, and the loader's
	struct stat st;
	REQUIRE(stat((cache + "/btf/" + btf[0]).c_str(), &st) == 0);
	CHECK((st.st_mode & 07777) == 0600);
	REQUIRE(stat(cache.c_str(), &st) == 0);
	CHECK((st.st_mode & 07777) == 0700);

	CHECK(dump_with(target.pid(), cache) == plain);

	// Another BTF under this one's name (the programs' types missing from
	// it): the load fails with it and is made again without; a right one
	// is made in its place.
	std::string kept = cache + "/btf/" + btf[0];
	{
		struct btf *wrong = btf__new_empty();
		REQUIRE(btf__add_int(wrong, "int", 4, BTF_INT_SIGNED) > 0);
		uint32_t size = 0;
		const void *raw = btf__raw_data(wrong, &size);
		std::ofstream(kept, std::ios::trunc | std::ios::binary)
			.write(static_cast<const char *>(raw), size);
		btf__free(wrong);
	}
	// An inflated debug file with another file's bytes: not used either.
	std::string libc_copy = cache + "/debug/" + debug[0];
	std::ofstream(libc_copy, std::ios::trunc | std::ios::binary) << "not an ELF";
	CHECK(dump_with(target.pid(), cache) == plain);
	struct btf *remade = btf__parse_raw(kept.c_str());
	REQUIRE(remade);
	CHECK(btf__find_by_name_kind(remade, "task_struct", BTF_KIND_STRUCT) > 0);
	btf__free(remade);

	// gdb, attached now, sees the same frames in crash.c.
	ParsedTraceback tb = parse_traceback(plain, false);
	auto gdb = gdb_frames_of(target.pid());
	REQUIRE(tb.threads.size() == 4);
	for (const auto &t : tb.threads) {
		auto it = gdb.find(t.pthread);
		REQUIRE(it != gdb.end());
		CHECK(frames_in(t.frames, "tests/targets/crash.c") == it->second);
	}
	remove_dir(cache);
}
