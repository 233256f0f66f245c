// The fleet agent's parts that need no kernel: rate limits, syslog records,
// kernel senders, the host-wide mapping tracker fed synthetic perf records,
// and the command line of --system-wide.
#include <catch2/catch.hpp>

#include "process/elf_file.h"
#include "util/error.h"
#include "process/host_tracker.h"
#include "process/kernel_info.h"
#include "process/mappings.h"
#include "cli/options.h"
#include "process/perf_records.h"
#include "unit/cli/usage_status.h"
#include "support.h"
#include "output/syslog.h"
#include "symbolize/unwinder.h"

#include <fcntl.h>
#include <linux/perf_event.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <fstream>

using namespace fh;

namespace {

constexpr uint64_t kSec = 1000000000ull;

// A perf record: header, body, then the sample_id time.
std::vector<uint8_t> perf_record(uint32_t type, uint16_t misc, const void *body, size_t len,
				 uint64_t time)
{
	size_t size = (sizeof(perf_event_header) + len + 8 + 7) / 8 * 8;
	std::vector<uint8_t> r(size, 0);
	perf_event_header h = {type, misc, static_cast<uint16_t>(size)};
	std::memcpy(r.data(), &h, sizeof(h));
	std::memcpy(r.data() + sizeof(h), body, len);
	std::memcpy(r.data() + size - 8, &time, 8);
	return r;
}

std::vector<uint8_t> mmap2(uint32_t pid, uint64_t addr, uint64_t len, uint64_t pgoff,
			   const std::string &path, uint64_t time)
{
	struct {
		uint32_t pid, tid;
		uint64_t addr, len, pgoff;
		uint32_t maj, min;
		uint64_t ino, ino_generation;
		uint32_t prot, flags;
		char name[256];
	} b = {};
	b.pid = b.tid = pid;
	b.addr = addr;
	b.len = len;
	b.pgoff = pgoff;
	// The file's own device and inode, as the kernel reports them (a
	// mapping of another file's is refused).
	struct stat st;
	if (stat(path.c_str(), &st) == 0) {
		b.maj = major(st.st_dev);
		b.min = minor(st.st_dev);
		b.ino = st.st_ino;
	}
	b.prot = PROT_READ | PROT_EXEC;
	b.flags = MAP_PRIVATE;
	std::strncpy(b.name, path.c_str(), sizeof(b.name) - 1);
	size_t body = offsetof(decltype(b), name) + (path.size() + 8) / 8 * 8;
	return perf_record(PERF_RECORD_MMAP2, 0, &b, body, time);
}

std::vector<uint8_t> task(uint32_t type, uint32_t pid, uint32_t ppid, uint64_t time,
			  uint32_t tid = 0)
{
	uint32_t b[6] = {pid, ppid, tid ? tid : pid, ppid, 0, 0};
	return perf_record(type, 0, b, sizeof(b), time);
}

std::vector<uint8_t> exec_comm(uint32_t pid, uint64_t time)
{
	struct {
		uint32_t pid, tid;
		char comm[16];
	} b = {pid, pid, "prog"};
	return perf_record(PERF_RECORD_COMM, PERF_RECORD_MISC_COMM_EXEC, &b, sizeof(b), time);
}

// The crash target, a binary with debug information: its absolute path,
// its ELF, its load segments and the code one of them.
struct Fixture {
	std::string path;
	ElfFile elf;
	std::vector<ElfFile::Segment> loads;
	ElfFile::Segment text;
};

Fixture crash_binary()
{
	char abs[PATH_MAX];
	REQUIRE(realpath((fhtest::build_dir() + "/targets/crash").c_str(), abs));
	auto elf = ElfFile::open(abs);
	REQUIRE(elf);
	Fixture f{abs, std::move(*elf), {}, {}};
	f.loads = f.elf.loads();
	REQUIRE(f.loads.size() >= 2);
	bool code = false;
	for (const auto &l : f.loads)
		if (l.flags & 1 /* PF_X */) {
			f.text = l;
			code = true;
		}
	REQUIRE(code);
	return f;
}

void feed(HostTracker &t, const std::vector<uint8_t> &r) { t.apply(r.data(), r.size()); }

} // namespace

TEST_CASE("rates: N/window, in seconds, minutes or hours; 0 is no limit", "[fleet]")
{
	Rate r;
	REQUIRE(parse_rate("10/60", r));
	CHECK((r.count == 10 && r.window_ns == 60 * kSec));
	REQUIRE(parse_rate("5", r));
	CHECK((r.count == 5 && r.window_ns == 60 * kSec));
	REQUIRE(parse_rate("100/1h", r));
	CHECK(r.window_ns == 3600 * kSec);
	REQUIRE(parse_rate("3/30s", r));
	CHECK(r.window_ns == 30 * kSec);
	REQUIRE(parse_rate("2/m", r));
	CHECK(r.window_ns == 60 * kSec);
	REQUIRE(parse_rate("0", r));
	CHECK(r.count == 0);
	REQUIRE(parse_rate("1/5124095h", r)); // 584 years: still fits in 64 bits of ns
	CHECK(r.window_ns == 5124095ull * 3600 * kSec);
	// More nanoseconds than 64 bits hold is an error, not a short window.
	for (const char *bad :
	     {"", "x", "5/0", "-1", "5/", "1/2d", "5/x", "10000000000", "1/5124096h"})
		CHECK_FALSE(parse_rate(bad, r));
}

TEST_CASE("RFC 5424 records: header fields, structured data escaped, parts", "[fleet]")
{
	CHECK(rfc5424_record(kSyslogDaemon, kSyslogCrit, "2026-12-01T10:31:07.123456Z", "web-1", 42,
			     "incident", {{"pid", "7"}, {"comm", "a\"b]c\\d"}}, "Fatal error") ==
	      "<26>1 2026-12-01T10:31:07.123456Z web-1 fh-bpf 42 incident [fh@32473 pid=\"7\" "
	      "comm=\"a\\\"b\\]c\\\\d\"] Fatal error");
	// A PARAM-VALUE is UTF-8: each byte of a name cut inside a character,
	// of what is not UTF-8 (an overlong form) and a control character
	// become U+FFFD; valid characters stay.
	CHECK(rfc5424_record(kSyslogDaemon, kSyslogCrit, "t", "h", 1, "m",
			     {{"comm", "caf\xc3\xa9-\xe2\x82"}, {"x", "a\nb\xff" "c\xc0\xaf" "d"}},
			     "") ==
	      "<26>1 t h fh-bpf 1 m [fh@32473 comm=\"caf\xc3\xa9-\xef\xbf\xbd\xef\xbf\xbd\" "
	      "x=\"a\xef\xbf\xbd" "b\xef\xbf\xbd" "c\xef\xbf\xbd\xef\xbf\xbd" "d\"]");
	// Not printable ASCII in a header field: dropped; empty: "-".
	CHECK(rfc5424_record(kSyslogDaemon, kSyslogNotice, "t", "h o\xc3\xa9st", 1, "", {}, "") ==
	      "<29>1 t host fh-bpf 1 - -");

	std::string text;
	for (int i = 0; i < 200; i++)
		text += "  File \"x.py\", line " + std::to_string(i) + " in f\xc3\xa9\n";
	auto parts = split_message(text, 500);
	REQUIRE(parts.size() > 1);
	std::string joined;
	for (size_t i = 0; i < parts.size(); i++) {
		CHECK(parts[i].size() <= 500);
		if (i + 1 < parts.size())
			CHECK(parts[i].back() != '\n'); // a newline starts the next part
		if (i)
			CHECK(parts[i][0] == '\n');
		joined += parts[i];
	}
	CHECK(joined == text);
	// Blank lines between thread blocks: whatever the size, no part but the
	// last ends with a newline, however the cut falls.
	std::string blocks;
	for (int i = 0; i < 20; i++)
		blocks += "Thread 0x" + std::to_string(i) + ":\n  File \"x.py\", line 1 in f\n\n";
	for (size_t max = 16; max < 120; max++) {
		auto ps = split_message(blocks, max);
		std::string all;
		for (size_t i = 0; i < ps.size(); i++) {
			CHECK(ps[i].size() <= max);
			if (i + 1 < ps.size())
				CHECK(ps[i].back() != '\n');
			all += ps[i];
		}
		CHECK(all == blocks);
	}
	// No newline near: cut between UTF-8 characters, never inside one.
	std::string wide;
	for (int i = 0; i < 300; i++)
		wide += "\xe2\x82\xac"; // U+20AC, three bytes
	for (const auto &p : split_message(wide, 100)) {
		CHECK(p.size() % 3 == 0);
		CHECK(p.size() <= 100);
	}
}

TEST_CASE("kernel senders are named past the signal plumbing", "[fleet]")
{
	KernelSymbols k("ffffffff81000000 T do_send_sig_info\n"
			"ffffffff81000200 t __send_signal_locked\n"
			"ffffffff81000400 T __oom_kill_process\n"
			"ffffffff81000800 T oom_kill_process\n"
			"ffffffff81000a00 d some_data\n"
			"ffffffffc0000000 t bpf_prog_0123456789abcdef_on_signal_generate [bpf]\n"
			"garbage line\n");
	CHECK(k.name(0xffffffff81000210) == "__send_signal_locked");
	CHECK(k.name(0xffffffff81000a10) == "oom_kill_process"); // data symbols are not functions
	CHECK(k.name(0x1000).empty());
	std::vector<std::string> stack;
	for (uint64_t a : {0xffffffffc0000010ull, 0xffffffff81000210ull, 0xffffffff81000010ull,
			   0xffffffff81000410ull, 0xffffffff81000810ull})
		stack.push_back(k.name(a));
	KernelSender s = describe_kernel_sender(stack);
	CHECK(s.function == "__oom_kill_process");
	CHECK(s.what == "the OOM killer");
	s = describe_kernel_sender({"send_signal_locked", "it_real_fn", "__hrtimer_run_queues"});
	CHECK(s.function == "it_real_fn");
	CHECK(s.what == "an interval timer (SIGALRM)");
	s = describe_kernel_sender({"send_signal_locked", "mystery_fn"});
	CHECK(s.function == "mystery_fn");
	CHECK(s.what.empty());
}

TEST_CASE("host tracker: a process known only from perf records is symbolized; fork, exec, "
	  "exit and time order",
	  "[fleet]")
{
	Fixture crash = crash_binary();
	const std::string &exe = crash.path;
	const auto &loads = crash.loads;
	const ElfFile::Segment *text = &crash.text;
	auto main_sym = crash.elf.symbol("main");
	REQUIRE(main_sym);
	const uint64_t base = 0x555500000000;
	uint64_t text_start = base + (text->vaddr & ~0xfffull);

	HostTracker t{HostTracker::Offline{}};
	// Only the code mapping was reported: the other segments come from
	// the file's program headers.
	feed(t, mmap2(100, text_start, (text->memsz + 0xfff) & ~0xfffull, text->offset & ~0xfffull,
		       exe, 10));
	MappingSet maps = t.mappings(100);
	CHECK(maps.size() == loads.size());
	REQUIRE_FALSE(maps.empty());
	CHECK(maps.segments().front().start == base);
	CHECK(maps.files() == std::vector<std::string>{exe});
	CHECK(t.exe(100) == exe);
	Unwinder u(100);
	u.report_maps(maps);
	auto frames = u.symbolize(base + main_sym->value + 1, false);
	REQUIRE_FALSE(frames.empty());
	CHECK(frames.back().function == "main");

	// A fork has its parent's mappings; an exec starts afresh; an exit
	// forgets the process.
	feed(t, task(PERF_RECORD_FORK, 101, 100, 20));
	CHECK(t.mappings(101) == maps);
	feed(t, exec_comm(101, 30));
	CHECK(t.mappings(101).empty());
	CHECK(t.exe(101).empty());
	feed(t, task(PERF_RECORD_EXIT, 100, 1, 40));
	CHECK_FALSE(t.known(100));
	CHECK(t.mappings(100).empty());
	// A thread's fork and exit change nothing.
	feed(t, mmap2(102, text_start, 0x1000, text->offset & ~0xfffull, exe, 50));
	feed(t, task(PERF_RECORD_FORK, 102, 102, 60, 103));
	feed(t, task(PERF_RECORD_EXIT, 102, 102, 70, 103));
	CHECK(t.known(102));
}

TEST_CASE("host tracker of a watched tree: its members and what they fork, nothing else",
	  "[fleet][tree]")
{
	Fixture crash = crash_binary();
	const std::string &exe = crash.path;
	const ElfFile::Segment *text = &crash.text;
	const uint64_t base = 0x560000000000;
	const uint64_t text_start = base + (text->vaddr & ~0xfffull);
	const uint32_t self = static_cast<uint32_t>(getpid());
	HostTracker t{HostTracker::Offline{}};
	t.follow_tree();
	REQUIRE(t.seed(static_cast<pid_t>(self))); // the watched process
	REQUIRE(t.known(static_cast<pid_t>(self)));
	MappingSet root_maps = t.mappings(static_cast<pid_t>(self));
	REQUIRE_FALSE(root_maps.empty());

	// Another process of the host: its records are dropped.
	feed(t, mmap2(200, text_start, 0x1000, text->offset & ~0xfffull, exe, 10));
	CHECK_FALSE(t.known(200));
	feed(t, task(PERF_RECORD_FORK, 201, 200, 15));
	CHECK_FALSE(t.known(201));

	// A child of the watched process: its parent's mappings, then its own
	// program's after an exec.
	feed(t, task(PERF_RECORD_FORK, 101, self, 20));
	REQUIRE(t.known(101));
	CHECK(t.mappings(101) == root_maps);
	feed(t, exec_comm(101, 30));
	feed(t, mmap2(101, text_start, (text->memsz + 0xfff) & ~0xfffull, text->offset & ~0xfffull,
		       exe, 31));
	CHECK(t.exe(101) == exe);
	CHECK(t.mappings(101).files() == std::vector<std::string>{exe});

	// A grandchild is a member too, and outlives its parent.
	feed(t, task(PERF_RECORD_FORK, 102, 101, 40));
	CHECK(t.known(102));
	CHECK(t.exe(102) == exe);
	feed(t, task(PERF_RECORD_EXIT, 101, self, 50));
	CHECK_FALSE(t.known(101));
	CHECK(t.known(102));
	// Its pid reused by a process outside the tree: not followed.
	feed(t, mmap2(101, text_start, 0x1000, text->offset & ~0xfffull, exe, 60));
	CHECK_FALSE(t.known(101));
}

TEST_CASE("host tracker: a library mapped after /proc was read, a main thread that ends "
	  "alone, exits lost",
	  "[fleet]")
{
	Fixture crash = crash_binary();
	const std::string &lib = crash.path;
	const auto &loads = crash.loads;
	const ElfFile::Segment *text = &crash.text;
	pid_t self = getpid();
	HostTracker t{HostTracker::Offline{}};
	t.seed_from_proc(); // this process among them, every mapping
	REQUIRE(t.known(self));
	// dlopen: perf reports the code mapping alone; its other segments
	// are placed from the file, not left out.
	const uint64_t base = 0x7e0000000000;
	feed(t, mmap2(static_cast<uint32_t>(self), base + (text->vaddr & ~0xfffull),
		       (text->memsz + 0xfff) & ~0xfffull, text->offset & ~0xfffull, lib, 10));
	MappingSet maps = t.mappings(static_cast<pid_t>(self));
	size_t reported = 0; // segments of the mapping reported
	struct stat lib_st;
	REQUIRE(stat(lib.c_str(), &lib_st) == 0);
	for (const auto &m : maps)
		if (m.ino == lib_st.st_ino && m.path == lib)
			reported++;
	CHECK(reported == loads.size());
	// The ELF header's segment, at the base, after what /proc showed.
	const Mapping *header = maps.find(base);
	REQUIRE(header);
	CHECK(header->start == base);
	CHECK(header->path == lib);
	CHECK(maps.segments().front().start < base);

	// The main thread ending while another runs is not the process's end:
	// its last thread's is.
	const uint32_t other = 4000000; // a thread this test makes up
	feed(t, task(PERF_RECORD_FORK, static_cast<uint32_t>(self), static_cast<uint32_t>(self), 15,
		     other));
	feed(t, task(PERF_RECORD_EXIT, static_cast<uint32_t>(self), 1, 20));
	CHECK(t.known(self));
	feed(t, task(PERF_RECORD_EXIT, static_cast<uint32_t>(self), 1, 30, other));
	CHECK_FALSE(t.known(self));

	// Records lost (an exit among them): a process gone is forgotten by
	// the sweep a minute after it was first seen missing, not before.
	pid_t gone = fork();
	REQUIRE(gone >= 0);
	if (gone == 0)
		_exit(0);
	REQUIRE(waitpid(gone, nullptr, 0) == gone);
	feed(t, mmap2(static_cast<uint32_t>(gone), base, 0x1000, 0, lib, 40));
	uint64_t lost[2] = {0, 3}; // id, count
	feed(t, perf_record(PERF_RECORD_LOST, 0, lost, sizeof(lost), 50));
	CHECK(t.lost() == 3);
	t.sweep(100 * kSec);
	CHECK(t.known(gone));
	t.sweep(130 * kSec);
	CHECK(t.known(gone));
	t.sweep(161 * kSec);
	CHECK_FALSE(t.known(gone));
}

TEST_CASE("files a target names: regular files only, a container's inside its root", "[fleet]")
{
	std::string d = fhtest::temp_path("target-files");
	REQUIRE(mkdir(d.c_str(), 0700) == 0);
	REQUIRE(mkfifo((d + "/fifo").c_str(), 0600) == 0);
	{
		std::ofstream(d + "/inside.txt") << "inside";
	}
	REQUIRE(symlink("/inside.txt", (d + "/abs").c_str()) == 0);
	REQUIRE(symlink("../../../../../../inside.txt", (d + "/up").c_str()) == 0);
	REQUIRE(symlink("/proc/self/root/etc/hostname", (d + "/magic").c_str()) == 0);
	auto read_fd = [](int fd) {
		char buf[64] = {};
		ssize_t n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		return std::string(buf, n > 0 ? static_cast<size_t>(n) : 0);
	};
	// A FIFO would block an open for reading; a device's open may act.
	errno = 0;
	CHECK(open_target_file(d + "/fifo") == -1);
	CHECK(errno == EINVAL);
	CHECK(open_target_file("/dev/null") == -1);
	CHECK(open_target_file(d) == -1);
	int fd = open_target_file(d + "/inside.txt");
	REQUIRE(fd >= 0);
	CHECK(read_fd(fd) == "inside");
	// Through a root: its absolute links and ".." stay inside it.
	int root = open(d.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
	REQUIRE(root >= 0);
	std::string in = "/proc/self/fd/" + std::to_string(root);
	fd = open_target_file(in + "/abs");
	REQUIRE(fd >= 0);
	CHECK(read_fd(fd) == "inside");
	fd = open_target_file(in + "/up");
	REQUIRE(fd >= 0);
	CHECK(read_fd(fd) == "inside");
	CHECK(open_target_file(in + "/magic") == -1); // not out through /proc
	CHECK(open_target_file(in + "/fifo") == -1);
	CHECK(open_target_file("/proc/self/fd/x/abs") == -1);
	close(root);

	// A file that replaced the one mapped (same device, another inode: an
	// upgrade) would give wrong names: its frames are unknown instead.
	Fixture crash = crash_binary();
	const std::string &abs = crash.path;
	struct stat st;
	REQUIRE(stat(abs.c_str(), &st) == 0);
	auto main_sym = crash.elf.symbol("main");
	REQUIRE(main_sym);
	auto name_at = [&](uint64_t ino) {
		std::vector<Mapping> maps;
		const uint64_t base = 0x555500000000;
		for (const auto &l : crash.loads) {
			FileMapping m;
			m.start = base + (l.vaddr & ~0xfffull);
			m.end = base + ((l.vaddr + l.memsz + 0xfff) & ~0xfffull);
			m.pgoff = l.offset & ~0xfffull;
			m.prot = (l.flags & 4 ? PROT_READ : 0) | (l.flags & 1 ? PROT_EXEC : 0);
			m.flags = MAP_PRIVATE;
			m.maj = major(st.st_dev);
			m.min = minor(st.st_dev);
			m.ino = ino;
			maps.push_back(as_mapping(m, abs));
		}
		// And libc as this process maps it: a module libdw does find.
		for (const auto &m : read_maps(getpid()))
			if (m.path.find("/libc.so") != std::string::npos)
				maps.push_back(m);
		Unwinder u(100);
		u.report_maps(MappingSet(std::move(maps)));
		auto frames = u.symbolize(base + main_sym->value + 1, false);
		return frames.empty() ? std::string() : frames.back().function;
	};
	CHECK(name_at(st.st_ino) == "main");
	CHECK(name_at(st.st_ino + 1) != "main");
	for (const char *n : {"fifo", "inside.txt", "abs", "up", "magic"})
		unlink((d + "/" + n).c_str());
	rmdir(d.c_str());
}

TEST_CASE("--system-wide command lines", "[fleet][options]")
{
	Options o = parse_options({"-a", "--comm", "nginx,python3", "--comm", "redis-server",
				   "--exclude-comm", "sshd", "--uid", "0,1000", "--cgroup",
				   "/system.slice/x.service", "--signals", "SIGTERM,KILL,24",
				   "--rate-limit", "20/1m", "--process-rate-limit", "0", "--syslog"});
	CHECK(o.system_wide);
	CHECK(o.comms == std::vector<std::string>{"nginx", "python3", "redis-server"});
	CHECK(o.exclude_comms == std::vector<std::string>{"sshd"});
	CHECK(o.uids == std::vector<uint32_t>{0, 1000});
	CHECK(o.cgroups == std::vector<std::string>{"/system.slice/x.service"});
	CHECK(o.extra_signals == ((1ull << 14) | (1ull << 8) | (1ull << 23)));
	CHECK((o.program_rate.count == 20 && o.program_rate.window_ns == 60 * kSec));
	CHECK(o.process_rate.count == 0);
	CHECK(o.syslog_socket == "/dev/log");
	CHECK(o.user_signal == 0);
	o = parse_options({"--system-wide"});
	CHECK((o.program_rate.count == 10 && o.process_rate.count == 3));
	o = parse_options({"-p", "1", "--signals", "SIGTERM", "--syslog-socket", "/run/x.sock"});
	CHECK(o.extra_signals == (1ull << 14));
	CHECK(o.syslog_socket == "/run/x.sock");

	for (auto bad : std::vector<std::vector<std::string>>{
		     {"-a", "-p", "1"},
		     {"-a", "--", "true"},
		     {"-a", "--timeout", "1"},
		     {"-a", "--dump"},
		     {"-a", "--signal", "USR2"},
		     {"-p", "1", "--comm", "x"},
		     {"-p", "1", "--rate-limit", "5"},
		     {"-a", "--comm", "a-name-of-16-chr"},
		     {"-a", "--comm", ""},
		     {"-a", "--uid", "no-such-user-here"},
		     {"-a", "--signals", "SIGCHLD"},
		     {"-a", "--signals", "SIGNOPE"},
		     {"-a", "--rate-limit", "5/0"},
		     {"-a", "--syslog-max-size", "2K"},
		     {"-a", "--syslog", "--syslog-max-size", "512"},
		     {"-a", "--cgroup", ""},
	     }) {
		INFO(Catch::Detail::stringify(bad));
		CHECK(usage_status(bad) == kExitUsage);
	}
}

TEST_CASE("syslog parts: a 10 MB message is split in linear work, whatever its bytes",
	  "[fleet][syslog]")
{
	// One line of 10 MB (a hostile name repeated: no newline to cut at).
	std::string line;
	for (int i = 0; i < 1'000'000; i++)
		line += "\\U0010ffff";
	REQUIRE(line.size() == 10'000'000);
	uint64_t looked = 0;
	auto parts = split_message(line, 8192, &looked);
	// Every part full but the last: nothing to move a cut for.
	CHECK(parts.size() == (line.size() + 8191) / 8192);
	std::string joined;
	joined.reserve(line.size());
	for (const auto &p : parts) {
		CHECK(p.size() <= 8192);
		joined += p;
	}
	CHECK(joined == line);
	// Linear work: each cut looks at its part's last quarter at most
	// (looking back to the message's start for each part is quadratic).
	CHECK(looked <= line.size() / 4 + parts.size() * 4);

	// Nothing but newlines: each part still takes three quarters of its
	// room at least (a part of one byte each would be 200,000 parts).
	std::string newlines(200'000, '\n');
	auto nl_parts = split_message(newlines, 8192, &looked);
	CHECK(nl_parts.size() <= newlines.size() / (8192 * 3 / 4) + 1);
	CHECK(looked <= newlines.size() / 4 + nl_parts.size() * 4);
	size_t total = 0;
	for (const auto &p : nl_parts)
		total += p.size();
	CHECK(total == newlines.size());

	// Newlines, a run of continuation bytes, text: whatever the mix, every
	// byte once, in order, no part over its size, work linear.
	std::string mixed;
	for (int i = 0; i < 20'000; i++)
		mixed += std::string(static_cast<size_t>(i % 97), "\n\x80x"[i % 3]) + "\xe2\x82\xac";
	for (size_t max : {16, 100, 1024, 8192}) {
		auto ps = split_message(mixed, max, &looked);
		std::string all;
		for (const auto &p : ps) {
			CHECK(p.size() <= max);
			all += p;
		}
		CHECK(all == mixed);
		CHECK(looked <= mixed.size() / 4 + ps.size() * 4);
	}
}
