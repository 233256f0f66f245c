// C++ test target: frames inlined several levels deep through templates, a
// lambda, std::function and libstdc++'s own inline functions.
//
//   cxx_inline --report FD --go FD [--core-dir DIR]
//
// Starts two std::threads: "locker" blocks in std::mutex::lock on a mutex
// the main thread holds (libstdc++'s lock_guard, mutex::lock and
// __gthread_mutex_lock inlined into locker_main), "reader" blocks in read()
// at the bottom of an inlined template member.  Once both sit in their
// system call, the main thread writes one line per thread to the report fd,
//
//   thread TID 0xPTHREAD ROLE        (ROLE: main, locker, reader)
//
// then "ready", reads one byte from the go fd and calls a std::function
// whose lambda looks a key up in a Table (inlined) and reads through a null
// pointer there: Table::lookup <- the lambda <- std::__invoke_impl <-
// std::__invoke_r, all inlined into _Function_handler::_M_invoke.  With
// --core-dir it first moves there and lifts RLIMIT_CORE, so that the kernel
// writes its core (the tests' oracle) there.
//
// Lines the tests look for carry a marker comment: "@name".
#include <fcntl.h>
#include <pthread.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "parked.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <functional>
#include <mutex>
#include <thread>

#define ALWAYS_INLINE __attribute__((always_inline)) inline

namespace shop {

struct Slot {
	int key;
	const int *value;
};

template <typename Key, int N> class Table {
public:
	explicit Table(const Slot *slots) : slots_(slots) {}

	ALWAYS_INLINE int lookup(Key k) const
	{
		for (int i = 0; i < N; i++) {
			if (slots_[i].key != k)
				continue;
			int v = *slots_[i].value; /* @cxx_lookup */
			// The load stays here, in lookup's own code.
			__asm__ volatile("" ::"r"(v));
			return v;
		}
		return -1;
	}

private:
	const Slot *volatile slots_;
};

// A source of bytes whose read is inlined into its caller.
template <typename Byte> struct Source {
	int fd;
	ALWAYS_INLINE long next(Byte *b) const
	{
		return read(fd, b, sizeof(*b)); /* @cxx_next */
	}
	ALWAYS_INLINE void drain() const
	{
		Byte b;
		for (;;)
			if (next(&b) <= 0) /* @cxx_drain */
				__asm__ volatile("" ::: "memory");
	}
};

__attribute__((noipa)) int run_job(const std::function<int(int)> &job, int key)
{
	int v = job(key); /* @cxx_run_job */
	__asm__ volatile("" ::: "memory");
	return v + 1;
}

} // namespace shop

namespace {

std::mutex held;
int idle_pipe[2];
pid_t tids[2];
pthread_t selves[2];
std::mutex started_mu;
int started;

void note_started(int i)
{
	std::lock_guard<std::mutex> g(started_mu);
	tids[i] = static_cast<pid_t>(syscall(SYS_gettid));
	selves[i] = pthread_self();
	started++;
}

__attribute__((noinline)) void locker_main()
{
	note_started(0);
	std::lock_guard<std::mutex> g(held); /* @cxx_locker */
	__asm__ volatile("" ::: "memory");
}

__attribute__((noinline)) void reader_main()
{
	note_started(1);
	shop::Source<char> src{idle_pipe[0]};
	src.drain(); /* @cxx_reader */
}

[[noreturn]] void die(const char *what)
{
	std::perror(what);
	_exit(100);
}

void wait_parked()
{
	timespec tick = {0, 1000000};
	for (int tries = 0; tries < 20000; tries++) {
		bool all;
		{
			std::lock_guard<std::mutex> g(started_mu);
			all = started == 2;
		}
		if (all && parked_in(tids[0], SYS_futex) && parked_in(tids[1], SYS_read))
			return;
		nanosleep(&tick, nullptr);
	}
	std::fprintf(stderr, "cxx_inline: threads did not park\n");
	_exit(101);
}

} // namespace

int main(int argc, char **argv)
{
	int report_fd = -1, go_fd = -1;
	const char *core_dir = nullptr;
	for (int i = 1; i + 1 < argc; i += 2) {
		if (!std::strcmp(argv[i], "--report"))
			report_fd = std::atoi(argv[i + 1]);
		else if (!std::strcmp(argv[i], "--go"))
			go_fd = std::atoi(argv[i + 1]);
		else if (!std::strcmp(argv[i], "--core-dir"))
			core_dir = argv[i + 1];
	}
	if (report_fd < 0 || go_fd < 0 || argc % 2 != 1) {
		std::fprintf(stderr, "usage: cxx_inline --report FD --go FD [--core-dir DIR]\n");
		return 2;
	}
	if (core_dir) {
		rlimit unlimited = {RLIM_INFINITY, RLIM_INFINITY};
		if (chdir(core_dir) != 0 || setrlimit(RLIMIT_CORE, &unlimited) != 0)
			die("core dir");
	}
	if (pipe(idle_pipe) != 0)
		die("pipe");
	held.lock();
	std::thread locker(locker_main);
	std::thread reader(reader_main);
	wait_parked();

	FILE *report = fdopen(report_fd, "w");
	if (!report)
		die("fdopen");
	std::fprintf(report, "thread %d 0x%lx main\n", getpid(),
		     static_cast<unsigned long>(pthread_self()));
	std::fprintf(report, "thread %d 0x%lx locker\n", tids[0], static_cast<unsigned long>(selves[0]));
	std::fprintf(report, "thread %d 0x%lx reader\n", tids[1], static_cast<unsigned long>(selves[1]));
	std::fprintf(report, "ready\n");
	std::fflush(report);
	char c;
	if (read(go_fd, &c, 1) != 1)
		return 3;

	static const int present = 7;
	static const shop::Slot slots[3] = {{1, &present}, {2, &present}, {3, nullptr}};
	shop::Table<int, 3> table(slots);
	std::function<int(int)> job = [&table](int key) {
		return table.lookup(key) * 2; /* @cxx_lambda */
	};
	int v = shop::run_job(job, 3); /* @cxx_main */
	locker.detach();
	reader.detach();
	return v;
}
