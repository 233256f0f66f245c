// Line-table decoders against CPython itself: every interpreter on this
// machine computes the line of every instruction of a set of code objects
// (tests/python/linetable_vectors.py); the decoder must agree on each.
#include <catch2/catch.hpp>

#include "python/linetable.h"
#include "python_interpreters.h"
#include "support.h"

#include <limits>
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

// A target's code object may hold any first line and any deltas: the sum is
// kept exactly (no signed overflow), and a line outside the range of an int
// is no line at all (???), as is any line the table cannot give.
TEST_CASE("line tables: lines beyond an int are no line, never an overflow", "[linetable]")
{
	const int top = std::numeric_limits<int>::max();
	const int bottom = std::numeric_limits<int>::min();

	// 3.6-3.9: one pair (0 bytes, +100) past the largest first line.
	const uint8_t up[] = {0, 100};
	CHECK(lnotab_line(up, sizeof(up), top - 200, 0) == top - 100);
	CHECK(lnotab_line(up, sizeof(up), top - 50, 0) == -1);
	const uint8_t down[] = {0, 0x80}; // -128
	CHECK(lnotab_line(down, sizeof(down), bottom + 10, 0) == -1);

	// 3.10: (2 bytes, +100).
	const uint8_t up310[] = {2, 100};
	CHECK(linetable310_line(up310, sizeof(up310), top - 200, 0) == top - 100);
	CHECK(linetable310_line(up310, sizeof(up310), top - 50, 0) == -1);
	const uint8_t down310[] = {2, 0x81}; // -127
	CHECK(linetable310_line(down310, sizeof(down310), bottom + 5, 0) == -1);

	// 3.11+: NO_COLUMNS entries (code 13) of one code unit, each a signed
	// varint delta of +2^28 (zigzag 2^29: 5 bytes), eight of them: 2^31
	// in all, one past the largest int.
	std::vector<uint8_t> big;
	for (int i = 0; i < 8; i++)
		big.insert(big.end(), {0xe8, 0x40, 0x40, 0x40, 0x40, 0x20});
	CHECK(location_table_line(big.data(), big.size(), 0, 0) == 1 << 28);
	CHECK(location_table_line(big.data(), big.size(), 0, 6) == 7 << 28);
	CHECK(location_table_line(big.data(), big.size(), 0, 7) == -1);
	CHECK(location_table_line(big.data(), big.size(), 1, 6) == (7 << 28) + 1);
	// Up past the top and back down again (-2^28 each): the exact sum.
	std::vector<uint8_t> back = big;
	for (int i = 0; i < 8; i++)
		back.insert(back.end(), {0xe8, 0x41, 0x40, 0x40, 0x40, 0x20});
	CHECK(location_table_line(back.data(), back.size(), 0, 8) == 7 << 28);
	CHECK(location_table_line(back.data(), back.size(), 7, 15) == 7);
	// One LONG entry (code 14) of +10 from near the top.
	const uint8_t longe[] = {0xf0, 20, 0, 0, 0}; // zigzag 20: +10; end line, columns
	CHECK(location_table_line(longe, sizeof(longe), top - 20, 0) == top - 10);
	CHECK(location_table_line(longe, sizeof(longe), top - 5, 0) == -1);
}
