// Images of interpreter memory for the walks' tests: objects as
// little-endian bytes at chosen offsets.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace fhtest
{

// A little-endian byte image of one object.
struct Obj {
	std::vector<uint8_t> bytes;
	explicit Obj(size_t n) : bytes(n, 0) {}
	template <typename T> Obj &at(size_t off, T v)
	{
		std::memcpy(bytes.data() + off, &v, sizeof(v));
		return *this;
	}
	Obj &data(size_t off, const std::vector<uint8_t> &d)
	{
		std::memcpy(bytes.data() + off, d.data(), d.size());
		return *this;
	}
};

// A compact ASCII str (3.12+: data after 40 bytes; `header` 48 before).
inline Obj ascii_str(uint64_t type, const std::string &s, size_t header = 40)
{
	Obj o(header + s.size() + 1);
	o.at<uint64_t>(8, type).at<uint64_t>(16, s.size());
	o.at<uint32_t>(32, 1u << 2 | 1u << 5 | 1u << 6); // kind 1, compact, ascii
	o.data(header, std::vector<uint8_t>(s.begin(), s.end()));
	return o;
}

} // namespace fhtest
