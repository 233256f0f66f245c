#include "util/strings.h"

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

} // namespace fh
