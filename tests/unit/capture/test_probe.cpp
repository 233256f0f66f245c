// Kernel feature probing: what is missing is named, with exit status 4.
#include <catch2/catch.hpp>

#include "capture/capture.h"
#include "util/error.h"
#include "support.h"

#include <cstdint>
#include <cstdio>

using namespace fh;

namespace {

std::string probe_error(const std::string &path, int *status)
{
	try {
		probe_kernel(path);
	} catch (const Error &e) {
		*status = e.status();
		return e.what();
	}
	*status = 0;
	return {};
}

} // namespace

TEST_CASE("a kernel without BTF is named as such", "[probe]")
{
	int status = 0;
	std::string msg = probe_error("/nonexistent/btf/vmlinux", &status);
	CHECK(status == kExitNoSupport);
	CHECK(msg.find("no BTF") != std::string::npos);
	CHECK(msg.find("CONFIG_DEBUG_INFO_BTF") != std::string::npos);
}

TEST_CASE("a kernel BTF without the tracepoints and kfuncs lists every one missing",
	  "[probe]")
{
	// A valid raw BTF with no types at all stands in for such a kernel.
	struct {
		uint16_t magic = 0xeb9f;
		uint8_t version = 1;
		uint8_t flags = 0;
		uint32_t hdr_len = 24;
		uint32_t type_off = 0, type_len = 0, str_off = 0, str_len = 1;
		char strings[1] = {0};
	} __attribute__((packed)) empty;
	std::string path = fhtest::temp_path("empty.btf");
	FILE *f = std::fopen(path.c_str(), "wb");
	REQUIRE(f);
	REQUIRE(std::fwrite(&empty, sizeof(empty), 1, f) == 1);
	std::fclose(f);
	int status = 0;
	std::string msg = probe_error(path, &status);
	std::remove(path.c_str());
	INFO(msg);
	CHECK(status == kExitNoSupport);
	for (const char *what : {"signal_generate tracepoint", "signal_deliver tracepoint",
				 "sys_exit tracepoint", "sched_process_exec tracepoint",
				 "bpf_iter_task kfuncs"})
		CHECK(msg.find(what) != std::string::npos);
}

TEST_CASE("this machine's kernel has everything", "[probe]")
{
	int status = -1;
	std::string msg = probe_error("/sys/kernel/btf/vmlinux", &status);
	INFO(msg);
	CHECK(status == 0);
}
