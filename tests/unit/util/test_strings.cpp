// String helpers: what the command line and the ELF reader split on.
#include <catch2/catch.hpp>

#include "util/strings.h"

using namespace fh;

using Items = std::vector<std::string>;

TEST_CASE("split keeps every item, empty ones too", "[strings]")
{
	CHECK(split("a,b", ',') == Items{"a", "b"});
	CHECK(split("nginx", ',') == Items{"nginx"});
	CHECK(split("", ',') == Items{""});
	CHECK(split(",", ',') == Items{"", ""});
	CHECK(split("a,,b,", ',') == Items{"a", "", "b", ""});
	CHECK(split(":/usr/lib::/opt/lib", ':') == Items{"", "/usr/lib", "", "/opt/lib"});
	// Only the separator given splits; a string_view need not end in NUL.
	CHECK(split("a:b,c", ',') == Items{"a:b", "c"});
	std::string_view part = std::string_view("x,y,zzz").substr(0, 3);
	CHECK(split(part, ',') == Items{"x", "y"});
	CHECK(split(std::string_view("a\0b,c", 5), ',') == Items{std::string("a\0b", 3), "c"});
}
