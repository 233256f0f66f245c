// Line-table decoders against CPython itself: every interpreter on this
// machine computes the line of every instruction of a set of code objects
// (tests/python/linetable_vectors.py); the decoder must agree on each.
#include <catch2/catch.hpp>

#include "linetable.h"
#include "python_interpreters.h"
#include "support.h"

#include <sstream>

using namespace fh;
using namespace fhtest;

namespace {

std::vector<uint8_t> unhex(const std::string &s)
{
	std::vector<uint8_t> out;
	for (size_t i = 0; i + 1 < s.size(); i += 2)
		out.push_back(static_cast<uint8_t>(std::stoi(s.substr(i, 2), nullptr, 16)));
	return out;
}

int decode(int minor, const std::vector<uint8_t> &t, int first, int offset)
{
	if (minor <= 9)
		return lnotab_line(t.data(), t.size(), first, offset);
	if (minor == 10)
		return linetable310_line(t.data(), t.size(), first, offset);
	return location_table_line(t.data(), t.size(), first, offset);
}

} // namespace

TEST_CASE("line tables decode as each CPython on this machine computes them", "[linetable]")
{
	for (const auto &py : python_interpreters()) {
		INFO(py.path);
		int status = -1;
		std::string out = run_capture(
			{py.path, source_dir() + "/tests/python/linetable_vectors.py"}, &status);
		REQUIRE(status == 0);
		std::istringstream in(out);
		std::string word;
		std::vector<uint8_t> table;
		int first = 0;
		size_t codes = 0, checked = 0, mismatches = 0;
		while (in >> word) {
			if (word == "code") {
				std::string hex;
				in >> first;
				// An empty table prints nothing after the line number.
				std::getline(in, hex);
				hex.erase(0, hex.find_first_not_of(' '));
				table = unhex(hex);
				codes++;
			} else if (word == "at") {
				int offset, line;
				in >> offset >> line;
				int got = decode(py.minor, table, first, offset);
				checked++;
				if (got != line && mismatches++ < 5)
					FAIL_CHECK("offset " << offset << ": expected " << line << ", got "
							     << got << " (firstlineno " << first << ")");
			}
		}
		CHECK(codes >= 9);
		CHECK(checked >= 900);
		CHECK(mismatches == 0);
	}
}

TEST_CASE("line tables: before the first instruction, and hostile bytes", "[linetable]")
{
	const uint8_t lnotab[] = {0, 1, 6, 1};
	CHECK(lnotab_line(lnotab, sizeof(lnotab), 10, -1) == 10);
	CHECK(lnotab_line(lnotab, sizeof(lnotab), 10, 0) == 11);
	CHECK(lnotab_line(lnotab, sizeof(lnotab), 10, 6) == 12);
	CHECK(linetable310_line(lnotab, sizeof(lnotab), 10, -2) == 10);
	CHECK(location_table_line(lnotab, sizeof(lnotab), 10, -1) == 10);

	// Garbage, truncated entries, endless varints: bounded, no crash.
	std::vector<uint8_t> junk(4096);
	for (size_t i = 0; i < junk.size(); i++)
		junk[i] = static_cast<uint8_t>(i * 131 + 7);
	for (int offset : {0, 7, 100, 5000, 1 << 30}) {
		lnotab_line(junk.data(), junk.size(), 1, offset);
		linetable310_line(junk.data(), junk.size(), 1, offset);
		location_table_line(junk.data(), junk.size(), 1, offset);
	}
	const uint8_t endless[] = {0xf0, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f};
	CHECK(location_table_line(endless, sizeof(endless), 1, 3) == -1);
	CHECK(location_table_line(nullptr, 0, 5, 0) == -1);
	CHECK(linetable310_line(nullptr, 0, 5, 0) == -1);
	CHECK(lnotab_line(nullptr, 0, 5, 0) == 5);
}
