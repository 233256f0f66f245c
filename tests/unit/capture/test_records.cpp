// Record decoding: well-formed sequences assemble; anything malformed is
// counted and dropped, never trusted.
#include <catch2/catch.hpp>

#include "util/clock.h"
#include "capture/records.h"

#include <linux/types.h>

#include <cstring>
#include <vector>

extern "C" {
#include "fh/records.h"
}

using namespace fh;

namespace {

std::vector<uint8_t> event_rec(uint64_t id, int sig)
{
	fh_event_record r{};
	r.hdr.kind = FH_REC_EVENT;
	r.hdr.size = sizeof(r);
	r.hdr.event_id = id;
	r.tgid = 100;
	r.tid = 101;
	r.sig = sig;
	r.si_code = 1;
	r.fault_addr = 0xdead;
	r.trigger = FH_TRIGGER_FATAL_SIGNAL;
	r.flags = FH_EVENT_EXTERNAL;
	r.sender_tgid = 7;
	std::strcpy(r.sender_comm, "kill");
	std::strcpy(r.comm, "target");
	std::vector<uint8_t> out(sizeof(r));
	std::memcpy(out.data(), &r, sizeof(r));
	return out;
}

std::vector<uint8_t> thread_rec(uint64_t id, uint32_t tid, const std::vector<uint8_t> &stack,
				size_t slack = 0)
{
	fh_thread_record r{};
	r.hdr.kind = FH_REC_THREAD;
	r.hdr.size = sizeof(r) + stack.size();
	r.hdr.event_id = id;
	r.tid = tid;
	r.ns_tid = tid - 100; // a pid namespace of its own
	r.flags = tid == 101 ? FH_THREAD_HIT : 0;
	r.fs_base = 0x7f0000000000ull + tid;
	std::strcpy(r.comm, "worker");
	r.regs[FH_REG_RIP] = 0x401000;
	r.regs[FH_REG_RSP] = 0x7ffc0000;
	r.stack_addr = 0x7ffc0000;
	r.stack_len = static_cast<__u32>(stack.size());
	std::vector<uint8_t> out(sizeof(r) + stack.size() + slack);
	std::memcpy(out.data(), &r, sizeof(r));
	std::memcpy(out.data() + sizeof(r), stack.data(), stack.size());
	return out;
}

std::vector<uint8_t> end_rec(uint64_t id, uint32_t n, uint32_t skipped)
{
	fh_event_end_record r{};
	r.hdr.kind = FH_REC_EVENT_END;
	r.hdr.size = sizeof(r);
	r.hdr.event_id = id;
	r.nr_threads = n;
	r.threads_skipped = skipped;
	std::vector<uint8_t> out(sizeof(r));
	std::memcpy(out.data(), &r, sizeof(r));
	return out;
}

void feed(Assembler &a, const std::vector<uint8_t> &rec, Assembler::Output &out)
{
	a.feed(rec.data(), rec.size(), out);
}

} // namespace

TEST_CASE("an event assembles from its records", "[records]")
{
	Assembler a;
	Assembler::Output out;
	feed(a, event_rec(1, 11), out);
	// Ring records are reserved with slack past the stack copy.
	feed(a, thread_rec(1, 101, {1, 2, 3, 4, 5, 6, 7, 8}, 4096), out);
	feed(a, thread_rec(1, 102, {}), out);
	REQUIRE(out.events.empty());
	feed(a, end_rec(1, 2, 3), out);
	REQUIRE(out.events.size() == 1);
	const Event &ev = out.events[0];
	CHECK(ev.complete);
	CHECK(ev.sig == 11);
	CHECK(ev.tgid == 100);
	CHECK(ev.hit_tid == 101);
	CHECK(ev.fault_addr == 0xdead);
	CHECK(ev.comm == "target");
	REQUIRE(ev.sender);
	CHECK(ev.sender->tgid == 7);
	CHECK(ev.sender->comm == "kill");
	CHECK(ev.threads_skipped == 3);
	REQUIRE(ev.threads.size() == 2);
	CHECK(ev.threads[0].hit());
	CHECK(ev.threads[0].stack == std::vector<uint8_t>{1, 2, 3, 4, 5, 6, 7, 8});
	CHECK(ev.threads[0].pthread_id == 0x7f0000000000ull + 101);
	CHECK(ev.threads[0].ns_tid == 1);
	CHECK(ev.threads[0].name == "worker");
	CHECK(ev.threads[0].regs[16] == 0x401000);
	CHECK_FALSE(ev.threads[1].hit());
	CHECK(a.malformed() == 0);
}

TEST_CASE("interleaved events from two CPUs stay apart", "[records]")
{
	Assembler a;
	Assembler::Output out;
	feed(a, event_rec(1, 11), out);
	feed(a, event_rec(2, 6), out);
	feed(a, thread_rec(2, 201, {}), out);
	feed(a, thread_rec(1, 101, {}), out);
	feed(a, end_rec(2, 1, 0), out);
	feed(a, end_rec(1, 1, 0), out);
	REQUIRE(out.events.size() == 2);
	CHECK(out.events[0].id == 2);
	CHECK(out.events[0].threads.at(0).tid == 201);
	CHECK(out.events[1].threads.at(0).tid == 101);
}

TEST_CASE("malformed records are counted, not trusted", "[records]")
{
	Assembler a;
	Assembler::Output out;
	feed(a, event_rec(1, 11), out);

	auto short_rec = thread_rec(1, 101, {1, 2, 3});
	short_rec.resize(20); // shorter than the fixed part
	feed(a, short_rec, out);

	auto lying = thread_rec(1, 101, {1, 2, 3, 4});
	fh_thread_record r;
	std::memcpy(&r, lying.data(), sizeof(r));
	r.stack_len = 4096; // claims more bytes than the record holds
	std::memcpy(lying.data(), &r, sizeof(r));
	feed(a, lying, out);

	auto oversize = thread_rec(1, 101, {1, 2});
	std::memcpy(&r, oversize.data(), sizeof(r));
	r.hdr.size = 1 << 20; // claims more than the ring handed out
	std::memcpy(oversize.data(), &r, sizeof(r));
	feed(a, oversize, out);

	std::vector<uint8_t> junk = {9, 9, 9};
	feed(a, junk, out);
	auto unknown = end_rec(1, 0, 0);
	unknown[0] = 99; // no such kind
	feed(a, unknown, out);

	CHECK(a.malformed() == 5);
	feed(a, end_rec(1, 0, 0), out);
	REQUIRE(out.events.size() == 1);
	CHECK(out.events[0].threads.empty());
}

TEST_CASE("records of an unknown event are orphans; unfinished events are handed back",
	  "[records]")
{
	Assembler a;
	Assembler::Output out;
	feed(a, thread_rec(5, 1, {}), out);
	feed(a, end_rec(5, 1, 0), out);
	CHECK(a.orphans() == 2);
	CHECK(out.events.empty());

	feed(a, event_rec(6, 11), out);
	feed(a, thread_rec(6, 101, {}), out);
	auto incomplete = a.take_incomplete();
	REQUIRE(incomplete.size() == 1);
	CHECK_FALSE(incomplete[0].complete);
	CHECK(incomplete[0].threads.size() == 1);
	CHECK(a.take_incomplete().empty());

	// One whose end record the ring had no room for: handed back once its
	// event record is older than asked, not before.
	feed(a, event_rec(7, 12), out);
	feed(a, thread_rec(7, 102, {}), out);
	CHECK(a.take_stale(0).empty());
	auto stale = a.take_stale(fh::monotonic_ns() + 1);
	REQUIRE(stale.size() == 1);
	CHECK(stale[0].id == 7);
	CHECK_FALSE(stale[0].complete);
	CHECK(stale[0].threads.size() == 1);
	CHECK(a.take_incomplete().empty());
}

TEST_CASE("a live dump: a sample replaces the stale copy of a running thread", "[records]")
{
	Assembler a;
	Assembler::Output out;
	auto ev = event_rec(9, 0);
	reinterpret_cast<fh_event_record *>(ev.data())->trigger = FH_TRIGGER_TIMEOUT;
	feed(a, ev, out);
	feed(a, thread_rec(9, 101, {1, 2, 3, 4, 5, 6, 7, 8}), out);
	auto stale = thread_rec(9, 102, {9, 9, 9, 9, 9, 9, 9, 9});
	reinterpret_cast<fh_thread_record *>(stale.data())->flags = FH_THREAD_ON_CPU;
	feed(a, stale, out);
	auto other = thread_rec(9, 103, {});
	reinterpret_cast<fh_thread_record *>(other.data())->flags = FH_THREAD_ON_CPU;
	feed(a, other, out);
	CHECK(out.events.empty()); // a live event has no end record: it is finished

	auto sample = thread_rec(9, 102, {7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7});
	reinterpret_cast<fh_thread_record *>(sample.data())->flags = FH_THREAD_SAMPLED;
	feed(a, sample, out);
	// A retake for a thread the event does not hold is kept, not lost.
	auto retake = thread_rec(9, 104, {});
	reinterpret_cast<fh_thread_record *>(retake.data())->flags = FH_THREAD_RETAKEN;
	feed(a, retake, out);

	Assembler::LiveEnd end;
	end.threads_skipped = 3;
	end.ktime_end = 77;
	REQUIRE(a.finish_live(9, end, out));
	CHECK_FALSE(a.finish_live(9, end, out)); // once
	CHECK_FALSE(a.finish_live(10, end, out)); // never begun
	REQUIRE(out.events.size() == 1);
	const Event &e = out.events[0];
	CHECK(e.complete);
	CHECK(e.trigger == FH_TRIGGER_TIMEOUT);
	REQUIRE(e.threads.size() == 4);
	CHECK(e.threads[1].tid == 102);
	CHECK(e.threads[1].flags == FH_THREAD_SAMPLED);
	CHECK(e.threads[1].stack.size() == 16);
	CHECK(e.threads[2].tid == 103);
	CHECK(e.threads[2].flags == FH_THREAD_ON_CPU); // still stale
	CHECK(e.threads[3].tid == 104);
	CHECK(e.threads_skipped == 3);
	CHECK(e.ktime_end == 77);
	CHECK(a.malformed() == 0);
	CHECK(a.orphans() == 0);
}
