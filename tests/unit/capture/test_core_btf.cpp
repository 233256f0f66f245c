// The kept kernel types (capture/core_btf.h): made by bpftool from the
// programs fh-bpf carries, found again for the same kernel and programs
// only, never when the file is not what fh-bpf wrote, and the types the
// programs relocate against are in it.
#include <catch2/catch.hpp>

#include "capture/core_btf.h"
#include "support.h"

#include <bpf/btf.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <string>

#include <linux/types.h>

extern "C" {
#include "fh/counters.h"
#include "fh/live.h"
#include "fh/python.h"
#include "fh/records.h"
}
#include "fh.skel.h"

using namespace fh;
using namespace fhtest;

TEST_CASE("the kernel types the programs need: made once, found for the same programs only",
	  "[corebtf]")
{
	std::string dir = temp_path("corebtf");
	size_t size = 0;
	const void *object = fh_bpf::elf_bytes(&size);
	REQUIRE(size > 0);
	CoreBtf kept(dir);
	UniqueFd fd;
	CHECK(kept.find(object, size, &fd).empty());
	REQUIRE(kept.make(object, size, false));

	std::string path = kept.find(object, size, &fd);
	REQUIRE_FALSE(path.empty());
	struct btf *btf = btf__parse_raw(path.c_str());
	REQUIRE(btf);
	CHECK(btf__find_by_name_kind(btf, "task_struct", BTF_KIND_STRUCT) > 0);
	CHECK(btf__find_by_name_kind(btf, "pt_regs", BTF_KIND_STRUCT) > 0);
	CHECK(btf__type_cnt(btf) < 1000); // not the kernel's 100,000 and more
	btf__free(btf);

	// Other programs (a byte changed): another name, none there.
	std::string other(static_cast<const char *>(object), size);
	other[size / 2] ^= 1;
	UniqueFd fd2;
	CHECK(kept.find(other.data(), other.size(), &fd2).empty());

	// The file, altered: never used.
	std::vector<std::string> names = files_in(dir + "/btf");
	REQUIRE(names.size() == 1);
	std::string file = dir + "/btf/" + names[0];
	fd = UniqueFd();
	SECTION("readable by others")
	{
		REQUIRE(chmod(file.c_str(), 0644) == 0);
		CHECK(kept.find(object, size, &fd).empty());
	}
	SECTION("a second name")
	{
		REQUIRE(link(file.c_str(), (dir + "/second").c_str()) == 0);
		CHECK(kept.find(object, size, &fd).empty());
	}
	SECTION("not a BTF")
	{
		std::ofstream(file, std::ios::trunc) << "not a BTF";
		CHECK(kept.find(object, size, &fd).empty());
	}
	SECTION("forgotten")
	{
		kept.forget(object, size);
		CHECK(files_in(dir + "/btf").empty());
	}
	remove_dir(dir);
}
