#include "util/printable.h"

#include <cstdint>

namespace fh {

namespace {

uint32_t code_point(std::string_view s, size_t i, size_t n)
{
	auto c = static_cast<unsigned char>(s[i]);
	uint32_t cp = n == 1 ? c : c & (0x7f >> n);
	for (size_t k = 1; k < n; k++)
		cp = cp << 6 | (static_cast<unsigned char>(s[i + k]) & 0x3f);
	return cp;
}

// What a terminal or a reader could take for something else: control
// characters, and the characters that reorder the text around them.
bool deceptive(uint32_t cp)
{
	return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || (cp >= 0x202a && cp <= 0x202e) ||
	       (cp >= 0x2066 && cp <= 0x2069) || cp == 0x200e || cp == 0x200f ||
	       cp == 0x061c || cp == 0x2028 || cp == 0x2029;
}

} // namespace

size_t utf8_length(std::string_view s, size_t i)
{
	auto c = static_cast<unsigned char>(s[i]);
	size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
	if (n == 0 || i + n > s.size())
		return 0;
	for (size_t k = 1; k < n; k++)
		if ((static_cast<unsigned char>(s[i + k]) >> 6) != 2)
			return 0;
	uint32_t cp = code_point(s, i, n);
	// Overlong forms, surrogates and values past Unicode are not UTF-8.
	static const uint32_t min[] = {0, 0, 0x80, 0x800, 0x10000};
	if (cp < min[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

std::string printable(std::string_view s, size_t max_bytes)
{
	static const char digits[] = "0123456789abcdef";
	std::string_view in = s.substr(0, max_bytes);
	std::string out;
	out.reserve(in.size() + 3);
	for (size_t i = 0; i < in.size();) {
		size_t n = utf8_length(in, i);
		if (n && !deceptive(code_point(in, i, n))) {
			out.append(in.substr(i, n));
			i += n;
			continue;
		}
		// Not UTF-8, or a character to show as its bytes.
		for (size_t k = 0; k < (n ? n : 1); k++) {
			auto c = static_cast<unsigned char>(in[i + k]);
			out += "\\x";
			out += digits[c >> 4];
			out += digits[c & 0xf];
		}
		i += n ? n : 1;
	}
	if (s.size() > max_bytes)
		out += "...";
	return out;
}

} // namespace fh
