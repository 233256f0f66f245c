// sys.stdlib_module_names as the kernel reads it at a fatal signal: names
// packed in parts, then the outcome; anything malformed is refused.
#include <catch2/catch.hpp>

#include "capture/records.h"

#include <linux/types.h>

#include <cstring>
#include <string>
#include <vector>

extern "C" {
#include "fh/records.h"
}

using namespace fh;

namespace
{

std::vector<uint8_t> bytes_of(const void *p, size_t n)
{
	const auto *b = static_cast<const uint8_t *>(p);
	return std::vector<uint8_t>(b, b + n);
}

std::vector<uint8_t> event_rec(uint64_t id)
{
	fh_event_record r{};
	r.hdr = {FH_REC_EVENT, sizeof(r), id};
	r.tgid = 100;
	r.tid = 100;
	r.sig = 11;
	r.trigger = FH_TRIGGER_FATAL_SIGNAL;
	return bytes_of(&r, sizeof(r));
}

std::vector<uint8_t> end_rec(uint64_t id)
{
	fh_event_end_record r{};
	r.hdr = {FH_REC_EVENT_END, sizeof(r), id};
	return bytes_of(&r, sizeof(r));
}

// A stdlib record of ASCII names (kind 1), or of one name of another kind.
struct StdlibRec {
	fh_py_stdlib_record r{};
	explicit StdlibRec(uint64_t id, uint32_t status)
	{
		r.hdr = {FH_REC_PY_STDLIB, 0, id}, r.status = status;
	}
	StdlibRec &name(const std::vector<uint8_t> &data, int kind, uint32_t length)
	{
		uint8_t *at = r.data + r.bytes;
		uint16_t n = static_cast<uint16_t>(data.size());
		at[0] = static_cast<uint8_t>(kind);
		std::memcpy(at + 2, &n, 2);
		std::memcpy(at + 4, &length, 4);
		std::memcpy(at + 8, data.data(), data.size());
		r.bytes += (8 + n + 7) & ~7u;
		r.names++;
		return *this;
	}
	StdlibRec &ascii(const std::string &s)
	{
		return name(std::vector<uint8_t>(s.begin(), s.end()), 1,
			    static_cast<uint32_t>(s.size()));
	}
	std::vector<uint8_t> bytes()
	{
		r.hdr.size = static_cast<__u32>(offsetof(fh_py_stdlib_record, data) + r.bytes);
		return bytes_of(&r, r.hdr.size);
	}
};

Event assemble(std::vector<std::vector<uint8_t>> recs, uint64_t *malformed = nullptr)
{
	Assembler a;
	Assembler::Output out;
	recs.insert(recs.begin(), event_rec(1));
	recs.push_back(end_rec(1));
	for (const auto &r : recs)
		a.feed(r.data(), r.size(), out);
	if (malformed)
		*malformed = a.malformed();
	REQUIRE(out.events.size() == 1);
	return std::move(out.events[0]);
}

std::vector<std::string> ascii_names(const Event &ev)
{
	std::vector<std::string> out;
	for (const auto &n : ev.py_stdlib_names)
		out.emplace_back(n.name.begin(), n.name.end());
	return out;
}

} // namespace

TEST_CASE("stdlib names: parts, then the outcome", "[records][python]")
{
	uint64_t malformed = 0;
	Event ev = assemble({StdlibRec(1, FH_PY_STDLIB_PART).ascii("sys").ascii("_json").bytes(),
			     StdlibRec(1, FH_PY_STDLIB_FOUND).ascii("posix").bytes()},
			    &malformed);
	CHECK(malformed == 0);
	CHECK(ev.py_stdlib == FH_PY_STDLIB_FOUND);
	CHECK(ascii_names(ev) == std::vector<std::string>{"sys", "_json", "posix"});

	// A 2-byte-character name keeps its code points.
	ev = assemble(
	    {StdlibRec(1, FH_PY_STDLIB_FOUND).name({0xbb, 0x03, 0x16, 0x04}, 2, 2).bytes()});
	REQUIRE(ev.py_stdlib_names.size() == 1);
	CHECK(ev.py_stdlib_names[0].name == std::vector<uint32_t>{0x3bb, 0x416});

	// No such frozenset: known, and empty.
	ev = assemble({StdlibRec(1, FH_PY_STDLIB_ABSENT).bytes()});
	CHECK(ev.py_stdlib == FH_PY_STDLIB_ABSENT);
	CHECK(ev.py_stdlib_names.empty());

	// A read that failed after a part: no name stands.
	ev = assemble({StdlibRec(1, FH_PY_STDLIB_PART).ascii("sys").bytes(),
		       StdlibRec(1, FH_PY_STDLIB_UNREADABLE).bytes()});
	CHECK(ev.py_stdlib == FH_PY_STDLIB_UNREADABLE);
	CHECK(ev.py_stdlib_names.empty());

	// Nothing read at all (a native process, 3.9): not known.
	ev = assemble({});
	CHECK(ev.py_stdlib == 0);
}

TEST_CASE("stdlib names: malformed records are refused", "[records][python]")
{
	auto check_refused = [](std::vector<uint8_t> rec) {
		uint64_t malformed = 0;
		Event ev = assemble({rec}, &malformed);
		CHECK(malformed == 1);
		CHECK(ev.py_stdlib == 0);
		CHECK(ev.py_stdlib_names.empty());
	};
	// A name's bytes past the record's.
	auto r = StdlibRec(1, FH_PY_STDLIB_FOUND).ascii("abc").bytes();
	r[offsetof(fh_py_stdlib_record, data) + 2] = 200;
	check_refused(r);
	// A kind no str has.
	r = StdlibRec(1, FH_PY_STDLIB_FOUND).ascii("abc").bytes();
	r[offsetof(fh_py_stdlib_record, data)] = 3;
	check_refused(r);
	// Fewer names than said.
	StdlibRec counted(1, FH_PY_STDLIB_FOUND);
	counted.ascii("abc").r.names = 2;
	check_refused(counted.bytes());
	// An outcome that is none.
	check_refused(StdlibRec(1, 77).bytes());
	// bytes past the record's size.
	r = StdlibRec(1, FH_PY_STDLIB_FOUND).ascii("abc").bytes();
	r.resize(r.size() - 4);
	check_refused(r);
}
