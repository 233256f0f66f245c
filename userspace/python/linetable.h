#pragma once

#include <cstddef>
#include <cstdint>

namespace fh {

// Line numbers from CPython's line tables, as the interpreter computes them
// (PyCode_Addr2Line).  The table bytes come from the target's memory: every
// decoder stays inside [table, table + len) whatever they hold, and sums
// lines exactly whatever the first line and deltas.  -1 means "no line"
// (faulthandler prints ???), as does a line an int cannot hold.

// 3.6-3.9 co_lnotab: pairs (bytecode increment, signed line increment);
// offset in bytes (f_lasti; -1 before the first instruction).
int lnotab_line(const uint8_t *table, size_t len, int firstlineno, int offset);

// 3.10 co_linetable: pairs (byte length, signed line delta; -128: no line);
// offset in bytes (2 * f_lasti).
int linetable310_line(const uint8_t *table, size_t len, int firstlineno, int offset);

// 3.11+ location table; index in 2-byte code units.
int location_table_line(const uint8_t *table, size_t len, int firstlineno, int index);

} // namespace fh
