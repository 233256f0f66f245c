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

} // namespace fh
