// libFuzzer harness: CPython's line tables (userspace/python/linetable.cpp), every
// version's format, on bytes a target controls.
//
// Input: int32 firstlineno, int32 offset (bytes for 3.6-3.10, code units
// for 3.11+), then the table.  The table is copied to a buffer of exactly
// its size, so that ASan sees any read past it; UBSan aborts on a signed
// overflow.  Each decoder must give the same answer twice (no state) and,
// for a position before the first instruction, the first line.
#include "fuzz_input.h"
#include "python/linetable.h"

#include <memory>

using namespace fh;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fhfuzz::Input in(data, size);
	int first = in.take<int32_t>();
	int offset = in.take<int32_t>();
	std::vector<uint8_t> rest = in.rest();
	std::unique_ptr<uint8_t[]> table(new uint8_t[rest.size()]);
	std::copy(rest.begin(), rest.end(), table.get());
	const uint8_t *t = rest.empty() ? nullptr : table.get();
	size_t n = rest.size();

	int a = lnotab_line(t, n, first, offset);
	int b = linetable310_line(t, n, first, offset);
	int c = location_table_line(t, n, first, offset);
	FUZZ_CHECK(a == lnotab_line(t, n, first, offset));
	FUZZ_CHECK(b == linetable310_line(t, n, first, offset));
	FUZZ_CHECK(c == location_table_line(t, n, first, offset));
	if (offset < 0) {
		FUZZ_CHECK(b == first);
		FUZZ_CHECK(c == first);
	}
	// The position that faulthandler gives 3.10 (2 * f_lasti), at its extremes.
	linetable310_line(t, n, first, offset > 0 ? offset / 2 * 2 : offset);
	return 0;
}
