#include "report/traceback.h"

#include "util/signals.h"

#include <cinttypes>
#include <cstdio>

namespace fh {

namespace {

std::string hex(uint64_t v)
{
	char buf[24];
	std::snprintf(buf, sizeof(buf), "0x%" PRIx64, v);
	return buf;
}

} // namespace

std::string fatal_header(int sig) { return "Fatal error: " + signal_description(sig) + "\n\n"; }

std::string escape_bytes(const std::string &s)
{
	static const char digits[] = "0123456789abcdef";
	std::string out;
	size_t n = s.size() > kMaxStringLength ? kMaxStringLength : s.size();
	out.reserve(n + 8);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = static_cast<unsigned char>(s[i]);
		if (c >= 0x20 && c <= 0x7e) {
			out += static_cast<char>(c);
		} else {
			out += "\\x";
			out += digits[c >> 4];
			out += digits[c & 0xf];
		}
	}
	if (s.size() > kMaxStringLength)
		out += "...";
	return out;
}

std::string render_frame(const Frame &f)
{
	std::string name = f.function.empty() ? "???" : escape_bytes(f.function);
	if (!f.file.empty() && f.line > 0)
		return "  File \"" + escape_bytes(f.file) + "\", line " + std::to_string(f.line) +
		       " in " + name + "\n";
	if (f.module.empty())
		return "  Binary file '<unknown>' [" + hex(f.pc) + "]\n";
	std::string at = f.function.empty() || !f.function_offset_known
				 ? "+" + hex(f.module_offset)
				 : name + "+" + hex(f.function_offset);
	return "  Binary file \"" + escape_bytes(f.module) + "\", at " + at + " [" + hex(f.pc) +
	       "]\n";
}

std::string render(const Traceback &tb)
{
	std::string out = tb.header;
	bool first = true;
	for (const auto &t : tb.threads) {
		if (!first)
			out += "\n";
		first = false;
		char head[96];
		std::snprintf(head, sizeof(head), "%s 0x%016" PRIx64 " (most recent call first):\n",
			      t.current ? "Current thread" : "Thread", t.pthread_id);
		out += head;
		size_t n = 0;
		for (const auto &f : t.frames) {
			if (n++ == kMaxFrames)
				break;
			out += render_frame(f);
		}
		if (t.frames.empty() && !t.truncated)
			out += "  <no native frame>\n";
		if (t.truncated || t.frames.size() > kMaxFrames)
			out += "  ...\n";
	}
	return out;
}

} // namespace fh
