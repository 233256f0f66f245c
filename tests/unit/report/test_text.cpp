// Renderer against golden text: faulthandler's structure, byte for byte.
#include <catch2/catch.hpp>

#include "report/text.h"

using namespace fh;

namespace {

NativeFrame source_frame(const char *file, int line, const char *fn)
{
	NativeFrame f;
	f.pc = 0x401000;
	f.file = file;
	f.line = line;
	f.function = fn;
	f.module = "/usr/bin/x";
	return f;
}

std::string render(const Incident &inc) { return render_text(inc); }

} // namespace

TEST_CASE("fatal headers use faulthandler's signal names", "[render]")
{
	CHECK(fatal_header(11) == "Fatal error: Segmentation fault\n\n");
	CHECK(fatal_header(8) == "Fatal error: Floating point exception\n\n");
	CHECK(fatal_header(6) == "Fatal error: Aborted\n\n");
	CHECK(fatal_header(7) == "Fatal error: Bus error\n\n");
	CHECK(fatal_header(4) == "Fatal error: Illegal instruction\n\n");
	CHECK(fatal_header(11, true) == "Fatal Python error: Segmentation fault\n\n");
	// Each Python version's words: 3.13 hyphenates SIGFPE's.
	PythonDialect py12{12, 0x030c01f0, "3.12.1"}, py13{13, 0x030d00f0, "3.13.0"};
	CHECK(fatal_header(8, py12) == "Fatal Python error: Floating point exception\n\n");
	CHECK(fatal_header(8, py13) == "Fatal Python error: Floating-point exception\n\n");
	CHECK(fatal_header(11, py13) == "Fatal Python error: Segmentation fault\n\n");
}

TEST_CASE("a whole traceback renders as faulthandler would", "[render]")
{
	Incident tb;
	tb.header = fatal_header(11);
	Thread cur;
	cur.pthread_id = 0x7f1e2a3fe6c0;
	cur.current = true;
	cur.frames.push_back(source_frame("/src/crash.c", 36, "crash_leaf"));
	cur.frames.push_back(source_frame("/src/crash.c", 44, "crash_mid"));
	NativeFrame libc;
	libc.pc = 0x7f1e2a229d90;
	libc.module = "/usr/lib/x86_64-linux-gnu/libc.so.6";
	libc.module_offset = 0x29d90;
	libc.function = "__libc_start_call_main";
	libc.function_offset = 0x7a;
	libc.function_offset_known = true;
	cur.frames.push_back(libc);
	Thread other;
	other.pthread_id = 0x7f1e2abff6c0;
	NativeFrame bare;
	bare.pc = 0x1234;
	other.frames.push_back(bare);
	NativeFrame nosym;
	nosym.pc = 0x55d000001000;
	nosym.module = "/usr/bin/python3";
	nosym.module_offset = 0x32dcbd;
	other.frames.push_back(nosym);
	tb.threads = {cur, other};

	CHECK(render(tb) ==
	      "Fatal error: Segmentation fault\n"
	      "\n"
	      "Current thread 0x00007f1e2a3fe6c0 (most recent call first):\n"
	      "  File \"/src/crash.c\", line 36 in crash_leaf\n"
	      "  File \"/src/crash.c\", line 44 in crash_mid\n"
	      "  Binary file \"/usr/lib/x86_64-linux-gnu/libc.so.6\", at "
	      "__libc_start_call_main+0x7a [0x7f1e2a229d90]\n"
	      "\n"
	      "Thread 0x00007f1e2abff6c0 (most recent call first):\n"
	      "  Binary file '<unknown>' [0x1234]\n"
	      "  Binary file \"/usr/bin/python3\", at +0x32dcbd [0x55d000001000]\n");
}

TEST_CASE("unknown pieces print as ???", "[render]")
{
	NativeFrame f = source_frame("/a.c", 3, "");
	CHECK(render_frame(f) == "  File \"/a.c\", line 3 in ???\n");
	// A file without a line is not a source position: the binary form.
	NativeFrame g = source_frame("/a.c", 0, "f");
	g.module_offset = 0x10;
	CHECK(render_frame(g) == "  Binary file \"/usr/bin/x\", at +0x10 [0x401000]\n");
}

TEST_CASE("strings are escaped and truncated like faulthandler's", "[render]")
{
	CHECK(escape_bytes("plain ascii ~") == "plain ascii ~");
	CHECK(escape_bytes("tab\there") == "tab\\x09here");
	CHECK(escape_bytes("caf\xc3\xa9") == "caf\\xc3\\xa9");
	CHECK(escape_bytes(std::string(500, 'a')) == std::string(500, 'a'));
	CHECK(escape_bytes(std::string(501, 'a')) == std::string(500, 'a') + "...");
}

TEST_CASE("frame limit and truncation markers", "[render]")
{
	Thread t;
	t.pthread_id = 1;
	for (int i = 0; i < 120; i++)
		t.frames.push_back(source_frame("/r.c", i + 1, "recurse"));
	Incident tb;
	tb.threads = {t};
	std::string out = render(tb);
	CHECK(out.find("line 100 in recurse\n  ...\n") != std::string::npos);
	CHECK(out.find("line 101 in") == std::string::npos);

	Thread cut;
	cut.frames.push_back(source_frame("/r.c", 1, "f"));
	cut.truncated = true;
	tb.threads = {cut};
	CHECK(render(tb) == "Thread 0x0000000000000000 (most recent call first):\n"
			    "  File \"/r.c\", line 1 in f\n"
			    "  ...\n");

	Thread none;
	tb.threads = {none};
	CHECK(render(tb) == "Thread 0x0000000000000000 (most recent call first):\n"
			    "  <no native frame>\n");
}
