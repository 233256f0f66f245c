// Incident records read back: the model as written, its text the same, and
// a clear error for anything else.
#include <catch2/catch.hpp>

#include "output/json.h"
#include "report/incident.h"
#include "report/text.h"
#include "util/error.h"

#include <linux/types.h>

extern "C" {
#include "fh/records.h"
}

using namespace fh;

namespace {

Incident native_incident()
{
	Incident inc;
	inc.time_ns = 1764585067123456000ull;
	inc.host = "node-7";
	inc.kernel = "6.18.0";
	inc.trigger = FH_TRIGGER_FATAL_SIGNAL;
	inc.pid = 4242;
	inc.tid = 4243;
	inc.comm = "app";
	inc.thread_name = "worker";
	inc.sig = 9;
	inc.si_code = 0x80; // SI_KERNEL
	inc.terminated = true;
	inc.sender = Sender{99, 0, 0, "hog", true};
	inc.sender->kernel_function = "oom_kill_process";
	inc.sender->kernel_what = "the OOM killer";
	inc.ns_tid = 3;
	inc.pid_ns_level = 1;
	inc.process.exe = "/usr/bin/app\xff"; // comes back as the text \xff
	inc.process.cmdline = {"app", "--flag"};
	inc.process.uid = 1000;
	inc.process.ns_pid = 12;
	inc.header = fatal_header(9);
	Thread t;
	t.pthread_id = 0x7f0000001000;
	t.tid = 4243;
	t.name = "worker";
	t.current = true;
	NativeFrame src{0x401000, "leaf", 0, false, "/src/a.c", 12, "/usr/bin/app", 0x1000, true};
	NativeFrame bin{0x7f0000042000, "__libc_start_main", 0x80, true, "", 0,
			"/usr/lib/libc.so.6", 0x29d90, false};
	NativeFrame lost{0x1234, "", 0, false, "", 0, "", 0, false};
	t.frames = {src, bin, lost};
	t.truncated = true;
	inc.threads = {t, Thread{}};
	inc.threads_skipped = 2;
	inc.losses = {{"threads_skipped", 2, "2 threads beyond --max-threads not captured"}};
	return inc;
}

Incident python_incident()
{
	Incident inc;
	inc.time_ns = 1764585067000001000ull;
	inc.trigger = FH_TRIGGER_FATAL_SIGNAL;
	inc.pid = 7;
	inc.tid = 7;
	inc.comm = "python3";
	inc.sig = 11;
	inc.si_code = 1;
	inc.fault_addr = 0x10;
	inc.python = PythonDialect{13, 0x030d0000, "3.13.0"};
	inc.header = fatal_header(11, true);
	for (int i = 0; i < 100; i++) {
		Thread t;
		t.pthread_id = 0x1000 + i;
		t.tid = 5000 + i; // on the host; in its pid namespace:
		t.ns_tid = 1 + i;
		t.current = i == 0;
		t.garbage_collecting = i == 0;
		t.frames = {PyFrame{std::string("/srv/app.py"), 10 + i, std::string("f")},
			    PyFrame{std::nullopt, -1, std::nullopt}, PyFrame{std::string(""), 0,
									    std::string("<module>")}};
		inc.threads.push_back(t);
	}
	inc.more_threads = true;
	inc.extension_modules = {"numpy.core._multiarray_umath", "ujson"};
	inc.modules_total = 5;
	return inc;
}

} // namespace

TEST_CASE("an incident record reads back into the same model: its JSON and text the same",
	  "[json]")
{
	// A fault the process's own handler took, then died of, or exited
	// from; one reported at the fault (--handled).
	Incident died = python_incident(), exited = python_incident(), handled = native_incident();
	died.handler = TargetHandler{TargetHandler::End::died, 6, -6, 0, 0};
	exited.handler = TargetHandler{TargetHandler::End::exited, 0, 0, 0, 7};
	handled.handler = TargetHandler{};
	for (const Incident &inc : {native_incident(), python_incident(), died, exited, handled}) {
		std::string line = incident_json(inc);
		Incident back = incident_from_json(line);
		CHECK(incident_json(back) == line);
		CHECK(render_text(back) == render_text(inc));
		CHECK(headline(back) == headline(inc));
		CHECK(incident_stem(back) == incident_stem(inc));
	}
	// What only a Python text shows: "Garbage-collecting", "..." after the
	// 100th thread, the cut module list, and no "..." after 3.13.0's frames.
	std::string text = render_text(incident_from_json(incident_json(python_incident())));
	CHECK(text.find("  Garbage-collecting\n") != std::string::npos);
	CHECK(text.substr(text.size() - 120).find("\n...\n\nExtension modules: "
						  "numpy.core._multiarray_umath, ujson, ... (total: 5)\n") !=
	      std::string::npos);
	CHECK(text.find("  File \"\", line 0 in <module>\n") != std::string::npos);
	CHECK(headline(died).find(", handled by the process, which then died of SIGABRT\n") !=
	      std::string::npos);
	CHECK(incident_json(died).find(
		      R"("handler":{"end":"died","signal":"SIGABRT","code":"SI_TKILL","sender_pid":null})") !=
	      std::string::npos);
	CHECK(headline(exited).find(", which then exited with status 7\n") != std::string::npos);
	CHECK(incident_json(native_incident()).find(R"("handler":null)") != std::string::npos);
	// A record from before the field: no handler.
	std::string old = incident_json(native_incident());
	old.replace(old.find(R"("handler":null,)"), std::strlen(R"("handler":null,)"), "");
	CHECK_FALSE(incident_from_json(old).handler);
	// Each thread's TIDs, on the host and in its pid namespace.
	Incident back = incident_from_json(incident_json(python_incident()));
	CHECK(back.threads[1].tid == 5001);
	CHECK(back.threads[1].ns_tid == 2);
	CHECK(incident_json(python_incident()).find("\"tid\":5001,\"ns_tid\":2,") !=
	      std::string::npos);
}

TEST_CASE("what is no incident record is refused with a reason", "[json]")
{
	using Catch::Matchers::Contains;
	CHECK_THROWS_WITH(incident_from_json("not json"), Contains("not JSON"));
	CHECK_THROWS_WITH(incident_from_json("{\"schema\":2}"), Contains("schema 3"));
	CHECK_THROWS_WITH(incident_from_json("[1,2]"), Contains("schema 3"));
	std::string line = incident_json(native_incident());
	std::string no_pid = line;
	no_pid.replace(no_pid.find("\"pid\":4242,"), 11, "");
	CHECK_THROWS_WITH(incident_from_json(no_pid), Contains("pid"));
	std::string bad_hex = line;
	bad_hex.replace(bad_hex.find("\"pthread\":\"0x7f0000001000\""), 26, "\"pthread\":\"zz\"");
	CHECK_THROWS_WITH(incident_from_json(bad_hex), Contains("'zz' is no hex number"));
	CHECK_THROWS_AS(incident_from_json(""), Error);
}
