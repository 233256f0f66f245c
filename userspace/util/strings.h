#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace fh {

// The items of s between the separators, empty ones included, so that
// joining them with sep gives s back: "a,,b" -> {"a", "", "b"}, "" -> {""}.
std::vector<std::string> split(std::string_view s, char sep);

// "0x1f"; with digits, zero-padded to that many: hex(0x1f, 4) is "0x001f".
std::string hex(uint64_t v, int digits = 0);
// Bytes as lowercase hex, two digits each ("a build id").
std::string hex_bytes(const void *data, size_t size);

} // namespace fh
