// libFuzzer harness: what fh-bpf reads of other processes through /proc and
// perf side-band records: parse_maps() (userspace/process/proc.cpp), and
// parse_mmap2(), parse_exec(), parse_lost(), insert_mapping(), maps_line()
// (userspace/process/perf_records.cpp), and parse_process() (/proc/PID/stat and
// status).
//
// Input: one byte; odd: the rest is a maps text; 2 modulo 4: the rest is a
// stat text, a NUL, a status text; 0 modulo 4: the rest is perf records,
// each a uint16 length and that many bytes (handed over in a buffer of
// exactly that length).  Every mapping found is inserted into one
// map of mappings.  Checked: the map's mappings never overlap and each is
// keyed by its start; a mapping written by maps_line() reads back the same
// through parse_maps().
#include "fuzz_input.h"
#include "process/perf_records.h"
#include "process/proc.h"

#include <memory>

using namespace fh;

namespace {

void check_map(const std::map<uint64_t, FileMapping> &maps)
{
	uint64_t end = 0;
	bool first = true;
	for (const auto &[start, m] : maps) {
		FUZZ_CHECK(start == m.start);
		FUZZ_CHECK(m.start < m.end);
		FUZZ_CHECK(first || m.start >= end);
		FUZZ_CHECK(!m.path.empty());
		end = m.end;
		first = false;
	}
}

void round_trip(const FileMapping &m)
{
	std::string line = maps_line(m, m.path);
	std::vector<Mapping> back = parse_maps(line);
	FUZZ_CHECK(back.size() == 1);
	FUZZ_CHECK(back[0].start == m.start && back[0].end == m.end && back[0].offset == m.pgoff);
	FUZZ_CHECK(back[0].ino == m.ino);
	// A name as /proc writes it: a newline as "\012", a name that holds
	// that text itself reads as one with a newline (the kernel's format
	// cannot tell them apart); leading blanks are the column padding's.
	bool plain = m.path.find("\\012") == std::string::npos &&
		     (m.path.empty() || !std::isspace(static_cast<unsigned char>(m.path[0])));
	if (plain)
		FUZZ_CHECK(back[0].path == m.path);
}

void add(std::map<uint64_t, FileMapping> &maps, const FileMapping &m)
{
	if (m.start >= m.end)
		return; // insert_mapping() wants a range; its callers give one
	insert_mapping(maps, m);
	check_map(maps);
	round_trip(m);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fhfuzz::Input in(data, size);
	uint8_t mode = in.take<uint8_t>();
	std::map<uint64_t, FileMapping> maps;
	if (mode & 1) {
		std::vector<uint8_t> rest = in.rest();
		for (const Mapping &p : parse_maps(std::string(rest.begin(), rest.end()))) {
			FileMapping m;
			m.start = p.start;
			m.end = p.end;
			m.pgoff = p.offset;
			m.maj = p.maj;
			m.min = p.min;
			m.ino = p.ino;
			m.path = p.path;
			add(maps, m);
		}
		return 0;
	}
	if (mode & 2) {
		std::vector<uint8_t> rest = in.rest();
		std::string text(rest.begin(), rest.end());
		size_t nul = text.find('\0');
		std::string stat = text.substr(0, nul);
		std::string status = nul == std::string::npos ? std::string() : text.substr(nul + 1);
		if (auto info = parse_process(1, stat, status)) {
			FUZZ_CHECK(info->tgid > 0);
			FUZZ_CHECK(info->comm.size() < stat.size());
		}
		return 0;
	}
	while (in.left() >= 2) {
		std::vector<uint8_t> rec = in.bytes(in.take<uint16_t>());
		std::unique_ptr<uint8_t[]> exact(new uint8_t[rec.size()]);
		std::copy(rec.begin(), rec.end(), exact.get());
		if (auto m = parse_mmap2(exact.get(), rec.size())) {
			FUZZ_CHECK(m->m.start < m->m.end);
			add(maps, m->m);
		}
		parse_exec(exact.get(), rec.size());
		parse_lost(exact.get(), rec.size());
	}
	return 0;
}
