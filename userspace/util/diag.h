#pragma once

// The one writer of fh-bpf's own diagnostic lines on stderr: "fh-bpf: …".
// Their parts may be a target's (names, paths): nothing in them may start a
// line of its own or drive the terminal, so each line is made printable
// (util/printable.h; idempotent, parts escaped already stay as they are).

#include <cstdint>
#include <set>
#include <string>

namespace fh {

// "fh-bpf: " + msg + "\n" on stderr.
void diag(const std::string &msg);

// printf-style number formatting for diagnostics: fmt("%.1f ms", 1.25).
std::string fmt(const char *format, double v);

// Messages about what targets name (their files, their interpreters) said
// on stderr once per key, and at most `max` keys: a user can make up any
// number of names.  Past them, one line says the others are counted.
class OnceMessages {
public:
	OnceMessages(size_t max, std::string what) : max_(max), what_(std::move(what)) {}
	void say(const std::string &key, const std::string &msg);
	uint64_t unsaid() const { return unsaid_; }

private:
	size_t max_;
	std::string what_;
	std::set<std::string> said_;
	uint64_t unsaid_ = 0;
};

} // namespace fh
