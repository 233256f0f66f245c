#include "python/linetable.h"

#include <limits>

namespace fh {

namespace {

// Lines are summed exactly (a target's first line and deltas may be
// anything): a line an int cannot hold is no line.
int line_or_none(int64_t line)
{
	if (line < std::numeric_limits<int>::min() || line > std::numeric_limits<int>::max())
		return -1;
	return static_cast<int>(line);
}

} // namespace

int lnotab_line(const uint8_t *table, size_t len, int firstlineno, int offset)
{
	int64_t line = firstlineno;
	int64_t addr = 0;
	for (size_t i = 0; i + 1 < len; i += 2) {
		addr += table[i];
		if (addr > offset)
			break;
		line += static_cast<int8_t>(table[i + 1]);
	}
	return line_or_none(line);
}

int linetable310_line(const uint8_t *table, size_t len, int firstlineno, int offset)
{
	if (offset < 0)
		return firstlineno;
	// Each entry covers [start, start + length) with its line delta applied
	// first; a delta of -128 leaves the line alone and marks the range as
	// having no line.  Zero-length entries only move the line.
	int64_t line = firstlineno;
	int64_t start = 0;
	for (size_t i = 0; i + 1 < len; i += 2) {
		int length = table[i];
		int delta = static_cast<int8_t>(table[i + 1]);
		bool no_line = delta == -128;
		if (!no_line)
			line += delta;
		if (length == 0)
			continue;
		if (offset < start + length)
			return no_line ? -1 : line_or_none(line);
		start += length;
	}
	return -1;
}

namespace {

// A 3.11+ varint: 6 bits a byte, 0x40 = more follows.
bool read_varint(const uint8_t *t, size_t len, size_t &i, unsigned &out)
{
	out = 0;
	for (unsigned shift = 0; i < len && shift < 30; shift += 6) {
		uint8_t b = t[i++];
		out |= static_cast<unsigned>(b & 63) << shift;
		if (!(b & 64))
			return true;
	}
	return false;
}

bool read_signed_varint(const uint8_t *t, size_t len, size_t &i, int &out)
{
	unsigned u;
	if (!read_varint(t, len, i, u))
		return false;
	out = (u & 1) ? -static_cast<int>(u >> 1) : static_cast<int>(u >> 1);
	return true;
}

} // namespace

int location_table_line(const uint8_t *table, size_t len, int firstlineno, int index)
{
	if (index < 0)
		return firstlineno;
	int64_t line = firstlineno;
	int64_t start = 0;
	size_t i = 0;
	while (i < len) {
		uint8_t first = table[i++];
		if (!(first & 0x80))
			continue; // inside an entry: skip to the next start, as CPython does
		int code = (first >> 3) & 15;
		int length = (first & 7) + 1;
		bool no_line = false;
		int delta = 0;
		if (code == 15) {
			no_line = true; // PY_CODE_LOCATION_INFO_NONE
		} else if (code == 13 || code == 14) {
			// NO_COLUMNS, LONG: the line delta is a signed varint
			if (!read_signed_varint(table, len, i, delta))
				return -1;
		} else if (code >= 10) {
			delta = code - 10; // ONE_LINE0..2
		}
		line += delta;
		if (index < start + length)
			return no_line ? -1 : line_or_none(line);
		start += length;
	}
	return -1;
}

} // namespace fh
