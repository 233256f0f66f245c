// libFuzzer harness: what fh-bpf reads of other processes through /proc and
// perf side-band records: parse_maps() and MappingSet
// (userspace/process/mappings.cpp), and parse_mmap2(), parse_exec(),
// parse_lost(), insert_mapping(), as_mapping(), as_file_mapping()
// (userspace/process/perf_records.cpp), and parse_process() (/proc/PID/stat
// and status).
//
// Input: one byte; odd: the rest is a maps text; 2 modulo 4: the rest is a
// stat text, a NUL, a status text; 0 modulo 4: the rest is perf records,
// each a uint16 length and that many bytes (handed over in a buffer of
// exactly that length).  Every mapping found is inserted into one
// map of mappings.  Checked: a parsed set is sorted, its files each named
// once, the first of them its first file, each segment found at its start;
// the map's mappings never overlap and each is keyed by its start; a
// mapping written as the kernel writes a maps line reads back the same
// through parse_maps(), and as a Mapping and back the same.
#include "fuzz_input.h"
#include "process/mappings.h"
#include "process/perf_records.h"
#include "process/proc.h"

#include <sys/mman.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <memory>
#include <set>

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

void check_set(const MappingSet &set)
{
	const auto &segs = set.segments();
	bool disjoint = true;
	for (size_t i = 1; i < segs.size(); i++) {
		FUZZ_CHECK(segs[i - 1].start <= segs[i].start);
		disjoint = disjoint && segs[i - 1].end <= segs[i].start;
	}
	std::vector<std::string> files = set.files();
	std::set<std::string> once(files.begin(), files.end());
	FUZZ_CHECK(once.size() == files.size());
	FUZZ_CHECK(set.first_file() == (files.empty() ? std::string() : files.front()));
	for (const auto &path : files)
		FUZZ_CHECK(!path.empty() && path[0] == '/');
	for (const auto &m : segs) {
		const Mapping *at = set.find(m.start);
		FUZZ_CHECK(!at || (at->start == m.start && m.start < at->end));
		if (disjoint && m.start < m.end)
			FUZZ_CHECK(at == &m);
	}
	FUZZ_CHECK(set == MappingSet(segs));
}

// One line of /proc/PID/maps as the kernel writes it (show_map_vma): the
// path padded to a column, a newline in it as "\012".
std::string kernel_line(const FileMapping &m)
{
	char buf[160];
	int n = std::snprintf(buf, sizeof(buf),
			      "%08" PRIx64 "-%08" PRIx64 " %c%c%c%c %08" PRIx64
			      " %02x:%02x %" PRIu64 " ",
			      m.start, m.end, m.prot & PROT_READ ? 'r' : '-',
			      m.prot & PROT_WRITE ? 'w' : '-', m.prot & PROT_EXEC ? 'x' : '-',
			      m.flags & MAP_SHARED ? 's' : 'p', m.pgoff, m.maj, m.min, m.ino);
	std::string out(buf, static_cast<size_t>(std::max(n, 0)));
	if (!m.path.empty())
		out.append(out.size() < 73 ? 73 - out.size() : 0, ' ');
	for (char c : m.path)
		out += c == '\n' ? std::string("\\012") : std::string(1, c);
	return out + "\n";
}

void round_trip(const FileMapping &m)
{
	MappingSet back = parse_maps(kernel_line(m));
	check_set(back);
	FUZZ_CHECK(back.size() == 1);
	const Mapping &b = back.segments()[0];
	FUZZ_CHECK(b.start == m.start && b.end == m.end && b.offset == m.pgoff);
	FUZZ_CHECK(b.ino == m.ino);
	// A name as /proc writes it: a newline as "\012", a name that holds
	// that text itself reads as one with a newline (the kernel's format
	// cannot tell them apart); leading blanks are the column padding's.
	bool plain = m.path.find("\\012") == std::string::npos &&
		     (m.path.empty() || !std::isspace(static_cast<unsigned char>(m.path[0])));
	if (plain)
		FUZZ_CHECK(b.path == m.path);

	// The segment as a Mapping, and back: nothing lost.
	Mapping as = as_mapping(m, m.path);
	if (plain)
		FUZZ_CHECK(as == b);
	FileMapping f = as_file_mapping(as);
	FUZZ_CHECK(f.start == m.start && f.end == m.end && f.pgoff == m.pgoff);
	FUZZ_CHECK(f.maj == m.maj && f.min == m.min && f.ino == m.ino && f.path == m.path);
	FUZZ_CHECK(f.prot == (m.prot & (PROT_READ | PROT_WRITE | PROT_EXEC)));
	FUZZ_CHECK((f.flags & MAP_SHARED) == (m.flags & MAP_SHARED));
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
		MappingSet set = parse_maps(
			std::string_view(reinterpret_cast<const char *>(rest.data()), rest.size()));
		check_set(set);
		for (const Mapping &p : set)
			add(maps, as_file_mapping(p));
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
