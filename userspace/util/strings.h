#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace fh {

// The items of s between the separators, empty ones included, so that
// joining them with sep gives s back: "a,,b" -> {"a", "", "b"}, "" -> {""}.
std::vector<std::string> split(std::string_view s, char sep);

} // namespace fh
