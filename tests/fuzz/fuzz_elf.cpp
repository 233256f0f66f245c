// libFuzzer harness: ELF files a target names, read as root: ElfFile
// (userspace/process/elf_file.cpp: symbols, sections, segments, bytes at an
// address, the dynamic section), the interpreter detection on top of it
// (userspace/python/python.cpp), and the unwinder's symbolizer and CFI on the same
// file (userspace/symbolize/unwinder.cpp, libdw).
//
// Input: one byte choosing the file's name (a plain name, or a libpython's
// or a python executable's, which the detection reads a version from),
// uint32 an offset in the file's mapping, then the file's bytes, written to
// a file in a private temporary directory (ElfFile and libdw read files by
// path).  Checked: a read gives the bytes asked for or nothing; the
// unwinder keeps its frame limit.
#include "fuzz_input.h"
#include "process/elf_file.h"
#include "python/python.h"
#include "symbolize/unwinder.h"

#include <fcntl.h>
#include <unistd.h>

using namespace fh;

namespace {

std::string dir;

void write_file(const std::string &path, const std::vector<uint8_t> &bytes)
{
	int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	FUZZ_CHECK(fd >= 0);
	size_t done = 0;
	while (done < bytes.size()) {
		ssize_t n = write(fd, bytes.data() + done, bytes.size() - done);
		FUZZ_CHECK(n > 0);
		done += static_cast<size_t>(n);
	}
	close(fd);
}

void elf_file(const std::string &path, uint32_t offset)
{
	auto elf = ElfFile::open(path);
	if (!elf)
		return;
	elf->symbol("_PyRuntime");
	elf->symbol("");
	elf->section_address(".PyRuntime");
	elf->first_load_vaddr();
	elf->needed();
	elf->rpath();
	elf->runpath();
	for (const auto &s : elf->loads()) {
		// A hostile filesz may be the largest value: no modulo by 0.
		uint64_t within = s.filesz == UINT64_MAX ? offset : offset % (s.filesz + 1);
		if (auto b = elf->read(s.vaddr + within, 64))
			FUZZ_CHECK(b->size() == 64);
	}
	if (auto b = elf->read(offset, 16))
		FUZZ_CHECK(b->size() == 16);
}

void symbolize(const std::string &path, uint32_t offset, const std::vector<uint8_t> &stack)
{
	constexpr uint64_t kStart = 0x400000, kEnd = 0x4000000;
	Mapping m;
	m.start = kStart;
	m.end = kEnd;
	m.perms = "r-xp";
	m.path = path;
	Unwinder u(getpid());
	try {
		u.report_maps(MappingSet({m}));
	} catch (const std::exception &) {
		return;
	}
	uint64_t pc = kStart + offset % (kEnd - kStart);
	u.symbolize(pc, false);
	u.symbolize(pc, true);
	ThreadCapture t;
	t.tid = static_cast<uint32_t>(getpid());
	t.regs[16] = pc;
	t.regs[7] = t.stack_addr = 0x7ff000000000;
	t.regs[6] = t.stack_addr + 16;
	t.stack = stack;
	Unwinder::Result r = u.unwind(t, 32);
	FUZZ_CHECK(r.frames.size() <= 32);
}

} // namespace

extern "C" int LLVMFuzzerInitialize(int *, char ***)
{
	char tmpl[] = "/tmp/fh-fuzz-elf-XXXXXX";
	FUZZ_CHECK(mkdtemp(tmpl));
	dir = tmpl;
	// Remove the directory when the fuzzer exits (libFuzzer calls exit()).
	std::atexit([] {
		for (const char *n : {"f.elf", "libpython3.11.so.1.0", "python3.13", "libpython3.9.so"})
			unlink((dir + "/" + n).c_str());
		rmdir(dir.c_str());
	});
	return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *names[] = {"f.elf", "libpython3.11.so.1.0", "python3.13",
				      "libpython3.9.so"};
	fhfuzz::Input in(data, size);
	std::string path = dir + "/" + names[in.take<uint8_t>() % 4];
	uint32_t offset = in.take<uint32_t>();
	std::vector<uint8_t> bytes = in.rest();
	write_file(path, bytes);

	elf_file(path, offset);
	detect_python_file(path, path);
	stdlib_names_from_file(path);
	// The file's first bytes as the stack.
	size_t stack = std::min<size_t>(bytes.size(), 256);
	symbolize(path, offset, std::vector<uint8_t>(bytes.begin(), bytes.begin() + stack));
	return 0;
}
