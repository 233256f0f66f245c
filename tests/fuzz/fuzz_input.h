// Shared by the libFuzzer harnesses (tests/fuzz/fuzz_*.cpp): a fuzzer's
// input read as typed fields, and checks that abort (a finding) when a
// property the product promises does not hold.
#pragma once

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace fhfuzz {

// Fields taken from the front of the input; past its end they read as zeros.
class Input {
public:
	Input(const uint8_t *data, size_t size) : p_(data), n_(size) {}

	template <typename T> T take()
	{
		T v{};
		size_t k = std::min(sizeof(T), n_);
		std::memcpy(&v, p_, k);
		skip(k);
		return v;
	}

	std::vector<uint8_t> bytes(size_t len)
	{
		len = std::min(len, n_);
		std::vector<uint8_t> out(p_, p_ + len);
		skip(len);
		return out;
	}

	std::string str(size_t len)
	{
		auto b = bytes(len);
		return std::string(b.begin(), b.end());
	}

	std::vector<uint8_t> rest() { return bytes(n_); }
	size_t left() const { return n_; }

private:
	void skip(size_t k)
	{
		p_ += k;
		n_ -= k;
	}
	const uint8_t *p_;
	size_t n_;
};

// A property that must hold whatever the input: abort, so that libFuzzer
// keeps the input as a crash.
#define FUZZ_CHECK(cond)                                                                        \
	do {                                                                                    \
		if (!(cond)) {                                                                  \
			std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
			std::abort();                                                           \
		}                                                                               \
	} while (0)

// True when s holds only printable ASCII (what faulthandler's escapes give).
inline bool printable_ascii(const std::string &s)
{
	return std::all_of(s.begin(), s.end(), [](char c) { return c >= 0x20 && c <= 0x7e; });
}

// A JSON validator (RFC 8259), strict: one value, UTF-8 strings without
// control characters, escapes as the grammar allows them; nesting bounded.
class Json {
public:
	static bool valid(const std::string &text)
	{
		Json j(text);
		j.space();
		if (!j.value(0))
			return false;
		j.space();
		return j.i_ == text.size();
	}

private:
	explicit Json(const std::string &t) : t_(t) {}
	bool at(char c) const { return i_ < t_.size() && t_[i_] == c; }
	bool eat(char c)
	{
		if (!at(c))
			return false;
		i_++;
		return true;
	}
	void space()
	{
		while (i_ < t_.size() && (t_[i_] == ' ' || t_[i_] == '\t' || t_[i_] == '\n' || t_[i_] == '\r'))
			i_++;
	}
	bool literal(const char *w)
	{
		size_t n = std::strlen(w);
		if (t_.compare(i_, n, w) != 0)
			return false;
		i_ += n;
		return true;
	}
	bool digits()
	{
		size_t from = i_;
		while (i_ < t_.size() && t_[i_] >= '0' && t_[i_] <= '9')
			i_++;
		return i_ > from;
	}
	bool number()
	{
		eat('-');
		if (!eat('0') && !digits())
			return false;
		if (eat('.') && !digits())
			return false;
		if (at('e') || at('E')) {
			i_++;
			if (!eat('+'))
				eat('-');
			if (!digits())
				return false;
		}
		return true;
	}
	bool string()
	{
		if (!eat('"'))
			return false;
		while (i_ < t_.size()) {
			auto c = static_cast<unsigned char>(t_[i_]);
			if (c == '"') {
				i_++;
				return true;
			}
			if (c < 0x20)
				return false;
			if (c == '\\') {
				i_++;
				if (eat('u')) {
					for (int k = 0; k < 4; k++, i_++)
						if (i_ >= t_.size() || !std::isxdigit(static_cast<unsigned char>(t_[i_])))
							return false;
				} else if (i_ < t_.size() && std::strchr("\"\\/bfnrt", t_[i_]) && t_[i_]) {
					i_++;
				} else {
					return false;
				}
				continue;
			}
			size_t n = utf8(i_);
			if (!n)
				return false;
			i_ += n;
		}
		return false;
	}
	// The length of a valid UTF-8 sequence at i, or 0.
	size_t utf8(size_t i) const
	{
		auto c = static_cast<unsigned char>(t_[i]);
		size_t n = c < 0x80 ? 1 : c >= 0xc2 && c <= 0xdf ? 2 : (c & 0xf0) == 0xe0 ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
		if (!n || i + n > t_.size())
			return 0;
		uint32_t cp = n == 1 ? c : c & (0x7f >> n);
		for (size_t k = 1; k < n; k++) {
			auto b = static_cast<unsigned char>(t_[i + k]);
			if ((b & 0xc0) != 0x80)
				return 0;
			cp = cp << 6 | (b & 0x3f);
		}
		static const uint32_t min[] = {0, 0, 0x80, 0x800, 0x10000};
		if (cp < min[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		return n;
	}
	bool value(int depth)
	{
		if (depth > 64)
			return false;
		space();
		if (at('"'))
			return string();
		if (eat('{')) {
			space();
			if (eat('}'))
				return true;
			do {
				space();
				if (!string())
					return false;
				space();
				if (!eat(':') || !value(depth + 1))
					return false;
				space();
			} while (eat(','));
			return eat('}');
		}
		if (eat('[')) {
			space();
			if (eat(']'))
				return true;
			do {
				if (!value(depth + 1))
					return false;
				space();
			} while (eat(','));
			return eat(']');
		}
		if (literal("true") || literal("false") || literal("null"))
			return true;
		return number();
	}

	const std::string &t_;
	size_t i_ = 0;
};

} // namespace fhfuzz
