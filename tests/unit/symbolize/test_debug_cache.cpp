// The debug cache (symbolize/debug_cache.h): a file whose DWARF sections
// are compressed gets one inflated copy, named by its build id, whose DWARF
// binutils' readelf decodes exactly as it decodes the original's; a copy
// that is not what fh-bpf wrote (another mode, a second name, another
// file's contents, a symbolic link) is never used; the cache keeps its
// size.
#include <catch2/catch.hpp>

#include "support.h"
#include "symbolize/debug_cache.h"
#include "util/error.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <memory>
#include <string>

using namespace fh;
using namespace fhtest;

namespace {

// A small program built -g with its DWARF compressed (zlib) or not, and
// a build id: its path.
std::string fixture(const std::string &dir, const std::string &name, bool compressed,
		    const std::string &body = "int main(void) { return seven(); }")
{
	std::string src = dir + "/" + name + ".c";
	std::ofstream(src) << "static int seven(void) { return 7; }\n" << body << "\n";
	std::string out = dir + "/" + name;
	int st = -1;
	run_capture({"/usr/bin/cc", "-g", "-O1", "-Wl,--build-id",
		     compressed ? "-gz=zlib" : "-gz=none", src, "-o", out},
		    &st, true);
	REQUIRE(st == 0);
	return out;
}

std::string build_id(const std::string &file)
{
	std::string hex = run_capture({"/bin/sh", "-c",
				       "readelf -n '" + file +
					       "' | sed -n 's/.*Build ID: //p'"});
	while (!hex.empty() && hex.back() == '\n')
		hex.pop_back();
	REQUIRE(hex.size() == 40);
	std::string raw;
	for (size_t i = 0; i < hex.size(); i += 2)
		raw += static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16));
	return raw;
}

// What binutils' readelf decodes of a file's DWARF (its own name left out).
std::string dwarf_of(const std::string &file)
{
	return run_capture({"/bin/sh", "-c",
			    "readelf --debug-dump=info,decodedline,str '" + file +
				    "' | grep -v '^File: '"});
}

int open_ro(const std::string &path) { return open(path.c_str(), O_RDONLY | O_CLOEXEC); }

// As a child process names it.
std::string fd_path(int fd)
{
	return "/proc/" + std::to_string(getpid()) + "/fd/" + std::to_string(fd);
}

} // namespace

TEST_CASE("a compressed debug file gets one inflated copy, named by its build id", "[debugcache]")
{
	std::string dir = temp_path("debugcache");
	run_capture({"/bin/mkdir", "-p", dir});
	std::string prog = fixture(dir, "prog", true);
	std::string id = build_id(prog);
	DebugCache cache(dir + "/cache", 64 << 20);
	struct stat st;
	REQUIRE(stat((dir + "/cache").c_str(), &st) == 0);
	CHECK((st.st_mode & 07777) == 0700);

	int fd = open_ro(prog);
	int copy = cache.inflated(fd, id);
	REQUIRE(copy >= 0);
	CHECK(cache.made() == 1);
	// The same DWARF, no section compressed, the file fh-bpf's alone.
	CHECK(dwarf_of(fd_path(copy)) == dwarf_of(prog));
	CHECK(run_capture({"/bin/sh", "-c", "readelf -S -W '" + fd_path(copy) + "' | grep '^ *\\[' | grep -c ' C '"}) ==
	      "0\n");
	std::string name = dir + "/cache/" +
			   run_capture({"/bin/sh", "-c",
					"readelf -n '" + prog + "' | sed -n 's/.*Build ID: //p' | tr -d '\\n'"}) +
			   ".debug";
	REQUIRE(stat(name.c_str(), &st) == 0);
	CHECK((st.st_mode & 07777) == 0600);
	close(copy);

	// The next run uses it as it is.
	copy = cache.inflated(fd, id);
	CHECK(copy >= 0);
	CHECK(cache.served() == 1);
	CHECK(cache.made() == 1);
	close(copy);

	// Not what fh-bpf wrote: made again.
	SECTION("another mode")
	{
		REQUIRE(chmod(name.c_str(), 0644) == 0);
	}
	SECTION("a second name")
	{
		REQUIRE(link(name.c_str(), (dir + "/hardlink").c_str()) == 0);
	}
	SECTION("another file's contents")
	{
		std::string other = fixture(dir, "other", false, "int main(void) { return 8; }");
		run_capture({"/bin/cp", other, name});
		REQUIRE(chmod(name.c_str(), 0600) == 0);
	}
	SECTION("a symbolic link, never followed")
	{
		std::string target = dir + "/target";
		std::ofstream(target) << "not to be touched";
		REQUIRE(unlink(name.c_str()) == 0);
		REQUIRE(symlink(target.c_str(), name.c_str()) == 0);
		copy = cache.inflated(fd, id);
		REQUIRE(copy >= 0);
		close(copy);
		CHECK(read_file(target) == "not to be touched");
		REQUIRE(lstat(name.c_str(), &st) == 0);
		CHECK(S_ISREG(st.st_mode));
		CHECK(cache.made() == 2);
		remove_dir(dir);
		return;
	}
	copy = cache.inflated(fd, id);
	REQUIRE(copy >= 0);
	CHECK(cache.made() == 2);
	CHECK(dwarf_of(fd_path(copy)) == dwarf_of(prog));
	close(copy);
	close(fd);
	remove_dir(dir);
}

TEST_CASE("the debug cache: what it does not take, where it refuses to be, its size",
	  "[debugcache]")
{
	std::string dir = temp_path("debugcache");
	run_capture({"/bin/mkdir", "-p", dir});
	// No compressed section: nothing to gain.
	std::string plain = fixture(dir, "plain", false);
	DebugCache cache(dir + "/cache", 1 << 20);
	int fd = open_ro(plain);
	CHECK(cache.inflated(fd, build_id(plain)) == -1);
	close(fd);
	// A build id that is not the file's.
	std::string prog = fixture(dir, "prog", true);
	fd = open_ro(prog);
	CHECK(cache.inflated(fd, std::string(20, '\x11')) == -1);
	CHECK(cache.made() == 0);
	close(fd);

	// Writable by others, or a symbolic link: refused.
	run_capture({"/bin/mkdir", "-p", dir + "/open"});
	REQUIRE(chmod((dir + "/open").c_str(), 0777) == 0);
	CHECK_THROWS_AS(DebugCache(dir + "/open", 1 << 20), Error);
	REQUIRE(symlink((dir + "/cache").c_str(), (dir + "/link").c_str()) == 0);
	CHECK_THROWS_AS(DebugCache(dir + "/link", 1 << 20), Error);

	// At most max_bytes (here less than one copy): the least recently used
	// copies go, the newest stays.
	std::string a = fixture(dir, "a", true, "int main(void) { return seven() + 1; }");
	std::string b = fixture(dir, "b", true, "int main(void) { return seven() + 2; }");
	DebugCache tight(dir + "/tight", 1);
	for (const auto &f : {a, b}) {
		fd = open_ro(f);
		int c = tight.inflated(fd, build_id(f));
		CHECK(c >= 0);
		close(c);
		close(fd);
	}
	std::vector<std::string> left = files_in(dir + "/tight");
	REQUIRE(left.size() == 1);
	CHECK(left[0] == run_capture({"/bin/sh", "-c",
				       "readelf -n '" + b +
					       "' | sed -n 's/.*Build ID: //p' | tr -d '\\n'"}) +
				   ".debug");
	remove_dir(dir);
}
