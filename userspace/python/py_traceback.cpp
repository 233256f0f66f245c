#include "python/py_traceback.h"


#include <cinttypes>
#include <cstdio>

namespace fh {

namespace {

constexpr size_t kMaxStringLength = 500;

void hex(std::string &out, uint32_t v, int digits)
{
	static const char d[] = "0123456789abcdef";
	for (int shift = (digits - 1) * 4; shift >= 0; shift -= 4)
		out += d[(v >> shift) & 0xf];
}

} // namespace

std::string py_escape(const std::vector<uint32_t> &cps, uint64_t length)
{
	std::string out;
	size_t n = length > kMaxStringLength ? kMaxStringLength : static_cast<size_t>(length);
	for (size_t i = 0; i < n && i < cps.size(); i++) {
		uint32_t ch = cps[i];
		if (ch >= ' ' && ch <= 126) {
			out += static_cast<char>(ch);
		} else if (ch <= 0xff) {
			out += "\\x";
			hex(out, ch, 2);
		} else if (ch <= 0xffff) {
			out += "\\u";
			hex(out, ch, 4);
		} else {
			out += "\\U";
			hex(out, ch, 8);
		}
	}
	if (length > kMaxStringLength)
		out += "...";
	return out;
}

std::vector<uint32_t> py_code_points(const uint8_t *data, size_t avail, int kind, uint64_t length,
				     size_t max)
{
	std::vector<uint32_t> out;
	if (kind != 1 && kind != 2 && kind != 4)
		return out;
	size_t k = static_cast<size_t>(kind);
	for (size_t i = 0; i < length && i < max && (i + 1) * k <= avail; i++) {
		const uint8_t *p = data + i * k;
		uint32_t ch = p[0];
		if (k >= 2)
			ch |= static_cast<uint32_t>(p[1]) << 8;
		if (k == 4)
			ch |= static_cast<uint32_t>(p[2]) << 16 | static_cast<uint32_t>(p[3]) << 24;
		out.push_back(ch);
	}
	return out;
}

} // namespace fh
