#include "util/strings.h"

#include <cinttypes>
#include <cstdio>

namespace fh {

std::vector<std::string> split(std::string_view s, char sep)
{
	std::vector<std::string> out;
	for (;;) {
		size_t at = s.find(sep);
		out.emplace_back(s.substr(0, at));
		if (at == std::string_view::npos)
			return out;
		s.remove_prefix(at + 1);
	}
}

std::string hex(uint64_t v, int digits)
{
	char buf[24];
	std::snprintf(buf, sizeof(buf), "0x%0*" PRIx64, digits, v);
	return buf;
}

std::string hex_bytes(const void *data, size_t size)
{
	static const char digits[] = "0123456789abcdef";
	const auto *p = static_cast<const unsigned char *>(data);
	std::string out;
	out.reserve(2 * size);
	for (size_t i = 0; i < size; i++) {
		out += digits[p[i] >> 4];
		out += digits[p[i] & 15];
	}
	return out;
}

} // namespace fh
