// A process's mappings as the stages hand them on: /proc/PID/maps read once
// (its padding, escapes and odd lines), the kernel's mapping records made
// the same segments, and what the set tells of them (its files, the
// executable, the segment at an address, a change).
#include <catch2/catch.hpp>

#include "process/mappings.h"
#include "process/perf_records.h"

#include <grp.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <climits>

using namespace fh;

namespace {

// As the kernel writes it: the path after padding to a column, a newline
// in a name as "\012", a file deleted since it was mapped marked so.
const char *const kMaps =
	"55d4a2a00000-55d4a2a02000 r--p 00000000 fd:01 1048602                    /usr/bin/app\n"
	"55d4a2a02000-55d4a2a05000 r-xp 00002000 fd:01 1048602                    /usr/bin/app\n"
	"55d4a3c00000-55d4a3c21000 rw-p 00000000 00:00 0                          [heap]\n"
	"7f1c2e400000-7f1c2e428000 r--p 00000000 fd:01 1055123                    "
	"/usr/lib/x86_64-linux-gnu/libc.so.6\n"
	"7f1c2e428000-7f1c2e5bd000 r-xp 00028000 fd:01 1055123                    "
	"/usr/lib/x86_64-linux-gnu/libc.so.6\n"
	"7f1c2e5bd000-7f1c2e5c0000 rw-p 00000000 00:00 0 \n"
	"7f1c2e600000-7f1c2e601000 r-xs 00001000 00:2a 77                         "
	"/tmp/a b\\012c (deleted)\n"
	"7ffd5a9e3000-7ffd5a9e5000 r-xp 00000000 00:00 0                          [vdso]\n";

} // namespace

TEST_CASE("maps text: every field, the padding, escapes and anonymous memory", "[process]")
{
	MappingSet maps = parse_maps(kMaps);
	REQUIRE(maps.size() == 8);
	const Mapping &exe_text = maps.segments()[1];
	CHECK(exe_text.start == 0x55d4a2a02000);
	CHECK(exe_text.end == 0x55d4a2a05000);
	CHECK(exe_text.offset == 0x2000);
	CHECK(exe_text.maj == 0xfd);
	CHECK(exe_text.min == 1);
	CHECK(exe_text.ino == 1048602);
	CHECK(exe_text.perms == "r-xp");
	CHECK(exe_text.path == "/usr/bin/app");
	CHECK(maps.segments()[2].path == "[heap]");
	CHECK_FALSE(maps.segments()[2].maps_file());
	CHECK(maps.segments()[5].path.empty()); // anonymous: nothing after the inode
	const Mapping &odd = maps.segments()[6];
	CHECK(odd.path == "/tmp/a b\nc (deleted)"); // the blank is the name's, not padding
	CHECK(odd.perms == "r-xs");
	CHECK(odd.maj == 0);
	CHECK(odd.min == 0x2a);
	CHECK(odd.ino == 77);
	CHECK(maps.segments()[7].path == "[vdso]");
	CHECK_FALSE(maps.segments()[7].maps_file());
}

TEST_CASE("maps text: lines that are not mappings are left out, the rest sorted", "[process]")
{
	MappingSet maps = parse_maps("garbage\n"
				     "\n"
				     "3000-4000 r--p 00000000 08:01 12 /lib/b.so\n"
				     "1000-2000 r--p 0\n" // no device, inode nor path
				     "5000-6000 r--p");	  // no offset: not a mapping
	REQUIRE(maps.size() == 2);
	CHECK(maps.segments()[0].start == 0x1000);
	CHECK(maps.segments()[0].ino == 0);
	CHECK(maps.segments()[0].path.empty());
	CHECK(maps.segments()[1].path == "/lib/b.so");
	CHECK(parse_maps("").empty());
}

TEST_CASE("mapping sets: files, the executable, the segment at an address", "[process]")
{
	MappingSet maps = parse_maps(kMaps);
	CHECK(maps.files() == std::vector<std::string>{"/usr/bin/app",
						       "/usr/lib/x86_64-linux-gnu/libc.so.6",
						       "/tmp/a b\nc (deleted)"});
	CHECK(maps.first_file() == "/usr/bin/app");
	CHECK(parse_maps("7ffd5a9e3000-7ffd5a9e5000 r-xp 00000000 00:00 0 [vdso]\n")
		      .first_file()
		      .empty());
	CHECK(MappingSet().first_file().empty());

	const Mapping *m = maps.find(0x7f1c2e428000 + 0x10);
	REQUIRE(m);
	CHECK(m->start == 0x7f1c2e428000);
	CHECK(maps.find(0x55d4a2a00000)->start == 0x55d4a2a00000);
	CHECK(maps.find(0x55d4a2a05000) == nullptr); // the end is not in it
	CHECK(maps.find(0x1000) == nullptr);	     // below the first
	CHECK(maps.find(0x7fff00000000) == nullptr); // above the last
}

TEST_CASE("mapping sets: equal when every segment is, whatever the padding", "[process]")
{
	MappingSet a = parse_maps(kMaps);
	CHECK(a == parse_maps(kMaps));
	CHECK(parse_maps("1000-2000 r-xp 00000000 08:01 12 /bin/x\n") ==
	      parse_maps("1000-2000 r-xp 00000000 08:01 12              /bin/x\n"));
	CHECK_FALSE(parse_maps("1000-2000 r-xp 00000000 08:01 12 /bin/x\n") ==
		    parse_maps("1000-2000 r--p 00000000 08:01 12 /bin/x\n"));
	CHECK_FALSE(parse_maps("1000-2000 r-xp 00000000 08:01 12 /bin/x\n") ==
		    parse_maps("1000-2000 r-xp 00000000 08:01 13 /bin/x\n"));
	CHECK_FALSE(a == MappingSet());
}

TEST_CASE("mapping sets: a perf record's mapping is the segment /proc shows", "[process]")
{
	FileMapping f;
	f.start = 0x7f1c2e600000;
	f.end = 0x7f1c2e601000;
	f.pgoff = 0x1000;
	f.maj = 0;
	f.min = 0x2a;
	f.ino = 77;
	f.prot = PROT_READ | PROT_EXEC;
	f.flags = MAP_SHARED;
	f.path = "/tmp/a b\nc (deleted)";
	Mapping m = as_mapping(f, f.path);
	CHECK(m == parse_maps(kMaps).segments()[6]);
	FileMapping back = as_file_mapping(m);
	CHECK(back.start == f.start);
	CHECK(back.end == f.end);
	CHECK(back.pgoff == f.pgoff);
	CHECK(back.ino == f.ino);
	CHECK(back.prot == f.prot);
	CHECK(back.flags == MAP_SHARED);
	CHECK(back.path == f.path);
	f.prot = PROT_READ | PROT_WRITE;
	f.flags = MAP_PRIVATE;
	CHECK(as_mapping(f, "/x").perms == "rw-p");
}

TEST_CASE("mapping sets: this process's own, its executable first", "[process]")
{
	MappingSet maps = read_maps(getpid());
	REQUIRE_FALSE(maps.empty());
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	REQUIRE(n > 0);
	CHECK(maps.first_file() == std::string(exe, static_cast<size_t>(n)));
	const Mapping *here = maps.find(reinterpret_cast<uintptr_t>(&read_maps));
	REQUIRE(here);
	CHECK(here->perms.find('x') != std::string::npos);
	CHECK_THROWS(read_maps(-1));
}

TEST_CASE("mapping sets: another user's process refused names the privilege it needs",
	  "[process]")
{
	// A child without privileges reads pid 1's mappings (root's): the
	// kernel's access check refuses, and the error says what would do.
	int fds[2];
	REQUIRE(pipe(fds) == 0);
	pid_t child = fork();
	REQUIRE(child >= 0);
	if (child == 0) {
		close(fds[0]);
		std::string said = "no error";
		if (getuid() == 0 && (setgroups(0, nullptr) != 0 || setresgid(65534, 65534, 65534) != 0 ||
				      setresuid(65534, 65534, 65534) != 0))
			said = "could not drop privileges";
		else
			try {
				read_maps(1);
			} catch (const std::exception &e) {
				said = e.what();
			}
		(void)!write(fds[1], said.data(), said.size());
		_exit(0);
	}
	close(fds[1]);
	std::string said;
	char buf[512];
	for (ssize_t n; (n = read(fds[0], buf, sizeof(buf))) > 0;)
		said.append(buf, static_cast<size_t>(n));
	close(fds[0]);
	waitpid(child, nullptr, 0);
	INFO(said);
	CHECK(said.find("reading /proc/1/maps: Permission denied") != std::string::npos);
	CHECK(said.find("root, CAP_SYS_PTRACE or CAP_PERFMON") != std::string::npos);
}
