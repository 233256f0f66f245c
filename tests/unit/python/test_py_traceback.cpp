// Python tracebacks in faulthandler's words, per version: golden text.
#include <catch2/catch.hpp>

#include "python/py_traceback.h"
#include "report/text.h"

using namespace fh;

namespace {

PyFrame frame(const char *file, int line, const char *name)
{
	return PyFrame{std::string(file), line, std::string(name)};
}

// The threads as faulthandler of Python 3.minor writes them.
std::string render_python_threads(int minor, uint32_t version_hex,
				  const std::vector<Thread> &threads, bool more_threads)
{
	Incident inc;
	inc.python = PythonDialect{minor, version_hex, ""};
	inc.threads = threads;
	inc.more_threads = more_threads;
	return render_text(inc);
}

std::vector<Thread> two_threads()
{
	Thread cur;
	cur.pthread_id = 0x7f3f26ffd700;
	cur.current = true;
	cur.frames = {frame("register_example.py", 8, "do"),
		      frame("/usr/lib64/python3.6/threading.py", 864, "run")};
	Thread other;
	other.pthread_id = 0x7f3f277fe700;
	other.frames = {frame("x.py", 1, "<module>")};
	return {cur, other};
}

} // namespace

TEST_CASE("thread blocks as faulthandler writes them", "[pyrender]")
{
	CHECK(fatal_header(11, true) == "Fatal Python error: Segmentation fault\n\n");
	CHECK(render_python_threads(11, 0x030b07f0, two_threads(), false) ==
	      "Current thread 0x00007f3f26ffd700 (most recent call first):\n"
	      "  File \"register_example.py\", line 8 in do\n"
	      "  File \"/usr/lib64/python3.6/threading.py\", line 864 in run\n"
	      "\n"
	      "Thread 0x00007f3f277fe700 (most recent call first):\n"
	      "  File \"x.py\", line 1 in <module>\n");
}

TEST_CASE("unknown pieces, garbage collection, empty threads per version", "[pyrender]")
{
	Thread t;
	t.pthread_id = 1;
	t.current = true;
	t.garbage_collecting = true;
	t.frames = {PyFrame{std::nullopt, -1, std::nullopt}};
	CHECK(render_python_threads(12, 0x030c01f0, {t}, false) ==
	      "Current thread 0x0000000000000001 (most recent call first):\n"
	      "  Garbage-collecting\n"
	      "  File ???, line ??? in ???\n");
	// Before 3.10 there is no Garbage-collecting line.
	CHECK(render_python_threads(9, 0x030912f0, {t}, false).find("Garbage") ==
	      std::string::npos);

	Thread empty;
	empty.pthread_id = 2;
	CHECK(render_python_threads(7, 0, {empty}, false) ==
	      "Thread 0x0000000000000002 (most recent call first):\n");
	CHECK(render_python_threads(8, 0, {empty}, false) ==
	      "Thread 0x0000000000000002 (most recent call first):\n<no Python frame>\n");
	CHECK(render_python_threads(10, 0, {empty}, false) ==
	      "Thread 0x0000000000000002 (most recent call first):\n  <no Python frame>\n");
}

TEST_CASE("100 frames, then '  ...' except in 3.13.0; 100 threads, then '...'", "[pyrender]")
{
	Thread deep;
	deep.pthread_id = 3;
	for (int i = 0; i < 101; i++)
		deep.frames.push_back(frame("r.py", 2, "recurse"));
	std::string out = render_python_threads(12, 0x030c01f0, {deep}, false);
	CHECK(out.size() == std::string("Thread 0x0000000000000003 (most recent call first):\n").size() +
				    100 * std::string("  File \"r.py\", line 2 in recurse\n").size() +
				    std::string("  ...\n").size());
	CHECK(out.substr(out.size() - 6) == "  ...\n");
	std::string quiet = render_python_threads(13, 0x030d00f0, {deep}, false);
	CHECK(quiet.substr(quiet.size() - 6) != "  ...\n");
	CHECK(render_python_threads(13, 0x030d01f0, {deep}, false).substr(out.size() - 6) ==
	      "  ...\n");

	std::vector<Thread> many(101, Thread{});
	std::string all = render_python_threads(11, 0, many, false);
	CHECK(all.substr(all.size() - 5) == "\n...\n");
	many.resize(100);
	CHECK(render_python_threads(11, 0, many, true).substr(all.size() - 5) == "\n...\n");
	CHECK(render_python_threads(11, 0, many, false).find("...") == std::string::npos);
}

TEST_CASE("strings: escapes and the 500-character limit", "[pyrender]")
{
	auto ascii = [](const std::string &s) {
		std::vector<uint32_t> cps(s.begin(), s.end());
		return py_escape(cps, s.size());
	};
	CHECK(ascii("main.py") == "main.py");
	CHECK(ascii("tab\there") == "tab\\x09here");
	CHECK(py_escape({0xe9, 0x3b1, 0x1f600}, 3) == "\\xe9\\u03b1\\U0001f600");
	CHECK(ascii(std::string(500, 'n')) == std::string(500, 'n'));
	std::vector<uint32_t> long_name(500, 'n');
	CHECK(py_escape(long_name, 501) == std::string(500, 'n') + "...");

	const uint8_t ucs2[] = {0xb1, 0x03, 'a', 0};
	CHECK(py_code_points(ucs2, sizeof(ucs2), 2, 2, 500) == std::vector<uint32_t>{0x3b1, 'a'});
	const uint8_t ucs4[] = {0x00, 0xf6, 0x01, 0x00};
	CHECK(py_code_points(ucs4, sizeof(ucs4), 4, 1, 500) == std::vector<uint32_t>{0x1f600});
	// Lengths beyond the bytes at hand stop at the bytes.
	CHECK(py_code_points(ucs4, sizeof(ucs4), 4, 1000, 500).size() == 1);
	CHECK(py_code_points(ucs4, sizeof(ucs4), 3, 1, 500).empty());
}
